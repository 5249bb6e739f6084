"""Sampling: whether one event is kept, decided once, at the router.

The engine this design comes from sampled an event in the router and again in its
metrics backend, so a rate of 0.1 kept 1% of events. Here the decision is made
exactly once, by :meth:`EventRouter.publish <metricache.events.router.EventRouter.publish>`,
and what receives an event never samples it again.

With a *sampling key* (a task id, a request id) the decision is a function of the
key: the key's hash, read as a fraction in [0, 1), is compared with the rate. All
events of one task are then kept or dropped together, in every process, and a
task kept at rate 0.1 is also kept at any higher rate. Without a key each event is
a fresh random draw. Rates 1 and 0 keep everything and nothing, exactly.
"""

from __future__ import annotations

import hashlib
import random

__all__ = ["Sampler", "key_fraction"]

_SCALE = float(2**53)


def key_fraction(key: object) -> float:
    """Return where ``key`` falls in [0, 1): the same for the same key, in any process.

    Bytes are hashed as they are, anything else as the UTF-8 of ``str(key)``. The
    hash is BLAKE2b (Python's ``hash()`` is salted per process).
    """
    if isinstance(key, (bytes, bytearray, memoryview)):
        data = bytes(key)
    else:
        data = str(key).encode("utf-8", "surrogatepass")
    digest = hashlib.blake2b(data, digest_size=8).digest()
    # 53 bits: every value is exactly representable, so the result is < 1.
    return (int.from_bytes(digest, "big") >> 11) / _SCALE


class Sampler:
    """Decides whether an event is kept.

    ``seed`` makes unkeyed decisions reproducible (for tests); without it they use
    the process's random generator, which Python reseeds in a forked child.
    """

    def __init__(self, seed: int | None = None) -> None:
        self._random = random.random if seed is None else random.Random(seed).random

    def keep(self, rate: float, key: object = None) -> bool:
        """Return whether to keep an event sampled at ``rate`` (with an optional key)."""
        if rate >= 1.0:
            return True
        if rate <= 0.0:
            return False
        if key is None:
            return self._random() < rate
        return key_fraction(key) < rate
