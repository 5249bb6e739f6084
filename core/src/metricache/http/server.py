"""The endpoint on the standard library's threaded HTTP server (``metricache serve``).

Each request runs in its own thread; connections are kept alive (HTTP/1.1) and idle
ones dropped after ``IDLE_TIMEOUT`` seconds. The request log names the method, the
path without its query and the status, at debug level: it never holds headers, so
credentials never reach it.
"""

from __future__ import annotations

import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from metricache.http.endpoint import MetricsEndpoint, Request

__all__ = ["IDLE_TIMEOUT", "MetricsServer"]

log = logging.getLogger("metricache.http")

IDLE_TIMEOUT = 30.0
"""Seconds a kept-alive connection may stay silent before it is closed."""

_MAX_DISCARDED_BODY = 64 * 1024


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT

    def _answer(self) -> None:
        path, _, query = self.path.partition("?")
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        self._discard_body(headers)
        request = Request(
            method=self.command,
            path=path,
            query=query,
            headers=headers,
            client=self.client_address[0] if self.client_address else None,
        )
        response = self.server.endpoint.handle(request)
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.end_headers()
        if response.body:
            self.wfile.write(response.body)

    def _discard_body(self, headers: dict[str, str]) -> None:
        # A request body must be read off the connection before the next request on it.
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            length = -1
        if "transfer-encoding" in headers or not 0 <= length <= _MAX_DISCARDED_BODY:
            self.close_connection = True
        elif length:
            self.rfile.read(length)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _answer

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Log method, path (without the query) and status at debug level."""
        path = self.path.partition("?")[0] if hasattr(self, "path") else "-"
        command = getattr(self, "command", "-")
        log.debug("%s %s %s %s", self.client_address[0], command, path, code)

    def log_error(self, format: str, *args: Any) -> None:
        """Log protocol errors (bad request lines, timeouts) at debug level."""
        log.debug("%s: " + format, self.client_address[0], *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    endpoint: MetricsEndpoint


class _Server6(_Server):
    address_family = socket.AF_INET6


class MetricsServer:
    """A threaded HTTP server answering with ``endpoint`` on ``host``:``port``.

    Port 0 picks a free port; :attr:`port` and :attr:`url` tell the real one. The
    socket is bound on construction (an ``OSError`` says why it could not be).
    """

    def __init__(self, endpoint: MetricsEndpoint, host: str = "127.0.0.1", port: int = 9464):
        cls = _Server6 if ":" in host else _Server
        self._httpd = cls((host, port), _Handler)
        self._httpd.endpoint = endpoint
        self.host = host
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port the server listens on."""
        port: int = self._httpd.server_address[1]
        return port

    @property
    def url(self) -> str:
        """The URL of the metrics: ``http://HOST:PORT/metrics``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def start(self) -> MetricsServer:
        """Serve in a background thread."""
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="metricache-http", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> MetricsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
