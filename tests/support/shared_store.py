"""An in-process store with distributed, atomic and cas semantics, for sync tests.

Several Syncer objects sharing one instance of it behave like several instances
sharing a memcached: the generic (primitive by primitive) batch path is exercised,
and faults can be injected between primitives.
"""

from __future__ import annotations

import threading

from metricache.errors import OutcomeUnknown, StoreUnavailable
from metricache.store import Capability
from metricache_memory import MemoryStore

__all__ = ["SharedStore"]


class SharedStore(MemoryStore):
    """A memory store that promises what memcached promises (within one process)."""

    name = "shared-test"
    capabilities = frozenset({Capability.DISTRIBUTED, Capability.ATOMIC, Capability.CAS})

    def __init__(self) -> None:
        super().__init__()
        # Fail the next incr of a key containing ``fail_key``: "unknown" applies it and
        # loses the reply, "down" refuses it before applying.
        self.fail_key: bytes | None = None
        self.fail_mode = "unknown"
        self.down = False
        self._counter_lock = threading.Lock()

    def _check(self) -> None:
        if self.down:
            raise StoreUnavailable("the test store is down")

    def get(self, key: bytes) -> bytes | None:
        self._check()
        return super().get(key)

    def incr(self, key: bytes, amount: int, ttl: float) -> int:
        self._check()
        with self._counter_lock:
            raw = super().get(key)
            value = int(raw or b"0") + amount
            if self.fail_key is not None and self.fail_key in key:
                self.fail_key = None
                if self.fail_mode == "down":
                    raise StoreUnavailable("connection refused before the request")
                super().set(key, str(value).encode(), ttl)
                raise OutcomeUnknown("the reply was lost")
            super().set(key, str(value).encode(), ttl)
            return value

    def add(self, key: bytes, value: bytes, ttl: float) -> bool:
        self._check()
        with self._counter_lock:
            if super().get(key) is not None:
                return False
            super().set(key, value, ttl)
            return True

    def compare_and_swap(
        self, key: bytes, expected: bytes | None, value: bytes, ttl: float
    ) -> bool:
        self._check()
        with self._counter_lock:
            if super().get(key) != expected:
                return False
            super().set(key, value, ttl)
            return True
