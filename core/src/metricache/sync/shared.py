"""The distributed strategies' engine: from changed series to confirmed batches.

:class:`SharedSync` holds what the syncer knows of the store: per series what it
confirmed (``sent``) and the series' life, the series it must refresh and when, its
gauge pages, the store epoch, the batch whose answer was lost. One call of
:meth:`SharedSync.sync` drains the change tracker, sends what changed (in batches of
at most :data:`MAX_SERIES_PER_BATCH` series), refreshes what is due, and records
what the store confirmed. The rules it follows are in ``docs/sync.md``; the module
docstring of :mod:`metricache.sync.syncer` sums them up.
"""

from __future__ import annotations

import gc
import itertools
import logging
import operator
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from metricache.errors import OutcomeUnknown
from metricache.instance import Instance
from metricache.registry import Registry
from metricache.snapshot import GaugeMerge, MetricType
from metricache.store import Store
from metricache.sync.batch import OutcomeStatus, PartialApply, SyncBatch, SyncOutcome
from metricache.sync.clock import Clock
from metricache.sync.collected import CollectedSeries
from metricache.sync.gauges import GaugeBook
from metricache.sync.keyspace import FamilyMeta, Keyspace, encode_labels
from metricache.sync.liveness import REFRESH_FRACTION, RefreshQueue
from metricache.sync.plan import Plan
from metricache.sync.series import (
    SeriesState,
    current_values,
    family_meta,
    gauge_entry,
    inherited_values,
)

__all__ = ["MAX_SERIES_PER_BATCH", "SharedSync"]

log = logging.getLogger("metricache.sync")

MAX_SERIES_PER_BATCH = 50_000
"""Series written or refreshed per batch; a larger sync sends several batches."""

_MAX_ROUNDS = 4  # batches re-sending lost series within one sync, beyond the first pass
_LARGE_SYNC = 5_000  # series pending from which a sync pauses the cyclic garbage collector


