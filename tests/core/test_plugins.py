"""Plugins are packages with an entry point in the group ``metricache``.

The well-behaved plugin is installed into the test environment (and uninstalled
afterwards). Broken plugins are in ``test_plugin_isolation.py``.
"""

from __future__ import annotations

import importlib
import json
import secrets
import subprocess
import sys
from pathlib import Path

import metricache
import pytest
from metricache import Counter, Registry
from metricache.plugins import (
    format_objects,
    get_plugin_manager,
    plugin_infos,
    reset_plugin_manager,
    store_classes,
)

from tests.core.plugin_packages import make_package, run_cli, uv

pytestmark = pytest.mark.usefixtures("clean_plugins")

GOOD_PLUGIN = '''\
"""A format that writes one line per sample: name, labels, value."""

from metricache import hookimpl
from metricache.formats import Format


class LinesFormat(Format):
    name = "FORMAT"
    content_type = "text/x-lines; charset=utf-8"
    media_types = ("text/x-lines",)

    def render(self, snapshot):
        lines = []
        for family in snapshot:
            for sample in family.samples:
                lines.append(f"{family.name} {list(sample.labels)} {sample.value!r}")
        return ("\\n".join(lines) + "\\n").encode("utf-8")


@hookimpl
def metricache_formats():
    return [LinesFormat()]


@hookimpl
def metricache_cache_synced(report):
    pass
'''


def listed(output: str) -> dict[str, list[str]]:
    """Parse the ``metricache plugins`` table into name -> the other columns."""
    rows = [line.split() for line in output.splitlines()]
    assert rows[0] == ["name", "distribution", "version", "offers", "status"]
    return {row[0]: row[1:] for row in rows[1:]}


def test_an_installed_plugin_package_is_found_and_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = secrets.token_hex(4)
    name, distribution, fmt = f"lines_{token}", f"metricache-lines-{token}", f"lines{token}"
    package = make_package(
        tmp_path / "package", distribution, {name: GOOD_PLUGIN.replace("FORMAT", fmt)}
    )
    subprocess.run(
        [uv(), "pip", "install", "--quiet", "--python", sys.executable, str(package)],
        check=True,
        timeout=300,
    )
    try:
        importlib.invalidate_caches()
        reset_plugin_manager()

        table = run_cli("plugins", cwd=tmp_path)
        assert table.returncode == 0, table.stderr
        rows = listed(table.stdout)
        assert rows[name] == [distribution, "1.2.3", f"format:{fmt},handler:cache_synced", "ok"]
        assert rows["prometheus"][:2] == ["metricache-prometheus", metricache.__version__]
        assert rows["memory"][2:] == ["store:memory", "ok"]

        as_json = run_cli("plugins", "--json", cwd=tmp_path)
        assert as_json.returncode == 0, as_json.stderr
        entry = {p["name"]: p for p in json.loads(as_json.stdout)}[name]
        assert entry == {
            "name": name,
            "distribution": distribution,
            "version": "1.2.3",
            "status": "ok",
            "kinds": ["format", "lifecycle"],
            "hooks": ["metricache_cache_synced", "metricache_formats"],
            "offers": {"formats": [fmt], "handlers": ["cache_synced"]},
        }

        # The plugin manager of this process sees it too, and the format works.
        infos = {info.name: info for info in plugin_infos()}
        assert infos[name].distribution == distribution
        assert get_plugin_manager().get_plugin(name) is not None
        assert format_objects()[fmt].content_type == "text/x-lines; charset=utf-8"
        registry = Registry()
        Counter("hits", "Hits", ["path"], registry=registry).labels("/").inc(2)
        assert metricache.render(registry.snapshot(), fmt) == b"hits ['/'] 2.0\n"
        negotiated = metricache.negotiate("text/x-lines")
        assert negotiated is not None
        assert negotiated.name == fmt

        # METRICACHE_PLUGINS restricts loading, by entry-point or distribution name.
        only = run_cli("plugins", cwd=tmp_path, METRICACHE_PLUGINS="prometheus")
        assert only.returncode == 0, only.stderr
        assert list(listed(only.stdout)) == ["prometheus"]
        by_distribution = run_cli(
            "plugins", cwd=tmp_path, METRICACHE_PLUGINS=f" {distribution} , memory"
        )
        assert list(listed(by_distribution.stdout)) == [name, "memory"]
        nothing = run_cli("plugins", cwd=tmp_path, METRICACHE_PLUGINS="")
        assert nothing.stdout == "no plugins loaded\n"

        monkeypatch.setenv("METRICACHE_PLUGINS", f"{name},memory")
        reset_plugin_manager()
        assert [info.name for info in plugin_infos()] == [name, "memory"]
        assert list(format_objects()) == [fmt]
        assert list(store_classes()) == ["memory"]
    finally:
        subprocess.run(
            [uv(), "pip", "uninstall", "--quiet", "--python", sys.executable, distribution],
            check=True,
            timeout=120,
        )
    gone = run_cli("plugins", cwd=tmp_path)
    assert gone.returncode == 0, gone.stderr
    assert name not in listed(gone.stdout)


def test_the_plugin_manager_loads_once_lazily() -> None:
    import metricache.plugins as plugins_module

    assert plugins_module._manager is None  # nothing loaded until something asks
    first = get_plugin_manager()
    assert get_plugin_manager() is first
    assert {"prometheus", "memory"} <= {info.name for info in plugin_infos()}
    assert get_plugin_manager() is first
