"""The ``metricache/v1`` JSON shape: render a snapshot to it, parse it back.

The shape is documented in ``docs/json-schema.md`` and described by the JSON Schema
``docs/metricache-export.schema.json``. JSON has no literal for infinities and NaN,
so non-finite numbers are written as the strings ``"+Inf"``, ``"-Inf"`` and ``"NaN"``
(as Prometheus writes them); every finite number is a JSON number whose text
round-trips to the same float.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

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

__all__ = ["SCHEMA", "ParseError", "decode_number", "encode_number", "parse", "render"]

SCHEMA = "metricache/v1"
"""The value of the top-level ``schema`` key; it changes when the shape does."""

_NON_FINITE = {"+Inf": math.inf, "-Inf": -math.inf, "NaN": math.nan}


class ParseError(ValueError):
    """The bytes are not a ``metricache/v1`` JSON document; the message says where."""


def encode_number(value: float) -> float | str:
    """Return ``value`` as JSON can hold it: a float, or ``"+Inf"``/``"-Inf"``/``"NaN"``."""
    value = float(value)
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "+Inf" if value > 0 else "-Inf"


def _le(bound: float) -> str:
    encoded = encode_number(bound)
    return encoded if isinstance(encoded, str) else repr(encoded)


def _family(family: Family) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": family.name,
        "type": family.type.value,
        "help": family.documentation,
        "unit": family.unit,
        "labels": list(family.labelnames),
    }
    names = family.labelnames
    if family.type is MetricType.GAUGE:
        out["merge"] = family.merge.value if family.merge is not None else None
    if family.type is MetricType.HISTOGRAM:
        out["buckets"] = [encode_number(b) for b in family.buckets]
        les = [_le(b) for b in family.buckets]
        out["samples"] = [
            {
                "labels": dict(zip(names, s.labels)),
                "buckets": [{"le": le, "count": c} for le, c in zip(les, s.buckets)],
                "sum": encode_number(s.sum),
                "count": s.count,
            }
            for s in family.samples
            if isinstance(s, HistogramSample)
        ]
    else:
        samples = family.samples
        if isinstance(samples, SampleColumns):
            # A registry snapshot's columns: no Sample objects need building.
            pairs: Iterable[tuple[tuple[str, ...], float]] = zip(samples.labelsets, samples.values)
        else:
            pairs = ((s.labels, s.value) for s in samples if isinstance(s, Sample))
        out["samples"] = [
            {"labels": dict(zip(names, labels)), "value": encode_number(value)}
            for labels, value in pairs
        ]
    return out


def render(snapshot: Snapshot, *, indent: int | None = None) -> bytes:
    """Return ``snapshot`` as a ``metricache/v1`` JSON document (UTF-8)."""
    document = {
        "schema": SCHEMA,
        "view": snapshot.view.value,
        "instance": snapshot.instance,
        "strategy": snapshot.strategy,
        "timestamp": encode_number(snapshot.timestamp),
        "families": [_family(f) for f in snapshot.families],
    }
    separators = (",", ":") if indent is None else (",", ": ")
    text = json.dumps(
        document, ensure_ascii=False, allow_nan=False, indent=indent, separators=separators
    )
    return (text + "\n").encode("utf-8")


# -- parsing ----------------------------------------------------------------------------


def _expect(value: Any, kind: type | tuple[type, ...], where: str, what: str) -> Any:
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise ParseError(f"{where}: expected {what}, got {_show(value)}")
    return value


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


def decode_number(value: Any, where: str = "value") -> float:
    """Return the float a JSON number or ``"+Inf"``/``"-Inf"``/``"NaN"`` stands for."""
    if isinstance(value, str):
        if value in _NON_FINITE:
            return _NON_FINITE[value]
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise ParseError(f'{where}: expected a number, "+Inf", "-Inf" or "NaN", got {_show(value)}')


def _parse_le(value: Any, where: str) -> float:
    text: str = _expect(value, str, where, 'a string such as "0.5" or "+Inf"')
    if text in _NON_FINITE:
        return _NON_FINITE[text]
    try:
        bound = float(text)
    except ValueError:
        bound = math.nan
    if not math.isfinite(bound):
        raise ParseError(f'{where}: expected a string such as "0.5" or "+Inf", got {_show(text)}')
    return bound


def _count(value: Any, where: str) -> int:
    number: int = _expect(value, int, where, "a whole number")
    if number < 0:
        raise ParseError(f"{where}: expected a whole number >= 0, got {number}")
    return number


def _member(obj: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in obj:
        raise ParseError(f"{where}: missing key {key!r}")
    return obj[key]


def _optional_text(value: Any, where: str) -> str | None:
    if value is None:
        return None
    text: str = _expect(value, str, where, "a string or null")
    return text


def _labels(value: Any, names: tuple[str, ...], where: str) -> tuple[str, ...]:
    labels: dict[str, Any] = _expect(value, dict, where, "an object")
    if set(labels) != set(names):
        raise ParseError(f"{where}: expected the labels {list(names)}, got {sorted(labels)}")
    return tuple(_expect(labels[n], str, f"{where}.{n}", "a string") for n in names)


def _histogram_sample(
    raw: Mapping[str, Any], names: tuple[str, ...], bounds: tuple[float, ...], where: str
) -> HistogramSample:
    labels = _labels(_member(raw, "labels", where), names, f"{where}.labels")
    buckets = _expect(_member(raw, "buckets", where), list, f"{where}.buckets", "an array")
    if len(buckets) != len(bounds):
        raise ParseError(
            f"{where}.buckets: expected {len(bounds)} buckets (one per bound), got {len(buckets)}"
        )
    counts = []
    for i, (bucket, bound) in enumerate(zip(buckets, bounds)):
        at = f"{where}.buckets[{i}]"
        _expect(bucket, dict, at, "an object")
        le = _parse_le(_member(bucket, "le", at), f"{at}.le")
        if le != bound:
            raise ParseError(f"{at}.le: expected {_le(bound)}, got {_show(bucket['le'])}")
        counts.append(_count(_member(bucket, "count", at), f"{at}.count"))
    return HistogramSample(
        labels=labels,
        buckets=tuple(counts),
        sum=decode_number(_member(raw, "sum", where), f"{where}.sum"),
        count=_count(_member(raw, "count", where), f"{where}.count"),
    )


def _parse_family(raw: Any, where: str) -> Family:
    _expect(raw, dict, where, "an object")
    name = _expect(_member(raw, "name", where), str, f"{where}.name", "a string")
    type_text = _expect(_member(raw, "type", where), str, f"{where}.type", "a string")
    try:
        kind = MetricType(type_text)
    except ValueError:
        raise ParseError(
            f"{where}.type: expected counter, gauge or histogram, got {_show(type_text)}"
        ) from None
    help_text = _expect(_member(raw, "help", where), str, f"{where}.help", "a string")
    unit = _expect(_member(raw, "unit", where), str, f"{where}.unit", "a string")
    raw_names = _expect(_member(raw, "labels", where), list, f"{where}.labels", "an array")
    names = tuple(
        _expect(n, str, f"{where}.labels[{i}]", "a string") for i, n in enumerate(raw_names)
    )
    merge: GaugeMerge | None = None
    if kind is MetricType.GAUGE and raw.get("merge") is not None:
        text = _expect(raw["merge"], str, f"{where}.merge", "a string or null")
        try:
            merge = GaugeMerge(text)
        except ValueError:
            modes = ", ".join(m.value for m in GaugeMerge)
            raise ParseError(f"{where}.merge: expected one of {modes}, got {_show(text)}") from None
    bounds: tuple[float, ...] = ()
    if kind is MetricType.HISTOGRAM:
        raw_bounds = _expect(_member(raw, "buckets", where), list, f"{where}.buckets", "an array")
        bounds = tuple(decode_number(b, f"{where}.buckets[{i}]") for i, b in enumerate(raw_bounds))
    raw_samples = _expect(_member(raw, "samples", where), list, f"{where}.samples", "an array")
    samples: list[AnySample] = []
    for i, item in enumerate(raw_samples):
        at = f"{where}.samples[{i}]"
        _expect(item, dict, at, "an object")
        if kind is MetricType.HISTOGRAM:
            samples.append(_histogram_sample(item, names, bounds, at))
        else:
            labels = _labels(_member(item, "labels", at), names, f"{at}.labels")
            samples.append(Sample(labels, decode_number(_member(item, "value", at), f"{at}.value")))
    return Family(
        name=name,
        type=kind,
        documentation=help_text,
        labelnames=names,
        samples=samples,
        unit=unit,
        buckets=bounds,
        merge=merge,
    )


def parse(data: bytes | str) -> Snapshot:
    """Return the snapshot a ``metricache/v1`` JSON document holds.

    Raises :class:`ParseError` naming the place of the first problem.
    """
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ParseError(f"not JSON: {exc}") from None
    _expect(document, dict, "document", "an object")
    schema = _member(document, "schema", "document")
    if schema != SCHEMA:
        raise ParseError(f"schema: expected {SCHEMA!r}, got {_show(schema)}")
    view_text = _expect(_member(document, "view", "document"), str, "view", "a string")
    try:
        view = ViewKind(view_text)
    except ValueError:
        raise ParseError(f"view: expected merged or instance, got {_show(view_text)}") from None
    families = _expect(_member(document, "families", "document"), list, "families", "an array")
    return Snapshot(
        families=[_parse_family(f, f"families[{i}]") for i, f in enumerate(families)],
        timestamp=decode_number(_member(document, "timestamp", "document"), "timestamp"),
        view=view,
        instance=_optional_text(_member(document, "instance", "document"), "instance"),
        strategy=_optional_text(_member(document, "strategy", "document"), "strategy"),
    )
