"""A correct in-memory reference store: every promise but ``distributed``, in one process.

It keeps its data in a *space* shared by every client of this process opened with the
same ``space`` option, under one lock: increments, set-if-absent, compare-and-swap and
the lease primitives are atomic, and ``apply_sync`` applies a batch once. The
conformance tests break it one promise at a time; the sync tests build a fault-injecting
store on it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import attrs
from metricache.store import Capability, parse_int, ttl_ms
from metricache.sync.apply import apply_exactly_once
from metricache.sync.batch import SyncBatch, SyncOutcome
from metricache_memory import MemoryStore

__all__ = ["ReferenceOptions", "ReferenceStore"]


@attrs.frozen(kw_only=True)
class ReferenceOptions:
    """``space``: clients opened with the same space (in one process) share their data."""

    space: str = "default"


class _Space:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.data: dict[bytes, tuple[bytes, float]] = {}
        # What expiry is measured on: a test compressing time swaps in its own clock.
        self.clock: Callable[[], float] = time.monotonic


_spaces: dict[str, _Space] = {}
_spaces_lock = threading.Lock()


def _space(name: str) -> _Space:
    with _spaces_lock:
        return _spaces.setdefault(name, _Space())


class ReferenceStore(MemoryStore):
    """A memory store that keeps every promise but ``distributed``, within one process."""

    name = "reference"
    capabilities = frozenset(
        {Capability.ATOMIC, Capability.CAS, Capability.LOCKING, Capability.EXACTLY_ONCE}
    )
    options_class = ReferenceOptions

    def __init__(self, options: ReferenceOptions | None = None) -> None:
        super().__init__(options)
        space = _space(self.options.space)
        # MemoryStore's methods use these two attributes; the lock is re-entrant so
        # that apply_sync can hold it around the primitives it calls.
        self._lock = space.lock  # type: ignore[assignment]
        self._data = space.data

    @property
    def space(self) -> _Space:
        """The data this client shares with every client of the same space."""
        return _space(self.options.space)

    def _now(self) -> float:
        return self.space.clock()

    def _write(self, key: bytes, value: bytes, ttl: float) -> None:
        self._data[bytes(key)] = (bytes(value), self._now() + ttl_ms(ttl) / 1000)

    def incr(self, key: bytes, amount: int, ttl: float) -> int:
        """Add ``amount`` under the space's lock."""
        with self._lock:
            raw = self._live(key, self._now())
            value = (parse_int(key, raw) if raw is not None else 0) + amount
            self._write(key, b"%d" % value, ttl)
            return value

    def add(self, key: bytes, value: bytes, ttl: float) -> bool:
        """Store ``value`` if ``key`` is absent, under the lock."""
        with self._lock:
            if self._live(key, self._now()) is not None:
                return False
            self._write(key, value, ttl)
            return True

    def compare_and_swap(
        self, key: bytes, expected: bytes | None, value: bytes, ttl: float
    ) -> bool:
        """Replace the value if it equals ``expected``, under the lock."""
        with self._lock:
            if self._live(key, self._now()) != expected:
                return False
            self._write(key, value, ttl)
            return True

    def compare_and_delete(self, key: bytes, expected: bytes) -> bool:
        """Delete ``key`` if it holds ``expected``, under the lock."""
        with self._lock:
            if self._live(key, self._now()) != expected:
                return False
            del self._data[key]
            return True

    def compare_and_touch(self, key: bytes, expected: bytes, ttl: float) -> bool:
        """Reset the TTL of ``key`` if it holds ``expected``, under the lock."""
        with self._lock:
            if self._live(key, self._now()) != expected:
                return False
            self._write(key, expected, ttl)
            return True

    def apply_sync(self, batch: SyncBatch) -> SyncOutcome:
        """Apply a batch once, however late it is re-sent: the core's rules, under the lock."""
        with self._lock:
            return apply_exactly_once(self, batch)
