"""The ``metricache`` command: --version, --help everywhere, plugins, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import metricache
import pytest
from metricache.cli.main import command_modules


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("metricache")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "metricache.cli.main"]
    return subprocess.run(
        [*command, *args],
        cwd=cwd,
        env={k: v for k, v in os.environ.items() if not k.startswith("METRICACHE_")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_version(tmp_path: Path) -> None:
    done = run_cli("--version", cwd=tmp_path)
    assert done.returncode == 0
    assert done.stdout == f"metricache {metricache.__version__}\n"
    assert metricache.__version__ == "0.1.0"


def test_help_lists_every_command(tmp_path: Path) -> None:
    done = run_cli("--help", cwd=tmp_path)
    assert done.returncode == 0
    assert done.stdout.startswith("usage: metricache ")
    assert "--config PATH" in done.stdout
    commands = [m.__name__.rsplit(".", 1)[1].removesuffix("_command") for m in command_modules()]
    assert "plugins" in commands
    for command in commands:
        assert command in done.stdout


@pytest.mark.parametrize(
    "command",
    [m.__name__.rsplit(".", 1)[1].removesuffix("_command") for m in command_modules()],
)
def test_every_command_has_help_with_config(tmp_path: Path, command: str) -> None:
    done = run_cli(command, "--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: metricache {command}")
    assert "--config PATH" in done.stdout


def test_without_a_command_it_fails_with_usage(tmp_path: Path) -> None:
    done = run_cli(cwd=tmp_path)
    assert done.returncode == 2
    assert "usage: metricache" in done.stderr
    assert "error: the following arguments are required: COMMAND" in done.stderr


def test_plugins_lists_name_distribution_version_offers_and_status(tmp_path: Path) -> None:
    done = run_cli("plugins", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines()]
    assert rows[0] == ["name", "distribution", "version", "offers", "status"]
    by_name = {row[0]: row[1:] for row in rows[1:]}
    assert by_name["prometheus"] == [
        "metricache-prometheus",
        metricache.__version__,
        "format:openmetrics,format:prometheus",
        "ok",
    ]
    assert by_name["memory"] == ["metricache-memory", metricache.__version__, "store:memory", "ok"]
    assert by_name["exporters"] == [
        "metricache",
        metricache.__version__,
        "exporter:file,exporter:http,exporter:stdout",
        "ok",
    ]
    assert by_name["events"][2:] == ["handler:event_recorder,handler:handle_event", "ok"]
    as_json = run_cli("plugins", "--json", cwd=tmp_path)
    assert as_json.returncode == 0
    found = json.loads(as_json.stdout)
    names = [p["name"] for p in found]
    assert names == sorted(names)
    assert names == [row[0] for row in rows[1:]]
    prometheus = next(p for p in found if p["name"] == "prometheus")
    assert prometheus["status"] == "ok"
    assert prometheus["offers"] == {"formats": ["openmetrics", "prometheus"]}
    assert prometheus["hooks"] == ["metricache_formats"]
    checked = run_cli("plugins", "--check", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout
