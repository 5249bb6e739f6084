"""``promtool check metrics`` accepts what ``metricache serve`` serves as Prometheus text."""

from __future__ import annotations

import subprocess
from pathlib import Path

import metricache

from tests.http.serving import fetch, serve, sync_sample
from tests.support.servers import RedisServer, require_binary


def promtool_check(text: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [require_binary("promtool"), "check", "metrics"],
        input=text,
        capture_output=True,
        timeout=60,
        check=False,
    )


def test_promtool_accepts_the_served_prometheus_text(
    redis_server: RedisServer, namespace: str, tmp_path: Path
) -> None:
    sync_sample(metricache.open_store("redis", url=redis_server.url), namespace)
    with serve(
        "--store",
        "redis",
        "--option",
        f"url={redis_server.url}",
        cwd=tmp_path,
        env={"METRICACHE_SYNC_NAMESPACE": namespace},
    ) as served:
        reply = fetch(served.url, headers={"Accept": "text/plain"})
    assert reply.status == 200
    body = reply.body
    # What is checked holds the hard parts: escaped label values, histograms, help text.
    for escaped in (b'\\"', b"\\n", b"\\\\"):
        assert escaped in body
    assert b'request_latency_seconds_bucket{route="/",le="+Inf"} 2' in body
    checked = promtool_check(body)
    assert checked.returncode == 0, (checked.stdout + checked.stderr).decode()


def test_promtool_does_reject_broken_text() -> None:
    # The check above can fail: promtool refuses an unterminated label set.
    checked = promtool_check(b'# TYPE x counter\nx_total{a="1" 3\n')
    assert checked.returncode != 0
