"""``locking``: a lease with an owner token: one holder, expiry, owner-only release.

The lease is the one metricache's export coordination takes: ``add(lock, token,
ttl)`` acquires, ``compare_and_touch(lock, token, ttl)`` renews,
``compare_and_delete(lock, token)`` releases. Only the holder of the token may renew
or release; a holder that dies loses the lease when its TTL runs out.
"""

from __future__ import annotations

import random
import threading
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
    short,
    wait_until,
)
from metricache_conformance.context import Context

__all__ = ["CHECKS", "contend"]

_LEASE_TTL = 10.0  # a contender that dies holding the lease blocks the others this long
_TAKE_LIMIT = 60.0  # seconds a contender waits for the lease before it gives up


def contend(store: Store, args: dict[str, Any]) -> dict[str, Any]:
    """Take and release the lease ``rounds`` times from each thread (also a worker task).

    Returns each holding as ``[acquired_ns, releasing_ns, holder]`` (monotonic clock,
    which every process of a host shares), the most holders seen at once in this
    process, and the holdings during which the lease did not hold the holder's token.
    A thread that fails stops the others of its process, and a holder that fails
    gives the lease back, so that nobody waits for a lease nobody will release.
    """
    lock = args["key"].encode("latin-1")
    rounds = int(args["rounds"])
    who = args["who"]
    held: list[list[Any]] = []
    problems: list[str] = []
    guard = threading.Lock()
    inside = [0, 0]  # holders now, most holders at once
    stop = threading.Event()

    def take(token: bytes, rng: random.Random) -> bool:
        deadline = time.monotonic() + _TAKE_LIMIT
        while not store.add(lock, token, _LEASE_TTL):
            if stop.is_set():
                return False
            if time.monotonic() > deadline:
                raise RuntimeError(f"could not take the lease in {_TAKE_LIMIT:.0f} s")
            time.sleep(rng.random() * 0.002)
        return True

    def hold(token: bytes) -> None:
        acquired = time.monotonic_ns()
        with guard:
            inside[0] += 1
            inside[1] = max(inside[1], inside[0])
        seen = store.get(lock)
        if seen != token:
            with guard:
                problems.append(f"{token.decode()} held the lease but it read {short(seen)}")
        time.sleep(0.0002)
        with guard:
            inside[0] -= 1
        releasing = time.monotonic_ns()
        with guard:
            held.append([acquired, releasing, token.decode()])
        if not store.compare_and_delete(lock, token):
            with guard:
                problems.append(f"{token.decode()} could not release its own lease")

    def work(index: int) -> None:
        rng = random.Random(index)
        try:
            for r in range(rounds):
                token = f"{who}/{index}/{r}".encode()
                if not take(token, rng):
                    return
                try:
                    hold(token)
                except BaseException:
                    store.delete(lock)
                    raise
        except BaseException:
            stop.set()
            raise

    errors = run_threads(int(args["threads"]), work)
    return {
        "held": held,
        "most_at_once": inside[1],
        "problems": problems,
        "failed_threads": len(errors),
        "errors": first_errors(errors),
    }


def mutual_exclusion(ctx: Context) -> None:
    """Many contenders (threads, and processes when distributed): one holder at a time."""
    lock = ctx.key("lease")
    scale = ctx.scale
    threads = scale.threads if ctx.declares(Capability.DISTRIBUTED) else 2 * scale.threads
    args = {"key": lock.decode("latin-1"), "threads": threads, "rounds": scale.lock_rounds}
    # Release and renewal must exist before anyone contends: a holder that cannot
    # release would keep the others waiting for the lease's TTL.
    probe = ctx.key("lease-probe")
    ctx.store.compare_and_delete(probe, b"nobody")
    ctx.store.compare_and_touch(probe, b"nobody", 10)
    if ctx.declares(Capability.DISTRIBUTED):
        answers = ctx.workers(
            "locking.contend", [{**args, "who": f"process-{n}"} for n in range(2)]
        )
        setup = f"2 processes x {plural(threads, 'thread')} x {plural(scale.lock_rounds, 'round')}"
    else:
        answers = [contend(ctx.store, {**args, "who": "thread"})]
        setup = f"{plural(threads, 'thread')} x {plural(scale.lock_rounds, 'round')}"
    broken = [a for a in answers if a["failed_threads"]]
    if broken:
        raise CheckFailed(f"contenders failed ({setup}): {broken[0]['errors']}")
    most = max(a["most_at_once"] for a in answers)
    if most > 1:
        raise CheckFailed(f"{most} contenders held the lease at once in one process ({setup})")
    problems = [p for a in answers for p in a["problems"]]
    if problems:
        raise CheckFailed(f"{len(problems)} holdings went wrong ({setup}): {problems[0]}")
    held = sorted((h for a in answers for h in a["held"]), key=lambda h: h[0])
    expected = len(answers) * threads * scale.lock_rounds
    expect(len(held) == expected, f"{len(held)} of {expected} acquisitions were recorded")
    latest: list[Any] | None = None
    for holding in held:
        if latest is not None and holding[0] < latest[1]:
            raise CheckFailed(
                f"two contenders held the lease at once ({setup}): {holding[2]} acquired it "
                f"{(latest[1] - holding[0]) / 1e6:.3f} ms before {latest[2]} released it"
            )
        if latest is None or holding[1] > latest[1]:
            latest = holding
    expect(ctx.store.get(lock) is None, "the lease was still held after every holder released")


