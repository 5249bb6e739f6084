"""Counter, Gauge and Histogram: the API of prometheus_client, checked value by value."""

from __future__ import annotations

import math
import types
from collections.abc import Iterator

import pytest
from metricache import DEFAULT_BUCKETS, Counter, Gauge, Histogram, Registry
from metricache.metrics import OVERFLOW_LABEL_VALUE
from metricache.snapshot import HistogramSample, Sample, Snapshot


def value(snapshot: Snapshot, name: str, *labels: str) -> float:
    sample = snapshot[name].sample(*labels)
    assert isinstance(sample, Sample), f"{name}{labels}: {sample!r}"
    return sample.value


def histogram(snapshot: Snapshot, name: str, *labels: str) -> HistogramSample:
    sample = snapshot[name].sample(*labels)
    assert isinstance(sample, HistogramSample), f"{name}{labels}: {sample!r}"
    return sample


class FakeClock:
    """Stands in for the ``time`` module inside metricache.metrics: readings on demand."""

    def __init__(self, *readings: float) -> None:
        self.readings: Iterator[float] = iter(readings)
        self.wall = 1_700_000_000.25

    def perf_counter(self) -> float:
        return next(self.readings)

    def time(self) -> float:
        return self.wall


@pytest.fixture
def registry() -> Registry:
    return Registry()


def use_clock(monkeypatch: pytest.MonkeyPatch, clock: FakeClock) -> None:
    fake = types.SimpleNamespace(perf_counter=clock.perf_counter, time=clock.time)
    monkeypatch.setattr("metricache.metrics.time", fake)


# -- counters ----------------------------------------------------------------------------


def test_counter_adds_up_and_is_exposed_under_its_base_name(registry: Registry) -> None:
    c = Counter("requests_total", "Requests", registry=registry)
    c.inc()
    c.inc(2.5)
    c.inc(0)
    assert c.name == "requests"
    assert value(registry.snapshot(), "requests") == 3.5


@pytest.mark.parametrize("amount", [-1.0, -0.0001, math.nan, math.inf, -math.inf])
def test_counter_rejects_negative_and_non_finite_increments(
    registry: Registry, amount: float
) -> None:
    c = Counter("jobs", "Jobs", ["kind"], registry=registry)
    child = c.labels("a")
    with pytest.raises(ValueError, match=r"counter 'jobs': inc\(\) takes a finite amount >= 0"):
        child.inc(amount)
    assert child.get() == 0.0


def test_unlabelled_counter_rejects_negative_increments_too(registry: Registry) -> None:
    c = Counter("jobs", "Jobs", registry=registry)
    with pytest.raises(ValueError, match="finite amount >= 0"):
        c.inc(-5)


def test_labels_positional_and_by_name_give_the_same_child(registry: Registry) -> None:
    c = Counter("hits", "Hits", ["method", "code"], registry=registry)
    a = c.labels("GET", "200")
    b = c.labels(method="GET", code="200")
    d = c.labels(code="200", method="GET")
    assert a is b is d
    assert a.labels == ("GET", "200")


def test_label_values_are_converted_with_str(registry: Registry) -> None:
    c = Counter("hits", "Hits", ["code", "ok"], registry=registry)
    c.labels(200, True).inc()
    assert c.labels("200", "True").get() == 1.0
    assert value(registry.snapshot(), "hits", "200", "True") == 1.0


def test_labels_rejects_wrong_counts_names_and_mixtures(registry: Registry) -> None:
    c = Counter("hits", "Hits", ["method", "code"], registry=registry)
    with pytest.raises(ValueError, match=r"takes 2 label values \['method', 'code'\], got 1"):
        c.labels("GET")
    with pytest.raises(ValueError, match=r"takes labels \['method', 'code'\], got \['method'\]"):
        c.labels(method="GET")
    with pytest.raises(ValueError, match="positionally or by name, not both"):
        c.labels("GET", code="200")
    with pytest.raises(ValueError, match=r"call \.labels\(\.\.\.\) first"):
        c.inc()


def test_an_unlabelled_metric_has_no_labels(registry: Registry) -> None:
    c = Counter("plain", "Plain", registry=registry)
    with pytest.raises(ValueError, match="has no labels; call its methods directly"):
        c.labels("x")
    with pytest.raises(ValueError, match="has no labels"):
        c.labels()


