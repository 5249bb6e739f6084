"""The CSV table: one row per sample value, a stable header, labels in sorted columns.

The header is the fixed columns :data:`FIXED_COLUMNS`, then one ``label_<name>``
column per label name found anywhere in the snapshot, sorted by name. The layout is
documented in ``docs/csv.md``; :func:`parse` reads it back into the snapshot it came
from. Quoting follows RFC 4180 (the :mod:`csv` module): a field holding a comma, a
double quote, a carriage return or a newline is quoted, and quotes are doubled.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Iterator, Sequence

from metricache.snapshot import (
    AnySample,
    Family,
    GaugeMerge,
    HistogramSample,
    MetricType,
    Sample,
    SampleColumns,
    Snapshot,
    ViewKind,
)

__all__ = ["FIXED_COLUMNS", "LABEL_PREFIX", "ParseError", "format_number", "parse", "render"]

FIXED_COLUMNS = (
    "family",
    "type",
    "sample",
    "le",
    "value",
    "unit",
    "help",
    "merge",
    "labels",
    "timestamp",
    "view",
    "instance",
    "strategy",
)
"""The columns every file starts with, in this order."""

LABEL_PREFIX = "label_"

_NON_FINITE = {"+Inf": math.inf, "-Inf": -math.inf, "NaN": math.nan}
(
    _FAMILY,
    _TYPE,
    _SAMPLE,
    _LE,
    _VALUE,
    _UNIT,
    _HELP,
    _MERGE,
    _LABELS,
    _TIMESTAMP,
    _VIEW,
    _INSTANCE,
    _STRATEGY,
) = range(len(FIXED_COLUMNS))


class ParseError(ValueError):
    """The bytes are not a metricache CSV table; the message names the line."""


def format_number(value: float) -> str:
    """Return a float as its shortest exact text, or ``+Inf``, ``-Inf``, ``NaN``."""
    value = float(value)
    if math.isfinite(value):
        return repr(value)
    if math.isnan(value):
        return "NaN"
    return "+Inf" if value > 0 else "-Inf"


def _sample_name(family: Family) -> str:
    return f"{family.name}_total" if family.type is MetricType.COUNTER else family.name


class _RowMaker:
    """Builds the rows of one family: its fixed cells around each sample's cells."""

    def __init__(self, head: list[str], meta: list[str], positions: list[int], width: int) -> None:
        self.head = head
        self.meta = meta
        self.positions = positions
        self.width = width

    def __call__(self, sample: str, le: str, value: str, labels: tuple[str, ...]) -> list[str]:
        cells = [""] * self.width
        for position, text in zip(self.positions, labels):
            cells[position] = text
        return [*self.head, sample, le, value, *self.meta, *cells]


def render(snapshot: Snapshot) -> bytes:
    """Return ``snapshot`` as a CSV table (UTF-8, CRLF line ends, header first)."""
    label_names = sorted({n for f in snapshot.families for n in f.labelnames})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([*FIXED_COLUMNS, *(LABEL_PREFIX + n for n in label_names)])
    column_of = {n: i for i, n in enumerate(label_names)}
    view = snapshot.view.value
    timestamp = format_number(snapshot.timestamp)
    instance = snapshot.instance or ""
    strategy = snapshot.strategy or ""
    tail = [timestamp, view, instance, strategy]
    width = len(label_names)
    for family in snapshot.families:
        name = family.name
        merge = family.merge.value if family.merge is not None else ""
        head = [name, family.type.value]
        meta = [family.unit, family.documentation, merge, ",".join(family.labelnames), *tail]
        positions = [column_of[n] for n in family.labelnames]
        row = _RowMaker(head, meta, positions, width)
        if not family.samples:
            # A family without samples still has a row (or one per bucket bound), so
            # that its metadata survives; an empty ``sample`` cell marks such rows.
            bounds = [format_number(b) for b in family.buckets] or [""]
            writer.writerows(row("", le, "", ()) for le in bounds)
            continue
        if family.type is MetricType.HISTOGRAM:
            les = [format_number(b) for b in family.buckets]
            for s in family.samples:
                if not isinstance(s, HistogramSample):
                    continue
                writer.writerows(
                    row(f"{name}_bucket", le, str(c), s.labels) for le, c in zip(les, s.buckets)
                )
                writer.writerow(row(f"{name}_sum", "", format_number(s.sum), s.labels))
                writer.writerow(row(f"{name}_count", "", str(s.count), s.labels))
        else:
            sample_name = _sample_name(family)
            samples = family.samples
            if isinstance(samples, SampleColumns):
                # A registry snapshot's columns: no Sample objects need building.
                pairs: Iterable[tuple[tuple[str, ...], float]] = zip(
                    samples.labelsets, samples.values
                )
            else:
                pairs = ((s.labels, s.value) for s in samples if isinstance(s, Sample))
            writer.writerows(
                row(sample_name, "", format_number(value), labels) for labels, value in pairs
            )
    return out.getvalue().encode("utf-8")


