"""Metric and label names follow Prometheus's rules; a bad one fails naming the rule."""

from __future__ import annotations

import pytest
from metricache import Counter, Gauge, Registry
from metricache.names import (
    LABEL_NAME_RULE,
    METRIC_NAME_RULE,
    full_metric_name,
    validate_label_names,
    validate_metric_name,
)


@pytest.mark.parametrize("name", ["a", "_a", "a:b", "http_requests", "A1_", ":colon_first"])
def test_valid_metric_names_pass(name: str) -> None:
    assert validate_metric_name(name) == name


@pytest.mark.parametrize("name", ["", "1abc", "with-dash", "white space", "ünïcode", "a.b"])
def test_invalid_metric_names_fail_naming_the_rule(name: str) -> None:
    with pytest.raises(ValueError) as info:
        Counter(name, "Doc", registry=Registry())
    assert str(info.value) == (
        f"invalid metric name {name!r}: a metric name must match {METRIC_NAME_RULE} "
        "(letters, digits, '_' and ':', not starting with a digit)"
    )


def test_the_rules_are_prometheus_ones() -> None:
    assert METRIC_NAME_RULE == "[a-zA-Z_:][a-zA-Z0-9_:]*"
    assert LABEL_NAME_RULE == "[a-zA-Z_][a-zA-Z0-9_]*"


@pytest.mark.parametrize("label", ["1st", "a:b", "with-dash", "ü", ""])
def test_invalid_label_names_fail_naming_the_rule(label: str) -> None:
    with pytest.raises(ValueError) as info:
        Gauge("g", "G", ["ok", label], registry=Registry())
    assert str(info.value) == (
        f"invalid label name {label!r} of metric 'g': a label name must match "
        f"{LABEL_NAME_RULE} (letters, digits and '_', not starting with a digit)"
    )


def test_double_underscore_label_names_are_reserved() -> None:
    with pytest.raises(ValueError) as info:
        Gauge("g", "G", ["__name__"], registry=Registry())
    assert str(info.value) == (
        "invalid label name '__name__' of metric 'g': names starting with '__' are "
        "reserved for Prometheus"
    )


def test_duplicate_and_non_text_label_names_fail() -> None:
    with pytest.raises(ValueError, match="duplicate label name 'a' of metric 'g'"):
        Gauge("g", "G", ["a", "b", "a"], registry=Registry())
    with pytest.raises(TypeError, match="label name of metric 'g' must be a str, got int"):
        Gauge("g", "G", ["a", 3], registry=Registry())  # type: ignore[list-item]
    with pytest.raises(TypeError, match="not the single string 'path'"):
        Gauge("g", "G", "path", registry=Registry())
    with pytest.raises(TypeError, match="metric name must be a str, got int"):
        validate_metric_name(5)  # type: ignore[arg-type]


def test_label_names_come_back_as_a_tuple() -> None:
    assert validate_label_names(["a", "b_2"], reserved=("le",)) == ("a", "b_2")
    with pytest.raises(ValueError, match="this metric type reserves it"):
        validate_label_names(["le"], reserved=("le",))


def test_full_names_join_namespace_subsystem_and_unit() -> None:
    assert full_metric_name("requests", "app", "http") == "app_http_requests"
    assert full_metric_name("latency", unit="seconds") == "latency_seconds"
    assert full_metric_name("latency_seconds", unit="seconds") == "latency_seconds"
    assert full_metric_name("x", subsystem="sub") == "sub_x"
    with pytest.raises(ValueError, match="invalid metric name 'my-app_x'"):
        full_metric_name("x", namespace="my-app")
