"""A store wrapper that loses requests, replies and whole partitions on demand.

``Faulty(inner)`` behaves exactly like ``inner`` (a real Redis or memcached store, the
reference store ...), promising what it promises, until a switch is thrown:

* ``partitioned``: every call fails with StoreUnavailable (nothing reaches the store);
* ``lose_next``: the next ``apply_sync`` fails with OutcomeUnknown before anything is
  sent (a request lost on the way);
* ``lose_reply_next``: the next ``apply_sync`` is applied, then fails with
  OutcomeUnknown (the reply lost on the way back).
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from metricache.errors import CorruptValue, OutcomeUnknown, StoreUnavailable
from metricache.store import Store
from metricache.sync.batch import SyncBatch, SyncOutcome
from metricache.sync.keyspace import Keyspace

__all__ = ["Faulty"]

_classes: dict[type[Store], type[Faulty]] = {}


class Faulty(Store):
    """Wraps a store; see the module docstring."""

    name = "faulty"

    def __new__(cls, inner: Store) -> Faulty:
        # One subclass per wrapped class, declaring what it declares: the strategy
        # chosen for the wrapper is the wrapped store's.
        kind = type(inner)
        sub = _classes.get(kind)
        if sub is None:
            sub = type(
                f"Faulty{kind.__name__}",
                (cls,),
                {"capabilities": kind.capabilities, "gauge_page_size": kind.gauge_page_size},
            )
            _classes[kind] = sub
        return super().__new__(sub)

    def __init__(self, inner: Store) -> None:
        super().__init__(inner.options)
        self.inner = inner
        self.partitioned = False
        self.lose_next = False
        self.lose_reply_next = False
        self.applied = 0  # batches the inner store applied through this wrapper

    def _check(self) -> None:
        if self.partitioned:
            raise StoreUnavailable("partitioned from the store (test)")

    def describe(self) -> str:
        """The wrapped store's description."""
        return f"faulty {self.inner.describe()}"

    def ping(self) -> None:
        """Ping through."""
        self._check()
        self.inner.ping()

    def close(self) -> None:
        """Close the wrapped store."""
        self.inner.close()

    def after_fork(self) -> None:
        """Reconnect the wrapped store."""
        self.inner.after_fork()

    def on_corrupt(self, error: CorruptValue) -> None:
        """Report through the wrapped store."""
        self.inner.on_corrupt(error)

    def apply_sync(self, batch: SyncBatch) -> SyncOutcome:
        """Apply through, unless a switch says the request or its reply is lost."""
        self._check()
        if self.lose_next:
            self.lose_next = False
            raise OutcomeUnknown("the request was lost on its way (test)")
        outcome = self.inner.apply_sync(batch)
        self.applied += 1
        if self.lose_reply_next:
            self.lose_reply_next = False
            raise OutcomeUnknown("the reply was lost on its way back (test)")
        return outcome

    def read_series(
        self, keyspace: Keyspace, wanted: Sequence[tuple[str, tuple[str, ...]]]
    ) -> list[list[int] | None]:
        """Read through."""
        self._check()
        return self.inner.read_series(keyspace, wanted)

    def series_keys(self, keyspace: Keyspace, sid: str, parts: Sequence[str]) -> list[bytes]:
        """The wrapped store's layout."""
        return self.inner.series_keys(keyspace, sid, parts)

    def get(self, key: bytes) -> bytes | None:
        """Through."""
        self._check()
        return self.inner.get(key)

    def set(self, key: bytes, value: bytes, ttl: float) -> None:
        """Through."""
        self._check()
        self.inner.set(key, value, ttl)

    def delete(self, key: bytes) -> bool:
        """Through."""
        self._check()
        return self.inner.delete(key)

    def touch(self, key: bytes, ttl: float) -> bool:
        """Through."""
        self._check()
        return self.inner.touch(key, ttl)

    def get_many(self, keys: Iterable[bytes]) -> dict[bytes, bytes]:
        """Through."""
        self._check()
        return self.inner.get_many(keys)

    def set_many(self, items: Mapping[bytes, bytes], ttl: float) -> None:
        """Through."""
        self._check()
        self.inner.set_many(items, ttl)

    def touch_many(self, keys: Iterable[bytes], ttl: float) -> builtins.set[bytes]:
        """Through."""
        self._check()
        return self.inner.touch_many(keys, ttl)

    def incr(self, key: bytes, amount: int, ttl: float) -> int:
        """Through."""
        self._check()
        return self.inner.incr(key, amount, ttl)

    def read_counters(self, keys: Iterable[bytes]) -> dict[bytes, int]:
        """Through."""
        self._check()
        return self.inner.read_counters(keys)

    def add(self, key: bytes, value: bytes, ttl: float) -> bool:
        """Through."""
        self._check()
        return self.inner.add(key, value, ttl)

    def compare_and_swap(
        self, key: bytes, expected: bytes | None, value: bytes, ttl: float
    ) -> bool:
        """Through."""
        self._check()
        return self.inner.compare_and_swap(key, expected, value, ttl)

    def compare_and_delete(self, key: bytes, expected: bytes) -> bool:
        """Through."""
        self._check()
        return self.inner.compare_and_delete(key, expected)

    def compare_and_touch(self, key: bytes, expected: bytes, ttl: float) -> bool:
        """Through."""
        self._check()
        return self.inner.compare_and_touch(key, expected, ttl)

    def get_map(self, key: bytes) -> dict[str, str]:
        """Through."""
        self._check()
        return self.inner.get_map(key)

    def get_maps(self, keys: Iterable[bytes]) -> dict[bytes, dict[str, str]]:
        """Through."""
        self._check()
        return self.inner.get_maps(keys)

    def merge_map(
        self, key: bytes, entries: Mapping[str, str], ttl: float, *, only_new: bool = False
    ) -> None:
        """Through."""
        self._check()
        self.inner.merge_map(key, entries, ttl, only_new=only_new)

    def replace_map(self, key: bytes, entries: Mapping[str, str], ttl: float) -> None:
        """Through."""
        self._check()
        self.inner.replace_map(key, entries, ttl)

    def __getattr__(self, name: str) -> Any:
        # Anything else (a store's own helpers, its client) is the wrapped store's.
        return getattr(self.__dict__["inner"], name)
