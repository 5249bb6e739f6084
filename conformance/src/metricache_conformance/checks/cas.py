"""``cas``: set-if-absent and compare-and-swap are atomic; contention loses nothing."""

from __future__ import annotations

import random
import time
from typing import Any

from metricache.store import Capability, Store

from metricache_conformance.catalogue import Check
from metricache_conformance.checking import (
    CheckFailed,
    expect,
    first_errors,
    plural,
    run_threads,
    short,
)
from metricache_conformance.context import Context

__all__ = ["CHECKS", "swap_increments"]


def semantics(ctx: Context) -> None:
    """Add and compare_and_swap succeed exactly when the key is absent / holds the expected."""
    store = ctx.store
    key = ctx.key("cas")
    expect(bool(store.add(key, b"first", 60)), "add of an absent key returned False")
    expect(not store.add(key, b"second", 60), "add of a present key returned True")
    got = store.get(key)
    expect(got == b"first", f"a refused add changed the value to {short(got)}")
    expect(
        not store.compare_and_swap(key, b"mismatch", b"x", 60),
        "compare_and_swap with a mismatching expected value returned True",
    )
    got = store.get(key)
    expect(got == b"first", f"a refused compare_and_swap changed the value to {short(got)}")
    expect(
        not store.compare_and_swap(key, None, b"x", 60),
        "compare_and_swap(expected=None) of a present key returned True",
    )
    expect(
        bool(store.compare_and_swap(key, b"first", b"second", 60)),
        "compare_and_swap with the matching expected value returned False",
    )
    got = store.get(key)
    expect(got == b"second", f"a successful compare_and_swap left {short(got)}")
    fresh = ctx.key("cas-absent")
    expect(
        bool(store.compare_and_swap(fresh, None, b"created", 60)),
        "compare_and_swap(expected=None) of an absent key returned False",
    )
    expect(store.get(fresh) == b"created", "compare_and_swap(expected=None) did not create it")
    never = ctx.key("cas-never")
    expect(
        not store.compare_and_swap(never, b"something", b"x", 60),
        "compare_and_swap of an absent key with an expected value returned True",
    )
    expect(store.get(never) is None, "a refused compare_and_swap created the key")
    big_old, big_new = b"o" * 200_000, b"n" * 200_000
    large = ctx.key("cas-large")
    store.set(large, big_old, 60)
    expect(
        bool(store.compare_and_swap(large, big_old, big_new, 60)),
        "compare_and_swap of a 200 kB value with the matching expected value returned False",
    )
    expect(store.get(large) == big_new, "a swapped 200 kB value did not read back")
    for k in (key, fresh, large):
        store.delete(k)


def swap_increments(store: Store, args: dict[str, Any]) -> dict[str, Any]:
    """Add 1 to a decimal counter ``swaps`` times per thread by compare-and-swap (a task)."""
    key = args["key"].encode("latin-1")
    per_thread = int(args["swaps"])

    def work(index: int) -> None:
        rng = random.Random(index)
        for _ in range(per_thread):
            for attempt in range(10_000):
                current = store.get(key)
                if current is None:
                    raise RuntimeError("the counter key disappeared")
                if store.compare_and_swap(key, current, b"%d" % (int(current) + 1), 300):
                    break
                if attempt > 20:
                    time.sleep(rng.random() * 0.001)
            else:
                raise RuntimeError("10,000 compare_and_swap attempts in a row failed")

    errors = run_threads(int(args["threads"]), work)
    return {"failed_threads": len(errors), "errors": first_errors(errors)}


def contention(ctx: Context) -> None:
    """Concurrent read-then-compare-and-swap updates of one key lose nothing."""
    scale = ctx.scale
    key = ctx.key("cas-counter")
    ctx.store.set(key, b"0", 300)
    args = {"key": key.decode("latin-1"), "threads": scale.threads, "swaps": scale.swaps}
    if ctx.declares(Capability.DISTRIBUTED):
        processes = 2
        answers = ctx.workers("cas.swap_increments", [args] * processes)
        setup = f"{processes} processes x {plural(scale.threads, 'thread')}"
    else:
        processes = 1
        answers = [swap_increments(ctx.store, args)]
        setup = plural(scale.threads, "thread")
    broken = [a for a in answers if a["failed_threads"]]
    if broken:
        raise CheckFailed(f"compare-and-swap updates failed ({setup}): {broken[0]['errors']}")
    expected = processes * scale.threads * scale.swaps
    raw = ctx.store.get(key)
    got = int(raw) if raw is not None and raw.isdigit() else -1
    if got < 0:
        raise CheckFailed(f"the counter updated by compare-and-swap holds {short(raw)}")
    if got < expected:
        raise CheckFailed(
            f"{expected - got:,} of {expected:,} compare-and-swap updates were lost "
            f"({setup} x {scale.swaps:,} each; the counter holds {got:,}): two swaps "
            "from the same expected value both succeeded"
        )
    if got > expected:
        raise CheckFailed(
            f"{got - expected:,} more compare-and-swap updates landed than succeeded "
            f"({setup} x {scale.swaps:,} each; the counter holds {got:,}, expected "
            f"{expected:,}): a swap reported as failed was applied"
        )
    ctx.store.delete(key)


def concurrent_map_merges(ctx: Context) -> None:
    """merge_map from several threads at once keeps every thread's fields."""
    key = ctx.key("merged-map")
    threads, rounds = ctx.scale.threads, 100

    def work(index: int) -> None:
        for r in range(rounds):
            ctx.store.merge_map(key, {f"t{index}-{r}": str(r)}, 60)

    errors = run_threads(threads, work)
    if errors:
        raise CheckFailed(f"merge_map raised under contention: {first_errors(errors)}")
    got = ctx.store.get_map(key)
    expected = threads * rounds
    expect(
        len(got) == expected,
        f"{expected - len(got):,} of {expected:,} fields merged by {threads} threads at once "
        "were lost",
    )
    ctx.store.delete(key)


CHECKS = [
    Check("cas.semantics", Capability.CAS, semantics),
    Check("cas.contention", Capability.CAS, contention),
    Check("cas.concurrent_map_merges", Capability.CAS, concurrent_map_merges),
]