def test_count_exceptions_as_context_manager_and_decorator(registry: Registry) -> None:
    c = Counter("failures", "Failures", registry=registry)

    with pytest.raises(ValueError), c.count_exceptions(ValueError):
        raise ValueError("counted")
    with pytest.raises(KeyError), c.count_exceptions(ValueError):
        raise KeyError("another type: not counted")
    with c.count_exceptions():
        pass

    @c.count_exceptions((ZeroDivisionError, OverflowError))
    def divide(a: float, b: float) -> float:
        return a / b

    assert divide(6, 3) == 2
    with pytest.raises(ZeroDivisionError):
        divide(1, 0)
    assert c._only_child().get() == 2.0

    child = Counter("child_failures", "F", ["where"], registry=registry).labels("db")
    with pytest.raises(RuntimeError), child.count_exceptions():
        raise RuntimeError
    assert child.get() == 1.0


# -- gauges ------------------------------------------------------------------------------


def test_gauge_sets_increases_and_decreases(registry: Registry) -> None:
    g = Gauge("temperature", "Temperature", ["room"], registry=registry)
    kitchen = g.labels("kitchen")
    kitchen.set(20)
    kitchen.inc(2.5)
    kitchen.dec()
    kitchen.dec(0.25)
    g.labels("hall").dec(3)
    snap = registry.snapshot()
    assert value(snap, "temperature", "kitchen") == 21.25
    assert value(snap, "temperature", "hall") == -3.0


def test_gauge_accepts_non_finite_values(registry: Registry) -> None:
    g = Gauge("level", "Level", registry=registry)
    g.set(math.inf)
    assert value(registry.snapshot(), "level") == math.inf
    g.set(math.nan)
    assert math.isnan(value(registry.snapshot(), "level"))


