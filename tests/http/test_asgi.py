"""The ASGI app behind a minimal ASGI server over a real socket, and called directly."""

from __future__ import annotations

import asyncio
import gzip
import http
import json
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager

import metricache
import pytest
from metricache.http import ASGIApp, make_asgi_app
from metricache.http.asgi import Message

from tests.http.serving import fetch


class MiniServer:
    """Just enough HTTP/1.1 to drive an ASGI app: one request per connection.

    ``root_path`` is set in every scope, as a server mounting the app under a
    prefix does (the scope's ``path`` keeps the prefix, per the ASGI spec).
    """

    def __init__(self, app: ASGIApp, root_path: str = "") -> None:
        self.app = app
        self.root_path = root_path
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            asyncio.start_server(self._connection, "127.0.0.1", 0)
        )
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self.loop.run_forever()
        server.close()
        self.loop.run_until_complete(server.wait_closed())
        self.loop.close()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        request_line, *header_lines = head.split("\r\n")
        method, target, _ = request_line.split(" ")
        headers = []
        for line in header_lines:
            if line:
                name, _, value = line.partition(":")
                headers.append((name.strip().lower().encode(), value.strip().encode()))
        length = int(dict(headers).get(b"content-length", b"0"))
        body = await reader.readexactly(length)
        path, _, query = target.partition("?")
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": urllib.parse.unquote(path),
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": self.root_path,
            "headers": headers,
            "client": writer.get_extra_info("peername")[:2],
            "server": ("127.0.0.1", self.port),
        }
        incoming: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]
        sent: list[Message] = []

        async def receive() -> Message:
            if incoming:
                return incoming.pop(0)
            await asyncio.Event().wait()  # the client never disconnects first here
            raise AssertionError("unreachable")

        async def send(message: Message) -> None:
            sent.append(dict(message))

        await self.app(scope, receive, send)
        start, *bodies = sent
        assert start["type"] == "http.response.start"
        status = int(start["status"])
        out = [f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n".encode()]
        out += [name + b": " + value + b"\r\n" for name, value in start["headers"]]
        out.append(b"connection: close\r\n\r\n")
        out += [m.get("body", b"") for m in bodies]
        writer.write(b"".join(out))
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    def __enter__(self) -> str:
        self._thread.start()
        self._ready.wait(10)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


@pytest.fixture
def syncer() -> Iterator[metricache.Syncer]:
    registry = metricache.Registry()
    latency = metricache.Histogram("latency_seconds", "Latency", buckets=(1.0,), registry=registry)
    latency.observe(0.25)
    found = metricache.Syncer(registry, metricache.open_store("memory"), instance_id="api-1")
    yield found
    found.stop()


@contextmanager
def served(app: ASGIApp, root_path: str = "") -> Iterator[str]:
    with MiniServer(app, root_path) as base:
        yield base


def test_formats_gzip_and_headers_over_a_socket(syncer: metricache.Syncer) -> None:
    with served(make_asgi_app(syncer=syncer, tokens=None)) as base:
        prometheus = fetch(base + "/metrics")
        openmetrics = fetch(base + "/metrics", headers={"Accept": "application/openmetrics-text"})
        zipped = fetch(base + "/metrics?format=json", headers={"Accept-Encoding": "gzip"})
        head = fetch(base + "/metrics", method="HEAD")
        missing = fetch(base + "/nope")
        refused = fetch(base + "/metrics", method="POST", body=b"payload")
    assert prometheus.status == 200
    assert b'latency_seconds_bucket{le="1.0"} 1' in prometheus.body
    assert prometheus.headers["cache-control"] == "no-store"
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.body.endswith(b"# EOF\n")
    assert zipped.headers["content-encoding"] == "gzip"
    document = json.loads(gzip.decompress(zipped.body))
    (family,) = [f for f in document["families"] if f["name"] == "latency_seconds"]
    assert family["samples"][0]["count"] == 1
    assert (head.status, head.body) == (200, b"")
    # The length of what GET would send (each request syncs first, so it varies a little).
    assert int(head.headers["content-length"]) > 1000
    assert (missing.status, refused.status) == (404, 405)


def test_bearer_tokens_over_a_socket(syncer: metricache.Syncer) -> None:
    with served(make_asgi_app(syncer=syncer, tokens=["t0k3n"])) as base:
        assert fetch(base + "/metrics").status == 401
        assert fetch(base + "/metrics", headers={"Authorization": "Bearer t0k3"}).status == 403
        assert fetch(base + "/metrics", headers={"Authorization": "Bearer t0k3n"}).status == 200


def test_mounted_under_a_root_path(syncer: metricache.Syncer) -> None:
    with served(make_asgi_app(syncer=syncer, tokens=None), root_path="/monitoring") as base:
        mounted = fetch(base + "/monitoring")
        health = fetch(base + "/monitoring/healthz")
        other = fetch(base + "/monitoring/other")
    assert mounted.status == 200
    assert b"latency_seconds_count 1" in mounted.body
    assert json.loads(health.body) == {"status": "ok"}
    assert other.status == 404


def test_lifespan_is_acknowledged(syncer: metricache.Syncer) -> None:
    app = make_asgi_app(syncer=syncer, tokens=None)
    incoming: list[Message] = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0)

    async def send(message: Message) -> None:
        sent.append(dict(message))

    asyncio.run(app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send))
    assert sent == [{"type": "lifespan.startup.complete"}, {"type": "lifespan.shutdown.complete"}]


def test_a_client_gone_before_its_request_ended_gets_nothing(syncer: metricache.Syncer) -> None:
    app = make_asgi_app(syncer=syncer, tokens=None)
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(dict(message))

    scope = {"type": "http", "method": "GET", "path": "/metrics", "headers": []}
    asyncio.run(app(scope, receive, send))
    assert sent == []


def test_other_scopes_are_refused(syncer: metricache.Syncer) -> None:
    app = make_asgi_app(syncer=syncer, tokens=None)

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        raise AssertionError("nothing is sent")

    with pytest.raises(ValueError, match="serves http, not 'websocket'"):
        asyncio.run(app({"type": "websocket", "path": "/metrics"}, receive, send))
