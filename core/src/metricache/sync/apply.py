"""Applying a batch with nothing but the store primitives (the default ``apply_sync``).

The steps: check the epoch (install one if the store has none), merge the
registrations, add the increments one key at a time, write or refresh the gauge map,
refresh the epoch's TTL. This is not atomic: if the store fails half way, the
increments that landed are reported through :class:`PartialApply` so the syncer
sends only the rest again. An increment whose answer was lost may be sent twice
(at least once); a store that can do better overrides ``apply_sync`` and declares
``exactly_once``.
"""

from __future__ import annotations

import re

from metricache.errors import CorruptValue, OutcomeUnknown
from metricache.store import Capability, Store
from metricache.sync.batch import OutcomeStatus, PartialApply, SyncBatch, SyncOutcome

__all__ = ["EPOCH", "apply_generic", "current_epoch"]


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


def apply_generic(store: Store, batch: SyncBatch) -> SyncOutcome:
    """Apply ``batch`` to ``store`` with its primitives; see the module docstring."""
    epoch = current_epoch(store, batch)
    if epoch != batch.epoch:
        return SyncOutcome(OutcomeStatus.EPOCH_CHANGED, epoch)
    gen_ttl = batch.keyspace.generation_ttl
    for key, entries in batch.registrations.items():
        store.merge_map(key, entries, gen_ttl, only_new=True)
    done = 0
    try:
        value_key = batch.keyspace.value
        for sid, part, amount in batch.increments:
            store.incr(value_key(sid, part), amount, batch.retention)
            done += 1
        gauge_key = batch.keyspace.gauges(batch.instance_key)
        gauges_lost = False
        if batch.gauges is not None:
            store.replace_map(gauge_key, batch.gauges, batch.liveness_ttl)
        else:
            # An expired liveness marker (a long outage) means the stored gauge map
            # is gone: the syncer sends the whole map next time.
            gauges_lost = not store.touch(gauge_key, batch.liveness_ttl)
        store.touch(batch.keyspace.epoch(), batch.retention)
    except Exception as exc:
        in_doubt = done < len(batch.increments) and isinstance(exc, OutcomeUnknown)
        raise PartialApply(done, in_doubt, exc) from exc
    return SyncOutcome(OutcomeStatus.APPLIED, epoch, gauges_lost=gauges_lost)
