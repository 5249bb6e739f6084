"""Prometheus text exposition 0.0.4 and OpenMetrics 1.0 text, from one snapshot.

Both share the sample lines; they differ in the family header (a counter's HELP and
TYPE name ``x_total`` in 0.0.4 and ``x`` in OpenMetrics), in ``# UNIT`` lines, in
how HELP text is escaped, and in OpenMetrics' closing ``# EOF``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from metricache.snapshot import Family, HistogramSample, MetricType, Sample, Snapshot

__all__ = ["escape_label_value", "format_value", "render_openmetrics", "render_prometheus"]


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


def _label_renderer(labelnames: tuple[str, ...]) -> Callable[[tuple[str, ...]], str]:
    """Return a function that renders label values as ``{a="x",b="y"}`` (``""`` if none)."""
    if not labelnames:
        return lambda values: ""
    prefixes = [f'{name}="' for name in labelnames]
    prefixes[0] = "{" + prefixes[0]
    prefixes = [prefixes[0]] + ["," + p for p in prefixes[1:]]
    esc = escape_label_value

    def render(values: tuple[str, ...]) -> str:
        return "".join([p + esc(v) + '"' for p, v in zip(prefixes, values)]) + "}"

    return render


def _bucket_labels(labelnames: tuple[str, ...], buckets: tuple[float, ...]) -> list[str]:
    """Return, per bucket, the text that closes a ``_bucket`` line's label set."""
    sep = "," if labelnames else "{"
    return [f'{sep}le="{format_value(b)}"}} ' for b in buckets]


def _render_samples(family: Family, out: list[str], counter_suffix: str) -> None:
    name = family.name
    labels_of = _label_renderer(family.labelnames)
    fmt = format_value
    if family.type is MetricType.HISTOGRAM:
        closers = _bucket_labels(family.labelnames, family.buckets)
        bucket = f"{name}_bucket"
        for s in family.samples:
            if not isinstance(s, HistogramSample):
                continue
            labels = labels_of(s.labels)
            open_labels = labels[:-1] if labels else ""
            for closer, count in zip(closers, s.buckets):
                out.append(f"{bucket}{open_labels}{closer}{count}\n")
            out.append(f"{name}_sum{labels} {fmt(s.sum)}\n")
            out.append(f"{name}_count{labels} {s.count}\n")
        return
    sample_name = name + counter_suffix if family.type is MetricType.COUNTER else name
    for s in family.samples:
        if isinstance(s, Sample):
            out.append(f"{sample_name}{labels_of(s.labels)} {fmt(s.value)}\n")


def render_prometheus(snapshot: Snapshot) -> bytes:
    """Render a snapshot as Prometheus text exposition format 0.0.4."""
    out: list[str] = []
    for family in snapshot.families:
        header = family.name + "_total" if family.type is MetricType.COUNTER else family.name
        out.append(f"# HELP {header} {_escape_help_004(family.documentation)}\n")
        out.append(f"# TYPE {header} {family.type.value}\n")
        _render_samples(family, out, "_total")
    return "".join(out).encode("utf-8")


def render_openmetrics(snapshot: Snapshot) -> bytes:
    """Render a snapshot as OpenMetrics 1.0 text, ending with ``# EOF``."""
    out: list[str] = []
    for family in snapshot.families:
        out.append(f"# TYPE {family.name} {family.type.value}\n")
        if family.unit:
            out.append(f"# UNIT {family.name} {family.unit}\n")
        out.append(f"# HELP {family.name} {_escape_help_om(family.documentation)}\n")
        _render_samples(family, out, "_total")
    out.append("# EOF\n")
    return "".join(out).encode("utf-8")
