"""Scheduled exports as a user starts them: `metricache export --schedule`, `start()`."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import metricache
from metricache.runtime import coordinator_of
from metricache.sync.syncer import Syncer

from tests.support.servers import RedisServer

TIMING = """
[export]
schedule = true
format = "prometheus"
exporter = "file"
options = {{ path = "{out}/m-{{unix}}.prom" }}
interval = 1.0
safety_margin = 1.0
timeout = 1.0
backoff_base = 1.0
"""


def config_file(tmp_path: Path, url: str, namespace: str) -> Path:
    path = tmp_path / "metricache.toml"
    out = tmp_path / "out"
    path.write_text(
        f'[store]\nname = "redis"\noptions = {{ url = "{url}" }}\n'
        f'[sync]\nnamespace = "{namespace}"\ninterval = 0.2\nretention = 6.0\n'
        + TIMING.format(out=out)
    )
    return path


def wait_for_files(directory: Path, count: int, timeout: float = 20.0) -> list[Path]:
    deadline = time.monotonic() + timeout
    files: list[Path] = []
    while time.monotonic() < deadline:
        files = sorted(directory.glob("m-*.prom")) if directory.exists() else []
        if len(files) >= count:
            break
        time.sleep(0.1)
    return files


def test_export_schedule_keeps_exporting_until_stopped(
    redis_server: RedisServer, namespace: str, tmp_path: Path
) -> None:
    registry = metricache.Registry()
    metricache.Counter("scheduled", "Counted", registry=registry).inc(7)
    store = metricache.open_store("redis", url=redis_server.url)
    assert Syncer(registry, store, namespace=namespace).flush().ok

    config = config_file(tmp_path, redis_server.url, namespace)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "metricache.cli.main",
            "--config",
            str(config),
            "export",
            "--schedule",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        files = wait_for_files(tmp_path / "out", 2)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert len(files) >= 2, out + err
    assert "exported" in out
    for file in files:
        assert "scheduled_total 7.0" in file.read_text()


def test_start_runs_the_coordinator_when_the_config_schedules_exports(
    redis_server: RedisServer, namespace: str, tmp_path: Path
) -> None:
    registry = metricache.Registry()
    metricache.Counter("started_scheduled", "Counted", registry=registry).inc(3)
    syncer = metricache.start(
        str(config_file(tmp_path, redis_server.url, namespace)), registry=registry
    )
    coordinator = coordinator_of(syncer)
    try:
        assert coordinator is not None
        assert coordinator.running
        files = wait_for_files(tmp_path / "out", 1)
    finally:
        if coordinator is not None:
            coordinator.stop()
        syncer.stop()
    assert files
    assert "started_scheduled_total 3.0" in files[-1].read_text()
