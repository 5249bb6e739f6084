"""Many memcached commands in few round trips: requests written window by window.

A :class:`Pipeline` holds :class:`Request` objects for one or more servers. Each round
writes up to :data:`WINDOW` requests to every server involved, then reads every
answer, so the servers work in parallel and no socket buffer fills up while nobody
reads (a server that cannot write its answers stops reading). Every request here is
answered by one line (``noreply`` ones by none).

When a connection fails, the requests it had answered keep their answers; those
written but not answered are *in doubt* (memcached may have applied them); those not
written yet stay unsent. The pipeline then stops writing to every server (it
finishes reading what it wrote to the others) and reports the failure.
"""

from __future__ import annotations

import enum
import socket
from collections.abc import Iterable

import attrs
from metricache.errors import StoreUnavailable

from metricache_memcached.connection import Connection, closed_by_peer

__all__ = ["WINDOW", "Pipeline", "Request", "Status"]

WINDOW = 4096
"""Requests written to one server before its answers are read."""


class Status(enum.Enum):
    """Where a request stands."""

    UNSENT = "unsent"
    ANSWERED = "answered"
    IN_DOUBT = "in doubt"  # written, and its answer was lost


@attrs.define(eq=False, slots=True)
class Request:
    """One command line (its data block included); ``reply`` False for ``noreply``."""

    line: bytes
    reply: bool = True
    status: Status = Status.UNSENT
    answer: bytes = b""


class _Reader:
    """Lines from a socket, through a buffer that lives as long as one exchange."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self.at = 0

    def line(self) -> bytes:
        while True:
            end = self.buffer.find(b"\r\n", self.at)
            if end >= 0:
                found = bytes(self.buffer[self.at : end])
                self.at = end + 2
                if self.at > 65536:
                    del self.buffer[: self.at]
                    self.at = 0
                return found
            chunk = self.sock.recv(262144)
            if not chunk:
                raise ConnectionResetError("memcached closed the connection")
            self.buffer += chunk


class Pipeline:
    """Requests for several servers; see the module docstring."""

    def __init__(self) -> None:
        self._queues: dict[Connection, list[Request]] = {}

    def add(self, server: Connection, request: Request) -> Request:
        """Queue ``request`` for ``server``; return it."""
        self._queues.setdefault(server, []).append(request)
        return request

    def __bool__(self) -> bool:
        return any(self._queues.values())

    def run(self) -> BaseException | None:
        """Send every request; return the first failure (None: every one answered).

        Raises StoreUnavailable when a server cannot be connected to before anything
        was sent to it and nothing was sent to any other either.
        """
        servers = sorted(self._queues, key=lambda s: s.name)
        for server in servers:
            server.lock.acquire()
        try:
            return self._run(servers)
        finally:
            for server in reversed(servers):
                server.lock.release()

    def _run(self, servers: list[Connection]) -> BaseException | None:
        readers: dict[Connection, _Reader] = {}
        for server in servers:
            client = server.client
            if client.sock is not None and closed_by_peer(client.sock):
                client.close()
            if client.sock is None:
                try:
                    client._connect()
                except OSError as exc:
                    client.close()
                    raise StoreUnavailable(
                        f"memcached {server.name}: cannot connect: {type(exc).__name__}: {exc}"
                    ) from exc
            readers[server] = _Reader(client.sock)
        positions = dict.fromkeys(servers, 0)
        failure: BaseException | None = None
        while failure is None and any(positions[s] < len(self._queues[s]) for s in servers):
            windows: list[tuple[Connection, list[Request]]] = []
            for server in servers:
                start = positions[server]
                window = self._queues[server][start : start + WINDOW]
                if not window:
                    continue
                positions[server] = start + len(window)
                try:
                    server.client.sock.sendall(b"".join(r.line for r in window))
                except OSError as exc:
                    failure = failure or exc
                    self._broken(server, window)
                    continue
                windows.append((server, window))
            for server, window in windows:
                try:
                    self._answers(readers[server], window)
                except OSError as exc:
                    failure = failure or exc
                    self._broken(server, window)
        return failure

    @staticmethod
    def _answers(reader: _Reader, window: Iterable[Request]) -> None:
        for request in window:
            if request.reply:
                request.answer = reader.line()
            request.status = Status.ANSWERED

    @staticmethod
    def _broken(server: Connection, window: list[Request]) -> None:
        server.client.close()
        for request in window:
            if request.status is not Status.ANSWERED:
                request.status = Status.IN_DOUBT
