"""The syncer: a background thread that folds what changed into the store.

Semantics (the part that decides whether every number shown is true):

* The hot path never touches the store. Each series appends itself to its
  registry's change tracker the first time it changes after a sync; the syncer
  drains the tracker, so a sync costs in proportion to the series that changed.
* A sync sends **deltas since the last confirmed sync**: per series the syncer
  keeps the cumulative integers the store confirmed (``sent``) and sends
  ``current - sent``. Nothing is confirmed until the store says so; a failed sync
  leaves ``sent`` alone and the next one sends everything since. Memory does not
  grow while the store is down.
* Counters and histograms go to keys shared by every instance; gauges go to this
  instance's own map, which lives while the instance syncs (the liveness TTL).
* A batch carries the store epoch it was computed against. A store that lost its
  data (flush, restart without persistence) has another epoch, or none, and
  applies nothing; the syncer then re-sends its cumulative totals, so the shared
  totals again equal the sum over live instances.
* On a store that declares ``exactly_once`` (Redis), a batch whose answer was lost
  is re-sent unchanged, with the same sequence number, before anything else; the
  store recognises it and does not apply it twice.
* A forked child is a new instance: it starts from the values it inherited as its
  baseline (they are the parent's to send) and reconnects to the store.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import math
import os
import random
import secrets
import threading
import time
import weakref
from collections.abc import Callable
from functools import partial
from types import TracebackType
from typing import Any

from metricache.errors import OutcomeUnknown
from metricache.instance import Instance, current_instance
from metricache.metrics import Counter, Gauge, Histogram
from metricache.registry import REGISTRY, Registry
from metricache.snapshot import MetricType, Sample, Snapshot
from metricache.store import Capability, Store
from metricache.sync import local
from metricache.sync.batch import OutcomeStatus, PartialApply, SyncBatch, SyncOutcome
from metricache.sync.keyspace import FamilyMeta, Keyspace, encode_labels, split_fixed
from metricache.sync.report import SyncReport
from metricache.sync.series import (
    SeriesState,
    current_values,
    family_meta,
    gauge_entry,
    gauge_sample_entry,
    meta_of_family,
    sample_values,
)
from metricache.sync.strategy import Strategy, StrategyChoice, select_strategy

__all__ = ["Syncer"]

log = logging.getLogger("metricache.sync")

_SWEEP_EVERY = 64  # syncs between sweeps of removed series
_SERIALS = itertools.count(1)
MAX_SERIES_PER_BATCH = 50_000
"""Series per batch; a sync of more changed series sends several batches."""


class _SelfMetrics:
    """metricache's own metrics about syncing, kept in the synced registry."""

    def __init__(self, registry: Registry) -> None:
        self.duration = Histogram(
            "metricache_sync_duration_seconds",
            "Time taken by sync attempts",
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=registry,
        )
        self.syncs = Counter(
            "metricache_syncs", "Sync attempts by result", ["result"], registry=registry
        )
        self.errors = Counter(
            "metricache_sync_errors",
            "Failed sync attempts by error type",
            ["error"],
            registry=registry,
        )
        self.series = Gauge(
            "metricache_sync_series",
            "Series whose changes the last successful sync sent",
            registry=registry,
            merge="per_instance",
        )
        self.pending = Gauge(
            "metricache_sync_pending_series",
            "Series with changes the store has not confirmed yet",
            registry=registry,
            merge="per_instance",
        )
        self.last_sync = Gauge(
            "metricache_last_sync_timestamp_seconds",
            "Unix time of the last successful sync",
            registry=registry,
            merge="per_instance",
        )
        self.resets = Counter(
            "metricache_store_resets",
            "Times the store was found to have lost its data (totals were re-sent)",
            registry=registry,
        )
        self.retries = Counter(
            "metricache_sync_batch_retries",
            "Batches re-sent after their outcome was unknown",
            registry=registry,
        )


class _Plan:
    """A batch and what to record when the store confirms it."""

    __slots__ = (
        "batch",
        "considered",
        "families",
        "fractional",
        "gen",
        "instance",
        "origins",
        "registered",
        "registered_set",
    )

    def __init__(self, batch: SyncBatch, gen: int) -> None:
        self.batch = batch
        self.gen = gen
        # (series, index of the integer, cumulative value sent), one per increment
        self.origins: list[tuple[SeriesState, int, int]] = []
        self.considered: list[Any] = []
        self.registered: list[SeriesState] = []
        self.registered_set: set[SeriesState] = set()
        self.families: list[str] = []
        self.instance = False
        # Families that sent billionths (the reader only fetches those parts for them).
        self.fractional: set[str] = set()


