"""The tools checks are written with: failures that say what went wrong, threads, waits.

A check never uses a bare ``assert``: it calls :func:`expect` (or raises
:class:`CheckFailed`) with a sentence a store author can act on, such as
``412 of 80,000 increments were lost``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

__all__ = [
    "CheckFailed",
    "Inconclusive",
    "expect",
    "first_errors",
    "plural",
    "retry_inconclusive",
    "run_threads",
    "short",
    "wait_until",
]

T = TypeVar("T")

WAIT_LIMIT = 8.0
"""Seconds a check waits for a TTL of 1 s to run out before it calls the TTL broken.

Memcached counts whole seconds and may keep an item up to two seconds past its TTL;
a loaded machine adds more. A store that works is seen to expire the key well before.
"""


class CheckFailed(Exception):
    """A store did not keep a promise; the message says which and how."""


class Inconclusive(Exception):
    """This attempt could not decide (the machine stalled past a short TTL); try again."""


def expect(condition: bool, message: str) -> None:
    """Raise :class:`CheckFailed` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise CheckFailed(message)


def plural(count: int, word: str) -> str:
    """Return ``"1 thread"``, ``"4 threads"``, ``"2 processes"``."""
    if count == 1:
        return f"1 {word}"
    return f"{count:,} {word}{'es' if word.endswith('s') else 's'}"


def short(value: bytes | None, limit: int = 40) -> str:
    """Return ``repr(value)``, cut to ``limit`` bytes with the full length noted."""
    if value is None:
        return "None"
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}... ({len(value):,} bytes)"


def run_threads(count: int, work: Callable[[int], None]) -> list[BaseException]:
    """Run ``work(i)`` in ``count`` threads that start together; return their exceptions."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []
    lock = threading.Lock()

    def body(index: int) -> None:
        try:
            barrier.wait()
            work(index)
        except BaseException as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def wait_until(condition: Callable[[], bool], limit: float = WAIT_LIMIT) -> bool:
    """Poll ``condition`` every 50 ms until it holds; False if it still does not after ``limit``."""
    deadline = time.monotonic() + limit
    while True:
        if condition():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def retry_inconclusive(attempt: Callable[[], T], tries: int = 3) -> T:
    """Run ``attempt``; run it again (up to ``tries`` times) if it was inconclusive."""
    for _ in range(tries - 1):
        try:
            return attempt()
        except Inconclusive:
            continue
    try:
        return attempt()
    except Inconclusive as exc:
        raise CheckFailed(f"could not get a conclusive answer in {tries} tries: {exc}") from exc


def first_errors(errors: Sequence[BaseException], limit: int = 3) -> str:
    """Describe the first few of ``errors`` (type and message), with how many there were."""
    shown = "; ".join(f"{type(e).__name__}: {e}" for e in errors[:limit])
    more = f" (and {len(errors) - limit} more)" if len(errors) > limit else ""
    return shown + more
