"""The bridge against prometheus_client's multiprocess mode, on the same running app.

One host (container A: gunicorn, 4 workers, ``PROMETHEUS_MULTIPROC_DIR`` set and the
bridge on): both views show the same per-route numbers. Then a second container (B,
with a multiprocess directory of its own, as on another host) serves requests: its
numbers reach the bridge's merged view, never A's multiprocess view.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import prometheus_client
import pytest
from prometheus_client import multiprocess

from tests.bridge.fleet import (
    Request,
    Samples,
    app_env,
    gunicorn,
    merged_samples,
    parse,
    send,
    wait_for,
)
from tests.http.serving import serve
from tests.support.servers import RedisServer

pytestmark = pytest.mark.slow

APP = "tests.bridge.apps.flask_app:app"
COUNTED = ("flask_http_request_total", "flask_http_request_duration_seconds_count")

TO_A = (
    [Request("GET", "/")] * 30
    + [Request("GET", "/work?size=3")] * 20
    + [Request("GET", "/missing")] * 6
)
TO_B = [Request("GET", "/")] * 8 + [Request("GET", "/boom")] * 4


def multiprocess_view(directory: Path) -> Samples:
    """What prometheus_client's multiprocess mode shows for one host's directory."""
    registry = prometheus_client.CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    return parse(prometheus_client.generate_latest(registry).decode())


def per_route(found: Samples) -> Samples:
    """The request counts per route and status (counter and histogram count)."""
    return {key: value for key, value in found.items() if key[0] in COUNTED}


def add(*views: Samples) -> Samples:
    summed: Samples = {}
    for view in views:
        for key, value in view.items():
            summed[key] = summed.get(key, 0) + value
    return summed


def test_the_bridge_matches_multiprocess_mode_on_one_host_and_adds_up_across_hosts(
    redis_server: RedisServer, namespace: str, tmp_path: Path
) -> None:
    store = {
        "METRICACHE_STORE": "redis",
        "METRICACHE_STORE_URL": redis_server.url,
        "METRICACHE_SYNC_NAMESPACE": namespace,
    }
    host_a, host_b = tmp_path / "prometheus-a", tmp_path / "prometheus-b"
    host_a.mkdir()
    host_b.mkdir()
    with ExitStack() as servers:
        served = servers.enter_context(serve(cwd=tmp_path, env=store))
        a = servers.enter_context(
            gunicorn(
                APP,
                app_env(store, PROMETHEUS_MULTIPROC_DIR=str(host_a)),
                tmp_path / "a.log",
                workers=4,
                preload=False,
            )
        )
        send(a.port, TO_A)
        on_host_a = per_route(multiprocess_view(host_a))
        assert sum(v for k, v in on_host_a.items() if k[0] == COUNTED[0]) == len(TO_A)
        # Within one host, the bridge shows what multiprocess mode shows.
        bridged = per_route(wait_for(lambda: merged_samples(served), on_host_a))
        assert bridged == on_host_a

        b = servers.enter_context(
            gunicorn(
                APP,
                app_env(store, PROMETHEUS_MULTIPROC_DIR=str(host_b), METRICACHE_INSTANCE_ID="b-1"),
                tmp_path / "b.log",
                workers=1,
                preload=False,
            )
        )
        send(b.port, TO_B)
        on_host_b = per_route(multiprocess_view(host_b))
        fleet = add(on_host_a, on_host_b)
        # Across hosts, only the bridge adds up; host A's own view stays host A's.
        bridged = per_route(wait_for(lambda: merged_samples(served), fleet))
        assert bridged == fleet
        assert per_route(multiprocess_view(host_a)) == on_host_a
        assert bridged != on_host_a
