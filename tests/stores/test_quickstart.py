"""The quickstart example, run as a user would, against the file and memcached stores."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.support.servers import MemcachedServer

ROOT = Path(__file__).resolve().parents[2]
REQUESTS = 300


def run_quickstart(*options: str) -> dict[str, float]:
    """Run examples/quickstart.py; return its exposition's samples by name and labels."""
    result = subprocess.run(
        [sys.executable, "examples/quickstart.py", "--requests", str(REQUESTS), *options],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "# synced" in result.stderr
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(result.stdout):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


def check_totals(samples: dict[str, float]) -> None:
    requests = sum(v for k, v in samples.items() if k.startswith("http_requests_total{"))
    assert requests == REQUESTS
    count = sum(
        v for k, v in samples.items() if k.startswith("http_request_duration_seconds_count{")
    )
    assert count == REQUESTS
    assert samples["http_requests_in_flight{}"] == 0


def test_quickstart_on_the_file_store(tmp_path: Path) -> None:
    samples = run_quickstart("--store", "file", "--option", f"path={tmp_path / 'store'}")
    check_totals(samples)
    assert any(p.name.endswith(".mcv") for p in (tmp_path / "store").iterdir())


def test_quickstart_on_memcached(fresh_memcached: MemcachedServer) -> None:
    samples = run_quickstart("--store", "memcached", "--option", f"url={fresh_memcached.url}")
    check_totals(samples)
