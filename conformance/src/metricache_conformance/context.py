"""What a check is given: the store, more clients of it, workers, keys, and the scale.

Every key a check writes starts with ``mcc:RUN:`` (a random run id), so runs against
a shared server never see each other's keys; every value has a TTL of at most a few
minutes, so nothing is left behind for long.
"""

from __future__ import annotations

import itertools
import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import attrs
from metricache.store import Capability, Store

from metricache_conformance.results import Result
from metricache_conformance.target import StoreTarget
from metricache_conformance.workers import run_workers

__all__ = ["Backdoor", "Context", "Scale"]


def _racing_writers(instance: Scale, attribute: attrs.Attribute[int], threads: int) -> None:
    if instance.processes * threads < 2:
        raise ValueError(
            f"processes x threads must be at least 2, got {instance.processes} x {threads}: "
            "one writer never races with itself, so the atomic check could not catch a "
            "lost update"
        )


@attrs.frozen(kw_only=True)
class Scale:
    """How hard the concurrency checks push.

    The ``atomic`` check makes ``processes x threads x increments`` increments (with
    ``distributed`` declared; otherwise ``processes x threads`` threads of this
    process make them); ``processes x threads`` must be at least 2, or no two
    increments could ever race. ``swaps`` and ``lock_rounds`` are per thread, for the
    compare-and-swap and mutual-exclusion checks.
    """

    processes: int = attrs.field(default=4, validator=attrs.validators.ge(1))
    threads: int = attrs.field(default=4, validator=[attrs.validators.ge(1), _racing_writers])
    increments: int = attrs.field(default=5000, validator=attrs.validators.ge(1))
    swaps: int = attrs.field(default=200, validator=attrs.validators.ge(1))
    lock_rounds: int = attrs.field(default=25, validator=attrs.validators.ge(1))


class Backdoor(Protocol):
    """Reads and writes that bypass the store's own API (zarr's "backdoor" helpers).

    A store's own tests may supply them (see ``StoreConformance``) so the suite can
    check what really landed in the backend, not only what the store reads back.
    """

    def get(self, store: Store, key: bytes) -> bytes | None:
        """Return what the backend holds under ``key`` (None if nothing)."""

    def set(self, store: Store, key: bytes, value: bytes, ttl: float) -> None:
        """Put ``value`` under ``key`` in the backend, as the store would."""


_fresh_keys = itertools.count()
_fresh_keys_lock = threading.Lock()


class Context:
    """The store under test and the means to check it, for one check.

    ``progress`` is called with a line to show while a long check runs.
    """

    def __init__(
        self,
        target: StoreTarget,
        store: Store,
        declared: frozenset[Capability],
        *,
        scale: Scale,
        backdoor: Backdoor | None,
        results: Callable[[], Sequence[Result]],
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.target = target
        self.store = store
        self.declared = declared
        self.scale = scale
        self.backdoor = backdoor
        self._results = results
        self._progress = progress
        self.run_id = secrets.token_hex(5)
        self._clients: list[Store] = []

    def declares(self, capability: Capability) -> bool:
        """Return whether the store claims ``capability``."""
        return capability in self.declared

    def key(self, name: str) -> bytes:
        """Return a key of this run: ``mcc:RUN:name``."""
        return f"mcc:{self.run_id}:{name}".encode()

    def fresh_key(self, name: str) -> bytes:
        """Return a key of this run never returned before (``mcc:RUN:name-N``).

        For checks that try again: each attempt writes keys the last one did not.
        """
        with _fresh_keys_lock:
            number = next(_fresh_keys)
        return self.key(f"{name}-{number}")

    def progress(self, line: str) -> None:
        """Show ``line`` while the check runs (what it is doing, on a long check)."""
        if self._progress is not None:
            self._progress(line)

    @property
    def namespace(self) -> str:
        """A metricache namespace no other run uses."""
        return f"mcc{self.run_id}"

    def client(self) -> Store:
        """Open another client of the store (closed when the check ends)."""
        store = self.target.open()
        self._clients.append(store)
        return store

    def workers(self, task: str, arguments: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Run ``task`` in one worker process per item of ``arguments``, at once."""
        return run_workers(self.target, task, arguments)

    def results(self) -> Sequence[Result]:
        """The results of the checks that ran before this one (in this run)."""
        return self._results()

    def close(self) -> None:
        """Close the clients this check opened."""
        for store in self._clients:
            try:
                store.close()
            except Exception:  # a check's verdict stands whatever closing does
                continue
        self._clients.clear()
