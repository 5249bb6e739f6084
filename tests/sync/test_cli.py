"""`metricache status` and `metricache sync` as a user runs them (subprocesses)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import metricache
from metricache.sync.syncer import Syncer

from tests.support.servers import RedisServer, free_port


def cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "metricache.cli.main", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env=env,
    )


def test_status_shows_store_strategy_and_live_instances_without_secrets(
    redis_server: RedisServer, namespace: str, tmp_path: Path
) -> None:
    registry = metricache.Registry()
    metricache.Counter("c", "c", registry=registry).inc()
    store = metricache.open_store("redis", url=redis_server.url)
    syncer = Syncer(registry, store, namespace=namespace, instance_id="web-7")
    assert syncer.flush().ok
    assert syncer.flush().ok  # its own metrics (last sync time) are synced too
    config = tmp_path / "metricache.toml"
    config.write_text(
        f'[store]\nname = "redis"\noptions = {{ url = "{redis_server.url}" }}\n'
        f'[sync]\nnamespace = "{namespace}"\n'
    )
    done = cli("--config", str(config), "status", "--json")
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["strategy"] == "distributed_atomic"
    assert status["capabilities_source"] == "declared"
    assert status["reachable"] is True
    assert [i["id"] for i in status["instances"]] == ["web-7"]
    assert status["instances"][0]["last_sync_ago"] >= 0

    # A password given on the command line never shows, in text or JSON.
    url = f"redis://:hunter2@127.0.0.1:{redis_server.port}/0"
    for extra in ([], ["--json"]):
        shown = cli("status", "--store", "redis", "--option", f"url={url}", *extra)
        assert "hunter2" not in shown.stdout + shown.stderr
        assert "***" in shown.stdout


def test_status_exits_1_when_the_store_does_not_answer() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    done = cli("status", "--store", "redis", "--option", f"url={url}")
    assert done.returncode == 1
    assert "reachable" in done.stdout
    assert "Traceback" not in done.stderr


def test_sync_reports_one_line_and_fails_cleanly(redis_server: RedisServer, namespace: str) -> None:
    done = cli("sync", "--store", "redis", "--option", f"url={redis_server.url}")
    assert done.returncode == 0, done.stderr
    assert "sync ok" in done.stdout
    assert "distributed_atomic" in done.stdout
    down = cli("sync", "--store", "redis", "--option", f"url=redis://127.0.0.1:{free_port()}/0")
    assert down.returncode == 1
    assert "sync FAILED" in down.stdout
    assert "Traceback" not in down.stderr


def test_an_unknown_store_option_is_one_clear_error() -> None:
    done = cli("status", "--store", "redis", "--option", "colour=blue")
    assert done.returncode == 2
    assert "store.options" in done.stderr
    assert "colour" in done.stderr
    assert "Traceback" not in done.stderr


def test_start_reads_the_configuration_and_syncs(
    redis_server: RedisServer, namespace: str, tmp_path: Path
) -> None:
    config = tmp_path / "metricache.toml"
    config.write_text(
        f'[store]\nname = "redis"\noptions = {{ url = "{redis_server.url}" }}\n'
        f'[sync]\nnamespace = "{namespace}"\ninterval = 0.2\n'
    )
    registry = metricache.Registry()
    metricache.Counter("started", "s", registry=registry).inc(2)
    syncer = metricache.start(str(config), registry=registry)
    try:
        assert syncer.running
        assert syncer.interval == 0.2
    finally:
        assert (syncer.stop() or syncer.flush()).ok
    view = metricache.merged_snapshot(syncer.store, namespace=namespace)
    assert view["started"].samples[0].value == 2  # type: ignore[union-attr]
