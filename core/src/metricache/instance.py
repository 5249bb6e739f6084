"""The instance: one process, named in the store.

``id`` is what people read (``hostname-pid`` by default, or ``METRICACHE_INSTANCE_ID``,
or what the configuration says). ``token`` is random and new in every process
incarnation, so two incarnations that share an id (a container restarted with the
same hostname and pid 1) never mistake each other's batches for their own.

A forked child is a new instance: it gets a new token, and a new id unless one was
configured, in which case ``-<pid>`` is appended to it.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
import threading

import attrs

__all__ = ["Instance", "configure_instance_id", "current_instance", "instance_key"]


def instance_key(instance_id: str) -> str:
    """Return the short, store-safe key of an instance id (hex)."""
    return hashlib.blake2b(instance_id.encode("utf-8"), digest_size=8).hexdigest()


@attrs.frozen
class Instance:
    """The identity of this process in the store."""

    id: str
    token: str
    pid: int

    @property
    def key(self) -> str:
        """A short hex key derived from the id, safe in any store key."""
        return instance_key(self.id)


_lock = threading.Lock()
_configured: str | None = None
_current: Instance | None = None


def _default_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _make(configured: str | None) -> Instance:
    pid = os.getpid()
    env = os.environ.get("METRICACHE_INSTANCE_ID")
    chosen = configured or env or _default_id()
    return Instance(id=chosen, token=secrets.token_hex(8), pid=pid)


def configure_instance_id(instance_id: str | None) -> Instance:
    """Set this process's instance id (None: back to the default) and return it."""
    global _configured, _current
    if instance_id is not None and not instance_id.strip():
        raise ValueError("an instance id must not be empty")
    with _lock:
        _configured = instance_id
        _current = _make(instance_id)
        return _current


def current_instance() -> Instance:
    """Return this process's instance, renewing it if the process was forked."""
    global _current
    found = _current
    if found is not None and found.pid == os.getpid():
        return found
    with _lock:
        if _current is None or _current.pid != os.getpid():
            _current = _renewed(_current)
        return _current


def _renewed(previous: Instance | None) -> Instance:
    if previous is None:
        return _make(_configured)
    base = _configured or os.environ.get("METRICACHE_INSTANCE_ID")
    if base:
        # A configured id is shared by the whole process tree; keep children apart.
        return Instance(id=f"{base}-{os.getpid()}", token=secrets.token_hex(8), pid=os.getpid())
    return _make(None)


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
