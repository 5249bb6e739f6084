"""What a fault test measured, as one JSON file per test: the figures of docs/reliability.md.

Each fault test fills in a :class:`FaultRecord` through the ``fault`` fixture; the
fixture writes it to the results directory named by ``METRICACHE_FAULT_RESULTS``
(a temporary directory when unset). ``python -m tests.faults.report`` turns a
directory of records into the table of ``docs/reliability.md``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import attrs

__all__ = ["RESULTS_ENV", "FaultRecord", "load_records", "record_file_name"]

RESULTS_ENV = "METRICACHE_FAULT_RESULTS"
"""The environment variable naming the directory fault records are written to."""


@attrs.define(kw_only=True)
class FaultRecord:
    """One row of the reliability table, filled in by the test that measured it.

    ``sent`` is what the application did (increments made, ground truth kept by the
    test or its workers, independently of metricache) and ``counted`` what the store's
    merged view shows; ``lost`` and ``doubled`` are the shortfall and the excess,
    summed per series. ``allowed`` says what the design allows for this fault (the
    promise the test checks). ``worst_call_ms`` is the slowest single metric call
    the application made while the fault lasted. ``seen_in`` names the self-metrics
    and log lines in which the fault showed.
    """

    test: str
    fault: str = ""
    store: str = ""
    strategy: str = ""
    happened: str = ""
    sent: int | None = None
    counted: int | None = None
    compared: str = ""
    lost: int | None = None
    doubled: int | None = None
    allowed: str = ""
    worst_call_ms: float | None = None
    seen_in: list[str] = attrs.field(factory=list)

    def compare_fleet(self, result: Any, worst: float, allowed: str) -> None:
        """Fill in the figures of a fleet's comparison (see ``fleet.Comparison``)."""
        self.sent = result.sent
        self.counted = result.counted
        self.compared = (
            f"{result.sent:,} counter increments, {result.observations:,} histogram "
            "observations and a fractional sum, per series"
        )
        self.lost = result.lost
        self.doubled = result.doubled
        self.allowed = allowed
        self.worst_call_ms = round(worst * 1000, 2)

    def is_complete(self) -> bool:
        """Whether the fields every row shows were filled in."""
        return bool(self.fault and self.store and self.happened and self.allowed and self.seen_in)

    def to_json(self) -> str:
        """Return the record as JSON text."""
        return json.dumps(attrs.asdict(self), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> FaultRecord:
        """Parse what :meth:`to_json` wrote."""
        data: dict[str, Any] = json.loads(text)
        return cls(**data)


def record_file_name(test: str) -> str:
    """Return the file name of the record of the test with node id ``test``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", test).strip("_") + ".json"


def load_records(directory: str | os.PathLike[str]) -> list[FaultRecord]:
    """Return every record in ``directory``, sorted by test id."""
    found = [FaultRecord.from_json(p.read_text("utf-8")) for p in Path(directory).glob("*.json")]
    return sorted(found, key=lambda r: r.test)
