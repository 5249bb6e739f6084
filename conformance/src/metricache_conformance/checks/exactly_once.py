"""``exactly_once``: a sync batch sent again (after a lost reply) is not applied twice.

However late the retry comes, and whoever wrote the series meanwhile: each series a
batch wrote carries a trace of it, and the retry is recognised series by series.
"""

from __future__ import annotations

from metricache.store import Capability

from metricache_conformance.catalogue import Check
from metricache_conformance.checking import CheckFailed, expect
from metricache_conformance.checks.series import SyncDriver
from metricache_conformance.context import Context

__all__ = ["CHECKS"]


def apply_twice(ctx: Context) -> None:
    """A batch re-sent as a retry is applied once; newer batches and other incarnations apply."""
    sync = SyncDriver(ctx, "eo")
    one = sync.instance("conformance-exactly-once")
    first = one.batch([("s", 5)])
    outcome = sync.store.apply_sync(first)
    expect(not outcome.lost, f"the first write of a new series was answered lost: {outcome!r}")
    expect(sync.total("s") == 5, f"after a batch of +5 the series holds {sync.total('s')}")
    first.retry = True
    again = sync.store.apply_sync(first)
    got = sync.total("s")
    if got != 5:
        raise CheckFailed(
            f"the same batch (+5) re-sent as a retry counted twice: the series holds {got}, "
            "expected 5"
        )
    expect(
        again.joined.get(0, first.life) == first.life and not again.lost,
        f"a retry of a batch that created the series was answered {again!r}",
    )
    one.confirm(first, again)
    sync.store.apply_sync(one.batch([("s", 3)]))
    expect(
        sync.total("s") == 8, f"a newer batch (+3) after a retry left {sync.total('s')}, expected 8"
    )
    other = sync.instance("conformance-exactly-once-2")
    sync.store.apply_sync(other.batch([("s", 1)], seq=first.seq))
    got = sync.total("s")
    expect(
        got == 9,
        f"a batch of another incarnation with the same number was not applied: {got}, expected 9",
    )


def late_retry(ctx: Context) -> None:
    """A retry still applies once after other instances wrote the same series meanwhile."""
    sync = SyncDriver(ctx, "eo-late")
    a = sync.instance("conformance-late-a")
    b = sync.instance("conformance-late-b")
    lost_reply = a.batch([("shared", 100), ("mine", 7)])
    applied = sync.store.apply_sync(lost_reply)  # its answer "never reached" instance a
    for _ in range(3):  # b keeps writing while a is away
        outcome = sync.store.apply_sync(b.batch([("shared", 10)]))
        b.confirm_last(outcome)
    lost_reply.retry = True
    retried = sync.store.apply_sync(lost_reply)
    shared, mine = sync.total("shared"), sync.total("mine")
    if (shared, mine) != (130, 7):
        raise CheckFailed(
            f"a batch re-sent after another instance wrote its series was applied again: "
            f"the series hold {shared} and {mine}, expected 130 and 7 (first answer "
            f"{applied!r}, answer to the retry {retried!r})"
        )
    expect(not retried.lost, f"the retry was answered lost: {retried!r}")


CHECKS = [
    Check("exactly_once.apply_twice", Capability.EXACTLY_ONCE, apply_twice),
    Check("exactly_once.late_retry", Capability.EXACTLY_ONCE, late_retry),
]
