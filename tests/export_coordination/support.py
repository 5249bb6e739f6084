"""Test doubles that stay real: an exporter that fails on demand, a store that records TTLs."""

from __future__ import annotations

import builtins
import threading
from collections.abc import Iterable

from metricache.exporters import Exporter, ExportRequest
from metricache_memory import MemoryStore

__all__ = ["FlakyExporter", "ManualClock", "TouchRecordingStore"]


class FlakyExporter(Exporter):
    """Fails its first ``failures`` deliveries with OSError, then keeps what it gets."""

    name = "flaky"

    def __init__(self, failures: int = 0) -> None:
        super().__init__(None)
        self.failures = failures
        self.calls = 0
        self.payloads: list[bytes] = []
        self.requests: list[ExportRequest] = []
        self.delivered_on: list[int] = []  # the call number of each delivery
        self._lock = threading.Lock()

    def deliver(self, payload: bytes, request: ExportRequest) -> str:
        with self._lock:
            self.calls += 1
            if self.failures > 0:
                self.failures -= 1
                raise OSError("the collector is down")
            self.payloads.append(payload)
            self.delivered_on.append(self.calls)
            self.requests.append(request)
            return f"flaky #{len(self.payloads)}"


class ManualClock:
    """A clock that only moves when told to."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class TouchRecordingStore(MemoryStore):
    """The memory store, recording every batch TTL refresh as ``(ttl, keys present)``."""

    name = "touch-recording"

    def __init__(self) -> None:
        super().__init__()
        self.touches: list[tuple[float, frozenset[bytes]]] = []

    def touch_many(self, keys: Iterable[bytes], ttl: float) -> builtins.set[bytes]:
        present = super().touch_many(keys, ttl)
        self.touches.append((ttl, frozenset(present)))
        return present
