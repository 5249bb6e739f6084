"""Prometheus text exposition 0.0.4 and OpenMetrics 1.0 text, from one snapshot.

Both share the sample lines; they differ in the family header (a counter's HELP and
TYPE name ``x_total`` in 0.0.4 and ``x`` in OpenMetrics), in ``# UNIT`` lines, in
how HELP text is escaped, in OpenMetrics' closing ``# EOF``, and in OpenMetrics'
rule that a histogram with negative buckets or a negative sum has no ``_sum`` (and
so no ``_count``).

Rendering is string building and nothing else, so it is done a family at a time:
label values are escaped only when some value of the family needs it, values are
formatted in bulk when they are all finite floats (the common case), and a family's
lines come out of one join over its interleaved columns.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from itertools import chain, repeat
from operator import attrgetter

from metricache.snapshot import (
    AnySample,
    Family,
    HistogramSample,
    MetricType,
    Sample,
    SampleColumns,
    Snapshot,
)

__all__ = ["escape_label_value", "format_value", "render_openmetrics", "render_prometheus"]

_COUNTER = MetricType.COUNTER
_HISTOGRAM = MetricType.HISTOGRAM
_float_repr = float.__repr__
_LABELS = attrgetter("labels")
_VALUE = attrgetter("value")


def format_value(value: float) -> str:
    """Return a sample value as Prometheus writes it (``+Inf``, ``-Inf``, ``NaN``)."""
    if value == math.inf:
        return "+Inf"
    if value == -math.inf:
        return "-Inf"
    if math.isnan(value):
        return "NaN"
    return repr(float(value))


def escape_label_value(value: str) -> str:
    """Escape backslash, double quote and newline in a label value."""
    if "\\" in value:
        value = value.replace("\\", "\\\\")
    if '"' in value:
        value = value.replace('"', '\\"')
    if "\n" in value:
        value = value.replace("\n", "\\n")
    return value


def _escape_help_004(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_help_om(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _value_texts(values: list[float]) -> Iterable[str]:
    """Format many values; ``float.__repr__`` in one pass when all are finite floats."""
    try:
        total = sum(values)
        # Any inf or NaN makes the total inf or NaN (so does an overflow, which only
        # sends us down the careful path).
        if total - total == 0:
            return list(map(_float_repr, values))
    except TypeError:  # an int or bool from a custom collector
        pass
    return [format_value(v) for v in values]


def _needs_escape(columns: Iterable[Iterable[str]]) -> bool:
    joined = "".join(["".join(column) for column in columns])
    return "\\" in joined or '"' in joined or "\n" in joined


def _escaped_labelsets(labelsets: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """Return the label sets with every value escaped, or as they are if none needs it."""
    if _needs_escape(labelsets):
        esc = escape_label_value
        return [tuple(map(esc, values)) for values in labelsets]
    return labelsets


def _literal(text: str) -> str:
    """Return ``text`` safe inside a ``%``-template (validated names never need it)."""
    return text.replace("%", "%%")


def _columns(samples: Sequence[AnySample]) -> tuple[Sequence[tuple[str, ...]], list[float]]:
    """Return the label sets and values of counter or gauge samples, column by column."""
    if isinstance(samples, SampleColumns):
        return samples.labelsets, list(samples.values)
    try:
        return list(map(_LABELS, samples)), list(map(_VALUE, samples))
    except AttributeError:  # a collector put a histogram sample here: skip it
        kept = [s for s in samples if isinstance(s, Sample)]
        return list(map(_LABELS, kept)), list(map(_VALUE, kept))


def _render_values(family: Family, sample_name: str, out: list[str]) -> None:
    labelsets, values = _columns(family.samples)
    if not values:
        return
    texts = _value_texts(values)
    labelnames = family.labelnames
    if not labelnames:
        out.append("".join([f"{sample_name} {text}\n" for text in texts]))
        return
    # The family's text is one join over interleaved columns: per sample
    # 'name{a="', a, '",b="', b, '"} ', value, newline -- no Python code per sample.
    columns: list[Iterable[str]] = list(zip(*labelsets))
    if _needs_escape(columns):
        columns = [list(map(escape_label_value, column)) for column in columns]
    pieces: list[Iterable[str]] = []
    for position, (label, column) in enumerate(zip(labelnames, columns)):
        opening = sample_name + "{" if position == 0 else '",'
        pieces += [repeat(f'{opening}{label}="'), column]
    pieces += [repeat('"} '), texts, repeat("\n")]
    out.append("".join(chain.from_iterable(zip(*pieces))))


def _render_histogram(family: Family, out: list[str], openmetrics: bool) -> None:
    name = family.name
    samples = [s for s in family.samples if isinstance(s, HistogramSample)]
    if not samples:
        return
    labelnames = family.labelnames
    # Per bucket, what follows the series' own labels: ``le="0.5"} `` .
    closers = [f'le="{format_value(bound)}"}} ' for bound in family.buckets]
    negative_buckets = any(bound < 0 for bound in family.buckets)
    labelsets = _escaped_labelsets([s.labels for s in samples])
    inner_template = "".join(f'{_literal(label)}="%s",' for label in labelnames)
    for s, labels in zip(samples, labelsets):
        inner = inner_template % labels if labelnames else ""
        open_bucket = f"{name}_bucket{{{inner}"
        out.append("".join([f"{open_bucket}{c}{n}\n" for c, n in zip(closers, s.buckets)]))
        if openmetrics and (negative_buckets or s.sum < 0):
            # OpenMetrics forbids _sum here, and _count may only come with _sum.
            continue
        braces = f"{{{inner[:-1]}}}" if labelnames else ""
        out.append(
            f"{name}_sum{braces} {format_value(s.sum)}\n{name}_count{braces} {int(s.count)}\n"
        )


def render_prometheus(snapshot: Snapshot) -> bytes:
    """Render a snapshot as Prometheus text exposition format 0.0.4."""
    out: list[str] = []
    for family in snapshot.families:
        kind = family.type
        header = family.name + "_total" if kind is _COUNTER else family.name
        out.append(
            f"# HELP {header} {_escape_help_004(family.documentation)}\n"
            f"# TYPE {header} {kind.value}\n"
        )
        if kind is _HISTOGRAM:
            _render_histogram(family, out, openmetrics=False)
        else:
            _render_values(family, header, out)
    return "".join(out).encode("utf-8")


def render_openmetrics(snapshot: Snapshot) -> bytes:
    """Render a snapshot as OpenMetrics 1.0 text, ending with ``# EOF``."""
    out: list[str] = []
    for family in snapshot.families:
        name = family.name
        kind = family.type
        out.append(f"# TYPE {name} {kind.value}\n")
        # OpenMetrics requires the family name to end with its unit; a collector's
        # family that breaks the rule keeps valid output by losing the UNIT line.
        if family.unit and name.endswith("_" + family.unit):
            out.append(f"# UNIT {name} {family.unit}\n")
        out.append(f"# HELP {name} {_escape_help_om(family.documentation)}\n")
        if kind is _HISTOGRAM:
            _render_histogram(family, out, openmetrics=True)
        else:
            _render_values(family, name + "_total" if kind is _COUNTER else name, out)
    out.append("# EOF\n")
    return "".join(out).encode("utf-8")
