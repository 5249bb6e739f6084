"""The in-process memory store for metricache (strategy ``local_only``).

It holds bytes in a dictionary with per-key expiry, guarded by a lock. It is not
shared with other processes, so it declares no capabilities: the core exports each
instance's own view. It is the default store, and the one for tests and demos.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping

from metricache import hookimpl
from metricache.store import Store, ttl_ms

__all__ = ["MemoryStore"]


class MemoryStore(Store):
    """Keys and values in this process's memory, each with a TTL."""

    name = "memory"
    capabilities = frozenset()

    def __init__(self, options: object = None) -> None:
        super().__init__(options)
        self._lock = threading.Lock()
        self._data: dict[bytes, tuple[bytes, float]] = {}

    def describe(self) -> str:
        """Return ``memory`` (there is nothing else to say about where it points)."""
        return "memory (this process)"

    def _now(self) -> float:
        """The clock expiry is measured on (monotonic; a test store may use another)."""
        return time.monotonic()

    def _live(self, key: bytes, now: float) -> bytes | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry[1] <= now:
            del self._data[key]
            return None
        return entry[0]

    def get(self, key: bytes) -> bytes | None:
        """Return the value under ``key`` unless absent or expired."""
        with self._lock:
            return self._live(key, self._now())

    def set(self, key: bytes, value: bytes, ttl: float) -> None:
        """Store ``value`` for ``ttl`` seconds."""
        expires = self._now() + ttl_ms(ttl) / 1000
        with self._lock:
            self._data[bytes(key)] = (bytes(value), expires)

    def delete(self, key: bytes) -> bool:
        """Remove ``key``; return whether it was present."""
        with self._lock:
            present = self._live(key, self._now()) is not None
            self._data.pop(key, None)
            return present

    def touch(self, key: bytes, ttl: float) -> bool:
        """Reset the TTL of ``key``; return whether it was present."""
        expires = self._now() + ttl_ms(ttl) / 1000
        with self._lock:
            value = self._live(key, self._now())
            if value is None:
                return False
            self._data[key] = (value, expires)
            return True

    def get_many(self, keys: Iterable[bytes]) -> dict[bytes, bytes]:
        """Return the present keys among ``keys``, under one lock."""
        now = self._now()
        with self._lock:
            found = {}
            for key in keys:
                value = self._live(key, now)
                if value is not None:
                    found[key] = value
            return found

    def set_many(self, items: Mapping[bytes, bytes], ttl: float) -> None:
        """Store every item for ``ttl`` seconds, under one lock."""
        expires = self._now() + ttl_ms(ttl) / 1000
        with self._lock:
            for key, value in items.items():
                self._data[bytes(key)] = (bytes(value), expires)

    def __len__(self) -> int:
        now = self._now()
        with self._lock:
            return sum(1 for _, expires in self._data.values() if expires > now)


@hookimpl
def metricache_store_classes() -> Iterable[type[Store]]:
    """Offer the memory store."""
    return [MemoryStore]