# -- parsing ----------------------------------------------------------------------------


def _number(text: str, where: str) -> float:
    if text in _NON_FINITE:
        return _NON_FINITE[text]
    try:
        return float(text)
    except ValueError:
        raise ParseError(f"{where}: expected a number, +Inf, -Inf or NaN, got {text!r}") from None


def _whole(text: str, where: str) -> int:
    if not text.isdigit():
        raise ParseError(f"{where}: expected a whole number >= 0, got {text!r}")
    return int(text)


class _Rows:
    """The data rows of one family, with the line number of each for messages."""

    def __init__(self, rows: list[tuple[int, list[str]]], label_columns: dict[str, int]) -> None:
        self.rows = rows
        self.label_columns = label_columns
        first = rows[0][1]
        self.name = first[_FAMILY]
        self.meta = (first[_TYPE], first[_UNIT], first[_HELP], first[_MERGE], first[_LABELS])
        self.names = tuple(first[_LABELS].split(",")) if first[_LABELS] else ()
        for number, row in rows:
            meta = (row[_TYPE], row[_UNIT], row[_HELP], row[_MERGE], row[_LABELS])
            if meta != self.meta:
                raise ParseError(
                    f"line {number}: family {self.name!r} changes its type, unit, help, "
                    "merge or labels from one row to the next"
                )
        for n in self.names:
            if n not in label_columns:
                raise ParseError(
                    f"line {rows[0][0]}: family {self.name!r} has label {n!r} but the header "
                    f"has no {LABEL_PREFIX}{n} column"
                )

    def labels(self, number: int, row: list[str]) -> tuple[str, ...]:
        own = set(self.names)
        for n, column in self.label_columns.items():
            if n not in own and row[column]:
                raise ParseError(
                    f"line {number}: {LABEL_PREFIX}{n} has a value but family "
                    f"{self.name!r} has no label {n!r}"
                )
        return tuple(row[self.label_columns[n]] for n in self.names)


def _scalar_samples(rows: _Rows, kind: MetricType) -> list[AnySample]:
    expected = f"{rows.name}_total" if kind is MetricType.COUNTER else rows.name
    samples: list[AnySample] = []
    for number, row in rows.rows:
        if row[_SAMPLE] != expected:
            raise ParseError(f"line {number}: expected sample {expected!r}, got {row[_SAMPLE]!r}")
        samples.append(Sample(rows.labels(number, row), _number(row[_VALUE], f"line {number}")))
    return samples


def _histogram_samples(rows: _Rows) -> tuple[list[AnySample], tuple[float, ...] | None]:
    name = rows.name
    samples: list[AnySample] = []
    bounds: tuple[float, ...] | None = None
    les: list[float] = []
    counts: list[int] = []
    total: float | None = None
    labels: tuple[str, ...] | None = None
    for number, row in rows.rows:
        where = f"line {number}"
        these = rows.labels(number, row)
        if labels is not None and these != labels:
            raise ParseError(f"{where}: a histogram sample's rows change labels before _count")
        labels = these
        sample = row[_SAMPLE]
        if sample == f"{name}_bucket":
            if total is not None:
                raise ParseError(f"{where}: a _bucket row after the sample's _sum row")
            les.append(_number(row[_LE], f"{where} (le)"))
            counts.append(_whole(row[_VALUE], where))
        elif sample == f"{name}_sum":
            if total is not None:
                raise ParseError(f"{where}: a second _sum row for one sample")
            total = _number(row[_VALUE], where)
        elif sample == f"{name}_count":
            if total is None:
                raise ParseError(f"{where}: a _count row without a _sum row before it")
            if bounds is None:
                bounds = tuple(les)
            elif tuple(les) != bounds:
                raise ParseError(f"{where}: this sample's le bounds differ from the first's")
            samples.append(
                HistogramSample(labels, tuple(counts), total, _whole(row[_VALUE], where))
            )
            les, counts, total, labels = [], [], None, None
        else:
            raise ParseError(f"{where}: unexpected sample {sample!r} in histogram {name!r}")
    if labels is not None:
        raise ParseError(f"line {rows.rows[-1][0]}: histogram {name!r} ends without a _count row")
    return samples, bounds