def _self_metrics(registry: Registry) -> _SelfMetrics:
    found: _SelfMetrics = registry.self_metric("sync", _SelfMetrics)
    return found


class Syncer:
    """Sync a registry to a store in the background.

    ``interval`` is the seconds between syncs; ``retention`` is the TTL of what the
    store holds (each sync refreshes what it touches); ``liveness_ttl`` is how long
    this instance's gauges outlive its last sync (default: three intervals, at least
    5 s); ``local_state_ttl`` is how long a ``local_only`` store keeps this instance's
    saved view (default one day), so a restart with the same id within it resumes.
    ``strategy`` overrides the detected one (only to a weaker strategy).

    Use it as a context manager, or call :meth:`start` and :meth:`stop`. It stops
    (with a final sync) at interpreter exit. Nothing it does raises into the
    application: failures are logged, counted and retried.
    """

    def __init__(
        self,
        registry: Registry = REGISTRY,
        store: Store | None = None,
        *,
        interval: float = 30.0,
        retention: float = 300.0,
        liveness_ttl: float | None = None,
        local_state_ttl: float = 86400.0,
        namespace: str = "metricache",
        instance_id: str | None = None,
        strategy: Strategy | str | None = None,
        jitter: float = 0.1,
    ) -> None:
        if not interval > 0:
            raise ValueError("interval must be > 0 seconds")
        if not retention > 0:
            raise ValueError("retention must be > 0 seconds")
        if store is None:
            from metricache.store_plugins import open_store

            store = open_store("memory")
        if instance_id is not None and not instance_id.strip():
            raise ValueError("an instance id must not be empty")
        self._instance_id = instance_id
        self._serial = next(_SERIALS)
        self.registry = registry
        self.store = store
        self.interval = float(interval)
        self.liveness_ttl = float(liveness_ttl or max(3 * self.interval, 5.0))
        if not local_state_ttl > 0:
            raise ValueError("local_state_ttl must be > 0 seconds")
        self.local_state_ttl = float(local_state_ttl)
        self.keyspace = Keyspace(namespace, float(retention))
        self.jitter = jitter
        self.choice: StrategyChoice = select_strategy(store)
        if strategy is not None:
            wanted = Strategy(strategy)
            order = list(Strategy)
            if order.index(wanted) < order.index(self.choice.strategy):
                raise ValueError(
                    f"store {store.describe()} supports {self.choice.strategy.value}, "
                    f"not {wanted.value}"
                )
            self.choice = StrategyChoice(wanted, self.choice.capabilities, "configured")
        self._exactly_once = Capability.EXACTLY_ONCE in self.choice.capabilities
        self._metrics = _self_metrics(registry)
        self._sync_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._pid_at_start = self._pid
        self.last_report: SyncReport | None = None
        self._failures = 0  # consecutive failed syncs
        self._reset_state()
        self._base: list[Any] | None = None  # local_only: the previous run's view
        self._local_written = False
        _register_fork_handler(self)
        atexit.register(_stop_at_exit, weakref.ref(self))

    # -- public interface --------------------------------------------------------------

    @property
    def strategy(self) -> Strategy:
        """The strategy in use."""
        return self.choice.strategy

    @property
    def instance(self) -> Instance:
        """The instance this syncer writes as.

        Its id is the one given to the syncer, else the process's; its token is the
        process incarnation's plus a number of this syncer, so that two syncers of one
        process never take each other's batches for their own.
        """
        process = current_instance()
        instance_id = self._instance_id or process.id
        if self._instance_id and process.pid != self._pid_at_start:
            instance_id = f"{self._instance_id}-{process.pid}"
        return Instance(id=instance_id, token=f"{process.token}.{self._serial}", pid=process.pid)

    @property
    def running(self) -> bool:
        """Whether the background thread is running."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> Syncer:
        """Start the background thread (a no-op if it runs already)."""
        self._check_fork()
        if self.running:
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="metricache-syncer", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> SyncReport | None:
        """Stop the thread after a final sync; wait at most ``timeout`` seconds.

        Returns the report of the final sync (None if it did not finish in time).
        """
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            self._stop.set()
            thread.join(timeout)
            self._thread = None
            if thread.is_alive():
                log.warning("the syncer did not finish its final sync within %.1f s", timeout)
                return None
            return self.last_report
        self._thread = None
        return self.flush()

    def flush(self) -> SyncReport:
        """Sync now, in the calling thread; return the report (never raises store errors)."""
        self._check_fork()
        with self._sync_lock:
            return self._sync_and_report()

    def __enter__(self) -> Syncer:
        return self.start()

    def __exit__(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def snapshot(self) -> Snapshot:
        """Return this instance's view as the store sees it after a sync.

        For ``local_only`` it includes what a previous run with the same instance id
        saved; otherwise it is the registry's own snapshot.
        """
        live = self.registry.snapshot(instance=self.instance.id, strategy=self.strategy.value)
        if self.strategy is Strategy.LOCAL_ONLY:
            return local.combine(self._load_base(), live)
        return live

    # -- the thread ----------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            delay = self.interval * (1 + self.jitter * (2 * random.random() - 1))
            stopping = self._stop.wait(delay)
            with self._sync_lock:
                if self._pid != os.getpid():
                    return  # a thread object inherited through fork never runs
                self._sync_and_report()
            if stopping:
                return

    # -- state ---------------------------------------------------------------------------

    def _reset_state(self) -> None:
        self._series: dict[Any, SeriesState] = {}
        # Series of custom collectors, by (family, labels), and their gauge entries.
        self._virtual: dict[tuple[str, tuple[str, ...]], SeriesState] = {}
        self._virtual_gauges: dict[str, str] = {}
        self._virtual_gauge_values: dict[str, str] = {}
        self._pending: set[Any] = set()
        self._families_gen: dict[str, int] = {}
        self._fractional_gen: dict[str, int] = {}
        self._instance_gen = -1
        self._epoch = ""
        self._seq = 0
        self._in_flight: _Plan | None = None
        self._gauges_dirty = True
        self._syncs = 0

    def _check_fork(self) -> None:
        if self._pid != os.getpid():
            self._after_fork()

    def _after_fork(self) -> None:
        """Become a new instance in a forked child; the inherited values are baseline."""
        self._pid = os.getpid()
        self._sync_lock = threading.Lock()
        self._stop = threading.Event()
        was_running = self._thread is not None
        self._thread = None
        epoch = self._epoch
        families_gen = self._families_gen
        fractional_gen = self._fractional_gen
        old_series = self._series
        self._reset_state()
        self._epoch = epoch
        self._families_gen = families_gen  # registrations are shared, not per instance
        self._fractional_gen = fractional_gen
        tracker = self.registry.tracker
        while tracker:
            try:
                tracker.popleft()._dirty = False
            except IndexError:
                break
        for metric in self.registry.metrics():
            for child in metric.children():
                child._dirty = False
                if metric._type is MetricType.GAUGE:
                    continue
                state = old_series.get(child) or SeriesState.for_child(child)
                state.sent = current_values(state)
                state.base = list(state.sent)
                self._series[child] = state
        try:
            self.store.after_fork()
        except Exception:
            log.warning(
                "store %s: reconnecting after fork failed", self.store.describe(), exc_info=True
            )
        if was_running:
            self.start()

    # -- one sync ------------------------------------------------------------------------

    def _sync_and_report(self) -> SyncReport:
        started = time.time()
        t0 = time.perf_counter()
        series = 0
        error: str | None = None
        resent = False
        try:
            if self.strategy is Strategy.LOCAL_ONLY:
                series = self._sync_local()
            else:
                series, resent = self._sync_shared()
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            self._metrics.errors.labels(type(exc).__name__).inc()
            if isinstance(exc, PartialApply):
                self._metrics.errors.labels(type(exc.cause).__name__).inc()
            self._failures += 1
            # One warning when an outage starts, then quiet until it ends: a store
            # that is down for an hour must not fill the application's logs.
            level = logging.WARNING if self._failures == 1 else logging.DEBUG
            log.log(
                level,
                "sync to %s failed: %s (deltas kept for the next sync)",
                self.store.describe(),
                error,
            )
        else:
            if self._failures:
                log.warning(
                    "sync to %s works again after %d failed attempts",
                    self.store.describe(),
                    self._failures,
                )
            self._failures = 0
        duration = time.perf_counter() - t0
        self._syncs += 1
        m = self._metrics
        m.duration.observe(duration)
        m.syncs.labels("ok" if error is None else "failed").inc()
        m.pending.set(len(self._pending))
        if error is None:
            m.series.set(series)
            m.last_sync.set(started + duration)
        if resent:
            m.resets.inc()
        report = SyncReport(
            instance=self.instance.id,
            store=self.store.describe(),
            strategy=self.strategy.value,
            started=started,
            duration=duration,
            series=series,
            ok=error is None,
            error=error,
            resent_totals=resent,
        )
        self.last_report = report
        self._notify(report)
        if self._syncs % _SWEEP_EVERY == 0:
            self._sweep()
        return report

    def _notify(self, report: SyncReport) -> None:
        try:
            from metricache.plugins import get_plugin_manager

            get_plugin_manager().hook.metricache_cache_synced(report=report)
        except Exception:
            log.exception("a metricache_cache_synced hook failed")

    def _drain(self) -> None:
        """Move every series that changed since the last drain into ``_pending``."""
        tracker = self.registry.tracker
        pending = self._pending
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

    def _sync_shared(self) -> tuple[int, bool]:
        instance = self.instance
        resent = False
        if self._in_flight is not None:
            # The answer to this batch was lost: send it again, unchanged, first.
            plan = self._in_flight
            self._metrics.retries.inc()
            outcome = self.store.apply_sync(plan.batch)
            self._in_flight = None
            if outcome.status is OutcomeStatus.EPOCH_CHANGED:
                self._new_epoch(outcome.epoch)
                resent = True
            else:
                self._commit(plan, len(plan.origins), outcome)
        self._drain()
        sent = 0
        epoch_changes = 0
        while True:
            # Large syncs go in several batches, so no single script holds the store
            # for long; each batch is confirmed (and committed) on its own.
            chunk = list(itertools.islice(self._pending, MAX_SERIES_PER_BATCH))
            final = len(chunk) == len(self._pending)
            plan = self._build(instance, chunk, final=final)
            try:
                outcome = self.store.apply_sync(plan.batch)
            except PartialApply as exc:
                self._commit(plan, exc.done, None)
                raise
            except OutcomeUnknown:
                if self._exactly_once:
                    self._in_flight = plan
                raise
            if outcome.status is OutcomeStatus.EPOCH_CHANGED:
                epoch_changes += 1
                if epoch_changes > 2:
                    raise RuntimeError("the store's epoch kept changing during one sync")
                if self._epoch:
                    resent = True
                self._new_epoch(outcome.epoch)
                continue
            self._commit(plan, len(plan.origins), outcome)
            self._pending.difference_update(chunk)
            sent += len(chunk)
            if final:
                return sent, resent

    def _new_epoch(self, epoch: str) -> None:
        """The store lost its data: send every total again, register everything again."""
        if self._epoch:
            log.warning(
                "store %s has lost its data (epoch %s -> %s): re-sending cumulative totals",
                self.store.describe(),
                self._epoch,
                epoch,
            )
        self._epoch = epoch
        for child, state in list(self._series.items()):
            if state.detached():
                del self._series[child]
                continue
            state.sent = list(state.base)
            state.gen = -1
            self._pending.add(child)
        for state in self._virtual.values():
            state.sent = [0] * len(state.sent)
            state.gen = -1
        self._families_gen.clear()
        self._fractional_gen.clear()
        self._instance_gen = -1
        self._gauges_dirty = True
        # Series never seen by the syncer yet are still in the tracker or pending.

    def _build(self, instance: Instance, children: list[Any], *, final: bool = True) -> _Plan:
        """Build the batch for ``children``.

        The final batch of a sync also carries the custom collectors' series, the
        instance registration and the gauge map.
        """
        keyspace = self.keyspace
        gen = keyspace.generation()
        proposed = secrets.token_hex(8)
        batch = SyncBatch(
            keyspace=keyspace,
            instance_id=instance.id,
            instance_key=instance.key,
            token=instance.token,
            seq=self._next_seq(),
            epoch=self._epoch or proposed,
            proposed_epoch=proposed,
            liveness_ttl=self.liveness_ttl,
        )
        plan = _Plan(batch, gen)
        plan.considered = children
        series = self._series
        increments = batch.increments
        origins = plan.origins
        counter = MetricType.COUNTER
        gauge = MetricType.GAUGE
        for child in plan.considered:
            state = series.get(child)
            if state is None:
                state = series[child] = SeriesState.for_child(child)
            kind = state.kind
            if kind is counter:
                value = child._value
                # Most counters hold whole numbers: no fixed-point split needed.
                if value.is_integer():
                    whole, nanos = int(value), 0
                elif math.isfinite(value):
                    whole, nanos = split_fixed(value)
                else:
                    whole, nanos = state.sent
                sent = state.sent
                delta = whole - sent[0]
                if delta or state.gen == -1:
                    increments.append((state.sid, "i", delta))
                    origins.append((state, 0, whole))
                if nanos != sent[1]:
                    increments.append((state.sid, "f", nanos - sent[1]))
                    origins.append((state, 1, nanos))
                    plan.fractional.add(state.family)
            elif kind is gauge:
                self._gauges_dirty = True
            else:
                self._add_deltas(plan, state, current_values(state))
            if state.gen != gen:
                self._register(plan, state, partial(family_meta, child.family))
        if final:
            self._collect(plan)
            if self._instance_gen != gen:
                registrations = batch.registrations.setdefault(keyspace.instances(gen), {})
                registrations[instance.key] = instance.id
                plan.instance = True
        fractional = {f for f in plan.fractional if self._fractional_gen.get(f) != gen}
        if fractional:
            batch.registrations.setdefault(keyspace.fractional(gen), {}).update(
                dict.fromkeys(fractional, "1")
            )
        plan.fractional = fractional
        if final and self._gauges_dirty:
            batch.gauges = self._gauge_map(instance, plan)
        return plan

    def _next_seq(self) -> int:
        # A number names one batch's content, never two: a batch that failed for a
        # reason other than a lost reply is rebuilt under a new number, so a store
        # that did apply it after all can never take the rebuilt one for a duplicate.
        self._seq += 1
        return self._seq

    def _add_deltas(self, plan: _Plan, state: SeriesState, values: list[int]) -> None:
        increments = plan.batch.increments
        origins = plan.origins
        sent = state.sent
        parts = state.parts
        sid = state.sid
        new_in_epoch = state.gen == -1
        last = len(values) - 1
        for k, value in enumerate(values):
            delta = value - sent[k]
            if delta or (new_in_epoch and k == 0):
                # A new series gets its first key even at zero, so the merged view
                # shows it as the local view does.
                increments.append((sid, parts[k], delta))
                origins.append((state, k, value))
                if k == last and delta:
                    plan.fractional.add(state.family)

    def _register(self, plan: _Plan, state: SeriesState, meta: Callable[[], FamilyMeta]) -> None:
        """Add ``state`` (and its family, once) to this generation's registrations."""
        if state in plan.registered_set:
            return
        registrations = plan.batch.registrations
        keyspace = self.keyspace
        idx_key = keyspace.index(state.family, plan.gen)
        registrations.setdefault(idx_key, {})[state.sid] = encode_labels(state.labels)
        plan.registered.append(state)
        plan.registered_set.add(state)
        if self._families_gen.get(state.family) != plan.gen and state.family not in plan.families:
            registrations.setdefault(keyspace.families(plan.gen), {})[state.family] = (
                meta().encode()
            )
            plan.families.append(state.family)

    def _collect(self, plan: _Plan) -> None:
        """Sync what custom collectors report: counters and histograms as deltas."""
        collectors = self.registry.collectors()
        if not collectors:
            return
        gauges: dict[str, Sample] = {}
        for collector in collectors:
            try:
                families = list(collector())
            except Exception:
                log.exception("a custom collector failed; its families are left out")
                continue
            for fam in families:
                nbuckets = len(fam.buckets)
                for sample in fam.samples:
                    vkey = (fam.name, sample.labels)
                    state = self._virtual.get(vkey)
                    if state is None:
                        state = SeriesState(fam.name, fam.type, sample.labels, nbuckets)
                        self._virtual[vkey] = state
                    if fam.type is MetricType.GAUGE:
                        if isinstance(sample, Sample):
                            gauges[state.sid] = sample
                    else:
                        values = sample_values(sample)
                        if len(values) == len(state.parts) and (
                            values != state.sent or state.gen == -1
                        ):
                            self._add_deltas(plan, state, values)
                    if state.gen != plan.gen:
                        self._register(plan, state, partial(meta_of_family, fam))
        # The entries carry the time they were read: compare the values, not the entries.
        texts = {sid: repr(sample.value) for sid, sample in gauges.items()}
        if texts != self._virtual_gauge_values:
            now = time.time()
            self._virtual_gauges = {
                sid: gauge_sample_entry(sample, now) for sid, sample in gauges.items()
            }
            self._virtual_gauge_values = texts
            self._gauges_dirty = True

    def _gauge_map(self, instance: Instance, plan: _Plan) -> dict[str, str]:
        """Return this instance's whole gauge map; register gauges new in this generation."""
        entries = {"@": instance.id}
        for metric in self.registry.metrics():
            if metric._type is not MetricType.GAUGE:
                continue
            for child in metric.children():
                state = self._series.get(child)
                if state is None:
                    state = self._series[child] = SeriesState.for_child(child)
                if state.gen != plan.gen:
                    self._register(plan, state, partial(family_meta, metric))
                entries[state.sid] = gauge_entry(child)
        entries.update(self._virtual_gauges)
        return entries

    def _commit(self, plan: _Plan, done: int, outcome: SyncOutcome | None) -> None:
        """Record what the store confirmed.

        That is the first ``done`` increments and, when the whole batch was applied
        (``outcome`` given), its registrations and gauge map.
        """
        for state, k, value in plan.origins[:done]:
            state.sent[k] = value
        if outcome is None:
            return
        self._epoch = outcome.epoch
        for state in plan.registered:
            state.gen = plan.gen
        for name in plan.families:
            self._families_gen[name] = plan.gen
        for name in plan.fractional:
            self._fractional_gen[name] = plan.gen
        if plan.instance:
            self._instance_gen = plan.gen
        if plan.batch.gauges is not None:
            self._gauges_dirty = False
        if outcome.gauges_lost:
            self._gauges_dirty = True

    # -- local_only ------------------------------------------------------------------------

    def _load_base(self) -> list[Any]:
        if self._base is None:
            self._base = []
            key = self.keyspace.local(self.instance.key)
            raw = self.store.get(key)
            if raw is not None:
                try:
                    instance_id, _when, families = local.decode_state(raw)
                except Exception as exc:
                    log.warning("ignoring the saved view under %r: %s", key, exc)
                else:
                    if instance_id == self.instance.id:
                        self._base = families
        return self._base

    def _sync_local(self) -> int:
        self._drain()
        changed = len(self._pending)
        instance = self.instance
        key = self.keyspace.local(instance.key)
        gen = self.keyspace.generation()
        ttl = self.local_state_ttl
        if self._instance_gen != gen:
            # Lets a reader in another process find this instance's saved view.
            self.store.merge_map(
                self.keyspace.local_instances(),
                {instance.key: instance.id},
                ttl + self.keyspace.generation_ttl,
            )
            self._instance_gen = gen
        if changed or self._gauges_dirty or not self._local_written:
            view = self.snapshot()
            self.store.set(key, local.encode_state(view, self.instance.id), ttl)
            self._local_written = True
            self._gauges_dirty = False
        elif not self.store.touch(key, ttl):
            self._local_written = False
            return self._sync_local()
        self._pending.clear()
        return changed

    def _sweep(self) -> None:
        """Forget series removed from their metrics once the store has all they had."""
        for child, state in list(self._series.items()):
            if child in self._pending or not state.detached():
                continue
            if state.kind is MetricType.GAUGE or current_values(state) == state.sent:
                del self._series[child]


_syncers: weakref.WeakSet[Syncer] = weakref.WeakSet()


def _register_fork_handler(syncer: Syncer) -> None:
    _syncers.add(syncer)


def _after_fork_in_child() -> None:
    for syncer in list(_syncers):
        try:
            syncer._after_fork()
        except Exception:  # never break a fork
            log.exception("resetting a syncer after fork failed")


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _stop_at_exit(ref: weakref.ReferenceType[Syncer]) -> None:
    syncer = ref()
    # Only a running syncer is stopped (with its final sync) at exit: one that was
    # never started, or was stopped already, is synced by whoever drives it.
    if syncer is None or syncer._pid != os.getpid() or not syncer.running:
        return
    try:
        syncer.stop(timeout=5.0)
    except Exception:
        log.exception("the final sync at exit failed")
