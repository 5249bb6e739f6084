"""A store's row of the matrix shows each verdict in its own column, and only verdicts reached."""

from __future__ import annotations

import re

from metricache.store import Capability
from metricache.sync.strategy import Strategy
from metricache_conformance import Outcome, Report, Result
from metricache_conformance.render import json_document, text_matrix

PASSED_BASICS = (
    Result("basics.get_set_delete", None, Outcome.PASSED, 0.1),
    Result("basics.backdoor", None, Outcome.SKIPPED, 0.0, "no backdoor helpers given"),
    Result("contract.end_to_end", None, Outcome.PASSED, 0.1),
)
EVERY_CAPABILITY = tuple(
    Result(f"{c.value}.check", c, Outcome.SKIPPED, 0.1, f"not declared: {c.value}")
    for c in Capability
)


def report(*results: Result, selected: Strategy = Strategy.LOCAL_ONLY) -> Report:
    return Report("s", "s", "s", frozenset(), "declared", results, selected)


def row_cells(found: Report) -> list[str]:
    return re.split(r"\s{2,}", text_matrix([found]).splitlines()[1])


def test_a_strategy_mismatch_is_shown_in_the_strategy_column_not_in_basics() -> None:
    mismatch = Result("contract.strategy", None, Outcome.FAILED, 0.0, "the core selects ...")
    found = report(*PASSED_BASICS, *EVERY_CAPABILITY, mismatch, selected=Strategy.DISTRIBUTED_BASIC)
    row = found.row()
    assert row.basics is True
    assert row.strategy_ok is False
    assert not found.ok  # the run still fails
    cells = row_cells(found)
    assert cells[1] == "✓"
    assert cells[-1] == "local_only (the core selects distributed_basic) ✗"


def test_a_run_of_the_capability_checks_alone_reports_no_basics() -> None:
    found = report(*EVERY_CAPABILITY)
    assert found.row().basics is None
    assert row_cells(found)[1] == "not run"
    assert '"basics": null' in json_document([found])


def test_skipped_basics_alone_are_not_a_verdict() -> None:
    found = report(PASSED_BASICS[1], *EVERY_CAPABILITY)
    assert found.row().basics is None


def test_no_strategy_is_reported_while_a_capability_went_unchecked() -> None:
    some = report(*PASSED_BASICS, *EVERY_CAPABILITY[:2])
    assert some.row().strategy is None
    assert row_cells(some)[-1] == "not run"
    assert '"strategy": null' in json_document([some])
    every = report(*PASSED_BASICS, *EVERY_CAPABILITY)
    assert every.row().strategy is Strategy.LOCAL_ONLY
    assert row_cells(every)[-1] == "local_only"
