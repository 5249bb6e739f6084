"""The core works with whatever one store and one format are installed.

``pip install metricache`` brings the memory store and the Prometheus format (the
core depends on ``metricache-memory`` and ``metricache-prometheus``, which stay
distributions of their own). Beyond that, any store and any format will do with
nothing configured but the store's name: ``METRICACHE_PLUGINS`` stands in for an
environment where only ``metricache-redis`` and ``metricache-json`` are installed
(plus the core's own exporters). A missing plugin is an error naming the
distribution to install.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from tests.core.plugin_packages import cli_env, record, run_cli
from tests.export.cli import ROOT
from tests.http.serving import fetch, serve
from tests.support.servers import RedisServer

ONLY_REDIS_AND_JSON = "redis,json,exporters"


def test_the_core_depends_on_the_memory_store_and_the_prometheus_format() -> None:
    requires = metadata.requires("metricache") or []
    names = {r.split(">")[0].split("<")[0].split(";")[0].strip() for r in requires}
    assert {"metricache-memory", "metricache-prometheus"} <= names


def environment(redis: RedisServer, namespace: str, **extra: str) -> dict[str, str]:
    return {
        "METRICACHE_PLUGINS": ONLY_REDIS_AND_JSON,
        "METRICACHE_STORE": "redis",
        "METRICACHE_STORE_URL": redis.url,
        "METRICACHE_SYNC_NAMESPACE": namespace,
        "PYTHONPATH": str(ROOT),
        **extra,
    }


def test_start_serve_and_export_work_with_any_store_and_format(
    redis_server: RedisServer, namespace: str, tmp_path: Path
) -> None:
    env = environment(redis_server, namespace)
    _, answer = record(tmp_path, [""], **env)
    assert answer["synced"] is True
    rendered = answer["rendered"]
    assert isinstance(rendered, dict)
    document = json.loads(rendered[""])  # the only installed format is the default
    assert document["schema"] == "metricache/v1"
    jobs = next(f for f in document["families"] if f["name"] == "jobs")
    assert jobs["samples"] == [{"labels": {"queue": "mail"}, "value": 3.0}]

    exported = run_cli("export", cwd=tmp_path, **env)
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout)["schema"] == "metricache/v1"

    with serve(cwd=tmp_path, env=env) as served:
        plain = fetch(served.url, headers={"Accept": "*/*"})
        bare = fetch(served.url)
    for reply in (plain, bare):
        assert reply.status == 200
        assert reply.headers["content-type"].startswith("application/json")
        assert json.loads(reply.body)["schema"] == "metricache/v1"


@pytest.mark.parametrize(
    ("args", "store", "message"),
    [
        (
            ["export"],
            "memcached",
            "metricache: error: invalid configuration: store.name: unknown store 'memcached'; "
            "installed stores: redis; install the distribution metricache-memcached "
            "(pip install metricache-memcached)",
        ),
        (
            ["export", "--format", "openmetrics"],
            "redis",
            "metricache: error: unknown format 'openmetrics'; installed formats: json; install "
            "the distribution metricache-prometheus (pip install metricache-prometheus)",
        ),
        (
            ["export", "--exporter", "pushgateway"],
            "redis",
            "metricache: error: unknown exporter 'pushgateway'; installed exporters: file, http, "
            "stdout; is the plugin that offers the exporter "
            "'pushgateway' installed?",
        ),
    ],
)
def test_a_missing_plugin_is_an_error_naming_the_distribution_to_install(
    redis_server: RedisServer,
    namespace: str,
    tmp_path: Path,
    args: list[str],
    store: str,
    message: str,
) -> None:
    done = run_cli(
        *args, cwd=tmp_path, **environment(redis_server, namespace, METRICACHE_STORE=store)
    )
    assert done.returncode == 2
    assert done.stderr == message + "\n"


def test_a_syncer_without_the_memory_store_names_its_distribution(tmp_path: Path) -> None:
    code = (
        "import metricache\n"
        "try:\n"
        "    metricache.Syncer(metricache.Registry())\n"
        "except metricache.ConfigError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=cli_env(METRICACHE_PLUGINS="json", PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout == (
        "store.name: unknown store 'memory'; installed stores: none; install the "
        "distribution metricache-memory (pip install metricache-memory)\n"
    )
