"""Stores that each break one promise of the reference store (tests/support).

The reference store (re-exported here so the suite can name it by import path) keeps
every promise but ``distributed``, within one process. Each broken store keeps every
declaration and breaks exactly one promise; the conformance suite must name it. One
more declares nothing, so that its capabilities come from the core's live probe.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

from metricache.store import Capability, Store

from tests.support.reference_store import ReferenceOptions, ReferenceStore

__all__ = [
    "CarelessLockStore",
    "ImmortalCounterStore",
    "LossyCounterStore",
    "PerClientStore",
    "ReferenceStore",
    "StickyTtlCounterStore",
    "UndeclaredStore",
]


class LossyCounterStore(ReferenceStore):
    """Declares ``atomic`` but increments by read, pause, write: overlapping ones are lost."""

    name = "lossy-counter"

    def incr(self, key: bytes, amount: int, ttl: float) -> int:
        """Read the value, wait a little, write the sum (no lock: the broken promise)."""
        raw = self.get(key)
        time.sleep(0.0002)
        value = (int(raw) if raw is not None else 0) + amount
        self.set(key, b"%d" % value, ttl)
        return value


class ImmortalCounterStore(ReferenceStore):
    """Declares ``atomic`` but its counters never expire: incr ignores the TTL it is given."""

    name = "immortal-counter"

    def incr(self, key: bytes, amount: int, ttl: float) -> int:
        """Add ``amount``, keeping the key for a year whatever ``ttl`` says (the broken promise)."""
        return super().incr(key, amount, 365 * 86400.0)


class StickyTtlCounterStore(ReferenceStore):
    """Declares ``atomic`` but incr keeps a present key's expiry instead of resetting it."""

    name = "sticky-ttl-counter"

    def incr(self, key: bytes, amount: int, ttl: float) -> int:
        """Add ``amount``; a key already there keeps its old expiry (the broken promise)."""
        with self._lock:
            entry = self._data.get(key)
            value = super().incr(key, amount, ttl)
            if entry is not None and entry[1] > time.monotonic():
                self._data[key] = (self._data[key][0], entry[1])
            return value


class CarelessLockStore(ReferenceStore):
    """Declares ``locking`` but lets anyone release a lease, whatever the token."""

    name = "careless-lock"

    def compare_and_delete(self, key: bytes, expected: bytes) -> bool:
        """Delete ``key`` without comparing its value (the broken promise)."""
        return self.delete(key)


class PerClientStore(ReferenceStore):
    """Declares ``distributed`` but keeps each client's data to itself."""

    name = "per-client"
    capabilities = frozenset(Capability)  # every promise, distributed included

    def __init__(self, options: ReferenceOptions | None = None) -> None:
        super().__init__(options)
        self._lock = threading.RLock()  # type: ignore[assignment]
        self._data = {}  # this client's alone: the broken promise


class UndeclaredStore(ReferenceStore):
    """The reference store declaring nothing: the core probes what it can do."""

    name = "undeclared"
    # Store allows None ("detect them"); MemoryStore's narrower declaration does not.
    capabilities = None  # type: ignore[assignment]


def reference_stores() -> Iterable[type[Store]]:
    """Every store class of this module."""
    return [
        ReferenceStore,
        LossyCounterStore,
        ImmortalCounterStore,
        StickyTtlCounterStore,
        CarelessLockStore,
        PerClientStore,
        UndeclaredStore,
    ]
