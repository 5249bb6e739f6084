"""The CSV format: a stable header, one row per sample value, exact round trips."""

from __future__ import annotations

import csv
import io
import math

import metricache
import metricache_csv
import pytest
from hypothesis import HealthCheck, given, settings
from metricache.formats import get_format, negotiate
from metricache.snapshot import Family, HistogramSample, MetricType, Sample, Snapshot, ViewKind

from tests.formats.snapshots import HOSTILE_VALUES, exact, hostile_snapshot, snapshots

FIXED = [
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
]


def rows(data: bytes) -> list[dict[str, str]]:
    """Read a table with the standard csv module, as any other consumer would."""
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))


def test_the_header_is_fixed_columns_then_sorted_label_columns() -> None:
    data = metricache_csv.render(hostile_snapshot())
    header = data.split(b"\r\n", 1)[0].decode()
    assert header.split(",") == [
        *FIXED,
        "label_kind",
        "label_method",
        "label_path",
        "label_zone",
    ]
    assert list(metricache_csv.FIXED_COLUMNS) == FIXED


def test_a_hostile_snapshot_parses_back_exactly() -> None:
    snapshot = hostile_snapshot()
    back = metricache_csv.parse(metricache_csv.render(snapshot))
    assert exact(back) == exact(snapshot)
    assert [s.labels[0] for s in back["http_requests"].samples] == list(HOSTILE_VALUES)


def test_any_csv_reader_reads_the_exact_label_values() -> None:
    snapshot = hostile_snapshot()
    table = rows(metricache_csv.render(snapshot))
    read = [(r["label_method"], r["label_path"]) for r in table if r["family"] == "http_requests"]
    assert read == [s.labels for s in snapshot["http_requests"].samples]
    helps = {r["help"] for r in table if r["family"] == "http_requests"}
    assert helps == {snapshot["http_requests"].documentation}


def test_one_row_per_sample_and_histogram_rows_with_le_sum_and_count() -> None:
    registry = metricache.Registry()
    requests = metricache.Counter("requests", "Requests", ["method"], registry=registry)
    requests.labels("GET").inc(2)
    requests.labels("POST").inc()
    hist = metricache.Histogram("job_seconds", "Jobs", buckets=(0.5, 1.0), registry=registry)
    hist.observe(0.25)
    hist.observe(0.75)
    table = rows(metricache_csv.render(registry.snapshot()))
    got = [(r["sample"], r["le"], r["value"], r["label_method"]) for r in table]
    assert got == [
        ("job_seconds_bucket", "0.5", "1", ""),
        ("job_seconds_bucket", "1.0", "2", ""),
        ("job_seconds_bucket", "+Inf", "2", ""),
        ("job_seconds_sum", "", "1.0", ""),
        ("job_seconds_count", "", "2", ""),
        ("requests_total", "", "2.0", "GET"),
        ("requests_total", "", "1.0", "POST"),
    ]
    assert {r["labels"] for r in table} == {"", "method"}


def test_an_empty_label_value_differs_from_an_absent_label() -> None:
    snapshot = Snapshot(
        families=[
            Family("a", MetricType.COUNTER, "has path", ("path",), [Sample(("",), 1.0)]),
            Family("b", MetricType.COUNTER, "has no path", (), [Sample((), 2.0)]),
        ],
        timestamp=1.0,
    )
    data = metricache_csv.render(snapshot)
    table = rows(data)
    assert [(r["labels"], r["label_path"]) for r in table] == [("path", ""), ("", "")]
    back = metricache_csv.parse(data)
    assert back["a"].labelnames == ("path",)
    assert back["a"].samples == (Sample(("",), 1.0),)
    assert back["b"].labelnames == ()
    # A value in the column of a label the family does not have is an error, not data.
    lines = data.decode().split("\r\n")
    assert lines[2].endswith(",")  # the last cell, label_path, is empty
    lines[2] += "oops"
    with pytest.raises(metricache_csv.ParseError, match="line 3: label_path has a value"):
        metricache_csv.parse("\r\n".join(lines))


