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

from metricache.errors import OutcomeUnknown
from metricache.store import Capability, Store
from metricache.sync.batch import OutcomeStatus, PartialApply, SyncBatch, SyncOutcome

__all__ = ["apply_generic", "current_epoch"]


def current_epoch(store: Store, batch: SyncBatch) -> str:
    """Return the store's epoch, installing ``batch.proposed_epoch`` if it has none."""
    key = batch.keyspace.epoch()
    raw = store.get(key)
    if raw is not None:
        return raw.decode("ascii", "replace")
    proposed = batch.proposed_epoch.encode("ascii")
    if store.declares(Capability.CAS) or store.declares(Capability.LOCKING):
        if not store.add(key, proposed, batch.retention):
            raw = store.get(key)
            return raw.decode("ascii", "replace") if raw is not None else batch.proposed_epoch
        return batch.proposed_epoch
    store.set(key, proposed, batch.retention)
    return batch.proposed_epoch


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
