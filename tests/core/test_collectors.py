"""The ``metricache_collectors`` hook runs wherever numbers leave a process, once per registry."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterable, Iterator

import metricache
import pytest
from metricache.collectors import install_collectors
from metricache.config import load_config
from metricache.export.coordinator import ExportCoordinator
from metricache.exporters import open_exporter
from metricache.http.endpoint import make_endpoint
from metricache.plugins import get_plugin_manager, reset_plugin_manager
from metricache.registry import Registry
from metricache.snapshot import Family, MetricType, Sample

pytestmark = pytest.mark.usefixtures("clean_plugins")


def answer() -> list[Family]:
    return [Family("answer", MetricType.GAUGE, "The answer", (), [Sample((), 42.0)])]


class Offering:
    """A plugin offering one collector, counting how often the hook ran."""

    def __init__(self) -> None:
        self.asked: list[Registry] = []

    @metricache.hookimpl
    def metricache_collectors(self, registry: Registry) -> Iterable[object]:
        self.asked.append(registry)
        return [answer]


@pytest.fixture
def offering() -> Iterator[Offering]:
    plugin = Offering()
    get_plugin_manager().register(plugin, name="offering")
    yield plugin
    get_plugin_manager().unregister(name="offering")


def test_install_collectors_registers_each_collector_once_per_registry(offering: Offering) -> None:
    registry = Registry()
    install_collectors(registry)
    install_collectors(registry)
    assert registry.collectors().count(answer) == 1
    assert offering.asked == [registry]
    assert registry.snapshot()["answer"].samples == (Sample((), 42.0),)
    other = Registry()
    install_collectors(other)
    assert offering.asked == [registry, other]


def test_install_collectors_runs_again_once_the_plugins_are_reloaded() -> None:
    registry = Registry()
    first = Offering()
    get_plugin_manager().register(first, name="offering")
    install_collectors(registry)
    reset_plugin_manager()
    second = Offering()
    get_plugin_manager().register(second, name="offering")
    install_collectors(registry)
    assert first.asked == [registry]
    assert second.asked == [registry]


def test_start_installs_the_collectors(offering: Offering) -> None:
    registry = Registry()
    syncer = metricache.start(
        load_config(environ={}, overrides={"store": {"name": "memory"}}), registry
    )
    try:
        assert offering.asked == [registry]
        assert answer in registry.collectors()
    finally:
        syncer.stop()


def test_the_coordinator_installs_the_collectors(offering: Offering) -> None:
    registry = Registry()
    ExportCoordinator(
        metricache.open_store("memory"), [open_exporter("stdout", {})], registry=registry
    )
    assert offering.asked == [registry]


def test_an_endpoint_with_a_syncer_installs_the_collectors(offering: Offering) -> None:
    registry = Registry()
    make_endpoint(syncer=metricache.Syncer(registry, metricache.open_store("memory")))
    assert offering.asked == [registry]


COMMAND = """\
import os, signal, sys, threading
import metricache
from metricache.cli.main import main
from metricache.plugins import get_plugin_manager


class Offering:
    @metricache.hookimpl
    def metricache_collectors(self, registry):
        print("installed into", "REGISTRY" if registry is metricache.REGISTRY else "another",
              flush=True)
        return []


get_plugin_manager().register(Offering(), name="offering")
if sys.argv[1] == "serve":
    threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGTERM)).start()
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize(
    "argv",
    [
        ["serve", "--store", "memory", "--port", "0"],
        ["export", "--store", "memory", "--format", "json"],
    ],
)
def test_serve_and_export_install_the_collectors(argv: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(COMMAND), *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("installed into REGISTRY") == 1
