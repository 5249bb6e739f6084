"""The pytest plugin of the suite (entry point ``pytest11``), loaded by every pytest run.

It registers the package for assertion rewriting (a suite imported as a package is
not rewritten otherwise), provides the fixtures of ``StoreConformance`` classes
(``store_options``, to override, and ``conformance``) and of ``ExporterConformance``
classes (``exporter_suite``), and ends the run with a
"metricache conformance" section: the matrix row of every store a
``StoreConformance`` class checked, and the checks of undeclared capabilities that
passed (unexpected successes, for information).
"""

from __future__ import annotations

import pytest

pytest.register_assert_rewrite("metricache_conformance")

from collections.abc import Iterator, Mapping  # noqa: E402  (after the registration above)
from typing import TYPE_CHECKING  # noqa: E402

if TYPE_CHECKING:
    from _pytest.terminal import TerminalReporter

    from metricache_conformance.exporter_suite import ExporterSuite
    from metricache_conformance.results import Result
    from metricache_conformance.runner import Conformance

__all__ = [
    "RUNS",
    "conformance",
    "exporter_suite",
    "pytest_configure",
    "pytest_terminal_summary",
    "store_options",
    "verdict",
]

RUNS = pytest.StashKey[list["Conformance"]]()
"""The suite runs of this session, in the order their classes started."""


@pytest.fixture(scope="class")
def store_options() -> Mapping[str, object]:
    """The options a ``StoreConformance`` class opens its store with (default: none).

    Override it (class scope or broader) in the test module, a conftest, or the class.
    """
    return {}


@pytest.fixture(scope="class")
def conformance(
    request: pytest.FixtureRequest, store_options: Mapping[str, object]
) -> Iterator[Conformance]:
    """The suite, opened once per ``StoreConformance`` class on the class's store."""
    from metricache_conformance.store_conformance import open_suite

    yield from open_suite(request, store_options)


@pytest.fixture(scope="class")
def exporter_suite(request: pytest.FixtureRequest) -> Iterator[ExporterSuite]:
    """The exporter kit, on the destination of the ``ExporterConformance`` class requesting it."""
    from metricache_conformance.exporter_conformance import open_exporter_suite

    yield from open_exporter_suite(request)


def verdict(check: str, result: Result) -> None:
    """Turn a kit's or the suite's result into pytest's: fail or skip with its message."""
    from metricache_conformance.results import Outcome

    if result.outcome is Outcome.FAILED:
        pytest.fail(f"{check}: {result.message}", pytrace=False)
    if result.outcome is Outcome.SKIPPED:
        pytest.skip(result.message)


def pytest_configure(config: pytest.Config) -> None:
    """Make room for the runs of this session."""
    config.stash[RUNS] = []


def pytest_terminal_summary(terminalreporter: TerminalReporter, config: pytest.Config) -> None:
    """Show each checked store's matrix row and its unexpected successes."""
    runs = [run for run in config.stash.get(RUNS, []) if run.results]
    if not runs:
        return
    from metricache_conformance.render import summary_line, text_matrix
    from metricache_conformance.results import Outcome

    terminalreporter.section("metricache conformance")
    reports = [run.report() for run in runs]
    for report in reports:
        terminalreporter.write_line(summary_line(report))
        for result in report.results:
            if result.outcome is Outcome.UNEXPECTED_SUCCESS:
                terminalreporter.write_line(f"  unexpected success: {result.check}")
    terminalreporter.write_line(text_matrix(reports))
