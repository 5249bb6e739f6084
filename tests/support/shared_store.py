"""The reference store with distributed, atomic and cas semantics, for sync tests.

Several Syncer objects sharing one instance of it behave like several instances
sharing a memcached: the generic (primitive by primitive) batch path is exercised,
and faults can be injected between primitives.
"""

from __future__ import annotations

import secrets

from metricache.errors import OutcomeUnknown, StoreUnavailable
from metricache.store import Capability, Store
from metricache.sync.batch import SyncBatch, SyncOutcome

from tests.support.reference_store import ReferenceOptions, ReferenceStore

__all__ = ["SharedStore"]


class SharedStore(ReferenceStore):
    """A store that promises what memcached promises (within one process)."""

    name = "shared-test"
    capabilities = frozenset({Capability.DISTRIBUTED, Capability.ATOMIC, Capability.CAS})

    def __init__(self) -> None:
        # A space of its own: the syncers given this object share it, nothing else.
        super().__init__(ReferenceOptions(space=secrets.token_hex(8)))
        # Fail the next incr of a key containing ``fail_key``: "unknown" applies it and
        # loses the reply, "down" refuses it before applying.
        self.fail_key: bytes | None = None
        self.fail_mode = "unknown"
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise StoreUnavailable("the test store is down")

    def apply_sync(self, batch: SyncBatch) -> SyncOutcome:
        """Apply with the primitives, as a store without ``exactly_once`` does."""
        return Store.apply_sync(self, batch)

    def get(self, key: bytes) -> bytes | None:
        """Fail while down."""
        self._check()
        return super().get(key)

    def incr(self, key: bytes, amount: int, ttl: float) -> int:
        """Fail while down, or as ``fail_key``/``fail_mode`` ask."""
        self._check()
        if self.fail_key is not None and self.fail_key in key:
            self.fail_key = None
            if self.fail_mode == "down":
                raise StoreUnavailable("connection refused before the request")
            super().incr(key, amount, ttl)
            raise OutcomeUnknown("the reply was lost")
        return super().incr(key, amount, ttl)

    def add(self, key: bytes, value: bytes, ttl: float) -> bool:
        """Fail while down."""
        self._check()
        return super().add(key, value, ttl)

    def compare_and_swap(
        self, key: bytes, expected: bytes | None, value: bytes, ttl: float
    ) -> bool:
        """Fail while down."""
        self._check()
        return super().compare_and_swap(key, expected, value, ttl)
