"""``atomic``: increments are exact, even when many processes and threads make them."""

from __future__ import annotations

import time
from typing import Any

from metricache.store import Capability, Store

from metricache_conformance.catalogue import Check
from metricache_conformance.checking import (
    WAIT_LIMIT,
    CheckFailed,
    Inconclusive,
    expect,
    first_errors,
    plural,
    retry_inconclusive,
    run_threads,
    wait_until,
)
from metricache_conformance.context import Context

__all__ = ["CHECKS", "hammer"]


def incr_semantics(ctx: Context) -> None:
    """Incr adds signed amounts (absent counts as 0); incr_many and read_counters agree."""
    store = ctx.store
    key = ctx.key("incr")
    absent = ctx.key("incr-absent")
    got = store.incr(key, 5, 60)
    expect(got == 5, f"incr of an absent key by 5 returned {got!r}, expected 5")
    got = store.incr(key, -7, 60)
    expect(got == -2, f"incr by -7 after 5 returned {got!r}, expected -2")
    got = store.incr(key, 0, 60)
    expect(got == -2, f"incr by 0 returned {got!r}, expected -2 (unchanged)")
    counters = store.read_counters([key, absent])
    expect(counters == {key: -2}, f"read_counters returned {counters!r}, expected {{key: -2}}")
    big = ctx.key("incr-big")
    store.incr(big, 2**62, 60)
    got = store.incr(big, 2**62 - 1, 60)
    expect(got == 2**63 - 1, f"incr up to 2**63 - 1 returned {got!r} (64-bit range)")
    got = store.incr(big, -(2**63 - 1), 60)
    expect(got == 0, f"incr back down to 0 returned {got!r}")
    first, second = ctx.key("incr-many-a"), ctx.key("incr-many-b")
    got_many = store.incr_many({first: 1, second: -3}, 60)
    expect(
        got_many == {first: 1, second: -3},
        f"incr_many on absent keys returned {got_many!r}, expected {{a: 1, b: -3}}",
    )
    got_many = store.incr_many({first: 1, second: -3}, 60)
    expect(
        got_many == {first: 2, second: -6},
        f"incr_many a second time returned {got_many!r}, expected {{a: 2, b: -6}}",
    )
    counters = store.read_counters([first, second])
    expect(counters == {first: 2, second: -6}, f"read_counters after incr_many gave {counters!r}")
    for k in (key, big, first, second):
        store.delete(k)


def incr_ttl(ctx: Context) -> None:
    """Incr gives the key the TTL it is called with: a counter expires, a later incr extends it."""
    store = ctx.store

    def attempt() -> None:
        expiring = ctx.fresh_key("incr-expiring")
        extended = ctx.fresh_key("incr-extended")
        started = time.monotonic()
        store.incr(expiring, 1, 1)
        store.incr(extended, 1, 1)
        store.incr(extended, 1, 60)
        # Written after the two above, so it expires no earlier than they would have.
        marker = ctx.fresh_key("incr-marker")
        store.set(marker, b"m", 1)
        if time.monotonic() - started > 0.5:
            raise Inconclusive("the machine stalled past the TTL while setting up")
        gone = wait_until(lambda: store.get(marker) is None)
        expect(gone, f"a key set with a TTL of 1 s was still there after {WAIT_LIMIT:.0f} s")
        got = store.read_counters([extended]).get(extended)
        expect(
            got == 2,
            "a counter incremented with ttl=1, then with ttl=60, expired with its first TTL "
            f"(read_counters gave {got!r}, expected 2): incr must reset the key's TTL",
        )
        expired = wait_until(lambda: expiring not in store.read_counters([expiring]))
        expect(
            expired,
            f"a counter written by incr(key, 1, ttl=1) was still there after {WAIT_LIMIT:.0f} s:"
            " incr must give the key the TTL it is called with (counters that never expire "
            "grow the store forever)",
        )
        store.delete(extended)

    retry_inconclusive(attempt)


def hammer(store: Store, args: dict[str, Any]) -> dict[str, Any]:
    """Make increments from ``threads`` threads sharing ``store`` (also a worker task).

    Even threads call ``incr(key, 1)``; odd ones ``incr_many({key: 1, key2: 1})``.
    Returns how many threads stopped on an error, and the first errors.
    """
    key = args["key"].encode("latin-1")
    key2 = args["key2"].encode("latin-1")
    per_thread = int(args["increments"])

    def work(index: int) -> None:
        for _ in range(per_thread):
            if index % 2 == 0:
                store.incr(key, 1, 300)
            else:
                store.incr_many({key: 1, key2: 1}, 300)

    errors = run_threads(int(args["threads"]), work)
    return {"failed_threads": len(errors), "errors": first_errors(errors)}


def concurrent_increments(ctx: Context) -> None:
    """Concurrent increments from several processes and threads lose nothing."""
    scale = ctx.scale
    distributed = ctx.declares(Capability.DISTRIBUTED)
    processes = scale.processes if distributed else 1
    threads = scale.threads if distributed else scale.processes * scale.threads
    key, key2 = ctx.key("hammer"), ctx.key("hammer-many")
    args = {
        "key": key.decode("latin-1"),
        "key2": key2.decode("latin-1"),
        "threads": threads,
        "increments": scale.increments,
    }
    if distributed:
        setup = " x ".join(
            [plural(processes, "process"), plural(threads, "thread"), f"{scale.increments:,}"]
        )
    else:
        setup = f"{plural(threads, 'thread')} of one process x {scale.increments:,}"
    total = processes * threads * scale.increments
    ctx.progress(f"making {total:,} increments at once ({setup} increments each)...")
    if distributed:
        answers = ctx.workers("atomic.hammer", [args] * processes)
    else:
        answers = [hammer(ctx.store, args)]
    broken = [a for a in answers if a["failed_threads"]]
    if broken:
        raise CheckFailed(
            f"incr raised in {sum(a['failed_threads'] for a in broken)} threads "
            f"({setup}): {broken[0]['errors']}"
        )
    odd_threads = threads // 2
    expected = processes * threads * scale.increments
    expected2 = processes * odd_threads * scale.increments
    counters = ctx.store.read_counters([key, key2])
    for k, want, what in ((key, expected, "incr and incr_many"), (key2, expected2, "incr_many")):
        got = counters.get(k, 0)
        if got < want:
            raise CheckFailed(
                f"{want - got:,} of {want:,} increments were lost "
                f"({setup} increments by {what}; the key holds {got:,})"
            )
        if got > want:
            raise CheckFailed(
                f"{got - want:,} increments were counted that nobody made "
                f"({setup} increments by {what} should give {want:,}; the key holds {got:,})"
            )
    ctx.store.delete(key)
    ctx.store.delete(key2)


CHECKS = [
    Check("atomic.incr_semantics", Capability.ATOMIC, incr_semantics),
    Check("atomic.incr_ttl", Capability.ATOMIC, incr_ttl),
    Check("atomic.concurrent_increments", Capability.ATOMIC, concurrent_increments),
]