def lease_expiry(ctx: Context) -> None:
    """A lease expires after its TTL unless its owner renews it; a non-owner cannot renew."""
    store = ctx.store
    attempts = [0]

    def attempt() -> None:
        attempts[0] += 1
        renewed = ctx.key(f"lease-renewed-{attempts[0]}")
        intruded = ctx.key(f"lease-intruded-{attempts[0]}")
        abandoned = ctx.key(f"lease-abandoned-{attempts[0]}")
        started = time.monotonic()
        expect(bool(store.add(renewed, b"owner", 1)), "add of an absent lease returned False")
        renewal = store.compare_and_touch(renewed, b"owner", 60)
        expect(bool(store.add(intruded, b"owner", 1)), "add of an absent lease returned False")
        intrusion = store.compare_and_touch(intruded, b"intruder", 60)
        # Taken last, so it expires no earlier than the two above would have.
        expect(bool(store.add(abandoned, b"owner", 1)), "add of an absent lease returned False")
        taken_over = store.add(abandoned, b"successor", 30)
        if time.monotonic() - started > 0.5:
            raise Inconclusive("the machine stalled past the lease's TTL while setting up")
        expect(bool(renewal), "compare_and_touch by the owner of a held lease returned False")
        expect(not intrusion, "compare_and_touch with another owner's token returned True")
        expect(not taken_over, "add took over a lease another owner held")
        expired = wait_until(lambda: bool(store.add(abandoned, b"successor", 30)))
        expect(
            expired,
            f"a lease taken for 1 s could not be taken over after {WAIT_LIMIT:.0f} s: "
            "a dead holder's lease never expires",
        )
        expect(
            bool(store.add(intruded, b"successor", 30)),
            "a non-owner's compare_and_touch extended a lease it did not hold",
        )
        expect(
            not store.add(renewed, b"successor", 30),
            "a lease its owner renewed with compare_and_touch(60 s) expired with its first TTL",
        )
        got = store.get(renewed)
        expect(got == b"owner", f"the renewed lease holds {short(got)}, not the owner's token")
        for k in (renewed, intruded, abandoned):
            store.delete(k)

    retry_inconclusive(attempt)


def owner_only(ctx: Context) -> None:
    """Only the owner's token releases or renews a lease."""
    store = ctx.store
    lock = ctx.key("lease-owned")
    expect(bool(store.add(lock, b"owner", 60)), "add of an absent lease returned False")
    released = store.compare_and_delete(lock, b"intruder")
    got = store.get(lock)
    if released or got != b"owner":
        raise CheckFailed(
            "a non-owner released the lock: compare_and_delete(lock, b'intruder') "
            f"returned {released!r} and the lease now holds {short(got)} (the owner's "
            "token is b'owner')"
        )
    expect(
        not store.compare_and_touch(lock, b"intruder", 60),
        "compare_and_touch with another owner's token returned True",
    )
    expect(bool(store.compare_and_delete(lock, b"owner")), "the owner could not release its lease")
    got = store.get(lock)
    expect(got is None, f"the lease still holds {short(got)} after its owner released it")
    expect(not store.compare_and_delete(lock, b"owner"), "releasing a free lease returned True")
    expect(not store.compare_and_touch(lock, b"owner", 60), "renewing a free lease returned True")
    expect(store.get(lock) is None, "renewing a free lease created it")


CHECKS = [
    Check("locking.mutual_exclusion", Capability.LOCKING, mutual_exclusion),
    Check("locking.lease_expiry", Capability.LOCKING, lease_expiry),
    Check("locking.owner_only", Capability.LOCKING, owner_only),
]
