"""Configuration: a TOML file found or given, METRICACHE_* on top, every problem by its path."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import attrs
import pytest
from metricache import Config, ConfigError, load_config
from metricache.config import OptionValue

ROOT = Path(__file__).resolve().parents[2]

BAD_TOML = """\
instance_id = 5
colour = "red"

[sync]
interval = "fast"
retention = -1
bogus = 1

[store]
name = "redis"
options = { url = "redis://localhost", nested = { a = 1 } }

[serve]
port = 70000

[export]
format = ["prometheus"]
"""

BAD_PROBLEMS = [
    "instance_id: expected a string, got 5",
    "store.options.nested: expected a string, number or boolean, got a table",
    "sync.interval: expected a number, got 'fast'",
    "sync.retention: expected a number of seconds > 0, got -1",
    "sync.bogus: unknown key",
    "export.format: expected a string, got a list",
    "serve.port: expected a port from 0 to 65535, got 70000",
    "colour: unknown key",
]


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_without_a_file_the_defaults_apply(workdir: Path) -> None:
    config = load_config(environ={})
    assert config == Config()
    assert config.source == ""
    assert (config.store.name, config.sync.interval, config.serve.port) == ("memory", 30.0, 9464)


def test_metricache_toml_in_the_working_directory_is_found(workdir: Path) -> None:
    write(workdir / "metricache.toml", '[sync]\ninterval = 5\n[store]\nname = "redis"\n')
    config = load_config(environ={})
    assert config.sync.interval == 5.0
    assert config.store.name == "redis"
    assert Path(config.source).name == "metricache.toml"


def test_tool_metricache_in_pyproject_is_found(workdir: Path) -> None:
    write(
        workdir / "pyproject.toml",
        """\
        [project]
        name = "app"

        [tool.metricache]
        instance_id = "web-1"

        [tool.metricache.sync]
        retention = 600
        """,
    )
    config = load_config(environ={})
    assert (config.instance_id, config.sync.retention) == ("web-1", 600.0)
    assert Path(config.source).name == "pyproject.toml"


def test_pyproject_without_the_table_is_ignored_and_metricache_toml_wins(workdir: Path) -> None:
    write(workdir / "pyproject.toml", '[project]\nname = "app"\n')
    assert load_config(environ={}).source == ""
    write(workdir / "pyproject.toml", "[tool.metricache.sync]\ninterval = 1\n")
    write(workdir / "metricache.toml", "[sync]\ninterval = 2\n")
    assert load_config(environ={}).sync.interval == 2.0


def test_a_given_path_is_used_instead_of_the_working_directory(
    workdir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    write(workdir / "metricache.toml", "[sync]\ninterval = 2\n")
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    given = write(elsewhere / "prod.toml", "[sync]\ninterval = 9\n")
    assert load_config(given, environ={}).sync.interval == 9.0
    assert load_config(str(given), environ={}).source == str(given)
    pyproject = write(elsewhere / "pyproject.toml", "[tool.metricache.serve]\nport = 8000\n")
    assert load_config(pyproject, environ={}).serve.port == 8000
    assert load_config(environ={"METRICACHE_CONFIG": str(given)}).sync.interval == 9.0


def test_environment_variables_go_on_top_of_the_file(workdir: Path) -> None:
    write(
        workdir / "metricache.toml",
        """\
        [sync]
        interval = 5
        namespace = "from-file"

        [store]
        name = "memory"
        options = { db = 1, prefix = "x" }
        """,
    )
    config = load_config(
        environ={
            "METRICACHE_SYNC_INTERVAL": "7.5",
            "METRICACHE_SYNC_LIVENESS_TTL": "90",
            "METRICACHE_STORE": "redis",
            "METRICACHE_STORE_URL": "redis://127.0.0.1:6379/0",
            "METRICACHE_STORE_DB": "3",
            "METRICACHE_SERVE_PORT": "9100",
            "METRICACHE_INSTANCE_ID": "worker-7",
            "METRICACHE_EXPORT_FORMAT": "openmetrics",
            "METRICACHE_EXPORT_OPTION_PATH": "/tmp/out.prom",
            "METRICACHE_PLUGINS": "memory",  # has a meaning of its own, not a setting
            "OTHER_VARIABLE": "ignored",
        }
    )
    assert config.sync.interval == 7.5
    assert config.sync.liveness_ttl == 90.0
    assert config.sync.namespace == "from-file"
    assert config.store.name == "redis"
    assert config.store.options == {"db": 3, "prefix": "x", "url": "redis://127.0.0.1:6379/0"}
    assert config.serve.port == 9100
    assert config.instance_id == "worker-7"
    assert config.export.format == "openmetrics"
    assert config.export.options == {"path": OptionValue("/tmp/out.prom")}


def test_every_problem_of_a_file_is_listed_by_its_path(workdir: Path) -> None:
    bad = write(workdir / "bad.toml", BAD_TOML)
    with pytest.raises(ConfigError) as info:
        load_config(bad, environ={})
    assert info.value.problems == BAD_PROBLEMS
    assert info.value.source == str(bad)
    lines = "\n".join(f"  - {p}" for p in BAD_PROBLEMS)
    assert str(info.value) == f"{bad}: 8 problems:\n{lines}"


def test_environment_problems_are_listed_with_the_file_problems(workdir: Path) -> None:
    path = write(workdir / "metricache.toml", "[serve]\nport = -1\n")
    with pytest.raises(ConfigError) as info:
        load_config(environ={"METRICACHE_SYNC_INTERVAL": "fast", "METRICACHE_BOGUS": "1"})
    # A variable's problem names the variable; only the file's problem names the file.
    assert info.value.problems == [
        "METRICACHE_BOGUS: not a metricache setting (an environment variable; see the "
        "configuration reference for the variables)",
        "METRICACHE_SYNC_INTERVAL (sets sync.interval): expected a number, got 'fast'",
        f"{path}: serve.port: expected a port from 0 to 65535, got -1",
    ]
    assert info.value.source == ""


def test_a_problem_of_a_variable_names_the_variable_not_the_file(workdir: Path) -> None:
    path = write(workdir / "metricache.toml", "[sync]\ninterval = 5\n")
    for environ, message in [
        (
            {"METRICACHE_SYNC_INTERVL": "5"},
            "METRICACHE_SYNC_INTERVL: not a metricache setting (an environment variable; see "
            "the configuration reference for the variables)",
        ),
        (
            {"METRICACHE_SYNC_INTERVAL": "fast"},
            "METRICACHE_SYNC_INTERVAL (sets sync.interval): expected a number, got 'fast'",
        ),
    ]:
        with pytest.raises(ConfigError) as info:
            load_config(path, environ=environ)
        assert str(info.value) == message
        assert str(path) not in str(info.value)


def test_one_problem_is_one_line(workdir: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(environ={"METRICACHE_SYNC_INTERVAL": "fast"})
    assert str(info.value) == (
        "METRICACHE_SYNC_INTERVAL (sets sync.interval): expected a number, got 'fast'"
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("sync = 5\n", "sync: expected a table"),
        ("[sync]\ninterval = true\n", "sync.interval: expected a number, got True"),
        ("[sync]\ninterval = 0\n", "sync.interval: expected a number of seconds > 0, got 0"),
        ("[sync]\nliveness_ttl = 'x'\n", "sync.liveness_ttl: expected a number, got 'x'"),
        ("[serve]\nport = 1.5\n", "serve.port: expected a whole number, got 1.5"),
        ("[store]\noptions = 3\n", "store.options: expected a table"),
        ("source = 'x'\n", "source: unknown key"),
        ("[sync\n", "invalid TOML: "),
    ],
)
def test_each_kind_of_problem_names_its_place(workdir: Path, text: str, problem: str) -> None:
    path = write(workdir / "metricache.toml", text)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith(problem)


def test_a_missing_or_unreadable_file_is_a_config_error(workdir: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(workdir / "missing.toml", environ={})
    (workdir / "latin1.toml").write_bytes(b"instance_id = '\xe9'\n")
    with pytest.raises(ConfigError, match="the file is not UTF-8 text"):
        load_config(workdir / "latin1.toml", environ={})


def test_the_configuration_is_frozen(workdir: Path) -> None:
    config = load_config(environ={})
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        config.instance_id = "x"  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        config.sync.interval = 1  # type: ignore[misc,assignment]


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("METRICACHE_")}
    return subprocess.run(
        [sys.executable, "-m", "metricache.cli.main", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    "args", [("--config", "bad.toml", "plugins"), ("plugins", "--config", "bad.toml")]
)
def test_the_cli_prints_every_problem_and_fails(tmp_path: Path, args: tuple[str, ...]) -> None:
    write(tmp_path / "bad.toml", BAD_TOML)
    done = run_cli(*args, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = "".join(f"  - {p}\n" for p in BAD_PROBLEMS)
    assert (
        done.stderr == f"metricache: error: invalid configuration: bad.toml: 8 problems:\n{lines}"
    )


def test_the_cli_reads_the_working_directory_and_the_option(tmp_path: Path) -> None:
    write(tmp_path / "metricache.toml", "[sync]\ninterval = 'fast'\n")
    found = run_cli("plugins", cwd=tmp_path)
    assert found.returncode == 2
    assert "metricache.toml: sync.interval: expected a number, got 'fast'" in found.stderr
    write(tmp_path / "good.toml", "[sync]\ninterval = 3\n")
    given = run_cli("--config", "good.toml", "plugins", cwd=tmp_path)
    assert given.returncode == 0, given.stderr
    assert "prometheus" in given.stdout
