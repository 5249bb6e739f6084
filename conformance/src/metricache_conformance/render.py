"""Showing results: progress lines, and the matrix as text, Markdown or JSON.

The Markdown table is what ``docs/compatibility.md`` includes; it holds nothing that
changes from run to run (no durations), so a fresh generation equals the committed
one as long as every store keeps its promises.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from metricache_conformance.results import (
    CAPABILITY_COLUMNS,
    CapabilityStatus,
    MatrixRow,
    Outcome,
    Report,
    Result,
)

__all__ = [
    "MATRIX_END",
    "MATRIX_START",
    "json_document",
    "markdown_matrix",
    "progress_line",
    "replace_region",
    "result_json",
    "summary_line",
    "text_matrix",
]

MATRIX_START = "<!-- conformance-matrix:start -->"
MATRIX_END = "<!-- conformance-matrix:end -->"

_SYMBOLS = {
    CapabilityStatus.VERIFIED: ("✓", "yes"),
    CapabilityStatus.FAILED: ("✗", "FAILED"),
    CapabilityStatus.NOT_DECLARED: ("skip", "skip"),
    CapabilityStatus.UNEXPECTED: ("skip*", "skip*"),
    CapabilityStatus.NOT_RUN: ("not run", "not run"),
}
UNEXPECTED_NOTE = "skip*: not declared, yet every check of it passed (an unexpected success)"
HEADERS = ("store", "basics", *(c.value for c in CAPABILITY_COLUMNS), "strategy")


def _cell(status: CapabilityStatus, ascii_only: bool) -> str:
    return _SYMBOLS[status][1 if ascii_only else 0]


def _basics(row: MatrixRow, ascii_only: bool) -> str:
    if row.basics is None:
        return "not run"
    return _cell(CapabilityStatus.VERIFIED if row.basics else CapabilityStatus.FAILED, ascii_only)


def _strategy(row: MatrixRow, ascii_only: bool) -> str:
    if row.strategy is None:
        return "not run"
    text = row.strategy.value
    if row.selected is not None and row.selected is not row.strategy:
        text = f"{text} (the core selects {row.selected.value})"
    if row.strategy_ok is False:
        text = f"{text} {_cell(CapabilityStatus.FAILED, ascii_only)}"
    return text


def _cells(report: Report, ascii_only: bool) -> list[str]:
    row = report.row()
    return [
        report.store,
        _basics(row, ascii_only),
        *(_cell(status, ascii_only) for _, status in row.cells),
        _strategy(row, ascii_only),
    ]


def progress_line(result: Result) -> str:
    """Return the line shown when a check ends: name, result, duration, message."""
    outcome = "FAILED" if result.outcome is Outcome.FAILED else result.outcome.value
    line = f"  {result.check:<32} {outcome:<18} {result.duration:7.2f} s"
    return f"{line}  {result.message}" if result.message else line


def summary_line(report: Report) -> str:
    """Return one line counting the results of ``report``."""
    if report.problem is not None:
        return f"{report.store}: not run: {report.problem}"
    return f"{report.store}: {report.counts()}"


def text_matrix(reports: Sequence[Report], *, ascii_only: bool = False) -> str:
    """Return the matrix rows of ``reports`` as an aligned text table."""
    rows = [list(HEADERS), *(_cells(r, ascii_only) for r in reports)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADERS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.extend(_notes(reports))
    return "\n".join(lines)


def _notes(reports: Sequence[Report]) -> list[str]:
    notes = []
    if any(s is CapabilityStatus.UNEXPECTED for r in reports for _, s in r.row().cells):
        notes.append(UNEXPECTED_NOTE)
    for report in reports:
        if report.problem is not None:
            notes.append(f"{report.store}: not run: {report.problem}")
    return notes


def markdown_matrix(reports: Sequence[Report]) -> str:
    """Return the matrix of ``reports`` as a Markdown table (the docs' generated part)."""
    lines = [
        "| " + " | ".join(HEADERS) + " |",
        "|" + "|".join(["---", *[":-:"] * (len(HEADERS) - 2), "---"]) + "|",
    ]
    for report in sorted(reports, key=lambda r: r.store):
        cells = [_markdown_text(cell) for cell in _cells(report, ascii_only=False)]
        name, _, variant = report.store.partition(" (")
        cells[0] = f"`{name}` ({variant}" if variant else f"`{name}`"
        strategy = report.row().strategy
        if strategy is not None:
            cells[-1] = cells[-1].replace(strategy.value, f"`{strategy.value}`", 1)
        lines.append("| " + " | ".join(cells) + " |")
    notes = _notes(reports)
    if notes:
        # Two trailing spaces end a line inside a paragraph in Markdown.
        lines.extend(["", *(f"{_markdown_text(note)}  " for note in notes[:-1])])
        lines.append(_markdown_text(notes[-1]))
    return "\n".join(lines)


def _markdown_text(text: str) -> str:
    """Escape what Markdown would read as emphasis or a table border."""
    return text.replace("*", "\\*").replace("|", "\\|")


def result_json(result: Result) -> dict[str, Any]:
    """One check's result as JSON data."""
    return {
        "check": result.check,
        "capability": result.capability.value if result.capability else None,
        "outcome": result.outcome.value,
        "duration": round(result.duration, 4),
        "message": result.message,
        "detail": result.detail,
    }


def json_document(reports: Sequence[Report], **more: Any) -> str:
    """Return every report as a JSON document (results and matrix rows), and ``more``."""
    stores = []
    for report in reports:
        row = report.row()
        stores.append(
            {
                "store": report.store,
                "plugin": report.plugin,
                "description": report.description,
                "declared": sorted(c.value for c in report.declared),
                "declaration_source": report.declaration_source,
                "problem": report.problem,
                "ok": report.ok,
                "row": {
                    "basics": row.basics,
                    **{c.value: status.value for c, status in row.cells},
                    "strategy": row.strategy.value if row.strategy else None,
                    "strategy_ok": row.strategy_ok,
                    "selected": row.selected.value if row.selected else None,
                },
                "results": [result_json(r) for r in report.results],
            }
        )
    return json.dumps({"stores": stores, **more}, indent=2, ensure_ascii=False)


def replace_region(document: str, generated: str) -> str:
    """Return ``document`` with the text between the matrix markers replaced.

    Raises ValueError when the markers are missing or out of order.
    """
    start = document.find(MATRIX_START)
    end = document.find(MATRIX_END)
    if start < 0 or end < start:
        raise ValueError(f"the document has no {MATRIX_START} ... {MATRIX_END} region")
    head = document[: start + len(MATRIX_START)]
    return f"{head}\n{generated}\n{document[end:]}"
