"""Installed, the plugin makes ``metricache.start()`` sync prometheus_client.REGISTRY."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import metricache
from metricache.plugins import plugin_infos

PROGRAM = """\
import prometheus_client
import metricache
from metricache.collectors import install_collectors
from metricache.config import load_config

jobs = prometheus_client.Counter("jobs", "Jobs", ["queue"])
jobs.labels("mail").inc(3)
syncer = metricache.start(load_config(environ={}, overrides={"store": {"name": "memory"}}))
assert syncer.flush().ok
family = syncer.snapshot().get("jobs")
print("bridged" if family is not None and family.samples[0].value == 3.0 else "not bridged")
other = metricache.Registry()
install_collectors(other)
print("other registry:", len(other.collectors()), "collectors")
syncer.stop()
"""


def run_program(**env: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(PROGRAM)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("METRICACHE_")}, **env},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_the_plugin_is_listed_as_a_collector() -> None:
    info = next(i for i in plugin_infos() if i.distribution == "metricache-prometheus-client")
    assert info.kinds == ("collector",)


def test_start_bridges_the_default_prometheus_client_registry_alone() -> None:
    assert run_program() == ["bridged", "other registry: 0 collectors"]


def test_the_plugin_left_out_of_metricache_plugins_bridges_nothing() -> None:
    assert run_program(METRICACHE_PLUGINS="memory")[0] == "not bridged"


def test_the_hook_offers_nothing_when_the_default_pair_is_bridged_already() -> None:
    import metricache_prometheus_client

    made = metricache_prometheus_client.bridge()  # the documented call
    try:
        assert made in metricache.REGISTRY.collectors()
        assert list(metricache_prometheus_client.metricache_collectors(metricache.REGISTRY)) == []
    finally:
        metricache_prometheus_client.unbridge(made)
