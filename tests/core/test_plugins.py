"""Plugins are packages with an entry point in the group ``metricache``; broken ones fail loudly.

The well-behaved plugin is installed into the test environment (and uninstalled
afterwards). The broken ones (a misspelled hook, names that clash with the built-in
plugins) are installed with ``uv pip install --target`` into a directory of their own
that only this test puts on the path: installed in the shared environment they would
break every other run of metricache until removed.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import metricache
import pytest
from metricache import Counter, PluginError, Registry
from metricache.plugins import (
    format_objects,
    get_plugin_manager,
    plugin_infos,
    reset_plugin_manager,
    store_classes,
)

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

TYPO_PLUGIN = """\
from metricache import hookimpl


@hookimpl
def metricache_fromats():
    return []
"""

UNMARKED_TYPO_PLUGIN = """\
def metricache_store_clases():
    return []
"""

CLASHING_PLUGIN = """\
from metricache import hookimpl
from metricache.formats import Format
from metricache_memory import MemoryStore


class Impostor(Format):
    name = "prometheus"
    content_type = "text/plain"


class ImpostorStore(MemoryStore):
    pass


@hookimpl
def metricache_formats():
    return [Impostor()]


@hookimpl
def metricache_store_classes():
    return [ImpostorStore]
"""


def uv() -> str:
    found = shutil.which("uv")
    assert found is not None, "uv must be on PATH to install the test plugins"
    return found


def make_package(root: Path, distribution: str, plugins: dict[str, str]) -> Path:
    """Write a distribution whose entry points ``name = "module"`` hold the given sources."""
    root.mkdir(parents=True)
    for module, source in plugins.items():
        (root / "src" / module).mkdir(parents=True)
        (root / "src" / module / "__init__.py").write_text(source, encoding="utf-8")
    entry_points = "\n".join(f'{module} = "{module}"' for module in plugins)
    packages = ", ".join(f'"src/{module}"' for module in plugins)
    (root / "pyproject.toml").write_text(
        textwrap.dedent(
            """\
            [project]
            name = "{distribution}"
            version = "1.2.3"
            dependencies = []

            [project.entry-points.metricache]
            {entry_points}

            [tool.hatch.build.targets.wheel]
            packages = [{packages}]

            [build-system]
            requires = ["hatchling"]
            build-backend = "hatchling.build"
            """
        ).format(distribution=distribution, entry_points=entry_points, packages=packages),
        encoding="utf-8",
    )
    return root


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("METRICACHE_")}
    env.update(extra)
    return env


def metricache_command() -> list[str]:
    script = Path(sys.executable).with_name("metricache")
    return [str(script)] if script.exists() else [sys.executable, "-m", "metricache.cli.main"]


def run_cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*metricache_command(), *args],
        cwd=cwd,
        env=cli_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def listed(output: str) -> dict[str, list[str]]:
    """Parse the ``metricache plugins`` table into name -> the other columns."""
    rows = [line.split() for line in output.splitlines()]
    assert rows[0] == ["name", "distribution", "version", "kinds", "hooks"]
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
        assert rows[name] == [distribution, "1.2.3", "format,lifecycle", (
            "metricache_cache_synced,metricache_formats"
        )]  # fmt: skip
        assert rows["prometheus"][:3] == ["metricache-prometheus", metricache.__version__, "format"]
        assert rows["memory"][2] == "store"

        as_json = run_cli("plugins", "--json", cwd=tmp_path)
        assert as_json.returncode == 0, as_json.stderr
        entry = {p["name"]: p for p in json.loads(as_json.stdout)}[name]
        assert entry == {
            "name": name,
            "distribution": distribution,
            "version": "1.2.3",
            "kinds": ["format", "lifecycle"],
            "hooks": ["metricache_cache_synced", "metricache_formats"],
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


@pytest.fixture(scope="module")
def broken_plugins(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Install the broken plugins into a directory of their own; yield it and a token."""
    token = secrets.token_hex(4)
    base = tmp_path_factory.mktemp("broken")
    typo = make_package(
        base / "typo",
        f"metricache-typo-{token}",
        {f"typo_{token}": TYPO_PLUGIN, f"unmarked_{token}": UNMARKED_TYPO_PLUGIN},
    )
    clash = make_package(
        base / "clash", f"metricache-clash-{token}", {f"clash_{token}": CLASHING_PLUGIN}
    )
    target = base / "site"
    subprocess.run(
        [
            *(uv(), "pip", "install", "--quiet", "--python", sys.executable),
            *("--target", str(target), str(typo), str(clash)),
        ],
        check=True,
        timeout=300,
    )
    return target, token


