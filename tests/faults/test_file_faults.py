"""The file store hits a write limit, and a later start finds half-written files.

A process lowers ``RLIMIT_FSIZE`` below the size of its next saved view: the syncs
fail with EFBIG, the previous view stays whole (writes go to a temporary file that
replaces the view only when complete), the application keeps counting, and once the
limit is raised the next sync saves everything. Then a new process with the same
instance id starts on the same directory: next to a crashed writer's half-written
temporary file it resumes the last good view exactly; in place of a view cut in half
(a file system that lost data) it finds nothing it can trust, counts and removes
the file, and starts again from zero, as docs/stores.md says.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.faults.file_worker import saved_file
from tests.faults.records import FaultRecord
from tests.faults.test_redis_faults import HOT_PATH_BOUND

ROOT = Path(__file__).resolve().parents[2]


def run(phase: str, directory: Path) -> tuple[dict[str, Any], str]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.faults.file_worker", phase, str(directory)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result, done.stderr


def test_a_file_store_over_its_write_limit_keeps_the_last_good_view_and_catches_up(
    tmp_path: Path, fault: FaultRecord
) -> None:
    directory = tmp_path / "metrics"
    result, logs = run("limit", directory)

    assert result["first_ok"]
    assert len(result["failed"]) == 5
    assert all("File too large" in error for error in result["failed"])
    assert result["kept"]  # the saved view during the failures: the last good one, whole
    assert result["recovered_ok"]
    assert result["saved_after"] == result["local"]
    assert not result["errors"]
    assert result["worst_call"] < HOT_PATH_BOUND
    assert result["self"]["metricache_sync_errors{StoreUnavailable}"] == 5
    assert "failed: StoreUnavailable" in logs
    assert "works again after 5 failed attempts" in logs
    assert not [p for p in directory.iterdir() if p.name.endswith(".tmp")]
    sent = int(sum(result["local"].values()))

    fault.fault = "the file store's process hits RLIMIT_FSIZE (writes fail with EFBIG)"
    fault.store = "file"
    fault.strategy = "local_only"
    fault.happened = (
        f"5 syncs failed (File too large) while the application made {result['calls']} "
        f"calls; the saved view stayed the last good one ({result['good_size']} bytes); "
        "the first sync after the limit was raised saved everything"
    )
    fault.sent = sent
    fault.counted = int(sum(result["saved_after"].values()))
    fault.compared = f"one counter, {len(result['local'])} series"
    fault.lost = sent - fault.counted
    fault.doubled = 0
    fault.allowed = "nothing lost, nothing doubled"
    fault.worst_call_ms = round(result["worst_call"] * 1000, 2)
    fault.seen_in = [
        "metricache_sync_errors_total{error=StoreUnavailable}",
        "log: sync to file ... failed",
    ]


def test_a_restart_next_to_a_half_written_temporary_file_resumes_the_last_good_view(
    tmp_path: Path, fault: FaultRecord
) -> None:
    directory = tmp_path / "metrics"
    first, _ = run("limit", directory)
    view = saved_file(str(directory))
    data = view.read_bytes()
    # What a writer killed half way through leaves: a temporary file, never the view.
    crashed = directory / f".{view.name}.4242.{secrets.token_hex(4)}.tmp"
    crashed.write_bytes(data[: len(data) // 2])

    result, logs = run("resume", directory)

    assert result["ok"]
    assert result["resumed"] == first["local"]
    expected = dict(first["local"])
    expected["first-0"] += 1
    assert result["after"] == expected
    assert result["self"].get("metricache_store_corrupt_values{store value}", 0) == 0
    assert "corrupt" not in logs
    sent = int(sum(expected.values()))

    fault.fault = "a restart finds a crashed writer's half-written temporary file (file store)"
    fault.store = "file"
    fault.strategy = "local_only"
    fault.happened = (
        "the half-written temporary file was never read; the new process resumed the "
        "last good view and went on counting"
    )
    fault.sent = sent
    fault.counted = int(sum(result["after"].values()))
    fault.compared = f"one counter, {len(expected)} series, across a restart"
    fault.lost = sent - fault.counted
    fault.doubled = 0
    fault.allowed = "nothing lost, nothing doubled"
    fault.seen_in = ["nothing: the temporary file is never read"]


def test_a_restart_on_a_view_cut_in_half_counts_it_removes_it_and_starts_over(
    tmp_path: Path, fault: FaultRecord
) -> None:
    directory = tmp_path / "metrics"
    first, _ = run("limit", directory)
    view = saved_file(str(directory))
    data = view.read_bytes()
    view.write_bytes(data[: len(data) // 2])  # the file system lost the second half

    result, logs = run("resume", directory)

    assert result["ok"]
    assert result["resumed"] == {}
    assert result["after"] == {"first-0": 1.0}
    assert result["self"]["metricache_store_corrupt_values{store value}"] >= 1
    assert "skipping a corrupt store value" in logs
    assert "header says" in logs  # the reason: the file is shorter than its header says
    previous = int(sum(first["local"].values()))

    fault.fault = "a restart finds the saved view cut in half (file store)"
    fault.store = "file"
    fault.strategy = "local_only"
    fault.happened = (
        "the store found the file shorter than its header says, counted and removed it; "
        "the new process started from zero and kept counting"
    )
    fault.sent = previous + 1
    fault.counted = 1
    fault.compared = "one counter, across a restart"
    fault.lost = previous
    fault.doubled = 0
    fault.allowed = "the damaged view (documented: a file that does not check out is absent)"
    fault.seen_in = ["metricache_store_corrupt_values_total", "log: skipping a corrupt store value"]
