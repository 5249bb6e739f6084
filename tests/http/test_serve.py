"""``metricache serve`` over real sockets against a real redis: formats, gzip, routes, headers."""

from __future__ import annotations

import gzip
import http.client
import json
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import metricache
import metricache_csv
import metricache_json
import pytest
from metricache.formats import available_formats, render
from metricache.sync.reader import merged_snapshot

from tests.export.cli import clean_env
from tests.formats.snapshots import exact
from tests.http.serving import Served, fetch, serve, sync_sample
from tests.support.servers import RedisServer

# What Prometheus 2.x sends when it scrapes.
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


class Target:
    """A served namespace of the session's redis, and a direct reader of the same view."""

    def __init__(self, served: Served, store: metricache.Store, namespace: str) -> None:
        self.served = served
        self.store = store
        self.namespace = namespace

    def view(self) -> metricache.Snapshot:
        return merged_snapshot(self.store, namespace=self.namespace)


@pytest.fixture(scope="module")
def target(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    namespace = "http" + secrets.token_hex(4)
    store = metricache.open_store("redis", url=redis_server.url)
    sync_sample(store, namespace)
    with serve(
        "--store",
        "redis",
        "--option",
        f"url={redis_server.url}",
        cwd=tmp_path_factory.mktemp("serve"),
        env={"METRICACHE_SYNC_NAMESPACE": namespace},
    ) as served:
        yield Target(served, store, namespace)


def families(snapshot: metricache.Snapshot) -> object:
    return exact(snapshot)[4]


FORMATS = [
    # name, an Accept header that asks for it, its Content-Type
    ("prometheus", "text/plain", "text/plain; version=0.0.4; charset=utf-8"),
    (
        "openmetrics",
        "application/openmetrics-text; version=1.0.0",
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
    ),
    ("json", "application/json", "application/json"),
    ("csv", "text/csv", "text/csv; charset=utf-8; header=present"),
]


def check_body(target: Target, name: str, body: bytes) -> None:
    """The body is exactly the store's view in format ``name``."""
    view = target.view()
    if name == "json":
        assert families(metricache_json.parse(body)) == families(view)
        assert json.loads(body)["view"] == "merged"
    elif name == "csv":
        assert families(metricache_csv.parse(body)) == families(view)
    else:
        assert body == render(view, name)
    assert "orders" in {f.name for f in view.families}


@pytest.mark.parametrize(("name", "accept", "content_type"), FORMATS)
def test_every_format_by_accept(target: Target, name: str, accept: str, content_type: str) -> None:
    reply = fetch(target.served.url, headers={"Accept": accept})
    assert reply.status == 200
    assert reply.headers["content-type"] == content_type
    assert reply.headers["cache-control"] == "no-store"
    assert reply.headers["vary"] == "Accept, Accept-Encoding"
    assert "content-encoding" not in reply.headers
    assert int(reply.headers["content-length"]) == len(reply.body)
    check_body(target, name, reply.body)


@pytest.mark.parametrize(("name", "accept", "content_type"), FORMATS)
def test_every_format_by_query(target: Target, name: str, accept: str, content_type: str) -> None:
    # ?format= wins over whatever Accept says.
    reply = fetch(target.served.url + f"?format={name}", headers={"Accept": "text/plain"})
    assert reply.status == 200
    assert reply.headers["content-type"] == content_type
    check_body(target, name, reply.body)


def test_negotiation_follows_q_values_and_defaults(target: Target) -> None:
    def served_type(accept: str | None) -> str:
        headers = {"Accept": accept} if accept is not None else {}
        reply = fetch(target.served.url, headers=headers)
        assert reply.status == 200
        return reply.headers["content-type"].split(";")[0]

    assert served_type(PROMETHEUS_ACCEPT) == "application/openmetrics-text"
    assert served_type(None) == "text/plain"
    assert served_type("*/*") == "text/plain"
    assert served_type("text/csv;q=0.9, application/json;q=0.5") == "text/csv"
    assert served_type("application/json;q=0.2, text/csv;q=0.1") == "application/json"
    assert served_type("image/png, text/*;q=0.3") == "text/plain"


def test_nothing_acceptable_is_406_naming_what_is(target: Target) -> None:
    reply = fetch(target.served.url, headers={"Accept": "image/png"})
    assert reply.status == 406
    assert reply.headers["content-type"] == "application/json"
    document = json.loads(reply.body)
    assert {"text/plain", "application/json", "text/csv"} <= set(document["available"])
    unknown = fetch(target.served.url + "?format=yaml")
    assert unknown.status == 406
    assert json.loads(unknown.body) == {
        "error": "unknown format 'yaml'",
        "available": sorted(available_formats()),
    }


def test_gzip_when_asked_and_only_then(target: Target) -> None:
    plain = fetch(target.served.url)
    zipped = fetch(target.served.url, headers={"Accept-Encoding": "gzip, deflate"})
    assert zipped.status == 200
    assert zipped.headers["content-encoding"] == "gzip"
    assert int(zipped.headers["content-length"]) == len(zipped.body)
    assert gzip.decompress(zipped.body) == plain.body
    assert len(zipped.body) < len(plain.body)
    refused = fetch(target.served.url, headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert "content-encoding" not in refused.headers
    assert refused.body == plain.body
    star = fetch(target.served.url + "?format=json", headers={"Accept-Encoding": "*"})
    assert star.headers["content-encoding"] == "gzip"
    check_body(target, "json", gzip.decompress(star.body))


def test_healthz_other_paths_and_methods(target: Target) -> None:
    health = fetch(target.served.url, "/healthz")
    assert (health.status, json.loads(health.body)) == (200, {"status": "ok"})
    assert health.headers["cache-control"] == "no-store"
    root = fetch(target.served.url, "/")
    assert root.status == 200
    assert root.body == fetch(target.served.url).body
    for path in ("/metricsx", "/metrics/", "/favicon.ico", "/healthz/x"):
        missing = fetch(target.served.url, path)
        assert (missing.status, json.loads(missing.body)) == (404, {"error": "not found"}), path
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        refused = fetch(target.served.url, method=method, body=b"x=1")
        assert refused.status == 405, method
        assert refused.headers["allow"] == "GET, HEAD"
        assert json.loads(refused.body) == {"error": "method not allowed"}


def test_head_has_the_headers_of_get_and_no_body(target: Target) -> None:
    got = fetch(target.served.url)
    head = fetch(target.served.url, method="HEAD")
    assert head.status == 200
    assert head.body == b""
    assert head.headers["content-length"] == str(len(got.body))
    assert head.headers["content-type"] == got.headers["content-type"]


def test_one_connection_serves_many_requests(target: Target) -> None:
    host, port = target.served.base.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        first = fetch(target.served.url, connection=conn)
        refused = fetch(target.served.url, method="POST", body=b"a" * 1000, connection=conn)
        second = fetch(target.served.url, connection=conn)
    finally:
        conn.close()
    assert (first.status, refused.status, second.status) == (200, 405, 200)
    assert first.body == second.body


def test_sigint_stops_the_server_cleanly(redis_server: RedisServer, tmp_path: Path) -> None:
    with serve(
        "--store", "redis", "--option", f"url={redis_server.url}", cwd=tmp_path, stop=signal.SIGINT
    ) as served:
        assert fetch(served.url, "/healthz").status == 200
        assert served.url.startswith("http://127.0.0.1:")
        assert not served.url.endswith(":0/metrics")  # port 0 printed as the real port
    assert b"(auth: none)" in served.stdout


def test_a_port_in_use_is_reported(target: Target, tmp_path: Path) -> None:
    port = target.served.url.rsplit(":", 1)[1].split("/")[0]
    done = subprocess.run(
        [sys.executable, "-m", "metricache.cli.main", "serve", "--port", port],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert f"metricache: error: cannot listen on 127.0.0.1:{port}" in done.stderr.decode()
