"""A TCP proxy that breaks connections at random points: lost replies, stalls, resets.

Between a client and a server on loopback. While armed, each chunk of bytes it
forwards may meet a fault, drawn from a seeded random generator:

``reset_request``  the client's connection is reset (RST) and the request never
                   reaches the server
``drop_reply``     the request reached the server, which answered; the answer is
                   thrown away and both connections are closed
``stall_reply``    the answer is held for ``stall`` seconds (longer than the client's
                   socket timeout), then both connections are closed
``reset_reply``    the request reached the server; the client's connection is reset
                   (RST) instead of getting the answer

:attr:`injected` counts the faults of each kind.
"""

from __future__ import annotations

import contextlib
import random
import socket
import struct
import threading
import time
from collections import Counter

__all__ = ["FAULTS", "ChaosProxy"]

FAULTS = ("reset_request", "drop_reply", "stall_reply", "reset_reply")


def _reset(sock: socket.socket) -> None:
    """Close with an RST: SO_LINGER with a zero timeout."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


class ChaosProxy:
    """Forward 127.0.0.1:``port`` to ``upstream_port``, breaking things with ``rates``.

    ``rates`` maps a fault name of :data:`FAULTS` to its probability per chunk (the
    request faults are drawn on chunks going to the server, the reply faults on
    chunks coming back). Nothing is broken until :meth:`arm`.
    """

    def __init__(
        self, upstream_port: int, rates: dict[str, float], *, seed: int, stall: float
    ) -> None:
        unknown = set(rates) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}")
        self.upstream_port = upstream_port
        self.rates = rates
        self.stall = stall
        self.injected: Counter[str] = Counter()
        self.armed = False
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self) -> None:
        """Start breaking things."""
        self.armed = True

    def disarm(self) -> None:
        """Forward everything from now on."""
        self.armed = False

    def close(self) -> None:
        """Stop accepting connections."""
        self._closed = True
        self._listener.close()

    def _draw(self, kinds: tuple[str, ...]) -> str | None:
        if not self.armed:
            return None
        with self._lock:
            roll = self._random.random()
            for kind in kinds:
                rate = self.rates.get(kind, 0.0)
                if roll < rate:
                    self.injected[kind] += 1
                    return kind
                roll -= rate
        return None

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.upstream_port))
            except OSError:
                _reset(client)
                continue
            for sock in (client, server):
                # Without it, Nagle's algorithm and delayed ACKs add ~40 ms per round trip.
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._requests, args=(client, server), daemon=True).start()
            threading.Thread(target=self._replies, args=(server, client), daemon=True).start()

    def _requests(self, client: socket.socket, server: socket.socket) -> None:
        try:
            while True:
                data = client.recv(65536)
                if not data:
                    break
                if self._draw(("reset_request",)) == "reset_request":
                    _reset(client)
                    _close(server)
                    return
                server.sendall(data)
        except OSError:
            pass
        _close(client)
        _close(server)

    def _replies(self, server: socket.socket, client: socket.socket) -> None:
        try:
            while True:
                data = server.recv(65536)
                if not data:
                    break
                fault = self._draw(("drop_reply", "stall_reply", "reset_reply"))
                if fault == "drop_reply":
                    break
                if fault == "stall_reply":
                    time.sleep(self.stall)
                    break
                if fault == "reset_reply":
                    _reset(client)
                    _close(server)
                    return
                client.sendall(data)
        except OSError:
            pass
        _close(server)
        _close(client)
