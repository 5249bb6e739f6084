"""A faulty plugin never takes its host down: it is left out with one warning naming it.

Each kind of fault is a real package, built and installed with ``uv pip install
--target`` into a directory of its own that only these tests put on the path: a
misspelled hook (marked and unmarked), a module that raises on import, a
registration hook that raises, a hook pluggy's validation refuses, and two
distributions that offer one format name. With each installed, ``metricache.start()``
syncs, the built-in formats render, ``metricache serve`` answers a plain scrape,
``metricache export`` exports, the warning names the distribution, and
``metricache plugins --check`` exits 1.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import textwrap
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import attrs
import pytest
from metricache import FormatNotFound
from metricache.formats import get_format
from metricache.plugins import broken_plugins, format_objects, plugin_infos, reset_plugin_manager

from tests.core.plugin_packages import ROOT, install_into, make_package, record, run_cli
from tests.http.serving import fetch, serve

pytestmark = pytest.mark.usefixtures("clean_plugins")

TOKEN = secrets.token_hex(3)

TYPO = """\
from metricache import hookimpl
from metricache.formats import Format


class Typo(Format):
    name = "typo{token}"


@hookimpl
def metricache_formats():
    return [Typo()]


@hookimpl
def metricache_fromats():
    return []
"""

UNMARKED_TYPO = """\
def metricache_store_clases():
    return []
"""

IMPORT_FAILS = """\
raise RuntimeError("this plugin refuses to import")
"""

HOOK_RAISES = """\
from metricache import hookimpl


@hookimpl
def metricache_formats():
    raise ValueError("no formats today")
"""

INVALID = """\
from metricache import hookimpl


@hookimpl
def metricache_formats(nonsense):
    return []
"""

CLASHING = """\
from metricache import hookimpl
from metricache.formats import Format


class Influx(Format):
    name = "influx{token}"
    content_type = "text/plain; charset=utf-8"

    def render(self, snapshot):
        return b"{side}"


class Own(Format):
    name = "{side}only{token}"

    def render(self, snapshot):
        return b"{side}"


@hookimpl
def metricache_formats():
    return [Influx(), Own()]
"""


@attrs.frozen
class Case:
    """One kind of fault: its packages (distribution -> entry point -> source) and verdict.

    ``broken`` maps each plugin that must be reported broken to a piece of its reason.
    """

    name: str
    packages: dict[str, dict[str, str]]
    broken: dict[str, str]

    def distribution_of(self, plugin: str) -> str:
        return next(d for d, plugins in self.packages.items() if plugin in plugins)


def _source(template: str, **values: str) -> str:
    return template.replace("{token}", TOKEN).replace("{side}", values.get("side", ""))


CASES = [
    Case(
        "misspelled",
        {
            f"metricache-typo-{TOKEN}": {
                f"typo_{TOKEN}": _source(TYPO),
                f"unmarked_{TOKEN}": UNMARKED_TYPO,
            }
        },
        {
            f"typo_{TOKEN}": "implements 'metricache_fromats', which is not a metricache hook "
            "(misspelled?). Known hooks: metricache_cache_synced, metricache_collectors, ",
            f"unmarked_{TOKEN}": "implements 'metricache_store_clases', which is not a "
            "metricache hook (misspelled?)",
        },
    ),
    Case(
        "import",
        {f"metricache-importfails-{TOKEN}": {f"importfails_{TOKEN}": IMPORT_FAILS}},
        {
            f"importfails_{TOKEN}": f"failed to import 'importfails_{TOKEN}': RuntimeError: "
            "this plugin refuses to import"
        },
    ),
    Case(
        "hook-raises",
        {f"metricache-raises-{TOKEN}": {f"raises_{TOKEN}": HOOK_RAISES}},
        {f"raises_{TOKEN}": "metricache_formats raised ValueError: no formats today"},
    ),
    Case(
        "invalid",
        {f"metricache-invalid-{TOKEN}": {f"invalid_{TOKEN}": INVALID}},
        {
            f"invalid_{TOKEN}": f"invalid: Plugin 'invalid_{TOKEN}' for hook 'metricache_formats'; "
            "hookimpl definition: metricache_formats(nonsense); Argument(s) {'nonsense'} are "
            "declared in the hookimpl but can not be found in the hookspec"
        },
    ),
    Case(
        "clash",
        {
            f"metricache-influx-a-{TOKEN}": {f"influx_a_{TOKEN}": _source(CLASHING, side="a")},
            f"metricache-influx-b-{TOKEN}": {f"influx_b_{TOKEN}": _source(CLASHING, side="b")},
        },
        {
            f"influx_a_{TOKEN}": f"'influx_b_{TOKEN}' (distribution metricache-influx-b-{TOKEN}) "
            f"offers the format 'influx{TOKEN}' too (the name is refused)",
            f"influx_b_{TOKEN}": f"'influx_a_{TOKEN}' (distribution metricache-influx-a-{TOKEN}) "
            f"offers the format 'influx{TOKEN}' too (the name is refused)",
        },
    ),
]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Install each case's packages into a directory of its own; return them by case."""
    base = tmp_path_factory.mktemp("broken")

    def install(case: Case) -> tuple[str, Path]:
        packages = [
            make_package(base / case.name / distribution, distribution, plugins)
            for distribution, plugins in case.packages.items()
        ]
        return case.name, install_into(base / case.name / "site", packages)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(install, CASES))


@pytest.fixture(params=CASES, ids=[case.name for case in CASES])
def case(
    request: pytest.FixtureRequest, installed: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Case]:
    """One case, its packages on this process's path (and in PYTHONPATH for subprocesses)."""
    chosen: Case = request.param
    site = installed[chosen.name]
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), str(ROOT)]))
    reset_plugin_manager()
    yield chosen
    reset_plugin_manager()