def _family(rows: _Rows) -> Family:
    type_text, unit, help_text, merge_text, _ = rows.meta
    where = f"line {rows.rows[0][0]}"
    try:
        kind = MetricType(type_text)
    except ValueError:
        raise ParseError(f"{where}: unknown type {type_text!r}") from None
    try:
        merge = GaugeMerge(merge_text) if merge_text else None
    except ValueError:
        raise ParseError(f"{where}: unknown merge mode {merge_text!r}") from None
    bounds: tuple[float, ...] = ()
    if all(not row[_SAMPLE] for _, row in rows.rows):
        # A family without samples: its rows carry only metadata (and bucket bounds).
        if kind is MetricType.HISTOGRAM:
            bounds = tuple(_number(row[_LE], f"line {n} (le)") for n, row in rows.rows if row[_LE])
        samples: list[AnySample] = []
    elif kind is MetricType.HISTOGRAM:
        samples, found = _histogram_samples(rows)
        bounds = found or ()
    else:
        samples = _scalar_samples(rows, kind)
    return Family(
        name=rows.name,
        type=kind,
        documentation=help_text,
        labelnames=rows.names,
        samples=samples,
        unit=unit,
        buckets=bounds,
        merge=merge,
    )


def _grouped(records: Iterator[list[str]], width: int) -> Iterator[list[tuple[int, list[str]]]]:
    group: list[tuple[int, list[str]]] = []
    for number, row in enumerate(records, start=2):
        if len(row) != width:
            raise ParseError(f"line {number}: expected {width} fields, got {len(row)}")
        if group and row[_FAMILY] != group[0][1][_FAMILY]:
            yield group
            group = []
        group.append((number, row))
    if group:
        yield group


def _check_header(header: Sequence[str]) -> dict[str, int]:
    fixed = tuple(header[: len(FIXED_COLUMNS)])
    if fixed != FIXED_COLUMNS:
        raise ParseError(
            f"line 1: expected the header to start with {','.join(FIXED_COLUMNS)}, "
            f"got {','.join(fixed)}"
        )
    label_columns: dict[str, int] = {}
    for position, column in enumerate(header[len(FIXED_COLUMNS) :], start=len(FIXED_COLUMNS)):
        if not column.startswith(LABEL_PREFIX) or len(column) == len(LABEL_PREFIX):
            raise ParseError(f"line 1: expected a {LABEL_PREFIX}<name> column, got {column!r}")
        label_columns[column[len(LABEL_PREFIX) :]] = position
    return label_columns


def parse(data: bytes | str) -> Snapshot:
    """Return the snapshot a metricache CSV table holds.

    Raises :class:`ParseError` naming the line of the first problem. A table without
    data rows (an empty snapshot) gives an empty snapshot with default metadata.
    Line numbers count records, so they are off for fields that span lines.
    """
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        raise ParseError(f"not UTF-8: {exc}") from None
    records = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(records, None)
        if header is None:
            raise ParseError("line 1: expected a header, the table is empty")
        label_columns = _check_header(header)
        families: list[Family] = []
        meta: tuple[str, str, str, str] | None = None
        for group in _grouped(records, len(header)):
            for number, row in group:
                these = (row[_TIMESTAMP], row[_VIEW], row[_INSTANCE], row[_STRATEGY])
                if meta is None:
                    meta = these
                elif these != meta:
                    raise ParseError(
                        f"line {number}: timestamp, view, instance or strategy differ from the "
                        "first row's (one table holds one snapshot)"
                    )
            families.append(_family(_Rows(group, label_columns)))
    except csv.Error as exc:
        raise ParseError(f"line {records.line_num}: {exc}") from None
    if meta is None:
        return Snapshot(families=())
    timestamp, view_text, instance, strategy = meta
    try:
        view = ViewKind(view_text)
    except ValueError:
        raise ParseError(f"line 2: view: expected merged or instance, got {view_text!r}") from None
    return Snapshot(
        families=families,
        timestamp=_number(timestamp, "line 2 (timestamp)"),
        view=view,
        instance=instance or None,
        strategy=strategy or None,
    )
