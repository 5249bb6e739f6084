"""The registry: one declaration per name, shared series, cardinality limits, fork safety."""

from __future__ import annotations

import os
import signal
import time

import pytest
from metricache import REGISTRY, Counter, Family, Gauge, Histogram, MetricType, Registry, Sample
from metricache.metrics import OVERFLOW_LABEL_VALUE


@pytest.fixture
def registry() -> Registry:
    return Registry()


def test_an_identical_redeclaration_shares_the_series(registry: Registry) -> None:
    first = Counter("jobs", "Jobs", ["kind"], registry=registry)
    second = Counter("jobs_total", "Another text", ["kind"], registry=registry)
    first.labels("a").inc()
    second.labels("a").inc(2)
    assert first.labels("a") is second.labels("a")
    family = registry.snapshot()["jobs"]
    assert list(family.samples) == [Sample(("a",), 3.0)]
    assert family.documentation == "Jobs"  # the first declaration's text stays
    assert registry.metrics() == [first]

    plain = Gauge("up", "Up", registry=registry)
    again = Gauge("up", "Up", registry=registry)
    again.set(1)
    assert plain._only_child().get() == 1.0


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (
            lambda r: Gauge("jobs", "J", ["kind"], registry=r),
            "as a counter with labels ['kind']; it cannot be redeclared as a gauge",
        ),
        (
            lambda r: Counter("jobs", "J", ["kind", "zone"], registry=r),
            "it cannot be redeclared with labels ['kind', 'zone']",
        ),
        (
            lambda r: Counter("jobs", "J", registry=r),
            "it cannot be redeclared with labels []",
        ),
    ],
)
def test_redeclaring_with_another_type_or_labels_fails(
    registry: Registry, make: object, problem: str
) -> None:
    Counter("jobs", "Jobs", ["kind"], registry=registry)
    with pytest.raises(ValueError) as info:
        make(registry)  # type: ignore[operator]
    assert str(info.value) == (
        f"metric 'jobs' is already declared in this registry {problem}"
        if problem.startswith("as ")
        else f"metric 'jobs' is already declared in this registry as a counter with labels "
        f"['kind']; {problem}"
    )


def test_redeclaring_with_other_buckets_or_merge_mode_fails(registry: Registry) -> None:
    Histogram("h", "H", buckets=[1, 2], registry=registry)
    Histogram("h", "H", buckets=[1, 2, float("inf")], registry=registry)  # the same buckets
    with pytest.raises(ValueError, match="it cannot be redeclared with other buckets"):
        Histogram("h", "H", buckets=[1, 3], registry=registry)
    Gauge("g", "G", merge="max", registry=registry)
    with pytest.raises(ValueError, match="it cannot be redeclared with merge 'sum'"):
        Gauge("g", "G", registry=registry)


KINDS: dict[str, type[Counter] | type[Gauge] | type[Histogram]] = {
    "counter": Counter,
    "gauge": Gauge,
    "histogram": Histogram,
}


@pytest.mark.parametrize(
    ("first", "second", "clash"),
    [
        (("counter", "x"), ("gauge", "x_total"), "x_total"),
        (("gauge", "x_total"), ("counter", "x"), "x_total"),
        (("histogram", "h"), ("gauge", "h_bucket"), "h_bucket"),
        (("histogram", "h"), ("counter", "h_sum"), "h_sum"),
        (("gauge", "h_count"), ("histogram", "h"), "h_count"),
        (("counter", "c"), ("gauge", "c_created"), "c_created"),
    ],
)
def test_two_metrics_can_never_expose_the_same_sample_name(
    registry: Registry, first: tuple[str, str], second: tuple[str, str], clash: str
) -> None:
    owner = KINDS[first[0]](first[1], "First", registry=registry)
    with pytest.raises(ValueError, match=f"would expose the sample name '{clash}'") as info:
        KINDS[second[0]](second[1], "Second", registry=registry)
    assert f"which metric '{owner.name}'" in str(info.value)


def test_unregister_frees_the_name_and_its_sample_names(registry: Registry) -> None:
    c = Counter("x", "X", registry=registry)
    registry.unregister(c)
    assert registry.get("x") is None
    g = Gauge("x_total", "Now a gauge", registry=registry)
    registry.unregister("x_total")
    assert registry.metrics() == []
    Histogram("x", "Now a histogram", registry=registry)
    assert g.name == "x_total"