def test_families_without_samples_keep_their_metadata_and_bounds() -> None:
    registry = metricache.Registry()
    metricache.Counter("jobs", "Jobs by queue", ["queue"], registry=registry)
    metricache.Histogram("waits", "Waits", ["queue"], buckets=(1.0, 2.0), registry=registry)
    snapshot = registry.snapshot(instance="w-1")
    data = metricache_csv.render(snapshot)
    table = rows(data)
    assert [(r["family"], r["sample"], r["le"], r["value"]) for r in table] == [
        ("jobs", "", "", ""),
        ("waits", "", "1.0", ""),
        ("waits", "", "2.0", ""),
        ("waits", "", "+Inf", ""),
    ]
    assert exact(metricache_csv.parse(data)) == exact(snapshot)


def test_an_empty_snapshot_is_the_header_alone() -> None:
    data = metricache_csv.render(Snapshot(families=(), timestamp=5.0, view=ViewKind.MERGED))
    assert data == (",".join(FIXED) + "\r\n").encode()
    assert metricache_csv.parse(data).families == ()


def test_values_are_exact_text_and_non_finite_values_are_named() -> None:
    table = rows(metricache_csv.render(hostile_snapshot()))
    values = {r["label_zone"]: r["value"] for r in table if r["family"] == "temperature"}
    assert values == {
        "hot": "+Inf",
        "cold": "-Inf",
        "broken": "NaN",
        "zero": "-0.0",
        "": "1e-300",
        "big": "1.7976931348623157e+308",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "line 1: expected a header"),
        ("family,type\r\n", "line 1: expected the header to start with family,type,sample"),
        (",".join([*FIXED, "zone"]) + "\r\n", "line 1: expected a label_<name> column, got 'zone'"),
        (
            ",".join(FIXED) + "\r\nx,counter,x_total,,1.0\r\n",
            "line 2: expected 13 fields, got 5",
        ),
        (
            ",".join(FIXED) + "\r\nx,counter,x,,1.0,,,,,1.0,merged,,\r\n",
            "line 2: expected sample 'x_total', got 'x'",
        ),
        (
            ",".join(FIXED) + "\r\nx,summary,x,,1.0,,,,,1.0,merged,,\r\n",
            "line 2: unknown type 'summary'",
        ),
        (
            ",".join(FIXED) + "\r\nx,gauge,x,,lots,,,,,1.0,merged,,\r\n",
            "line 2: expected a number",
        ),
        (
            ",".join(FIXED) + "\r\nh,histogram,h_bucket,+Inf,1,,,,,1.0,merged,,\r\n",
            "histogram 'h' ends without a _count row",
        ),
        (
            ",".join(FIXED)
            + "\r\nx,gauge,x,,1.0,,,,,1.0,merged,,\r\ny,gauge,y,,1.0,,,,,2.0,merged,,\r\n",
            "line 3: timestamp, view, instance or strategy differ",
        ),
        (
            ",".join(FIXED) + '\r\nx,gauge,x,,1.0,,"unclosed\r\n',
            "unexpected end of data",
        ),
    ],
)
def test_parse_names_the_line_of_a_problem(text: str, message: str) -> None:
    with pytest.raises(metricache_csv.ParseError) as caught:
        metricache_csv.parse(text.encode())
    assert message in str(caught.value)


def test_a_histogram_row_changing_labels_mid_sample_is_rejected() -> None:
    snapshot = Snapshot(
        families=[
            Family(
                "h",
                MetricType.HISTOGRAM,
                "",
                ("k",),
                [HistogramSample(("a",), (1, 1), 1.0, 1)],
                buckets=(1.0, math.inf),
            )
        ],
        timestamp=1.0,
    )
    lines = metricache_csv.render(snapshot).decode().split("\r\n")
    lines[2] = lines[2][: -len("a")] + "b"
    with pytest.raises(metricache_csv.ParseError, match="line 3: a histogram sample's rows"):
        metricache_csv.parse("\r\n".join(lines))


def test_the_plugin_offers_the_format_by_name_and_media_type() -> None:
    fmt = get_format("csv")
    assert fmt.content_type == "text/csv; charset=utf-8; header=present"
    assert fmt.extension == "csv"
    chosen = negotiate("text/csv")
    assert chosen is not None
    assert chosen.name == "csv"
    snapshot = hostile_snapshot()
    assert metricache.render(snapshot, "csv") == metricache_csv.render(snapshot)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(snapshots())
def test_any_snapshot_parses_back_exactly(snapshot: Snapshot) -> None:
    back = metricache_csv.parse(metricache_csv.render(snapshot))
    if snapshot.families:
        assert exact(back) == exact(snapshot)
    else:
        # With no rows there is nowhere to keep the metadata (documented).
        assert back.families == ()
