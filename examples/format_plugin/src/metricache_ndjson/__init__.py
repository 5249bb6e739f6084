"""NDJSON for metricache: one JSON object per sample, one sample per line.

A worked example of a format plugin (``docs/plugins/writing-a-format.md``). Each line
is a sample as Prometheus names it (``requests_total``, ``latency_seconds_bucket``
with an ``le`` label, ``latency_seconds_sum`` ...) with its family, type, labels,
value and the snapshot's time. JSON escapes ``\n`` and ``\r`` inside strings, so a
label value holding one never splits a record. JSON has no literal for infinities and
NaN, so those values are the strings ``"+Inf"``, ``"-Inf"`` and ``"NaN"``.

:func:`parse` reads the lines back into :class:`Record` objects.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from typing import Any

import attrs
from metricache import hookimpl
from metricache.formats import Format
from metricache.snapshot import Family, HistogramSample, MetricType, Snapshot

__all__ = ["NdjsonFormat", "Record", "metricache_formats", "parse", "render"]

_SPECIAL = {"+Inf": math.inf, "-Inf": -math.inf, "NaN": math.nan}


@attrs.frozen
class Record:
    """One line: a sample's name, its family and type, its labels and value."""

    sample: str
    family: str
    type: str
    labels: dict[str, str]
    value: float
    timestamp: float


def _number(value: float) -> float | str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return value


def _bound(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(float(bound))


def _records(family: Family, timestamp: float) -> Iterator[dict[str, Any]]:
    def line(sample: str, labels: dict[str, str], value: float | str) -> dict[str, Any]:
        return {
            "sample": sample,
            "family": family.name,
            "type": family.type.value,
            "labels": labels,
            "value": value,
            "timestamp": timestamp,
        }

    for sample in family.samples:
        labels = dict(zip(family.labelnames, sample.labels))
        if isinstance(sample, HistogramSample):
            for bound, count in zip(family.buckets, sample.buckets):
                yield line(f"{family.name}_bucket", {**labels, "le": _bound(bound)}, count)
            yield line(f"{family.name}_sum", labels, _number(sample.sum))
            yield line(f"{family.name}_count", labels, sample.count)
        else:
            suffix = "_total" if family.type is MetricType.COUNTER else ""
            yield line(family.name + suffix, labels, _number(sample.value))


def render(snapshot: Snapshot) -> bytes:
    """Return ``snapshot`` as NDJSON: one object per sample, each line ending in ``\\n``."""
    lines = []
    for family in snapshot.families:
        for record in _records(family, snapshot.timestamp):
            # allow_nan=False: a non-finite float that slipped through fails loudly
            # instead of writing NaN, which is not JSON.
            lines.append(
                json.dumps(record, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
            )
    return "".join(line + "\n" for line in lines).encode("utf-8")


def _value(raw: object, where: str) -> float:
    if isinstance(raw, str) and raw in _SPECIAL:
        return _SPECIAL[raw]
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise ValueError(f"{where}: value: expected a number or +Inf, -Inf, NaN, got {raw!r}")
    return float(raw)


def parse(data: bytes | str) -> list[Record]:
    """Read NDJSON written by :func:`render` back into records, in order.

    Raises ``ValueError`` naming the line of the first problem.
    """
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    records = []
    # Split on "\n" only: str.splitlines() would also split on U+2028 and other
    # separators, which JSON leaves unescaped inside a label value.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        where = f"line {number}"
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where}: not JSON: {exc.msg}") from None
        if not isinstance(item, dict) or not isinstance(item.get("labels"), dict):
            raise ValueError(f"{where}: expected an object with a 'labels' object")
        try:
            records.append(
                Record(
                    sample=str(item["sample"]),
                    family=str(item["family"]),
                    type=str(item["type"]),
                    labels={str(k): str(v) for k, v in item["labels"].items()},
                    value=_value(item["value"], where),
                    timestamp=float(item["timestamp"]),
                )
            )
        except KeyError as exc:
            raise ValueError(f"{where}: missing key {exc.args[0]!r}") from None
    return records


class NdjsonFormat(Format):
    """The ``ndjson`` format: one JSON object per sample and line."""

    name = "ndjson"
    content_type = "application/x-ndjson; charset=utf-8"
    media_types = ("application/x-ndjson",)
    extension = "ndjson"

    def render(self, snapshot: Snapshot) -> bytes:
        """Render ``snapshot`` as NDJSON."""
        return render(snapshot)


@hookimpl
def metricache_formats() -> Iterable[Format]:
    """Offer the ``ndjson`` format to metricache."""
    return [NdjsonFormat()]