def test_a_misspelled_hook_fails_naming_the_plugin_and_the_hook(
    broken_plugins: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    target, token = broken_plugins
    monkeypatch.syspath_prepend(str(target))
    monkeypatch.setenv("METRICACHE_PLUGINS", f"prometheus,typo_{token}")
    with pytest.raises(PluginError) as info:
        get_plugin_manager()
    assert str(info.value).startswith(
        f"plugin 'typo_{token}' implements 'metricache_fromats', which is not a metricache "
        "hook (misspelled?). Known hooks: metricache_cache_synced, metricache_collectors, "
    )
    assert "metricache_formats" in str(info.value)

    # Without the @hookimpl marker a metricache_* function is still taken as a hook.
    monkeypatch.setenv("METRICACHE_PLUGINS", f"unmarked_{token}")
    reset_plugin_manager()
    with pytest.raises(
        PluginError,
        match=re.escape(f"plugin 'unmarked_{token}' implements 'metricache_store_clases'"),
    ):
        get_plugin_manager()

    # Restricting the plugins to well-behaved ones loads fine.
    monkeypatch.setenv("METRICACHE_PLUGINS", "prometheus")
    reset_plugin_manager()
    assert [info.name for info in plugin_infos()] == ["prometheus"]


def test_the_cli_reports_a_broken_plugin_in_one_line(
    broken_plugins: tuple[Path, str], tmp_path: Path
) -> None:
    target, token = broken_plugins
    done = run_cli(
        "plugins",
        cwd=tmp_path,
        PYTHONPATH=str(target),
        METRICACHE_PLUGINS=f"memory,typo_{token}",
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith(
        f"metricache: error: plugin 'typo_{token}' implements 'metricache_fromats', "
        "which is not a metricache hook (misspelled?)."
    )
    assert done.stderr.count("\n") == 1


def test_two_plugins_offering_one_name_are_rejected_naming_both(
    broken_plugins: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    target, token = broken_plugins
    clash = f"clash_{token}"
    monkeypatch.syspath_prepend(str(target))
    monkeypatch.setenv("METRICACHE_PLUGINS", f"prometheus,memory,{clash}")
    with pytest.raises(PluginError) as formats:
        format_objects()
    assert re.fullmatch(
        f"two plugins offer a format named 'prometheus': ('prometheus' and '{clash}'|"
        f"'{clash}' and 'prometheus')",
        str(formats.value),
    )
    with pytest.raises(PluginError) as stores:
        store_classes()
    assert re.fullmatch(
        f"two plugins offer a store named 'memory': ('memory' and '{clash}'|"
        f"'{clash}' and 'memory')",
        str(stores.value),
    )
    with pytest.raises(PluginError, match="two plugins offer a format named 'prometheus'"):
        metricache.render(Registry().snapshot(), "prometheus")


def test_the_plugin_manager_loads_once_lazily() -> None:
    import metricache.plugins as plugins_module

    assert plugins_module._manager is None  # nothing loaded until something asks
    first = get_plugin_manager()
    assert get_plugin_manager() is first
    assert {"prometheus", "memory"} <= {info.name for info in plugin_infos()}
    assert get_plugin_manager() is first
