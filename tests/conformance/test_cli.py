"""``metricache conformance`` as a user runs it: every built-in store and the example.

Each run is a subprocess against real servers; it must pass, print one progress line
per check, and end with the store's row of the matrix. The atomic check makes 1,000
increments per thread here instead of 5,000 (the pytest entry runs the full scale).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from metricache_conformance import all_checks

from tests.support.servers import MemcachedServer, RedisServer

PROGRESS = re.compile(r"  (\S+) +(passed|FAILED|skipped|unexpected success) +(\d+\.\d\d) s(  .*)?")


def conformance(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "metricache.cli.main", "conformance", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )


def final_row(stdout: str) -> list[str]:
    lines = stdout.splitlines()
    header = max(i for i, line in enumerate(lines) if line.startswith("store "))
    assert re.split(r"\s{2,}", lines[header]) == [
        "store",
        "basics",
        "distributed",
        "atomic",
        "cas",
        "locking",
        "exactly_once",
        "strategy",
    ]
    return re.split(r"\s{2,}", lines[header + 1])


def progress(stdout: str) -> dict[str, str]:
    found = {}
    for line in stdout.splitlines():
        match = PROGRESS.fullmatch(line)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def check_run(result: subprocess.CompletedProcess[str], row: list[str]) -> None:
    assert result.returncode == 0, result.stdout + result.stderr
    outcomes = progress(result.stdout)
    # Every check the suite lists runs or is a named skip; none is left out silently.
    assert list(outcomes) == [c.name for c in all_checks()]
    assert outcomes.pop("basics.backdoor") == "skipped"
    assert re.search(
        r"^  basics\.backdoor +skipped .*  no backdoor helpers given", result.stdout, re.M
    )
    assert "FAILED" not in outcomes.values()
    assert final_row(result.stdout) == row
    # The long check says what it does before it starts.
    lines = result.stdout.splitlines()
    started = next(i for i, line in enumerate(lines) if "increments at once" in line)
    ended = next(i for i, line in enumerate(lines) if PROGRESS.fullmatch(line) and (
        "atomic.concurrent_increments " in line
    ))  # fmt: skip
    assert started < ended
    assert re.fullmatch(
        r"  atomic\.concurrent_increments +making [\d,]+ increments at once \(.*\)\.\.\.",
        lines[started],
    )


def test_redis_is_distributed_atomic(redis_server: RedisServer, tmp_path: Path) -> None:
    result = conformance(
        "redis", "--option", f"url={redis_server.url}", "--increments", "1000", cwd=tmp_path
    )
    check_run(result, ["redis", "✓", "✓", "✓", "✓", "✓", "✓", "distributed_atomic"])
    outcomes = progress(result.stdout)
    assert {name for name, outcome in outcomes.items() if outcome != "passed"} == {
        "basics.backdoor"
    }


def test_memcached_is_distributed_basic(memcached_server: MemcachedServer, tmp_path: Path) -> None:
    result = conformance(
        "memcached", "-o", f"url={memcached_server.url}", "--increments", "1000", cwd=tmp_path
    )
    check_run(result, ["memcached", "✓", "✓", "✓", "✓", "skip", "skip", "distributed_basic"])
    outcomes = progress(result.stdout)
    assert outcomes["locking.owner_only"] == "skipped"
    assert "  locking.owner_only" in result.stdout
    assert re.search(
        r"locking\.owner_only +skipped .*  not declared: locking$", result.stdout, re.M
    )


def test_file_is_local_only_and_shared_by_the_processes_of_a_host(tmp_path: Path) -> None:
    result = conformance("file", "-o", f"path={tmp_path / 'store'}", cwd=tmp_path)
    check_run(result, ["file", "✓", "skip*", "skip", "skip", "skip", "skip", "local_only"])
    outcomes = progress(result.stdout)
    assert outcomes["distributed.across_processes"] == "unexpected success"
    assert "skip*: not declared, yet every check of it passed" in result.stdout


def test_memory_is_local_only(tmp_path: Path) -> None:
    result = conformance("memory", cwd=tmp_path)
    check_run(result, ["memory", "✓", "skip", "skip", "skip", "skip", "skip", "local_only"])
    assert progress(result.stdout)["contract.end_to_end"] == "passed"


def test_the_example_sqlite_store_is_distributed_atomic(tmp_path: Path) -> None:
    result = conformance("sqlite", "--increments", "1000", cwd=tmp_path)  # a temporary path
    check_run(result, ["sqlite", "✓", "✓", "✓", "✓", "✓", "skip", "distributed_atomic"])


def test_json_output_carries_every_result(tmp_path: Path) -> None:
    import json

    result = conformance("memory", "--format", "json", "--check", "basics.maps", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    (store,) = document["stores"]
    assert store["store"] == "memory"
    assert [r["check"] for r in store["results"]] == ["basics.maps"]
    assert store["results"][0]["outcome"] == "passed"
    assert "basics.maps" in result.stderr  # progress lines go to stderr


def test_a_partial_run_reports_no_strategy_and_no_basics_it_did_not_check(
    tmp_path: Path,
) -> None:
    import json

    result = conformance("memory", "--format", "json", "--check", "cas", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (store,) = json.loads(result.stdout)["stores"]
    assert store["row"]["basics"] is None
    assert store["row"]["strategy"] is None
    assert store["row"]["cas"] == "not declared"
    assert store["row"]["atomic"] == "not run"
    text = conformance("memory", "--check", "cas", cwd=tmp_path)
    assert final_row(text.stdout) == [
        "memory",
        "not run",
        "not run",
        "not run",
        "skip",
        "not run",
        "not run",
        "not run",
    ]


def test_settings_too_small_to_race_are_refused(tmp_path: Path) -> None:
    result = conformance(
        "memory", "--processes", "1", "--threads", "1", "--check", "atomic", cwd=tmp_path
    )
    assert result.returncode == 2
    assert result.stderr == (
        "metricache: error: --processes 1 --threads 1: processes x threads must be at least "
        "2, got 1 x 1: one writer never races with itself, so the atomic check could not "
        "catch a lost update\n"
    )


def test_list_checks_names_every_check_the_runs_report(tmp_path: Path) -> None:
    result = conformance("--list-checks", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    names = [line.split()[0] for line in result.stdout.splitlines()]
    assert names == [c.name for c in all_checks()]
    backdoor = next(
        line for line in result.stdout.splitlines() if line.startswith("basics.backdoor ")
    )
    assert backdoor.endswith("(needs backdoor helpers: from a StoreConformance class only)")


def test_write_replaces_only_the_generated_region(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(
        "before\n<!-- conformance-matrix:start -->\nold\n<!-- conformance-matrix:end -->\nafter\n",
        encoding="utf-8",
    )
    result = conformance(
        "memory",
        "--format",
        "markdown",
        "--write",
        str(doc),
        "--check",
        "basics.maps",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    text = doc.read_text(encoding="utf-8")
    assert text.startswith("before\n<!-- conformance-matrix:start -->\n| store | basics |")
    assert "| `memory` | ✓ | not run | not run |" in text
    assert text.endswith("<!-- conformance-matrix:end -->\nafter\n")
    assert "old" not in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no-such-store"], "unknown store 'no-such-store'"),
        (["memory", "--all"], "give a STORE or --all, not both"),
        (["--all", "--option", "url=x"], "with --all, give options as STORE.KEY=VALUE"),
        (["--all", "--option", "nosuch.url=x"], "no installed store is called 'nosuch'"),
        (["memory", "--check", "nothing"], "--check nothing matches no check"),
        (["memory", "--write", "x.md"], "--write needs --format markdown"),
        (["memory", "-o", "colour=blue"], "unknown option(s) 'colour'"),
    ],
)
def test_usage_errors_exit_2_with_a_message(args: list[str], message: str, tmp_path: Path) -> None:
    result = conformance(*args, cwd=tmp_path, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr


def test_an_unreachable_store_exits_1_naming_it(tmp_path: Path) -> None:
    from tests.support.servers import free_port

    url = f"redis://127.0.0.1:{free_port()}/0"
    result = conformance("redis", "-o", f"url={url}", cwd=tmp_path, timeout=60)
    assert result.returncode == 1
    assert "metricache: error:" in result.stderr
    assert "127.0.0.1" in result.stderr


def test_without_the_suite_installed_the_command_says_what_to_install(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['metricache_conformance'] = None; "
        "from metricache.cli.main import main; sys.exit(main(['conformance', 'memory']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "install metricache-conformance" in result.stderr


def kit_env() -> dict[str, str]:
    root = Path(__file__).resolve().parents[2]
    return {**os.environ, "PYTHONIOENCODING": "utf-8", "PYTHONPATH": str(root)}


def kit_run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "metricache.cli.main", "conformance", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=kit_env(),
    )


def test_the_kits_run_over_every_installed_format_and_exporter(tmp_path: Path) -> None:
    result = kit_run("--formats", "--exporters", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    summaries = [
        line for line in result.stdout.splitlines() if re.match(r"(format|exporter) ", line)
    ]
    assert summaries[:5] == [
        "format csv: 4 passed, 0 failed, 1 skipped",
        "format json: 4 passed, 0 failed, 1 skipped",
        "format ndjson: 4 passed, 0 failed, 1 skipped",
        "format openmetrics: 4 passed, 0 failed, 1 skipped",
        "format prometheus: 4 passed, 0 failed, 1 skipped",
    ]
    assert "exporter http: 5 passed, 0 failed, 0 skipped" in summaries
    assert (
        "exporter pushgateway: skipped: the kit knows no destination of this exporter: run it "
        "from its ExporterConformance class (--exporters package.module:Class)"
    ) in summaries
    assert "store " not in result.stdout  # no store runs unless one is named


def test_the_kits_take_a_conformance_class_and_name_a_broken_promise(tmp_path: Path) -> None:
    classes = kit_run(
        "--formats",
        "tests.conformance.test_author_kits:TestJsonFormat",
        "--exporters",
        "tests.conformance.test_author_kits:TestPushgatewayExampleExporter",
        cwd=tmp_path,
    )
    assert classes.returncode == 0, classes.stdout + classes.stderr
    assert "format json: 5 passed, 0 failed, 0 skipped" in classes.stdout
    assert "exporter pushgateway: 4 passed, 0 failed, 1 skipped" in classes.stdout

    broken = kit_run(
        "--formats", "tests.conformance.broken_plugins:FragileFormat", "--format", "json",
        cwd=tmp_path,
    )  # fmt: skip
    assert broken.returncode == 1
    import json

    (report,) = json.loads(broken.stdout)["formats"]
    assert report["name"] == "fragile"
    assert report["ok"] is False
    failed = {r["check"]: r["message"] for r in report["results"] if r["outcome"] == "failed"}
    assert failed["format.renders"] == (
        "rendering the 'special_values' snapshot raised ValueError: cannot write nan"
    )
    assert "format.renders" in broken.stderr  # progress lines go to stderr


def test_list_checks_with_the_kits_lists_their_checks(tmp_path: Path) -> None:
    result = kit_run("--list-checks", "--formats", "--exporters", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    names = [line.split()[0] for line in result.stdout.splitlines()]
    assert names == [
        "format.declaration",
        "format.renders",
        "format.bytes",
        "format.deterministic",
        "format.parse_back",
        "exporter.declaration",
        "exporter.delivers",
        "exporter.unreachable",
        "exporter.no_secrets",
        "exporter.timeout",
    ]