def test_the_broken_plugin_is_left_out_with_one_warning_naming_its_distribution(
    case: Case, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="metricache.plugins"):
        broken = {info.name: info for info in broken_plugins()}
        formats = format_objects()
        plugin_infos()  # asking again warns no more
    assert sorted(broken) == sorted(case.broken)
    for plugin, reason in case.broken.items():
        distribution = case.distribution_of(plugin)
        assert broken[plugin].distribution == distribution
        assert broken[plugin].status.startswith("broken: ")
        assert reason in broken[plugin].status
        warnings = [r.getMessage() for r in caplog.records if plugin in r.getMessage()]
        assert len(warnings) == 1 or case.name == "clash", warnings
        assert distribution in warnings[0]
    # Every other plugin works: the built-in formats are all there.
    assert {"prometheus", "openmetrics", "json", "csv"} <= set(formats)
    assert {info.name for info in plugin_infos() if info.ok} >= {"memory", "prometheus"}


def test_a_clashing_name_is_refused_naming_both_distributions_and_nothing_else(
    installed: dict[str, Path], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.syspath_prepend(str(installed["clash"]))
    reset_plugin_manager()
    with caplog.at_level(logging.WARNING, logger="metricache.plugins"):
        formats = format_objects()
        with pytest.raises(FormatNotFound) as refused:
            get_format(f"influx{TOKEN}")
    assert f"influx{TOKEN}" not in formats
    assert re.fullmatch(
        f"two plugins offer a format named 'influx{TOKEN}': "
        f"'influx_(a|b)_{TOKEN}' \\(distribution metricache-influx-(a|b)-{TOKEN}\\) and "
        f"'influx_(a|b)_{TOKEN}' \\(distribution metricache-influx-(a|b)-{TOKEN}\\); "
        f"the name 'influx{TOKEN}' is refused \\(uninstall one of them, or leave one out with "
        "METRICACHE_PLUGINS\\)",
        str(refused.value),
    )
    assert f"metricache-influx-a-{TOKEN}" in str(refused.value)
    assert f"metricache-influx-b-{TOKEN}" in str(refused.value)
    clash_warnings = [
        r.getMessage() for r in caplog.records if "two plugins offer" in r.getMessage()
    ]
    assert clash_warnings == [str(refused.value)]
    # What each of them offers besides the clashing name still works.
    assert get_format(f"aonly{TOKEN}").render(None) == b"a"  # type: ignore[arg-type]
    assert get_format(f"bonly{TOKEN}").render(None) == b"b"  # type: ignore[arg-type]


def test_a_misspelled_plugin_offers_nothing(
    installed: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(installed["misspelled"]))
    reset_plugin_manager()
    # Its well-spelled hook would offer this format: a plugin left out offers nothing.
    assert f"typo{TOKEN}" not in format_objects()
    info = {i.name: i for i in plugin_infos()}[f"typo_{TOKEN}"]
    assert info.offers == {}


def test_start_render_serve_and_export_keep_working(case: Case, tmp_path: Path) -> None:
    (tmp_path / "metricache.toml").write_text(
        textwrap.dedent(
            f"""\
            [store]
            name = "file"
            options = {{ path = "{tmp_path / "store"}" }}
            """
        ),
        encoding="utf-8",
    )
    pythonpath = os.environ["PYTHONPATH"]

    recorded, answer = record(
        tmp_path, ["prometheus", "openmetrics", "json", "csv"], PYTHONPATH=pythonpath
    )
    assert answer["synced"] is True
    rendered = answer["rendered"]
    assert isinstance(rendered, dict)
    assert 'jobs_total{queue="mail"} 3.0' in rendered["prometheus"]
    assert 'jobs_total{queue="mail"} 3.0' in rendered["openmetrics"]
    assert '"name":"jobs"' in rendered["json"]
    assert "jobs_total" in rendered["csv"]
    assert_warned_once(case, recorded.stderr)

    exported = run_cli("export", cwd=tmp_path, PYTHONPATH=pythonpath)
    assert exported.returncode == 0, exported.stderr
    assert 'jobs_total{queue="mail"} 3.0' in exported.stdout
    assert_warned_once(case, exported.stderr)

    with serve(cwd=tmp_path, env={"PYTHONPATH": pythonpath}) as served:
        reply = fetch(served.url, headers={"Accept": "*/*"})
    assert reply.status == 200
    assert reply.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert b'jobs_total{queue="mail"} 3.0' in reply.body
    assert_warned_once(case, served.stderr.decode())

    listed = run_cli("plugins", cwd=tmp_path, PYTHONPATH=pythonpath)
    assert listed.returncode == 0, listed.stderr
    statuses = {line.split()[0]: line.split(None, 4)[4] for line in listed.stdout.splitlines()[1:]}
    for plugin, reason in case.broken.items():
        assert statuses[plugin].startswith("broken: ")
        assert reason.split(" (misspelled?)")[0] in statuses[plugin]
    assert statuses["memory"] == "ok"
    checked = run_cli("plugins", "--check", cwd=tmp_path, PYTHONPATH=pythonpath)
    assert checked.returncode == 1
    assert checked.stdout == listed.stdout


def assert_warned_once(case: Case, stderr: str) -> None:
    """Each broken plugin is named in exactly one warning line, with its distribution."""
    for plugin in case.broken:
        lines = [line for line in stderr.splitlines() if plugin in line]
        if case.name == "clash":
            # One warning for the clash names both plugins.
            assert len([line for line in stderr.splitlines() if "two plugins offer" in line]) == 1
        else:
            assert len(lines) == 1, stderr
        assert case.distribution_of(plugin) in lines[0]
