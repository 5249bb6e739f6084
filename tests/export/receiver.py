"""A real HTTP server on a free loopback port that records what exporters POST to it."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

import attrs

__all__ = ["Received", "Receiver"]


@attrs.frozen
class Received:
    """One request the receiver answered."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """Answers ``/status/NNN`` with that status, ``/redirect`` with a 302; records all."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                receiver.received.append(
                    Received(
                        "POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body
                    )
                )
                if self.path == "/redirect":
                    self.send_response(302)
                    self.send_header("Location", "/status/200")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = (
                    int(self.path.rsplit("/", 1)[-1]) if self.path.startswith("/status/") else 404
                )
                answer = b"thanks" if status < 300 else b"no"
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def do_GET(self) -> None:
                receiver.received.append(Received("GET", self.path, {}, b""))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        """Return the URL of ``path`` on this server."""
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
