"""The table of docs/reliability.md matches the fault tests: one row per test, by name.

The figures in the committed table come from a run of the fault suite (they vary a
little from run to run: timings, how many increments the workers made). What must
not drift is its structure: the columns, and which tests produce a row. After adding,
renaming or removing a fault test, regenerate it with
``uv run python -m tests.faults.report --run``.
"""

from __future__ import annotations

from tests.faults.records import FaultRecord
from tests.faults.report import (
    DOCUMENT,
    END,
    HEADER,
    START,
    fault_tests,
    render_table,
    replace_table,
    table_rows,
)


def test_the_committed_table_has_one_row_per_fault_test_naming_it() -> None:
    header, rows = table_rows(DOCUMENT.read_text("utf-8"))
    assert header == list(HEADER)
    named = [row[-1].strip("`") for row in rows]
    expected = fault_tests()
    assert named == expected, (
        "docs/reliability.md is out of date; run: uv run python -m tests.faults.report --run"
    )
    assert all(len(row) == len(HEADER) for row in rows)


def test_the_committed_table_shows_zero_wherever_the_design_promises_zero() -> None:
    _, rows = table_rows(DOCUMENT.read_text("utf-8"))
    column = {name: k for k, name in enumerate(HEADER)}
    promised = [r for r in rows if r[column["Allowed by the design"]].startswith("nothing lost")]
    assert promised
    for row in promised:
        assert row[column["Lost"]] == "0", row
        if "nothing doubled" in row[column["Allowed by the design"]]:
            assert row[column["Doubled"]] == "0", row
    for row in rows:
        assert row[column["Sent → counted"]] != "—", row


def test_the_generator_writes_a_table_it_reads_back() -> None:
    records = [
        FaultRecord(
            test=f"tests/faults/test_x.py::test_{n}",
            fault="a fault | with a pipe",
            store="redis",
            strategy="distributed_atomic",
            happened="it happened",
            sent=1234567,
            counted=1234567,
            compared="one counter",
            lost=0,
            doubled=0,
            allowed="nothing lost, nothing doubled",
            worst_call_ms=1.5,
            seen_in=["metricache_sync_errors_total"],
        )
        for n in (2, 1)
    ]
    document = f"before\n{START}\nold table\n{END}\nafter\n"
    written = replace_table(document, render_table(records))
    assert written.startswith(f"before\n{START}\n")
    assert written.endswith(f"{END}\nafter\n")
    header, rows = table_rows(written)
    assert header == list(HEADER)
    assert [r[-1] for r in rows] == [
        "`tests/faults/test_x.py::test_1`",
        "`tests/faults/test_x.py::test_2`",
    ]
    assert rows[0][0] == "a fault | with a pipe"
    assert rows[0][4] == "1,234,567 → 1,234,567"
    assert rows[0][8] == "1.5 ms"
