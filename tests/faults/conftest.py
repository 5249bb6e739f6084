"""The ``fault`` fixture: each fault test's figures, written where the report finds them."""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from tests.faults.records import RESULTS_ENV, FaultRecord, record_file_name


@pytest.fixture(scope="session")
def fault_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory fault records go to: ``$METRICACHE_FAULT_RESULTS``, else a temporary one."""
    named = os.environ.get(RESULTS_ENV)
    if named:
        path = Path(named)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("fault-results")


@pytest.fixture
def fault(request: pytest.FixtureRequest, fault_results: Path) -> Iterator[FaultRecord]:
    """The record of this test; written when the test passes, refused if left incomplete."""
    record = FaultRecord(test=request.node.nodeid)
    yield record
    call = getattr(request.node, "rep_call", None)
    if call is None or not call.passed:
        return  # a failed test's figures are not published
    if not record.is_complete():
        pytest.fail(f"{record.test} left its fault record incomplete: {record}")
    (fault_results / record_file_name(record.test)).write_text(record.to_json(), "utf-8")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the item, so the fixture knows whether the test passed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
