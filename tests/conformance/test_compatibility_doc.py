"""docs/compatibility.md holds the matrix the suite generates, not one typed by hand.

The ``redis`` store has a row per deployment: one server, a Redis Cluster (3 masters,
3 replicas) and Redis Sentinel (1 master, 1 replica, 3 sentinels), each started here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from metricache_conformance.render import MATRIX_END, MATRIX_START

from tests.support.servers import MemcachedServer, RedisServer
from tests.support.topologies import cluster, sentinel

DOC = Path(__file__).resolve().parents[2] / "docs" / "compatibility.md"
REGENERATE = (
    "metricache conformance --all --servers --format markdown --write docs/compatibility.md"
)


def committed_matrix() -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(MATRIX_START) + len(MATRIX_START)
    return text[start : text.index(MATRIX_END)].strip()


def test_the_committed_matrix_equals_a_fresh_generation(
    redis_server: RedisServer, memcached_server: MemcachedServer, tmp_path: Path
) -> None:
    with cluster() as clustered, sentinel() as watched:
        result = _generate(redis_server, memcached_server, clustered.url, watched.url, tmp_path)
    assert result.returncode == 0, result.stderr
    fresh = result.stdout.strip()
    assert fresh.startswith("| store | basics | distributed |")
    assert "| `redis` (cluster) |" in fresh
    assert "| `redis` (sentinel) |" in fresh
    assert committed_matrix() == fresh, f"docs/compatibility.md is stale; run: {REGENERATE}"


def _generate(
    redis_server: RedisServer,
    memcached_server: MemcachedServer,
    cluster_url: str,
    sentinel_url: str,
    tmp_path: Path,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "metricache.cli.main",
            "conformance",
            "--all",
            "--format",
            "markdown",
            "--increments",
            "1000",
            "--option",
            f"redis.url={redis_server.url}",
            "--option",
            f"memcached.url={memcached_server.url}",
            "--option",
            f"redis/cluster.url={cluster_url}",
            "--option",
            f"redis/sentinel.url={sentinel_url}",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
