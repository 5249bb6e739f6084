"""``exactly_once``: a sync batch sent again (after a lost reply) is not applied twice."""

from __future__ import annotations

import secrets

from metricache.instance import instance_key
from metricache.store import Capability
from metricache.sync.batch import OutcomeStatus, SyncBatch
from metricache.sync.keyspace import Keyspace

from metricache_conformance.catalogue import Check
from metricache_conformance.checking import CheckFailed, expect
from metricache_conformance.context import Context

__all__ = ["CHECKS"]


def apply_twice(ctx: Context) -> None:
    """apply_sync of the same batch twice applies it once; a newer batch still applies."""
    store = ctx.store
    keyspace = Keyspace(ctx.namespace + "eo", 120.0)
    epoch = secrets.token_hex(8)
    token = secrets.token_hex(8)
    ikey = instance_key("conformance-exactly-once")

    def batch(seq: int, amount: int, batch_token: str = token) -> SyncBatch:
        return SyncBatch(
            keyspace=keyspace,
            instance_id="conformance-exactly-once",
            instance_key=ikey,
            token=batch_token,
            seq=seq,
            epoch=epoch,
            proposed_epoch=epoch,
            liveness_ttl=120.0,
            increments=[("conformance", "i", amount)],
        )

    key = keyspace.value("conformance", "i")

    def total() -> int:
        return store.read_counters([key]).get(key, 0)

    first = batch(1, 5)
    outcome = store.apply_sync(first)
    expect(
        outcome.status is OutcomeStatus.APPLIED,
        f"the first batch on a new namespace was answered {outcome.status.value!r}",
    )
    expect(total() == 5, f"after a batch of +5 the counter holds {total()}")
    again = store.apply_sync(first)
    got = total()
    if got != 5:
        raise CheckFailed(
            f"the same batch (seq 1, +5) applied twice counted twice: the counter holds "
            f"{got}, expected 5 (answer to the repeat: {again.status.value!r})"
        )
    expect(
        again.status is OutcomeStatus.DUPLICATE,
        f"a repeated batch was answered {again.status.value!r}, expected 'duplicate'",
    )
    store.apply_sync(batch(2, 3))
    expect(total() == 8, f"a newer batch (seq 2, +3) after a repeat left {total()}, expected 8")
    store.apply_sync(first)
    got = total()
    expect(got == 8, f"an old batch (seq 1) sent after seq 2 was applied: {got}, expected 8")
    store.apply_sync(batch(1, 1, secrets.token_hex(8)))
    got = total()
    expect(
        got == 9,
        f"a batch of another incarnation with the same seq was not applied: {got}, expected 9",
    )


CHECKS = [Check("exactly_once.apply_twice", Capability.EXACTLY_ONCE, apply_twice)]
