"""One memcached server: its address, a pymemcache client, and what failures mean.

pymemcache's clients are not thread-safe, so each connection is used under its lock.
Failures become metricache's errors by what they say about the request:

* nothing could be sent (connection refused, unknown host, connect timeout):
  :class:`~metricache.errors.StoreUnavailable`, nothing was applied;
* a write was sent and its answer never came (timeout, connection closed or reset
  half way): :class:`~metricache.errors.OutcomeUnknown`, it may have been applied;
  a read that fails that way is simply ``StoreUnavailable``;
* memcached refused the request (``SERVER_ERROR``, ``CLIENT_ERROR``):
  :class:`~metricache.errors.StoreError`.

An open connection is checked before each use (one ``poll``, no round trip): a
server that restarted has closed it, and sending a write on it would turn a clean
"unavailable" into "unknown".
"""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from metricache.errors import OutcomeUnknown, StoreError, StoreUnavailable
from metricache.masking import mask_url
from pymemcache.client.base import Client  # type: ignore[import-untyped]
from pymemcache.exceptions import (  # type: ignore[import-untyped]
    MemcacheError,
    MemcacheUnexpectedCloseError,
    MemcacheUnknownError,
)

__all__ = ["DEFAULT_PORT", "Connection", "closed_by_peer", "parse_url"]

T = TypeVar("T")

DEFAULT_PORT = 11211


def _parse_server(text: str) -> tuple[str, int]:
    host, port_text = text, ""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"unclosed '[' in server {text!r}")
        host, rest = text[1:end], text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise ValueError(f"unexpected {rest!r} after the address in server {text!r}")
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    elif ":" in text:
        raise ValueError(f"put an IPv6 address in brackets: [{text}]:{DEFAULT_PORT}")
    if not host:
        raise ValueError(f"server {text!r} has no host")
    if not port_text:
        return host, DEFAULT_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"server {text!r} has an invalid port {port_text!r}")
    return host, int(port_text)


def parse_url(url: str) -> list[tuple[str, int]]:
    """Return the ``(host, port)`` pairs of ``memcached://host[:port][,host[:port]...]``.

    Raises ValueError naming the problem (never echoing a password).
    """
    scheme, sep, rest = url.partition("://")
    if scheme != "memcached" or not sep:
        raise ValueError(
            f"expected memcached://host[:port][,host[:port]...], got {mask_url(url)!r}"
        )
    if "@" in rest:
        raise ValueError(
            "memcached's text protocol has no authentication: remove the user "
            f"and password from {mask_url(url)!r}"
        )
    rest = rest.rstrip("/")
    if "/" in rest or "?" in rest or "#" in rest:
        raise ValueError(f"a memcached URL holds servers only, got {mask_url(url)!r}")
    servers = [_parse_server(part.strip()) for part in rest.split(",")]
    if len(set(servers)) != len(servers):
        raise ValueError(f"a server is listed twice in {url!r}")
    return servers


def server_name(address: tuple[str, int]) -> str:
    """Return ``host:port`` (``[v6]:port`` for an IPv6 address)."""
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _Serde:
    """Hand item data and flags through pymemcache untouched: ``(bytes, flags)`` pairs."""

    def serialize(self, key: bytes, value: tuple[bytes, int]) -> tuple[bytes, int]:
        return value

    def deserialize(self, key: bytes, value: bytes, flags: int) -> tuple[bytes, int]:
        return value, flags


def closed_by_peer(sock: socket.socket) -> bool:
    """Return whether a connection was closed (or holds bytes nobody asked for)."""
    try:
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            readable = bool(poller.poll(0))
        else:  # pragma: no cover - platforms without poll()
            readable = bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True
    # Readable with nothing asked: either the end of the stream or stray bytes that
    # would be taken for the next reply. Neither connection can be used.
    return readable


class Connection:
    """One memcached server, used by one thread at a time."""

    def __init__(self, address: tuple[str, int], *, connect_timeout: float, timeout: float) -> None:
        self.address = address
        self.name = server_name(address)
        self.lock = threading.Lock()
        self.client: Any = Client(
            address,
            serde=_Serde(),
            connect_timeout=connect_timeout,
            timeout=timeout,
            no_delay=True,
            default_noreply=False,
        )

    def run(self, func: Callable[[Any], T], *, writes: bool) -> T:
        """Call ``func(client)`` under the lock; turn failures into metricache errors.

        ``writes`` says whether ``func`` may change something, which decides whether
        a lost answer is :class:`OutcomeUnknown` or merely :class:`StoreUnavailable`.
        """
        with self.lock:
            client = self.client
            if client.sock is not None and closed_by_peer(client.sock):
                client.close()
            if client.sock is None:
                try:
                    # Connecting here rather than inside the command tells "nothing
                    # was sent" apart from "sent, answer lost".
                    client._connect()
                except OSError as exc:
                    client.close()
                    raise StoreUnavailable(
                        f"memcached {self.name}: cannot connect: {type(exc).__name__}: {exc}"
                    ) from exc
            try:
                result = func(client)
            except (OSError, MemcacheUnexpectedCloseError, MemcacheUnknownError) as exc:
                client.close()
                kind = OutcomeUnknown if writes else StoreUnavailable
                raise kind(f"memcached {self.name}: {type(exc).__name__}: {exc}") from exc
            except MemcacheError as exc:
                client.close()
                raise StoreError(f"memcached {self.name}: {type(exc).__name__}: {exc}") from exc
            return result

    def call(self, method: str, *args: Any, writes: bool, **kwargs: Any) -> Any:
        """Call one pymemcache client method through :meth:`run`."""
        return self.run(lambda c: getattr(c, method)(*args, **kwargs), writes=writes)

    def close(self) -> None:
        """Close the socket (the next use opens a new one)."""
        self.client.close()
