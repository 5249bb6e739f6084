"""docs/compatibility.md holds the matrix the suite generates, not one typed by hand."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from metricache_conformance.render import MATRIX_END, MATRIX_START

from tests.support.servers import MemcachedServer, RedisServer

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
    result = subprocess.run(
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
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
    assert result.returncode == 0, result.stderr
    fresh = result.stdout.strip()
    assert fresh.startswith("| store | basics | distributed |")
    assert committed_matrix() == fresh, f"docs/compatibility.md is stale; run: {REGENERATE}"