def test_snapshot_is_sorted_and_includes_collectors(registry: Registry) -> None:
    Gauge("zeta", "Z", registry=registry).set(1)
    Counter("alpha", "A", registry=registry).inc()

    def collector() -> list[Family]:
        return [Family("middle", MetricType.GAUGE, "From a collector", samples=[Sample((), 5.0)])]

    registry.register_collector(collector)
    assert [f.name for f in registry.snapshot()] == ["alpha", "middle", "zeta"]
    assert registry.collectors() == [collector]
    registry.unregister_collector(collector)
    assert [f.name for f in registry.snapshot()] == ["alpha", "zeta"]


def test_the_default_registry_is_where_metrics_go_without_one() -> None:
    c = Counter("test_default_registry_probe", "Probe")
    try:
        assert REGISTRY.get("test_default_registry_probe") is c
    finally:
        REGISTRY.unregister(c)


def test_cardinality_limit_defaults_to_2000_and_folds_the_rest(registry: Registry) -> None:
    assert registry.cardinality_limit == 2000
    c = Counter("requests", "Requests", ["user"], registry=registry)
    assert c.cardinality_limit == 2000
    for n in range(2000):
        c.labels(f"user{n}").inc()
    overflow = c.labels("user2000")
    overflow.inc(5)
    c.labels("user2001").inc(7)
    c.labels("user0").inc()  # a known label set keeps its own series
    assert overflow.labels == (OVERFLOW_LABEL_VALUE,)
    assert c.folded == 2
    snap = registry.snapshot()
    family = snap["requests"]
    assert len(family.samples) == 2001
    assert family.sample(OVERFLOW_LABEL_VALUE) == Sample((OVERFLOW_LABEL_VALUE,), 12.0)
    assert family.sample("user0") == Sample(("user0",), 2.0)
    counted = snap["metricache_cardinality_overflow"]
    assert counted.type is MetricType.COUNTER
    assert list(counted.samples) == [Sample(("requests",), 2.0)]


def test_cardinality_limit_per_registry_and_per_metric() -> None:
    registry = Registry(cardinality_limit=2)
    h = Histogram("h", "H", ["a", "b"], buckets=[1], registry=registry)
    g = Gauge("g", "G", ["a"], registry=registry, cardinality_limit=3)
    for n in range(5):
        h.labels(str(n), "x").observe(0.5)
        g.labels(str(n)).set(n)
    snap = registry.snapshot()
    overflow = snap["h"].sample(OVERFLOW_LABEL_VALUE, OVERFLOW_LABEL_VALUE)
    assert overflow is not None
    assert overflow.count == 3  # type: ignore[union-attr]
    assert snap["g"].sample(OVERFLOW_LABEL_VALUE) == Sample((OVERFLOW_LABEL_VALUE,), 4.0)
    folds = {s.labels: s.value for s in snap["metricache_cardinality_overflow"].samples}  # type: ignore[union-attr]
    assert folds == {("h",): 3.0, ("g",): 2.0}
    with pytest.raises(ValueError, match="cardinality_limit must be at least 1"):
        Registry(cardinality_limit=0)
    with pytest.raises(ValueError, match="cardinality_limit must be at least 1"):
        Counter("c", "C", ["a"], registry=registry, cardinality_limit=0)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX only")
def test_a_lock_held_at_fork_is_free_in_the_child(registry: Registry) -> None:
    c = Counter("forked", "Forked", ["k"], registry=registry)
    child_series = c.labels("a")
    c.labels("a").inc()
    # Held while forking, as another thread may hold it in the middle of an update.
    child_series._lock.acquire()
    c._lock.acquire()
    try:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the forked child
            try:
                c.labels("a").inc()
                c.labels("b").inc()  # takes the metric's own lock
                ok = c.labels("a").get() == 2.0 and len(registry.snapshot()["forked"].samples) == 2
                os._exit(0 if ok else 1)
            finally:
                os._exit(2)
    finally:
        child_series._lock.release()
        c._lock.release()
    # A child that hangs on an inherited lock is killed after a generous grace period.
    deadline = time.monotonic() + 60
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung on a lock inherited from the parent")
        time.sleep(0.01)
    assert os.WIFEXITED(status)
    assert os.WEXITSTATUS(status) == 0
    assert c.labels("a").get() == 1.0  # the parent's value is its own


def test_adopters_share_the_new_lock_after_fork_reset(registry: Registry) -> None:
    first = Counter("shared", "S", ["k"], registry=registry)
    second = Counter("shared", "S", ["k"], registry=registry)
    assert first._lock is second._lock
    registry._reset_after_fork()
    assert first._lock is second._lock
