"""prometheus_client's exposition names at the top level: the same calls, the merged view."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from typing import Any

import metricache
import pytest
from metricache.config import load_config
from metricache.http.asgi import Message
from prometheus_client.parser import text_string_to_metric_families

from tests.http.serving import fetch
from tests.support.servers import RedisServer


def values(text: str) -> dict[str, float]:
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.labels
    }


class Instance:
    """A registry with a counter, syncing to redis as ``instance_id``."""

    def __init__(self, url: str, namespace: str, instance_id: str, count: int) -> None:
        self.registry = metricache.Registry()
        self.jobs = metricache.Counter("jobs", "Jobs", registry=self.registry)
        self.jobs.inc(count)
        self.syncer = metricache.Syncer(
            self.registry,
            metricache.open_store("redis", url=url),
            namespace=namespace,
            instance_id=instance_id,
            interval=3600,
        )


@pytest.fixture
def pair(redis_server: RedisServer, namespace: str) -> Iterator[tuple[Instance, Instance]]:
    a = Instance(redis_server.url, namespace, "a", 3)
    b = Instance(redis_server.url, namespace, "b", 4)
    assert b.syncer.flush().ok
    yield a, b
    for instance in (a, b):
        instance.syncer.stop()
        instance.syncer.store.close()


def test_generate_latest_of_a_syncer_is_the_merged_view_after_a_sync(
    pair: tuple[Instance, Instance],
) -> None:
    a, _ = pair
    assert values(metricache.generate_latest(a.syncer).decode())["jobs_total"] == 7.0


def test_generate_latest_of_a_registry_without_a_syncer_is_its_own_values(
    pair: tuple[Instance, Instance],
) -> None:
    a, _ = pair
    assert values(metricache.generate_latest(a.registry).decode())["jobs_total"] == 3.0
    openmetrics = metricache.generate_latest(a.registry, "openmetrics").decode()
    assert openmetrics.endswith("# EOF\n")


def test_generate_latest_of_a_registry_start_syncs_is_the_merged_view(
    redis_server: RedisServer, namespace: str, pair: tuple[Instance, Instance]
) -> None:
    a, _ = pair
    config = load_config(
        environ={},
        overrides={
            "store": {"name": "redis", "options": {"url": redis_server.url}},
            "sync": {"namespace": namespace},
        },
    )
    syncer = metricache.start(config, a.registry)
    try:
        assert values(metricache.generate_latest(a.registry).decode())["jobs_total"] == 7.0
    finally:
        syncer.stop()


def test_content_type_latest_is_the_prometheus_formats() -> None:
    assert metricache.content_type("prometheus") == metricache.CONTENT_TYPE_LATEST


def test_make_wsgi_app_serves_the_merged_view(pair: tuple[Instance, Instance]) -> None:
    a, _ = pair
    app = metricache.make_wsgi_app(syncer=a.syncer)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/metrics",
        "wsgi.input": io.BytesIO(),
    }
    statuses: list[str] = []
    body = b"".join(app(environ, lambda status, headers, exc_info=None: statuses.append(status)))  # type: ignore[arg-type]
    assert statuses == ["200 OK"]
    assert values(body.decode())["jobs_total"] == 7.0


def test_make_asgi_app_serves_the_merged_view(pair: tuple[Instance, Instance]) -> None:
    a, _ = pair
    app = metricache.make_asgi_app(syncer=a.syncer)
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/metrics", "headers": []}
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 200
    assert values(b"".join(m.get("body", b"") for m in sent[1:]).decode())["jobs_total"] == 7.0


def test_start_http_server_serves_the_merged_view_until_stopped(
    pair: tuple[Instance, Instance],
) -> None:
    a, _ = pair
    server = metricache.start_http_server(0, "127.0.0.1", syncer=a.syncer)
    try:
        reply = fetch(server.url)
    finally:
        server.stop()
    assert reply.status == 200
    assert values(reply.body.decode())["jobs_total"] == 7.0
