"""``metricache export`` end to end: real processes, a real redis, real files and exits."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import metricache
import metricache_csv
import metricache_json
import pytest
from metricache.cli.main import main
from metricache.snapshot import HistogramSample, Sample, ViewKind

from tests.export.cli import ROOT, clean_env, metricache_cli
from tests.export.receiver import Receiver
from tests.export.recorder import recording
from tests.support.servers import RedisServer, free_port


def write_config(directory: Path, namespace: str) -> Path:
    path = directory / "metricache.toml"
    path.write_text(f'[sync]\nnamespace = "{namespace}"\n', encoding="utf-8")
    return path


def sync_two_workers(url: str, namespace: str) -> None:
    workers = [
        {"orders": {"eu": 3, "us": 1}, "values": [5.0, 50.0], "busy": 2, "instance": "w-1"},
        {"orders": {"eu": 4, "asia": 2}, "values": [500.0], "busy": 3, "instance": "w-2"},
    ]
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.export.sync_worker",
                json.dumps({**w, "url": url, "namespace": namespace}),
            ],
            cwd=ROOT,
            env=clean_env(),
            stdout=subprocess.PIPE,
        )
        for w in workers
    ]
    for process in processes:
        out, _ = process.communicate(timeout=120)
        assert process.returncode == 0
        assert json.loads(out) == {"ok": True}


def test_export_shows_the_merged_totals_of_two_processes(
    redis_server: RedisServer, namespace: str, tmp_path: Path
) -> None:
    sync_two_workers(redis_server.url, namespace)
    config = write_config(tmp_path, namespace)
    done = metricache_cli(
        "export",
        "--config",
        str(config),
        "--store",
        "redis",
        "--option",
        f"url={redis_server.url}",
        "--format",
        "json",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stderr == b""
    view = metricache_json.parse(done.stdout)
    assert view.view is ViewKind.MERGED
    assert view.strategy == "distributed_atomic"
    orders = view["orders"]
    assert orders.labelnames == ("region",)
    assert orders.by_labels() == {
        ("asia",): Sample(("asia",), 2.0),
        ("eu",): Sample(("eu",), 7.0),
        ("us",): Sample(("us",), 1.0),
    }
    assert view["order_value_euros"].samples == (HistogramSample((), (1, 2, 3), 555.0, 3),)
    assert view["order_value_euros"].buckets == (10.0, 100.0, float("inf"))
    assert view["workers_busy"].samples == (Sample((), 5.0),)


def test_export_writes_csv_through_output_with_a_pattern(
    redis_server: RedisServer, namespace: str, tmp_path: Path
) -> None:
    sync_two_workers(redis_server.url, namespace)
    write_config(tmp_path, namespace)  # found in the working directory
    done = metricache_cli(
        "export",
        "--store",
        "redis",
        "-o",
        f"url={redis_server.url}",
        "-f",
        "csv",
        "--output",
        "exports/metrics-{view}.{ext}",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == b""
    view = metricache_csv.parse((tmp_path / "exports" / "metrics-merged.csv").read_bytes())
    assert view["orders"].sample("eu") == Sample(("eu",), 7.0)


def test_export_delivers_to_several_exporters_each_with_its_options(
    redis_server: RedisServer, namespace: str, tmp_path: Path
) -> None:
    sync_two_workers(redis_server.url, namespace)
    config = write_config(tmp_path, namespace)
    with Receiver() as receiver:
        done = metricache_cli(
            "export",
            "--config",
            str(config),
            "--store",
            "redis",
            "--option",
            f"url={redis_server.url}",
            "--format",
            "openmetrics",
            "--exporter",
            "file",
            "--exporter-option",
            "path=one.txt",
            "--exporter",
            "http",
            "--exporter-option",
            f"url={receiver.url('/status/200')}",
            "--exporter-option",
            "headers=X-One: 1",
            "--exporter-option",
            "headers=X-Two: 2",
            "--exporter",
            "stdout",
            cwd=tmp_path,
        )
    assert done.returncode == 0, done.stderr.decode()
    body = (tmp_path / "one.txt").read_bytes()
    assert body.endswith(b"# EOF\n")
    assert b'orders_total{region="eu"} 7.0' in body
    assert done.stdout == body
    (posted,) = receiver.received
    assert posted.body == body
    assert posted.headers["content-type"].startswith("application/openmetrics-text")
    assert (posted.headers["x-one"], posted.headers["x-two"]) == ("1", "2")


def test_a_failing_exporter_exits_1_after_the_others_delivered(tmp_path: Path) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("not a directory")
    done = metricache_cli(
        "export",
        "--format",
        "json",
        "--output",
        str(blocked / "m.json"),
        "--output",
        str(tmp_path / "ok.json"),
        cwd=tmp_path,
    )
    assert done.returncode == 1
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("metricache: error: exporter file failed: FileExistsError")
    assert metricache_json.parse((tmp_path / "ok.json").read_bytes()).families == ()


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (
            ["--format", "yaml"],
            2,
            # the installed formats, sorted (the example plugins add more)
            "metricache: error: unknown format 'yaml'; installed formats: csv, json, ",
        ),
        (
            ["--exporter", "ftp"],
            2,
            "metricache: error: unknown exporter 'ftp'; installed exporters: ",
        ),
        (
            ["--exporter-option", "path=x", "--exporter", "file"],
            2,
            "metricache: error: --exporter-option 'path=x' must follow the --exporter it "
            "configures",
        ),
        (
            ["--exporter", "file", "--exporter-option", "path"],
            2,
            "metricache: error: --exporter-option expects KEY=VALUE, got 'path'",
        ),
        (
            ["--exporter", "http", "--exporter-option", "url=http://h/", "-O", "token=abc"],
            2,
            "metricache: error: --exporter http.token: unknown key",
        ),
        (
            ["--store", "nosuchstore"],
            2,
            "metricache: error: invalid configuration: store.name: unknown store 'nosuchstore'",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line(
    tmp_path: Path, args: list[str], status: int, message: str
) -> None:
    done = metricache_cli("export", *args, cwd=tmp_path)
    assert done.returncode == status
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(message)
    assert done.stdout == b""


def test_an_unreachable_store_is_one_line_without_a_traceback(tmp_path: Path) -> None:
    port = free_port()
    done = metricache_cli(
        "export",
        "--store",
        "redis",
        "--option",
        f"url=redis://:hunter2@127.0.0.1:{port}/0",
        cwd=tmp_path,
    )
    assert done.returncode == 1
    text = done.stderr.decode()
    assert "Traceback" not in text
    assert "hunter2" not in text
    (line,) = text.splitlines()
    assert line.startswith(
        f"metricache: error: cannot read the store: redis redis://:***@127.0.0.1:{port}/0"
    )


def test_the_help_explains_with_examples(tmp_path: Path) -> None:
    done = metricache_cli("export", "--help", cwd=tmp_path)
    assert done.returncode == 0
    text = done.stdout.decode()
    for expected in (
        "--format NAME",
        "--output PATH",
        "--exporter NAME",
        "--exporter-option KEY=VALUE",
        "--instance ID",
        "--store NAME",
        "examples:",
        "metricache export --format json",
        "bearer_token_env=COLLECTOR_TOKEN",
    ):
        assert expected in text


def test_the_command_calls_the_export_hooks(
    redis_server: RedisServer, namespace: str, tmp_path: Path, clean_plugins: None
) -> None:
    registry = metricache.Registry()
    metricache.Counter("jobs", "Jobs", registry=registry).inc(4)
    store = metricache.open_store("redis", url=redis_server.url)
    assert metricache.Syncer(registry, store, namespace=namespace, interval=60).flush().ok
    config = write_config(tmp_path, namespace)
    with recording() as recorder:
        status = main(
            [
                "export",
                "--config",
                str(config),
                "--store",
                "redis",
                "--option",
                f"url={redis_server.url}",
                "--format",
                "prometheus",
                "--output",
                str(tmp_path / "m.prom"),
            ]
        )
    assert status == 0
    size = (tmp_path / "m.prom").stat().st_size
    assert b"jobs_total 4.0" in (tmp_path / "m.prom").read_bytes()
    assert recorder.calls == [("requested", "file", "prometheus"), ("completed", "file", size)]
