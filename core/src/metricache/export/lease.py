"""A lease: a lock with an owner token and a TTL, on a store that declares ``locking``.

``acquire`` stores a random token with ``add`` (set if absent) and a TTL; only the
holder of that token can ``renew`` it (``compare_and_touch``) or ``release`` it
(``compare_and_delete``), so an instance whose lease expired can never renew or
free the lease another instance holds by then. A holder that dies stops renewing,
and the store drops its lease after at most ``ttl`` seconds.

:meth:`Lease.kept_alive` renews the lease in a thread while a long operation runs,
and records whether it was lost meanwhile.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
from collections.abc import Iterator

from metricache.errors import OutcomeUnknown, StoreError
from metricache.store import Store

__all__ = ["Lease"]

log = logging.getLogger("metricache.export")


class Lease:
    """One lease key in ``store``, held for ``ttl`` seconds after each renewal.

    ``owner`` names the holder in its token (an instance id; never a secret), which
    makes the lease key readable when debugging. The token is unique per Lease
    object, so two coordinators of one process never share a lease.
    """

    def __init__(self, store: Store, key: bytes, ttl: float, *, owner: str = "") -> None:
        if not ttl > 0:
            raise ValueError("a lease TTL must be > 0 seconds")
        self.store = store
        self.key = key
        self.ttl = float(ttl)
        self.token = f"{owner}/{secrets.token_hex(8)}".encode()
        self._held = False

    @property
    def held(self) -> bool:
        """Whether this object believes it holds the lease (as of its last store call)."""
        return self._held

    def holder(self) -> bytes | None:
        """Return the token of the current holder, or None when the lease is free."""
        return self.store.get(self.key)

    def acquire(self) -> bool:
        """Take the lease if it is free; return whether this object holds it now.

        Taking a lease it already holds renews it. Raises
        :class:`~metricache.errors.StoreError` when the store cannot be asked.
        """
        if self._held:
            return self.renew()
        try:
            self._held = self.store.add(self.key, self.token, self.ttl)
        except OutcomeUnknown:
            # The add may have happened: the lease is ours exactly when it holds our token.
            self._held = self.store.get(self.key) == self.token
        return self._held

    def renew(self) -> bool:
        """Push the lease's expiry ``ttl`` seconds ahead; False when it is no longer ours."""
        try:
            self._held = self.store.compare_and_touch(self.key, self.token, self.ttl)
        except OutcomeUnknown:
            self._held = self.store.get(self.key) == self.token
        return self._held

    def release(self) -> bool:
        """Give the lease up; return whether it was still ours. Never raises store errors."""
        if not self._held:
            return False
        self._held = False
        try:
            return self.store.compare_and_delete(self.key, self.token)
        except StoreError as exc:
            # It expires by itself within ttl seconds.
            log.warning("could not release the export lease (it expires by itself): %s", exc)
            return False

    @contextlib.contextmanager
    def kept_alive(self) -> Iterator[threading.Event]:
        """Renew the lease every third of its TTL while the ``with`` block runs.

        Yields an event that is set if a renewal finds the lease lost (it expired, or
        the store was unreachable for longer than the TTL). The block is not
        interrupted: the caller decides what a lost lease means once it is done.
        """
        lost = threading.Event()
        done = threading.Event()

        def renew_until_done() -> None:
            while not done.wait(self.ttl / 3):
                try:
                    ok = self.renew()
                except StoreError as exc:
                    log.warning("could not renew the export lease: %s", exc)
                    continue  # the lease lives on for a while; try again
                if not ok:
                    log.warning("the export lease was lost while an export ran")
                    lost.set()
                    return

        thread = threading.Thread(target=renew_until_done, name="metricache-lease", daemon=True)
        thread.start()
        try:
            yield lost
        finally:
            done.set()
            thread.join()

    def __repr__(self) -> str:
        state = "held" if self._held else "not held"
        return f"<Lease {self.key!r} {state}>"
