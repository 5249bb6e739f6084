"""What the task-queue tests share: a project directory, processes, and the scraped view."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.events.cli import ROOT, clean_env
from tests.http.serving import fetch, serve

__all__ = ["Scraped", "config_toml", "environment", "process", "scrape"]

Scraped = dict[tuple[str, tuple[tuple[str, str], ...]], float]
"""Every sample of a scrape: ``(sample name, sorted labels) -> value``."""


def config_toml(store_url: str, namespace: str, interval: float = 0.5) -> str:
    """The configuration both queue tests start from: the redis store, syncs every
    ``interval`` seconds, the conventional metrics labelled by queue, task and status.
    Each test adds its ``[[events]]``."""
    return f"""
[store]
name = "redis"
options = {{ url = "{store_url}" }}

[sync]
interval = {interval}
namespace = "{namespace}"

[event_routing]
labels = ["queue", "task", "status"]
"""


def environment(project: Path) -> dict[str, str]:
    """The environment of every process of a test: the project and the repository importable."""
    env = clean_env()
    env["PYTHONPATH"] = os.pathsep.join([str(project), str(ROOT)])
    env["METRICACHE_CONFIG"] = str(project / "metricache.toml")
    return env


@contextmanager
def process(args: list[str], project: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``args`` (a Python module's command line) in ``project``; kill it if still running."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=project,
            env=environment(project),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield proc
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


def scrape(project: Path) -> Scraped:
    """Run ``metricache serve`` on the project's configuration and scrape it once."""
    env = {"METRICACHE_CONFIG": str(project / "metricache.toml")}
    with serve(cwd=project, env=env) as served:
        reply = fetch(served.url, headers={"Accept": "text/plain"})
    assert reply.status == 200, reply.body
    found: Scraped = {}
    for family in text_string_to_metric_families(reply.body.decode("utf-8")):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found
