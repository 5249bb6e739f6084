"""A TCP proxy that can lose a reply: the request reaches the server, the answer never
comes back (the connection is cut instead). It forwards everything else as is."""

from __future__ import annotations

import contextlib
import socket
import threading

__all__ = ["ReplyLossProxy"]


class ReplyLossProxy:
    """Listen on a free loopback port and forward to ``upstream_port``.

    After :meth:`lose_next_reply_to` (a byte pattern), the first request containing
    the pattern is delivered to the server, and the connection is closed as soon as
    the server starts answering, so the client never sees the reply.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._pattern: bytes | None = None
        self._lock = threading.Lock()
        self.replies_lost = 0
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def lose_next_reply_to(self, pattern: bytes) -> None:
        """Arm the proxy: cut the connection instead of delivering that reply."""
        with self._lock:
            self._pattern = pattern

    def close(self) -> None:
        """Stop accepting connections."""
        self._closed = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.upstream_port))
            except OSError:
                client.close()
                continue
            state = {"armed_request_sent": False}
            threading.Thread(
                target=self._pipe, args=(client, server, state, True), daemon=True
            ).start()
            threading.Thread(
                target=self._pipe, args=(server, client, state, False), daemon=True
            ).start()

    def _pipe(
        self, src: socket.socket, dst: socket.socket, state: dict[str, bool], upstream: bool
    ) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if upstream:
                    with self._lock:
                        if self._pattern is not None and self._pattern in data:
                            self._pattern = None
                            state["armed_request_sent"] = True
                    dst.sendall(data)
                elif state["armed_request_sent"]:
                    # The server applied the request and is answering: lose the answer.
                    self.replies_lost += 1
                    break
                else:
                    dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
