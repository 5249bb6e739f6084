"""Installed, the plugin makes ``metricache.start()`` sync prometheus_client.REGISTRY.

The hook offers a deferred bridge: loading the plugin imports nothing of
prometheus_client, and the bridge is made once the program uses prometheus_client,
even when that happens after ``metricache.start()`` and before a fork.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import metricache
import prometheus_client
import pytest
from metricache.plugins import plugin_infos
from metricache_prometheus_client import DeferredBridge, bridge, unbridge

from tests.support.servers import RedisServer

PROGRAM = """\
import sys
import metricache
from metricache.collectors import install_collectors
from metricache.config import load_config

syncer = metricache.start(load_config(environ={}, overrides={"store": {"name": "memory"}}))
print("prometheus_client imported by start:", "prometheus_client" in sys.modules)
import prometheus_client  # after start(), as a library imported late would

jobs = prometheus_client.Counter("jobs", "Jobs", ["queue"])
jobs.labels("mail").inc(3)
assert syncer.flush().ok
family = syncer.snapshot().get("jobs")
print("bridged" if family is not None and family.samples[0].value == 3.0 else "not bridged")
other = metricache.Registry()
install_collectors(other)
print("other registry:", len(other.collectors()), "collectors")
syncer.stop()
"""

FORK_PROGRAM = """\
import os
import metricache

syncer = metricache.start()  # METRICACHE_STORE=redis ...
import prometheus_client  # imported and used after start(), before any sync

jobs = prometheus_client.Counter("jobs", "Jobs")
jobs.inc(5)
pid = os.fork()  # no sync yet: the bridge does not exist at the fork
if pid == 0:
    jobs.inc(2)
    syncer.stop()
    os._exit(0)
os.waitpid(pid, 0)
syncer.flush()
view = metricache.merged_snapshot(syncer.store, namespace=os.environ["METRICACHE_SYNC_NAMESPACE"])
print(view["jobs"].samples[0].value)
syncer.stop()
"""


def run(program: str, **env: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(program)],
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


def test_start_bridges_the_default_registry_once_prometheus_client_is_used() -> None:
    assert run(PROGRAM) == [
        "prometheus_client imported by start: False",
        "bridged",
        "other registry: 0 collectors",
    ]


def test_the_plugin_left_out_of_metricache_plugins_bridges_nothing() -> None:
    assert run(PROGRAM, METRICACHE_PLUGINS="memory")[1] == "not bridged"


def test_values_recorded_before_a_fork_that_precedes_the_bridge_count_once(
    redis_server: RedisServer, namespace: str
) -> None:
    output = run(
        FORK_PROGRAM,
        METRICACHE_STORE="redis",
        METRICACHE_STORE_URL=redis_server.url,
        METRICACHE_SYNC_NAMESPACE=namespace,
    )
    assert output == ["7.0"]


@pytest.fixture
def jobs() -> Iterator[prometheus_client.Counter]:
    counter = prometheus_client.Counter("deferred_test_jobs", "Jobs")  # the default REGISTRY
    counter.inc(4)
    yield counter
    prometheus_client.REGISTRY.unregister(counter)


def test_a_deferred_bridge_reports_nothing_when_the_pair_was_bridged_by_hand(
    jobs: prometheus_client.Counter,
) -> None:
    into = metricache.Registry()
    by_hand = bridge(prometheus_client.REGISTRY, into)
    deferred = DeferredBridge(into)
    into.register_collector(deferred)
    try:
        assert deferred() == []
        found = [f for f in into.snapshot().families if f.name == "deferred_test_jobs"]
        assert len(found) == 1  # read once, by the bridge made by hand
    finally:
        unbridge(by_hand)


def test_a_bridge_asked_for_by_hand_after_the_deferred_one_is_not_registered_twice(
    jobs: prometheus_client.Counter,
) -> None:
    into = metricache.Registry()
    deferred = DeferredBridge(into)
    into.register_collector(deferred)
    assert [f.name for f in deferred() if f.name == "deferred_test_jobs"] == ["deferred_test_jobs"]
    made = bridge(prometheus_client.REGISTRY, into)
    try:
        assert made is deferred.resolve()
        assert into.collectors() == [deferred]
    finally:
        unbridge(made)
    assert deferred() == []  # unbridged: nothing more


def test_every_public_name_of_the_package_is_what_it_documents() -> None:
    import importlib

    import metricache_prometheus_client as package

    for module in ("bridging", "merged", "modes", "runtime", "deferred", "fork", "reading"):
        importlib.import_module(f"metricache_prometheus_client.{module}")
    for name in package.__all__:
        value = getattr(package, name)
        assert not isinstance(value, type(package)), f"{name} is a module"
        assert value.__doc__ if callable(value) else True, f"{name} has no docstring"
    assert package.bridge.__module__ == "metricache_prometheus_client.bridging"
