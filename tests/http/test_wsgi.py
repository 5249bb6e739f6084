"""The WSGI app under wsgiref over a real socket: a local syncer, an authorizer, mounting, 500."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.util import shift_path_info

import metricache
import pytest
from metricache.http import MetricsEndpoint, Request, WSGIApp, make_wsgi_app
from metricache.snapshot import Snapshot

from tests.http.serving import fetch

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def wsgi_server(app: WSGIApplication) -> Iterator[str]:
    """Serve ``app`` with wsgiref on a free port; yield its base URL."""
    server: WSGIServer = make_server("127.0.0.1", 0, app, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


@pytest.fixture
def syncer() -> Iterator[metricache.Syncer]:
    registry = metricache.Registry()
    metricache.Counter("jobs", "Jobs done", registry=registry).inc(2)
    found = metricache.Syncer(registry, metricache.open_store("memory"), instance_id="app-1")
    yield found
    found.stop()


def test_the_app_serves_this_process_view_flushed_on_each_request(
    syncer: metricache.Syncer,
) -> None:
    jobs = syncer.registry.get("jobs")
    assert isinstance(jobs, metricache.Counter)
    with wsgi_server(make_wsgi_app(syncer=syncer, tokens=None)) as base:
        first = fetch(base + "/metrics")
        jobs.inc(5)  # never synced explicitly: the request flushes first
        second = fetch(base + "/metrics?format=json")
        health = fetch(base + "/healthz")
    assert first.status == 200
    assert b"jobs_total 2.0" in first.body
    assert first.headers["cache-control"] == "no-store"
    document = json.loads(second.body)
    assert document["instance"] == "app-1"
    (family,) = [f for f in document["families"] if f["name"] == "jobs"]
    assert family["samples"][0]["value"] == 7.0
    assert health.status == 200


def test_a_user_authorizer_decides_401_403_200(syncer: metricache.Syncer) -> None:
    seen: list[Request] = []

    def authorizer(request: Request) -> bool:
        seen.append(request)
        return request.headers.get("authorization") == "Bearer from-my-app"

    app = make_wsgi_app(syncer=syncer, authorizer=authorizer)
    with wsgi_server(app) as base:
        assert fetch(base + "/metrics").status == 401
        assert fetch(base + "/metrics", headers={"Authorization": "Bearer other"}).status == 403
        allowed = fetch(base + "/metrics?x=1", headers={"Authorization": "Bearer from-my-app"})
        assert allowed.status == 200
        assert fetch(base + "/healthz").status == 200  # not asked: health is open
    assert [(r.method, r.path, r.query) for r in seen] == [
        ("GET", "/metrics", ""),
        ("GET", "/metrics", ""),
        ("GET", "/metrics", "x=1"),
    ]
    assert seen[-1].client == "127.0.0.1"


def test_tokens_and_an_authorizer_together_either_admits(syncer: metricache.Syncer) -> None:
    app = make_wsgi_app(
        syncer=syncer,
        tokens=["scraper-token"],
        authorizer=lambda request: request.query_param("key") == "k",
    )
    with wsgi_server(app) as base:
        assert fetch(base + "/metrics").status == 401
        assert fetch(base + "/metrics?key=k").status == 200
        token = {"Authorization": "Bearer scraper-token"}
        assert fetch(base + "/metrics", headers=token).status == 200
        assert fetch(base + "/metrics", headers={"Authorization": "Bearer x"}).status == 403


def test_mounted_under_a_prefix(syncer: metricache.Syncer) -> None:
    metrics_app = make_wsgi_app(syncer=syncer, tokens=None)

    def site(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith("/monitoring"):
            shift_path_info(environ)  # SCRIPT_NAME=/monitoring, PATH_INFO=the rest
            return metrics_app(environ, start_response)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"the application"]

    with wsgi_server(site) as base:
        assert fetch(base + "/").body == b"the application"
        mounted = fetch(base + "/monitoring")
        assert mounted.status == 200
        assert b"jobs_total 2.0" in mounted.body
        assert json.loads(fetch(base + "/monitoring/healthz").body) == {"status": "ok"}
        assert fetch(base + "/monitoring/metrics").status == 200
        assert fetch(base + "/monitoring/other").status == 404


def _broken_view() -> Snapshot:
    raise RuntimeError("secret internal detail at /srv/app/settings.py")


def test_an_unexpected_error_is_a_bare_500_and_a_logged_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = WSGIApp(MetricsEndpoint(_broken_view))
    with caplog.at_level(logging.ERROR, logger="metricache.http"), wsgi_server(app) as base:
        reply = fetch(base + "/metrics")
    assert reply.status == 500
    assert json.loads(reply.body) == {"error": "internal error"}
    assert b"secret" not in reply.body
    assert b"Traceback" not in reply.body
    (record,) = caplog.records
    assert record.exc_info is not None
    assert "secret internal detail" in str(record.exc_info[1])


def test_a_raising_authorizer_is_a_500_too(caplog: pytest.LogCaptureFixture) -> None:
    def authorizer(request: Request) -> bool:
        raise KeyError("oops")

    endpoint = MetricsEndpoint(lambda: Snapshot(families=()), authorizer=authorizer)
    with caplog.at_level(logging.ERROR, logger="metricache.http"):
        response = endpoint.handle(Request("GET", "/metrics"))
    assert (response.status, response.body) == (500, b'{"error":"internal error"}\n')


def test_without_arguments_the_app_follows_the_configuration(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("METRICACHE_")]:
        monkeypatch.delenv(name)
    (tmp_path / "metricache.toml").write_text('[store]\nname = "memory"\n')
    monkeypatch.setenv("METRICACHE_SERVE_TOKEN", "from-env")
    app: Callable[..., Any] = make_wsgi_app()
    with wsgi_server(app) as base:
        assert fetch(base + "/metrics").status == 401
        ok = fetch(base + "/metrics", headers={"Authorization": "Bearer from-env"})
        assert ok.status == 200
