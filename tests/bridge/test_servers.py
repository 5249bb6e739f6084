"""Real servers, real third-party instrumentation: the merged view has the exact numbers.

Container A is a pre-fork server with 4 workers (gunicorn sync workers, with and
without ``--preload``; uvicorn workers); container B is two single-process servers
with instance ids of their own. A client sends a known number of requests to each;
``metricache serve`` on redis (and on memcached) must show every request once, per
route and status, in the libraries' counters and histograms, and their gauges merged
as their ``multiprocess_mode`` says. The apps (``tests/bridge/apps``) import nothing
of metricache but the one documented call.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from functools import partial
from pathlib import Path

import pytest
from prometheus_flask_exporter import __version__ as flask_exporter_version  # type: ignore[import-untyped]

from tests.bridge.fleet import (
    Request,
    Samples,
    app_env,
    gunicorn,
    labels,
    merged_samples,
    parse,
    send,
    uvicorn,
    wait_for,
)
from tests.http.serving import fetch, serve
from tests.support.servers import MemcachedServer, RedisServer

pytestmark = pytest.mark.slow

FLASK_APP = "tests.bridge.apps.flask_app:app"
FASTAPI_APP = "tests.bridge.apps.fastapi_app:app"


@pytest.fixture(params=["redis", "memcached"])
def store(
    request: pytest.FixtureRequest,
    redis_server: RedisServer,
    memcached_server: MemcachedServer,
    namespace: str,
) -> dict[str, str]:
    """The store every process of the test uses, as environment variables."""
    server = redis_server if request.param == "redis" else memcached_server
    return {
        "METRICACHE_STORE": request.param,
        "METRICACHE_STORE_URL": server.url,
        "METRICACHE_SYNC_NAMESPACE": namespace,
    }


@pytest.fixture
def servers() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


def app_metrics(port: int) -> Samples:
    """What an app's own ``/metrics`` (prometheus_client's exposition) shows."""
    reply = fetch(f"http://127.0.0.1:{port}/metrics")
    assert reply.status == 200, reply.body
    return parse(reply.body.decode())


def total(found: Samples, name: str) -> float:
    """The sum of every sample called ``name`` (all label sets)."""
    return sum(value for (sample, _), value in found.items() if sample == name)


# -- WSGI: Flask + prometheus-flask-exporter under gunicorn --------------------------------

FLASK_A = (
    [Request("GET", "/")] * 40
    + [Request("GET", "/work?size=7")] * 30
    + [Request("GET", "/missing")] * 10
    + [Request("GET", "/boom")] * 5
)
FLASK_B = (
    [Request("GET", "/")] * 10
    + [Request("GET", "/work?size=11")] * 6
    + [Request("GET", "/missing")] * 2
)


def flask_expected(containers_b: int) -> Samples:
    """What the merged view holds after FLASK_A to A and FLASK_B to each B process."""
    per_route = {
        ("/", "200"): 40 + containers_b * 10,
        ("/work", "200"): 30 + containers_b * 6,
        ("/missing", "404"): 10 + containers_b * 2,
        ("/boom", "500"): 5,
    }
    expected: Samples = {}
    for (path, status), count in per_route.items():
        key = labels(method="GET", path=path, status=status)
        expected[("flask_http_request_duration_seconds_count", key)] = count
        expected[("flask_http_request_duration_seconds_bucket", labels(**dict(key), le="+Inf"))] = (
            count
        )
        by_status = labels(method="GET", status=status)
        expected[("flask_http_request_total", by_status)] = (
            expected.get(("flask_http_request_total", by_status), 0) + count
        )
    return expected


def run_flask_fleet(
    store: dict[str, str], servers: ExitStack, tmp_path: Path, *, preload: bool
) -> None:
    served = servers.enter_context(serve(cwd=tmp_path, env=store))
    a = servers.enter_context(
        gunicorn(FLASK_APP, app_env(store), tmp_path / "a.log", workers=4, preload=preload)
    )
    bs = [
        servers.enter_context(
            gunicorn(
                FLASK_APP,
                app_env(store, METRICACHE_INSTANCE_ID=f"container-b-{n}"),
                tmp_path / f"b{n}.log",
                workers=1,
                preload=False,
            )
        )
        for n in (1, 2)
    ]
    statuses = send(a.port, FLASK_A)
    assert sorted(set(statuses)) == [200, 404, 500]
    for b in bs:
        send(b.port, FLASK_B)
    expected = flask_expected(containers_b=2)
    found = wait_for(lambda: merged_samples(served), expected)
    requests = len(FLASK_A) + 2 * len(FLASK_B)
    # "all" (per instance): every instance's own count; together, every request once.
    assert total(found, "app_worker_requests") == requests
    # "max": the largest payload any worker of any container saw.
    assert found[("app_largest_payload", ())] == 11.0
    # "max", set at import (before the fork with --preload): 1, not one per worker.
    assert found[("flask_exporter_info", labels(version=flask_exporter_version))] == 1.0
    # Stopped gracefully, every worker makes a final sync: nothing is counted again.
    for server in (a, *bs):
        server.stop()
    after = merged_samples(served)
    assert {k: after.get(k) for k in expected} == expected


@pytest.mark.parametrize("preload", [True, False], ids=["preload", "no-preload"])
def test_flask_under_gunicorn_adds_up_across_workers_and_containers(
    store: dict[str, str], servers: ExitStack, tmp_path: Path, preload: bool
) -> None:
    run_flask_fleet(store, servers, tmp_path, preload=preload)


# -- ASGI: FastAPI + prometheus-fastapi-instrumentator under uvicorn -----------------------

FASTAPI_A = (
    [Request("GET", "/")] * 40
    + [Request("POST", "/items", b"x" * 100)] * 20
    + [Request("GET", "/missing")] * 10
)
FASTAPI_B = [Request("GET", "/")] * 10 + [Request("POST", "/items", b"y" * 50)] * 5


def fastapi_expected(containers_b: int) -> Samples:
    """What the merged view holds after FASTAPI_A to A and FASTAPI_B to each B process."""
    routes = {
        ("GET", "/", "200"): 40 + containers_b * 10,
        ("POST", "/items", "201"): 20 + containers_b * 5,
        ("GET", "/missing", "404"): 10,
    }
    expected: Samples = {}
    for (method, handler, status), count in routes.items():
        expected[("http_requests_total", labels(method=method, handler=handler, status=status))] = (
            count
        )
        expected[
            ("http_request_duration_seconds_count", labels(method=method, handler=handler))
        ] = count
    # Summaries: count and sum add up (the request size is the Content-Length).
    expected[("http_request_size_bytes_count", labels(handler="/items"))] = 20 + containers_b * 5
    expected[("http_request_size_bytes_sum", labels(handler="/items"))] = (
        20 * 100 + containers_b * 5 * 50
    )
    expected[("http_response_size_bytes_sum", labels(handler="/"))] = 5 * (40 + containers_b * 10)
    expected[("http_request_duration_highr_seconds_count", ())] = sum(routes.values())
    # "livesum": nothing in progress once every request is answered.
    for method, handler, _ in routes:
        expected[("http_requests_inprogress", labels(method=method, handler=handler))] = 0.0
    return expected


def test_fastapi_under_uvicorn_workers_adds_up_and_serves_the_merged_view_itself(
    store: dict[str, str], servers: ExitStack, tmp_path: Path
) -> None:
    served = servers.enter_context(serve(cwd=tmp_path, env=store))
    a = servers.enter_context(uvicorn(FASTAPI_APP, app_env(store), tmp_path / "a.log", workers=4))
    bs = [
        servers.enter_context(
            uvicorn(
                FASTAPI_APP,
                app_env(store, METRICACHE_INSTANCE_ID=f"container-b-{n}"),
                tmp_path / f"b{n}.log",
                workers=1,
            )
        )
        for n in (1, 2)
    ]
    statuses = send(a.port, FASTAPI_A)
    assert sorted(set(statuses)) == [200, 201, 404]
    for b in bs:
        send(b.port, FASTAPI_B)
    expected = fastapi_expected(containers_b=2)
    wait_for(lambda: merged_samples(served), expected)
    # The app's own /metrics (the instrumentator's, prometheus_client's exposition)
    # serves the same merged view, each series once: any worker of any container.
    for port in (a.port, bs[0].port):
        wait_for(partial(app_metrics, port), expected)
    for server in (a, *bs):
        server.stop()
    after = merged_samples(served)
    counted = {k: v for k, v in expected.items() if not k[0].startswith("http_requests_inprogress")}
    assert {k: after.get(k) for k in counted} == counted