def test_gauge_time_sets_the_duration(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    use_clock(monkeypatch, FakeClock(10.0, 12.5, 20.0, 20.75))
    g = Gauge("last_run_seconds", "Duration of the last run", registry=registry)
    with g.time():
        pass
    assert g._only_child().get() == 2.5

    @g.time()
    def run() -> str:
        return "done"

    assert run() == "done"
    assert g._only_child().get() == 0.75


def test_gauge_tracks_in_progress_and_current_time(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    use_clock(monkeypatch, clock)
    g = Gauge("busy", "In progress", registry=registry)
    with g.track_inprogress():
        assert g._only_child().get() == 1.0
        with g.track_inprogress():
            assert g._only_child().get() == 2.0
    assert g._only_child().get() == 0.0

    @g.track_inprogress()
    def work() -> float:
        return g._only_child().get()

    assert work() == 1.0
    assert g._only_child().get() == 0.0
    g.set_to_current_time()
    assert g._only_child().get() == clock.wall
    assert g._only_child().read() == (clock.wall, clock.wall)


def test_gauge_merge_mode_is_checked(registry: Registry) -> None:
    with pytest.raises(ValueError, match="merge mode must be one of sum, max, min, last"):
        Gauge("g", "G", merge="average", registry=registry)
    with pytest.raises(ValueError, match=r"'metricache_instance'.*reserves it"):
        Gauge("per", "P", ["metricache_instance"], merge="per_instance", registry=registry)
    # Prometheus's own target label is free: the merged view names instances otherwise.
    Gauge("per_host", "P", ["instance"], merge="per_instance", registry=registry)
    g = Gauge("mx", "M", merge="max", registry=registry)
    assert registry.snapshot()["mx"].merge is g.merge


# -- histograms --------------------------------------------------------------------------


def test_histogram_counts_each_observation_in_its_bucket(registry: Registry) -> None:
    h = Histogram("size_bytes", "Sizes", ["kind"], buckets=[1, 10, 100], registry=registry)
    child = h.labels("a")
    for amount in (0.5, 1, 1.5, 10, 99, 100, 100.5, 1e9, -3):
        child.observe(amount)
    sample = histogram(registry.snapshot(), "size_bytes", "a")
    # Upper bounds are inclusive: 1 lands in le="1", 100 in le="100".
    assert sample.buckets == (3, 5, 7, 9)
    assert sample.count == 9
    assert sample.sum == 0.5 + 1 + 1.5 + 10 + 99 + 100 + 100.5 + 1e9 - 3
    assert h.buckets == (1.0, 10.0, 100.0, math.inf)


def test_histogram_default_buckets_are_prometheus_ones(registry: Registry) -> None:
    h = Histogram("latency_seconds", "Latency", registry=registry)
    assert h.buckets == DEFAULT_BUCKETS
    prometheus_defaults = (
        0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, math.inf
    )  # fmt: skip
    assert prometheus_defaults == DEFAULT_BUCKETS
    h.observe(0.3)
    sample = histogram(registry.snapshot(), "latency_seconds")
    assert sample.buckets == (0,) * 7 + (1,) * 8


@pytest.mark.parametrize("amount", [math.nan, math.inf, -math.inf])
def test_histogram_rejects_non_finite_observations(registry: Registry, amount: float) -> None:
    h = Histogram("latency_seconds", "Latency", registry=registry)
    with pytest.raises(ValueError, match=r"observe\(\) takes a finite number"):
        h.observe(amount)
    assert histogram(registry.snapshot(), "latency_seconds").count == 0


@pytest.mark.parametrize(
    ("buckets", "error", "message"),
    [
        ([1.0, 0.5], ValueError, "strictly increasing"),
        ([1.0, 1.0], ValueError, "strictly increasing"),
        ([math.nan], ValueError, "must not be NaN"),
        ([math.inf], ValueError, "at least one finite bucket"),
        ([], ValueError, "at least one finite bucket"),
        ("1,2", TypeError, "sequence of numbers"),
    ],
)
def test_histogram_buckets_are_validated(
    registry: Registry, buckets: list[float], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        Histogram("h", "H", buckets=buckets, registry=registry)


def test_histogram_reserves_le(registry: Registry) -> None:
    with pytest.raises(ValueError, match=r"invalid label name 'le' of metric 'h'.*reserves it"):
        Histogram("h", "H", ["path", "le"], registry=registry)


def test_histogram_time_as_context_manager_and_decorator(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_clock(monkeypatch, FakeClock(1.0, 1.25, 5.0, 7.0, 9.0, 9.5))
    h = Histogram("job_seconds", "Jobs", buckets=[0.5, 1, 5], registry=registry)
    with h.time():
        pass

    @h.time()
    def job(fail: bool) -> int:
        if fail:
            raise RuntimeError("the failure is timed too")
        return 7

    assert job(False) == 7
    with pytest.raises(RuntimeError):
        job(True)
    sample = histogram(registry.snapshot(), "job_seconds")
    assert sample.sum == 0.25 + 2.0 + 0.5
    assert sample.buckets == (2, 2, 3, 3)


# -- naming, remove, clear ---------------------------------------------------------------


def test_names_are_built_like_prometheus_client(registry: Registry) -> None:
    assert Counter("requests", "R", namespace="app", subsystem="http", registry=registry).name == (
        "app_http_requests"
    )
    assert Histogram("latency", "L", unit="seconds", registry=registry).name == "latency_seconds"
    assert Gauge("disk_bytes", "D", unit="bytes", registry=registry).name == "disk_bytes"
    # _total goes before the unit is added, as prometheus_client does it.
    sent = Counter("sent_total", "Sent", unit="bytes", registry=registry)
    assert (sent.name, sent.unit) == ("sent_bytes", "bytes")
    assert registry.snapshot()["sent_bytes"].unit == "bytes"


def test_remove_forgets_one_series_and_clear_all(registry: Registry) -> None:
    c = Counter("hits", "Hits", ["path"], registry=registry)
    c.labels("/a").inc(3)
    c.labels("/b").inc(4)
    c.remove("/a")
    c.remove("/never-seen")  # forgetting what does not exist is no error
    assert [s.labels for s in registry.snapshot()["hits"].samples] == [("/b",)]
    assert c.labels("/a").get() == 0.0  # a new series starts from zero
    c.clear()
    assert list(registry.snapshot()["hits"].samples) == []
    with pytest.raises(ValueError, match="takes 1 label values"):
        c.remove("/a", "extra")


def test_clear_and_remove_need_labels(registry: Registry) -> None:
    c = Counter("plain", "Plain", registry=registry)
    with pytest.raises(ValueError, match="has no labels; there is nothing to clear"):
        c.clear()
    with pytest.raises(ValueError, match="has no labels"):
        c.remove()


def test_documentation_must_be_text(registry: Registry) -> None:
    with pytest.raises(TypeError, match="documentation must be a str"):
        Counter("c", None, registry=registry)  # type: ignore[arg-type]


def test_a_metric_without_registry_still_counts() -> None:
    c = Counter("loose", "Loose", ["k"], registry=None, cardinality_limit=1)
    c.labels("a").inc()
    c.labels("b").inc(2)  # folded, but there is no registry to count it in
    assert c.labels("a").get() == 1.0
    assert c.labels(OVERFLOW_LABEL_VALUE).get() == 2.0
    assert c.folded == 1
