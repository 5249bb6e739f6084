"""Applying a batch with nothing but the store primitives (the default ``apply_sync``).

On a store without maps of integers a series is several keys: ``NS:s:SID`` holds its
life (:class:`~metricache.sync.keyspace.LifeRecord`) and ``NS:s:SID:PART`` one integer
each. A series is created with every part (zeros included), and every writer that
joins it writes every part once, so a series whose parts are not all there is known
to be broken: a refresh that finds one removes the whole series, and its holders send
their contributions again.

The steps: check the epoch (install one if the store has none), merge the
registrations, read the lives of the series the batch writes and refreshes (one
multi-get), apply the writes series by series, refresh, drop pruned traces, write the
gauge pages and the header, refresh the epoch's TTL. This is not atomic: if the store
fails half way, what landed is reported through :class:`PartialApply` so the syncer
sends only the rest again. An increment whose answer was lost may be sent twice
(at least once). A store that runs :func:`apply_exactly_once` atomically (under a
lock, in a transaction) applies each batch once whatever the delay of a retry, and
declares ``exactly_once``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from metricache.errors import CorruptValue, OutcomeUnknown, StoreError
from metricache.store import Capability, Store
from metricache.sync.batch import (
    GaugeUpdate,
    OutcomeStatus,
    PartialApply,
    SyncBatch,
    SyncOutcome,
)
from metricache.sync.keyspace import LifeRecord

__all__ = [
    "EPOCH",
    "apply_exactly_once",
    "apply_generic",
    "create_series",
    "current_epoch",
    "read_lives",
    "write_gauges",
]


EPOCH = re.compile(rb"[0-9A-Za-z_-]{1,64}")
"""What an epoch token looks like (the syncer proposes hex ones)."""


def current_epoch(store: Store, batch: SyncBatch) -> str:
    """Return the store's epoch, installing ``batch.proposed_epoch`` if it has none.

    A key that holds something else than an epoch token (bytes written behind
    metricache's back) is reported and replaced by the proposed epoch: an epoch that
    cannot be read is another epoch, so every instance re-sends its totals, as after
    a flush. Left in place, it would stop every sync until it expires.
    """
    key = batch.keyspace.epoch()
    proposed = batch.proposed_epoch.encode("ascii")
    cas = store.declares(Capability.CAS)
    for _ in range(3):
        raw = store.get(key)
        if raw is not None and EPOCH.fullmatch(raw):
            return raw.decode("ascii")
        if not (cas or store.declares(Capability.LOCKING)):
            if raw is not None:
                store.on_corrupt(CorruptValue(f"{key!r} does not hold an epoch; replaced"))
            store.set(key, proposed, batch.retention)
            return batch.proposed_epoch
        if raw is None:
            if store.add(key, proposed, batch.retention):
                return batch.proposed_epoch
            # Refused, yet nothing readable is there: the store skipped (and reported)
            # bytes it could not decode. Replace them like any unreadable epoch.
            if cas and store.compare_and_swap(key, None, proposed, batch.retention):
                return batch.proposed_epoch
            continue
        store.on_corrupt(CorruptValue(f"{key!r} does not hold an epoch ({raw[:30]!r}); replaced"))
        if cas:
            if store.compare_and_swap(key, raw, proposed, batch.retention):
                return batch.proposed_epoch
        else:
            store.compare_and_delete(key, raw)  # then installed on the next turn
        # Otherwise another instance replaced it first: read what it installed.
    raise CorruptValue(f"{key!r} keeps holding something that is not an epoch")


def read_lives(store: Store, keys: Iterable[bytes]) -> dict[bytes, LifeRecord]:
    """Return the life records under ``keys``; absent and corrupt ones are left out.

    A corrupt record is reported through ``on_corrupt``; the series it names counts as
    absent (a writer replaces it).
    """
    found: dict[bytes, LifeRecord] = {}
    for key, raw in store.get_many(keys).items():
        try:
            found[key] = LifeRecord.decode(key, raw)
        except CorruptValue as exc:
            store.on_corrupt(exc)
    return found


def create_series(store: Store, key: bytes, life: str, ttl: float) -> tuple[LifeRecord, bool]:
    """Create the series ``key`` with ``life``, or return the life someone else gave it.

    Returns ``(record, created)``. Without ``cas`` or ``locking`` there is no atomic
    set-if-absent: the record is written, and two instances creating one series at
    the same moment may each believe they did (documented for such stores).
    """
    record = LifeRecord(life)
    if not (store.declares(Capability.CAS) or store.declares(Capability.LOCKING)):
        store.set(key, record.encode(), ttl)
        return record, True
    for _ in range(4):
        if store.add(key, record.encode(), ttl):
            return record, True
        raw = store.get(key)
        if raw is not None:
            try:
                return LifeRecord.decode(key, raw), False
            except CorruptValue as exc:
                store.on_corrupt(exc)
        # Refused, yet nothing readable is there (bytes written behind our back that
        # the store cannot decode, or a key gone meanwhile): remove it, try again.
        store.delete(key)
    raise StoreError(f"{key!r}: could not create the series, it kept changing")


def apply_generic(
    store: Store,
    batch: SyncBatch,
    *,
    traces: bool = False,
    check_traces: bool = False,
    epoch: str | None = None,
) -> SyncOutcome:
    """Apply ``batch`` to ``store`` with its primitives; see the module docstring.

    ``traces`` records, in each written series, the batch number of this incarnation
    (only meaningful when the whole call runs atomically, see
    :func:`apply_exactly_once`); ``check_traces`` skips the series whose trace shows
    the batch was applied to them already. ``epoch`` is the store's epoch when the
    caller has just checked it.
    """
    if epoch is None:
        epoch = current_epoch(store, batch)
    if epoch != batch.epoch:
        return SyncOutcome(OutcomeStatus.EPOCH_CHANGED, epoch)
    keyspace = batch.keyspace
    ttl = batch.retention
    for key, entries in batch.registrations.items():
        store.merge_map(key, entries, keyspace.generation_ttl, only_new=True)
    series_key = keyspace.series
    part_key = keyspace.part
    records = read_lives(
        store,
        [series_key(w[0]) for w in batch.writes] + [series_key(r[0]) for r in batch.refresh],
    )
    lost: list[int] = []
    joined: dict[int, str] = {}
    token = batch.token
    done = 0
    landed: list[int] = []
    try:
        for i, (sid, life, parts, deltas) in enumerate(batch.writes):
            key = series_key(sid)
            record = records.get(key)
            if life and (record is None or record.life != life):
                lost.append(i)
                done += 1
                continue
            whole = not life  # new to this writer: every part, so the series is whole
            created = False
            if record is None:
                record, created = create_series(store, key, batch.life, ttl)
                records[key] = record
            if not life and not created:
                joined[i] = record.life
            if check_traces and record.traces.get(token) == batch.seq:
                done += 1
                continue
            landed = []
            for k, (part, delta) in enumerate(zip(parts, deltas)):
                if delta or whole:
                    store.incr(part_key(sid, part), delta, ttl)
                landed.append(k)
            if traces:
                record.traces[token] = batch.seq
                store.set(key, record.encode(), ttl)
            elif whole and not created:
                store.touch(key, ttl)
            landed = []
            done += 1
    except Exception as exc:
        in_doubt = isinstance(exc, OutcomeUnknown)
        partial = SyncOutcome(OutcomeStatus.APPLIED, epoch, lost=tuple(lost), joined=joined)
        raise PartialApply(done, in_doubt, exc, parts=tuple(landed), outcome=partial) from exc
    try:
        stale = _refresh(store, batch, records)
        if traces and batch.prune:
            _prune(store, batch)
        gauges_lost = write_gauges(store, batch)
        store.touch(keyspace.epoch(), ttl)
    except Exception as exc:
        partial = SyncOutcome(OutcomeStatus.APPLIED, epoch, lost=tuple(lost), joined=joined)
        raise PartialApply(done, False, exc, outcome=partial) from exc
    return SyncOutcome(
        OutcomeStatus.APPLIED,
        epoch,
        gauges_lost=gauges_lost,
        lost=tuple(lost),
        joined=joined,
        stale=stale,
    )


def _refresh(store: Store, batch: SyncBatch, records: dict[bytes, LifeRecord]) -> tuple[int, ...]:
    """Push back the expiry of every series refreshed whole; return the stale ones."""
    keyspace = batch.keyspace
    wanted: list[tuple[int, list[bytes]]] = []
    stale: list[int] = []
    for j, (sid, life, parts) in enumerate(batch.refresh):
        key = keyspace.series(sid)
        record = records.get(key)
        if record is None or record.life != life:
            stale.append(j)
            continue
        wanted.append((j, [key, *(keyspace.part(sid, p) for p in parts)]))
    if not wanted:
        return tuple(stale)
    present = store.touch_many([k for _, keys in wanted for k in keys], batch.retention)
    for j, keys in wanted:
        if all(k in present for k in keys):
            continue
        # A part expired or was evicted on its own: the series can no longer be read
        # whole, nor mended in place. Remove it; every holder sends its whole
        # contribution again when it learns the series is gone.
        for key in keys:
            if key in present:
                store.delete(key)
        stale.append(j)
    return tuple(sorted(stale))


def _prune(store: Store, batch: SyncBatch) -> None:
    """Drop this incarnation's trace from the series the batch names."""
    keyspace = batch.keyspace
    keys = [keyspace.series(sid) for sid, _life in batch.prune]
    for key, record in read_lives(store, keys).items():
        if record.traces.pop(batch.token, None) is not None:
            store.set(key, record.encode(), batch.retention)


def write_gauges(store: Store, batch: SyncBatch) -> bool:
    """Write the gauge pages and the header; return whether the gauges were lost.

    They are lost when the header expired (or names another layout: not ours) and
    the batch does not rewrite every page: the pages it does not carry may be gone
    too, so the next batch must carry them all.
    """
    update: GaugeUpdate | None = batch.gauges
    if update is None:
        return False  # not the last batch of a sync: the header is refreshed by that one
    keyspace = batch.keyspace
    header = keyspace.instance(batch.instance_key)
    ikey = batch.instance_key
    marker = {"@": update.layout}

    def page_key(n: int) -> bytes:
        return keyspace.gauge_page(ikey, update.layout, n)

    if update.full:
        for n in range(update.pages):
            store.replace_map(page_key(n), {**update.contents.get(n, {}), **marker}, batch.page_ttl)
        store.replace_map(header, {"@": batch.instance_id, "#": update.layout}, batch.liveness_ttl)
        return False
    try:
        current = store.get_map(header)
    except CorruptValue as exc:
        store.on_corrupt(exc)
        return True
    if current.get("#") != update.layout or not store.touch(header, batch.liveness_ttl):
        return True
    for n in sorted(update.contents):
        store.replace_map(page_key(n), {**update.contents[n], **marker}, batch.page_ttl)
    if update.touch:
        others = [page_key(n) for n in range(update.pages) if n not in update.contents]
        if len(store.touch_many(others, batch.page_ttl)) < len(others):
            return True
    return False


def apply_exactly_once(store: Store, batch: SyncBatch) -> SyncOutcome:
    """Apply ``batch`` once, however late it is sent again; the caller makes it atomic.

    A store that can run a whole call without interference (under its lock, or in one
    transaction) wraps this in its ``apply_sync`` and declares ``exactly_once``. Each
    write leaves a *trace* of this incarnation's batch number in its series; a retry
    (``batch.retry``) skips, series by series, the writes whose trace shows they were
    applied. A series whose trace is gone went with the series (it expired, or the
    store lost it): its write follows the usual rules, so the writer's whole
    contribution goes into the series' new life, and nothing is counted twice.
    """
    return apply_generic(store, batch, traces=True, check_traces=batch.retry)
