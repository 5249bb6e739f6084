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
import re
import socket
from typing import TypeVar

import attrs
from metricache.errors import StoreError, StoreUnavailable

from metricache_memcached.connection import Connection, closed_by_peer

__all__ = ["WINDOW", "Item", "Pipeline", "Request", "Status", "fetch"]

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
    """Lines and data blocks from a socket, through a buffer that lives for one exchange."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self.at = 0

    def _more(self) -> None:
        if self.at > 65536:
            del self.buffer[: self.at]
            self.at = 0
        chunk = self.sock.recv(262144)
        if not chunk:
            raise ConnectionResetError("memcached closed the connection")
        self.buffer += chunk

    def lines(self, count: int, found: list[bytes]) -> None:
        """Append the next ``count`` lines to ``found``.

        The lines that arrived stay there if the connection breaks half way.
        """
        while len(found) < count:
            end = self.buffer.rfind(b"\r\n", self.at)
            if end < 0:
                self._more()
                continue
            parts = bytes(self.buffer[self.at : end]).split(b"\r\n")
            need = count - len(found)
            if len(parts) > need:
                parts = parts[:need]
                self.at += sum(len(p) for p in parts) + 2 * need
            else:
                self.at = end + 2
            found += parts

    def values(self, ends: int, found: dict[bytes, tuple[bytes, int]]) -> None:
        """Read the answers of ``ends`` multi-gets into ``found`` (key -> data, flags).

        Raises StoreError on an answer that is neither a value nor ``END``.
        """
        match = _VALUE.match
        while ends:
            buffer, at = self.buffer, self.at
            if buffer.startswith(b"END\r\n", at):
                self.at = at + 5
                ends -= 1
                continue
            header = match(buffer, at)
            if header is not None:
                start = header.end()
                stop = start + int(header.group(3))
                if len(buffer) >= stop + 2:
                    found[bytes(header.group(1))] = (
                        bytes(buffer[start:stop]),
                        int(header.group(2)),
                    )
                    self.at = stop + 2
                    continue
            elif buffer.find(b"\r\n", at) >= 0 and not buffer.startswith(b"VALUE ", at):
                line = bytes(buffer[at : buffer.find(b"\r\n", at)])
                raise StoreError(f"memcached answered {line[:60]!r}")
            self._more()


_VALUE = re.compile(rb"VALUE (\S+) (\d+) (\d+)\r\n")


Item = tuple[bytes, int]  # item data and flags

_KEYS_PER_GET = 1000  # keys in one multi-get command line


def fetch(groups: dict[Connection, list[bytes]]) -> dict[bytes, Item]:
    """Return the items present among the keys of each server: multi-gets, pipelined.

    Every server gets all its ``get`` commands at once, then every answer is read.
    Raises StoreUnavailable when a server cannot be reached or breaks the exchange
    (a read changes nothing), StoreError when it refuses a command.
    """
    servers = sorted((s for s in groups if groups[s]), key=lambda s: s.name)
    found: dict[bytes, Item] = {}
    for server in servers:
        server.lock.acquire()
    try:
        readers = _connect(servers)
        for server in servers:
            keys = groups[server]
            commands = [
                b"get " + b" ".join(keys[start : start + _KEYS_PER_GET]) + b"\r\n"
                for start in range(0, len(keys), _KEYS_PER_GET)
            ]
            try:
                server.client.sock.sendall(b"".join(commands))
            except OSError as exc:
                server.client.close()
                raise StoreUnavailable(
                    f"memcached {server.name}: {type(exc).__name__}: {exc}"
                ) from exc
        for server in servers:
            ends = (len(groups[server]) + _KEYS_PER_GET - 1) // _KEYS_PER_GET
            try:
                readers[server].values(ends, found)
            except StoreError as exc:
                server.client.close()
                raise StoreError(f"memcached {server.name}: {exc}") from exc
            except OSError as exc:
                server.client.close()
                raise StoreUnavailable(
                    f"memcached {server.name}: {type(exc).__name__}: {exc}"
                ) from exc
    finally:
        for server in reversed(servers):
            server.lock.release()
    return found


def _connect(servers: list[Connection]) -> dict[Connection, _Reader]:
    """Connect every server (an open connection is checked first); return their readers."""
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
    return readers


R = TypeVar("R", bound="Request")


class Pipeline:
    """Requests for several servers; see the module docstring."""

    def __init__(self) -> None:
        self._queues: dict[Connection, list[Request]] = {}

    def add(self, server: Connection, request: R) -> R:
        """Queue ``request`` for ``server``; return it."""
        queue = self._queues.get(server)
        if queue is None:
            queue = self._queues[server] = []
        queue.append(request)
        return request

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
        readers = _connect(servers)
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
    def _answers(reader: _Reader, window: list[Request]) -> None:
        lines: list[bytes] = []
        try:
            reader.lines(sum(1 for r in window if r.reply), lines)
        finally:
            # The requests answered before a failure keep their answers.
            answers = iter(lines)
            for request in window:
                if request.reply:
                    answer = next(answers, None)
                    if answer is None:
                        break
                    request.answer = answer
                request.status = Status.ANSWERED

    @staticmethod
    def _broken(server: Connection, window: list[Request]) -> None:
        server.client.close()
        for request in window:
            if request.status is not Status.ANSWERED:
                request.status = Status.IN_DOUBT
