"""The JSON format: a documented metricache/v1 shape that parses back to the same snapshot."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import metricache
import metricache_json
import pytest
from hypothesis import HealthCheck, given, settings
from metricache.formats import get_format, negotiate
from metricache.snapshot import (
    Family,
    GaugeMerge,
    HistogramSample,
    MetricType,
    Sample,
    Snapshot,
    ViewKind,
)

from tests.formats.snapshots import HOSTILE_VALUES, exact, hostile_snapshot, snapshots

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "docs" / "metricache-export.schema.json"
VALIDATOR = jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))


def test_the_schema_file_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(VALIDATOR.schema)


def test_a_hostile_snapshot_parses_back_exactly() -> None:
    snapshot = hostile_snapshot()
    data = metricache_json.render(snapshot)
    back = metricache_json.parse(data)
    assert exact(back) == exact(snapshot)
    parsed_values = [s.labels[0] for s in back["http_requests"].samples]
    assert parsed_values == list(HOSTILE_VALUES)
    VALIDATOR.validate(json.loads(data))


def test_histograms_keep_every_bucket_sum_and_count() -> None:
    registry = metricache.Registry()
    hist = metricache.Histogram(
        "job_seconds", "Job time", ["queue"], buckets=(0.5, 1.0, 5.0), registry=registry
    )
    for value in (0.1, 0.7, 0.7, 3.0, 9.0):
        hist.labels("default").observe(value)
    document = json.loads(metricache_json.render(registry.snapshot()))
    (family,) = document["families"]
    assert family["buckets"] == [0.5, 1.0, 5.0, "+Inf"]
    assert family["samples"] == [
        {
            "labels": {"queue": "default"},
            "buckets": [
                {"le": "0.5", "count": 1},
                {"le": "1.0", "count": 3},
                {"le": "5.0", "count": 4},
                {"le": "+Inf", "count": 5},
            ],
            "sum": 0.1 + 0.7 + 0.7 + 3.0 + 9.0,
            "count": 5,
        }
    ]


def test_the_document_has_the_documented_shape() -> None:
    snapshot = Snapshot(
        families=[
            Family(
                "requests",
                MetricType.COUNTER,
                "Requests served",
                ("method",),
                [Sample(("GET",), 3.0)],
            ),
            Family(
                "queue_depth",
                MetricType.GAUGE,
                "Jobs waiting",
                (),
                [Sample((), math.inf)],
                merge=GaugeMerge.MAX,
            ),
            Family(
                "latency",
                MetricType.HISTOGRAM,
                "Latency",
                (),
                [HistogramSample((), (1, 2), 0.75, 2)],
                unit="seconds",
                buckets=(0.5, math.inf),
            ),
        ],
        timestamp=1700000000.5,
        view=ViewKind.INSTANCE,
        instance="web-1",
        strategy="local_only",
    )
    assert json.loads(metricache_json.render(snapshot)) == {
        "schema": "metricache/v1",
        "view": "instance",
        "instance": "web-1",
        "strategy": "local_only",
        "timestamp": 1700000000.5,
        "families": [
            {
                "name": "requests",
                "type": "counter",
                "help": "Requests served",
                "unit": "",
                "labels": ["method"],
                "samples": [{"labels": {"method": "GET"}, "value": 3.0}],
            },
            {
                "name": "queue_depth",
                "type": "gauge",
                "help": "Jobs waiting",
                "unit": "",
                "labels": [],
                "merge": "max",
                "samples": [{"labels": {}, "value": "+Inf"}],
            },
            {
                "name": "latency",
                "type": "histogram",
                "help": "Latency",
                "unit": "seconds",
                "labels": [],
                "buckets": [0.5, "+Inf"],
                "samples": [
                    {
                        "labels": {},
                        "buckets": [{"le": "0.5", "count": 1}, {"le": "+Inf", "count": 2}],
                        "sum": 0.75,
                        "count": 2,
                    }
                ],
            },
        ],
    }


def test_non_finite_numbers_are_strings_and_come_back() -> None:
    for value, text in ((math.inf, "+Inf"), (-math.inf, "-Inf"), (math.nan, "NaN")):
        assert metricache_json.encode_number(value) == text
        back = metricache_json.decode_number(text)
        assert back == value or (math.isnan(back) and math.isnan(value))
    # The document is strict JSON: no bare Infinity or NaN a strict parser would reject.
    data = metricache_json.render(hostile_snapshot()).decode("utf-8")
    for bare in ("Infinity", ": NaN", ":NaN"):
        assert bare not in data
    json.loads(data, parse_constant=lambda name: pytest.fail(f"bare {name} in the document"))


def test_text_is_utf8_without_escapes_for_non_ascii() -> None:
    data = metricache_json.render(hostile_snapshot())
    assert "日本語".encode() in data


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(schema="metricache/v2"), "schema: expected 'metricache/v1'"),
        (lambda d: d.update(view="both"), "view: expected merged or instance"),
        (lambda d: d.pop("timestamp"), "document: missing key 'timestamp'"),
        (
            lambda d: d["families"][0]["samples"][0].update(value="1.5"),
            "families[0].samples[0].value: expected a number",
        ),
        (
            lambda d: d["families"][0]["samples"][0]["labels"].pop("method"),
            "families[0].samples[0].labels: expected the labels ['method', 'path']",
        ),
        (
            lambda d: d["families"][3]["samples"][1]["buckets"][2].update(le="2.0"),
            "families[3].samples[1].buckets[2].le: expected 1.0",
        ),
        (
            lambda d: d["families"][3]["samples"][0]["buckets"].pop(),
            "families[3].samples[0].buckets: expected 6 buckets",
        ),
        (
            lambda d: d["families"][3]["samples"][0].update(count=-1),
            "families[3].samples[0].count: expected a whole number >= 0",
        ),
        (lambda d: d["families"][1].update(type="summary"), "families[1].type: expected counter"),
        (lambda d: d["families"][1].update(merge="avg"), "families[1].merge: expected one of"),
    ],
)
def test_parse_names_the_place_of_a_problem(change: Any, message: str) -> None:
    document = json.loads(metricache_json.render(hostile_snapshot()))
    change(document)
    with pytest.raises(metricache_json.ParseError) as caught:
        metricache_json.parse(json.dumps(document))
    assert message in str(caught.value)


def test_parse_rejects_what_is_not_json() -> None:
    with pytest.raises(metricache_json.ParseError, match="not JSON"):
        metricache_json.parse(b"\xff{")
    with pytest.raises(metricache_json.ParseError, match="document: expected an object"):
        metricache_json.parse(b"[]")


def test_the_plugin_offers_the_format_by_name_and_media_type() -> None:
    fmt = get_format("json")
    assert fmt.content_type == "application/json"
    assert fmt.extension == "json"
    assert negotiate("application/json") is not None
    assert negotiate("application/json").name == "json"  # type: ignore[union-attr]
    snapshot = hostile_snapshot()
    assert metricache.render(snapshot, "json") == metricache_json.render(snapshot)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(snapshots())
def test_any_snapshot_parses_back_exactly(snapshot: Snapshot) -> None:
    data = metricache_json.render(snapshot)
    assert exact(metricache_json.parse(data)) == exact(snapshot)
    VALIDATOR.validate(json.loads(data))