class SharedSync:
    """What one syncer knows of a shared store, and how it moves changes there.

    ``on_retry`` is called each time a batch whose answer was lost is sent again;
    ``exactly_once`` says the store applies a batch once however late it is re-sent,
    so such a batch is kept and re-sent unchanged.
    """

    def __init__(
        self,
        registry: Registry,
        store: Store,
        keyspace: Keyspace,
        *,
        liveness_ttl: float,
        exactly_once: bool,
        clock: Clock,
        on_retry: Callable[[], None],
    ) -> None:
        self.registry = registry
        self.store = store
        self.keyspace = keyspace
        self.liveness_ttl = liveness_ttl
        self.exactly_once = exactly_once
        self.clock = clock
        self._on_retry = on_retry
        self.states: dict[Any, SeriesState] = {}
        self.pending: set[Any] = set()
        self.refresh = RefreshQueue(keyspace.retention * REFRESH_FRACTION)
        self.gauges = GaugeBook(store.gauge_page_size)
        self.collected = CollectedSeries()
        self.families_gen: dict[str, int] = {}
        self.instance_gen = -1
        self.epoch = ""
        self.seq = 0
        self.in_flight: Plan | None = None
        # Series whose trace of this incarnation the store may still hold: the last
        # batch of the next sync lets it drop those that sync does not write again.
        self.traced: dict[str, str] = {}  # series id -> the life its trace names
        self._written_now: set[str] = set()  # series the sync in progress writes
        self.scan_registry()

    # -- what changed ------------------------------------------------------------------

    def scan_registry(self) -> None:
        """Arm the registry's change tracker and take every series it has as changed.

        In a forked child, a series the child inherited and has not recorded into
        since is left out: it is its parent's to report.
        """
        registry = self.registry
        registry.arm_tracker()
        inherited = registry.inherited
        for metric in registry.metrics():
            for child in metric.children():
                if not child._dirty and child in inherited:
                    continue
                child._dirty = False
                self.pending.add(child)

    def _state_of(self, child: Any) -> SeriesState:
        """Return the record of ``child``, made on first sight (with what it inherited)."""
        state = self.states.get(child)
        if state is None:
            state = self.states[child] = SeriesState.for_child(child)
            raw = self.registry.inherited.get(child)
            if raw is not None and state.kind is not MetricType.GAUGE:
                state.base = inherited_values(state.kind, raw)
                state.sent = state.base
        return state

    def drain(self) -> None:
        """Move every series that changed since the last drain into ``pending``."""
        tracker = self.registry.tracker
        pending = self.pending
        popleft = tracker.popleft
        while True:
            try:
                child = popleft()
            except IndexError:
                return
            # Clear the flag before reading the value: an update racing this either
            # sees the cleared flag and re-marks the series, or is read below.
            child._dirty = False
            pending.add(child)

    def holds(self, state: SeriesState) -> bool:
        """Return whether this instance still holds ``state`` (it must refresh it)."""
        child = state.child
        if child is None:
            return self.collected.holds(state)
        return self.states.get(child) is state and not state.detached()

    # -- one sync ----------------------------------------------------------------------

    def sync(self, instance: Instance) -> tuple[int, bool]:
        """Send what changed and what is due; return ``(series sent, totals re-sent)``.

        Raises the store's error when a batch fails (what it carried is sent again
        next time).
        """
        # (No drain here: a batch whose reply was lost is re-sent before the tracker is
        # drained, or the series it covers would be taken for settled.)
        if len(self.pending) + len(self.registry.tracker) < _LARGE_SYNC:
            return self._sync(instance)
        # A large sync allocates a few small lists and tuples per series, which all
        # live until the store answers; with many series alive, the cyclic garbage
        # collector would run full collections over all of them several times per
        # batch (measured: 2 to 3 times the cost of the sync). They hold no cycles, so
        # the collector waits until the sync is done.
        enabled = gc.isenabled()
        gc.disable()
        try:
            return self._sync(instance)
        finally:
            if enabled:
                gc.enable()

    def _sync(self, instance: Instance) -> tuple[int, bool]:
        resent = self._retry_in_flight()
        self.drain()
        self._written_now = set()
        sent = 0
        epoch_changes = 0
        rounds = 0
        while True:
            chunk = list(itertools.islice(self.pending, MAX_SERIES_PER_BATCH))
            room = MAX_SERIES_PER_BATCH - len(chunk)
            now = self.clock.monotonic()
            due = self.refresh.take_due(now, room, self.holds) if room else []
            final = len(chunk) == len(self.pending) and len(due) < room
            plan = self._build(instance, chunk, due, final=final, now=now)
            try:
                outcome = self.store.apply_sync(plan.batch)
            except PartialApply as exc:
                self.refresh.put_back(plan.refreshed + plan.gauge_states)
                if exc.outcome is not None:
                    self._commit(plan, exc.outcome, applied=exc.applied)
                raise
            except OutcomeUnknown:
                if self.exactly_once:
                    self.in_flight = plan
                else:
                    self.refresh.put_back(plan.refreshed + plan.gauge_states)
                raise
            except Exception:
                self.refresh.put_back(plan.refreshed + plan.gauge_states)
                raise
            if outcome.status is OutcomeStatus.EPOCH_CHANGED:
                self.refresh.put_back(plan.refreshed + plan.gauge_states)
                epoch_changes += 1
                if epoch_changes > 2:
                    raise RuntimeError("the store's epoch kept changing during one sync")
                if self.epoch:
                    resent = True
                self.new_epoch(outcome.epoch)
                continue
            again = self._commit(plan, outcome)
            self.pending.difference_update(plan.considered)
            sent += len(plan.batch.writes)
            if again:
                self.pending.update(again)
            if outcome.lost_shards:
                self.shards_lost(outcome.lost_shards)
                resent = True
            # Series the store lost, and gauges whose header expired, go again at once.
            more = bool(outcome.lost or outcome.stale or outcome.gauges_lost or outcome.lost_shards)
            if final and not more:
                return sent, resent
            if final:
                rounds += 1
                if rounds > _MAX_ROUNDS:
                    return sent, resent  # the rest goes with the next sync

    def _retry_in_flight(self) -> bool:
        """Send the batch whose answer was lost again, unchanged, before anything else."""
        plan = self.in_flight
        if plan is None:
            return False
        plan.batch.retry = True
        self._on_retry()
        outcome = self.store.apply_sync(plan.batch)
        self.in_flight = None
        if outcome.status is OutcomeStatus.EPOCH_CHANGED:
            self.refresh.put_back(plan.refreshed + plan.gauge_states)
            self.new_epoch(outcome.epoch)
            return True
        again = self._commit(plan, outcome)
        self.pending.difference_update(plan.considered)
        self.pending.update(again)
        if outcome.lost_shards:
            self.shards_lost(outcome.lost_shards)
            return True
        return False

    # -- building a batch --------------------------------------------------------------

    def _build(
        self,
        instance: Instance,
        children: list[Any],
        due: list[SeriesState],
        *,
        final: bool,
        now: float,
    ) -> Plan:
        keyspace = self.keyspace
        gen = keyspace.generation(self.clock.time())
        self.seq += 1
        life = f"{instance.token}.{self.seq}"
        proposed = life.replace(".", "-")
        batch = SyncBatch(
            keyspace=keyspace,
            instance_id=instance.id,
            instance_key=instance.key,
            token=instance.token,
            seq=self.seq,
            epoch=self.epoch or proposed,
            proposed_epoch=proposed,
            liveness_ttl=self.liveness_ttl,
            life=life,
        )
        plan = Plan(batch, gen, now)
        plan.considered = children
        gauge = MetricType.GAUGE
        counter = MetricType.COUNTER
        states = self.states
        writes = batch.writes
        written = plan.written
        for child in children:
            state = states.get(child)
            if state is None:
                state = self._state_of(child)
            family = child.family
            gone = child._gone  # removed from its metric
            if gone:
                plan.dropped.append(child)
            kind = state.kind
            if kind is gauge:
                self._gauge_changed(plan, state, gone)
                continue
            sent = state.sent
            if kind is counter:
                # The usual case, inlined: a whole-number counter needs no split.
                value = child._value
                values = (int(value), 0) if value.is_integer() else current_values(state)
                whole, nanos = values
                if whole != sent[0] or nanos != sent[1] or not (state.life or gone):
                    writes.append(
                        (state.sid, state.life, state.parts, (whole - sent[0], nanos - sent[1]))
                    )
                    written.append((state, values))
                elif gone:
                    continue  # removed, nothing left to send: not registered again
            else:
                values = current_values(state)
                if values != sent or not (state.life or gone):
                    plan.add_write(state, values)
                elif gone:
                    continue
            if state.gen != gen:
                self._register(plan, state, partial(family_meta, family))
        for state in due:
            if not state.life:
                continue  # it is being sent whole; held again once the store confirms it
            if state.kind is gauge:
                plan.gauge_states.append(state)
            else:
                batch.refresh.append((state.sid, state.life, state.parts))
                plan.refreshed.append(state)
            if state.gen != gen:
                self._register(plan, state, partial(_meta_of_state, state))
        if final:
            self.collected.collect(
                self.registry,
                partial(self._collected_changed, plan),
                partial(self._collected_gauge, plan),
            )
            if self.instance_gen != gen:
                registrations = batch.registrations.setdefault(keyspace.instances(gen), {})
                registrations[instance.key] = instance.id
                plan.instance = True
            plan.gauges = batch.gauges = self.gauges.update(now)
        if self.exactly_once:
            self._written_now.update(map(_first, writes))
            if final and self.traced:
                # Traces of confirmed batches that this sync does not write again.
                fresh = self._written_now
                batch.prune = [(sid, life) for sid, life in self.traced.items() if sid not in fresh]
        return plan

    def _gauge_changed(self, plan: Plan, state: SeriesState, gone: bool) -> None:
        child = state.child
        if gone:
            self.gauges.remove(state.sid)
            return
        metric = child.family
        value, stamp = child.own()
        text = repr(value)
        if metric.merge is GaugeMerge.LAST:
            text = f"{text}@{stamp!r}"  # the time of the change matters too
        if text != state.entry:
            state.entry = text
            self.gauges.put(state.sid, gauge_entry(value, stamp))
            if not state.life:
                state.life = "held"
                plan.gauge_states.append(state)
        if state.gen != plan.gen:
            self._register(plan, state, partial(family_meta, metric))

    def _collected_changed(self, plan: Plan, state: SeriesState, values: tuple[int, ...]) -> None:
        plan.add_write(state, values)
        if state.gen != plan.gen:
            self._register(plan, state, partial(_meta_of_state, state))

    def _collected_gauge(self, plan: Plan, state: SeriesState, entry: str | None) -> None:
        if entry is None:
            self.gauges.remove(state.sid)
            return
        self.gauges.put(state.sid, entry)
        if not state.life:
            state.life = "held"
            plan.gauge_states.append(state)
        if state.gen != plan.gen:
            self._register(plan, state, partial(_meta_of_state, state))

    def _register(self, plan: Plan, state: SeriesState, meta: Callable[[], FamilyMeta]) -> None:
        """Add ``state`` (and its family, once) to this generation's registrations."""
        if state in plan.registered_set:
            return
        registrations = plan.batch.registrations
        keyspace = self.keyspace
        registrations.setdefault(keyspace.index(state.family, plan.gen), {})[state.sid] = (
            encode_labels(state.labels)
        )
        plan.registered.append(state)
        plan.registered_set.add(state)
        if self.families_gen.get(state.family) != plan.gen and state.family not in plan.families:
            registrations.setdefault(keyspace.families(plan.gen), {})[state.family] = (
                meta().encode()
            )
            plan.families.append(state.family)

    # -- recording what the store confirmed -------------------------------------------

    def _commit(
        self,
        plan: Plan,
        outcome: SyncOutcome,
        *,
        applied: Mapping[int, tuple[int, ...] | None] | None = None,
    ) -> list[Any]:
        """Record what the store confirmed; return the children to send again now.

        ``applied`` (a partial apply) limits the record to the writes it names, whole
        (None) or in part (the indexes of their parts); registrations, refreshes and
        gauges of a partly applied batch are not recorded (they are sent again).
        """
        batch = plan.batch
        self.epoch = outcome.epoch
        lost = set(outcome.lost)
        joined = outcome.joined
        again: list[Any] = []
        traced = self.traced
        for i, (state, values) in enumerate(plan.written):
            if i in lost:
                state.forget_life()
                if state.child is not None:
                    again.append(state.child)
                continue
            if applied is not None:
                if i not in applied:
                    continue
                some = applied[i]
                if some is not None:
                    state.sent = tuple(
                        values[k] if k in some else sent for k, sent in enumerate(state.sent)
                    )
                    continue
            state.sent = values
            if not state.life:
                state.life = joined.get(i, batch.life)
                if self.holds(state):
                    self.refresh.schedule(state, plan.sent_at)
            if self.exactly_once:
                traced[state.sid] = state.life
        if applied is not None:
            return again
        for sid, life in batch.prune:
            if traced.get(sid) == life:
                del traced[sid]
        stale = set(outcome.stale)
        for j, state in enumerate(plan.refreshed):
            if j in stale:
                state.forget_life()
                if state.child is not None:
                    again.append(state.child)
            else:
                self.refresh.schedule(state, plan.sent_at)
        for state in plan.gauge_states:
            self.refresh.schedule(state, plan.sent_at)
        for state in plan.registered:
            state.gen = plan.gen
        for name in plan.families:
            self.families_gen[name] = plan.gen
        if plan.instance:
            self.instance_gen = plan.gen
        if plan.gauges is not None:
            self.gauges.confirm(plan.gauges, plan.sent_at, self.refresh.period)
        if outcome.gauges_lost:
            self.gauges.lost()
        for child in plan.dropped:
            record = self.states.get(child)
            if record is not None and record.detached():
                del self.states[child]
        return again

    # -- the store lost its data -------------------------------------------------------

    def shards_lost(self, shards: tuple[str, ...]) -> None:
        """Some shards of the store lost their data: check every series held there now.

        Their series are refreshed with the next batch; those the store lost are
        answered stale and sent whole. The rest of the store is untouched: nothing
        else is checked or registered again.
        """
        log.warning(
            "store %s has lost the series of %d shard(s) (%s): checking every series "
            "held there and sending again what the store lost",
            self.store.describe(),
            len(shards),
            ", ".join(sorted(shards)[:8]) + (", ..." if len(shards) > 8 else ""),
        )
        wanted = set(shards)
        shard = self.keyspace.shard
        self.refresh.expedite(lambda state: shard(state.sid) in wanted)

    def new_epoch(self, epoch: str) -> None:
        """The store may have lost its data: check every series held, register anew.

        The store answered with another epoch (a flush, a restart without
        persistence, an epoch key that cannot be read). Every series this instance
        holds is refreshed at once: those the store still has in the life this
        instance knows keep its contribution (nothing is sent twice), those it lost
        are answered stale and sent whole.
        """
        if self.epoch:
            log.warning(
                "store %s has lost its data (epoch %s -> %s): checking every series held "
                "and sending again what the store lost",
                self.store.describe(),
                self.epoch,
                epoch,
            )
        self.epoch = epoch
        self.refresh.expedite()
        for child, state in list(self.states.items()):
            if state.detached():
                del self.states[child]
                continue
            state.gen = -1
        for state in self.collected.all_states():
            state.gen = -1
        self.families_gen.clear()
        self.instance_gen = -1
        self.gauges.lost()
        # Series never seen by the syncer yet are still in the tracker or pending.


_first = operator.itemgetter(0)


def _meta_of_state(state: SeriesState) -> FamilyMeta:
    """The family metadata of a series (a metric's, or the collector family's)."""
    if state.child is not None:
        return family_meta(state.child.family)
    assert state.meta is not None
    return state.meta
