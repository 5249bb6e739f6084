"""Anything a registry records comes back exactly through every store and every format.

Hypothesis declares metrics of every type with arbitrary label values (any
character but lone surrogates, which are refused: see ``test_label_values``), help
texts, gauge merge modes, bucket layouts (valid or not: an invalid one must be refused
at declaration with a clear error) and values, records into them, syncs through a
real store (memory, file, Redis, memcached), reads the store's view back, and checks
it against the registry's own snapshot: exactly, except that shared stores keep
counters and histogram sums in fixed point (1e-9, see docs/sync.md, "Exact
arithmetic"), so those come back as that rounding of the local value, to the bit.
The view is then rendered in every format (Prometheus text, OpenMetrics, JSON, CSV)
and parsed back: with prometheus_client's parsers, and with the JSON and CSV plugins'
own ``parse``.
"""

from __future__ import annotations

import math
import secrets
from typing import Any

import metricache
import metricache_csv
import metricache_json
import pytest
from hypothesis import given
from hypothesis import strategies as st
from metricache.formats import render
from metricache.names import INSTANCE_LABEL
from metricache.snapshot import Family, HistogramSample, MetricType, Sample, Snapshot
from metricache.sync.keyspace import join_fixed, split_fixed
from metricache.sync.strategy import Strategy
from prometheus_client.parser import text_string_to_metric_families

from tests.formats.exposition import assert_same_samples, expected_samples, parsed_samples
from tests.formats.snapshots import exact
from tests.formats.test_openmetrics import om_expected
from tests.formats.test_openmetrics import text_string_to_metric_families as om_families
from tests.properties.conftest import STORE_NAMES
from tests.properties.strategies import STORES, FamilySpec, family_specs


def declare(registry: metricache.Registry, name: str, spec: FamilySpec) -> bool:
    """Declare and fill one metric; return False when the declaration was refused."""
    metric: Any
    if spec.kind == "counter":
        metric = metricache.Counter(name, spec.documentation, spec.labelnames, registry=registry)
    elif spec.kind == "gauge":
        assert spec.merge is not None
        metric = metricache.Gauge(
            name, spec.documentation, spec.labelnames, registry=registry, merge=spec.merge
        )
    else:
        try:
            metric = metricache.Histogram(
                name, spec.documentation, spec.labelnames, buckets=spec.buckets, registry=registry
            )
        except ValueError as exc:
            refused = str(exc)
        else:
            refused = ""
        if refused:
            # Refused at declaration, saying what is wrong with the buckets.
            assert "bucket" in refused
            return False
    for labels, values in spec.series:
        child = metric.labels(*labels) if spec.labelnames else metric
        for value in values:
            if spec.kind == "counter":
                child.inc(value)
            elif spec.kind == "gauge":
                child.set(value)
            else:
                child.observe(value)
    return True


def _fixed(value: float) -> float:
    """What a shared store gives back for a counter or a histogram sum."""
    return value if not math.isfinite(value) else join_fixed(*split_fixed(value))


def as_stored(family: Family, strategy: Strategy, instance: str) -> Family:
    """The family as the store's view must show it."""
    if strategy is Strategy.LOCAL_ONLY:
        return family
    samples: list[Sample | HistogramSample] = []
    labelnames = family.labelnames
    for s in family.samples:
        if isinstance(s, HistogramSample):
            samples.append(HistogramSample(s.labels, s.buckets, _fixed(s.sum), s.count))
        elif family.type is MetricType.COUNTER:
            samples.append(Sample(s.labels, _fixed(s.value)))
        elif family.merge is not None and family.merge.value == "per_instance":
            samples.append(Sample((*s.labels, instance), s.value))
        else:
            samples.append(s)
    if family.merge is not None and family.merge.value == "per_instance":
        labelnames = (*labelnames, INSTANCE_LABEL)
    return Family(
        name=family.name,
        type=family.type,
        documentation=family.documentation,
        labelnames=labelnames,
        samples=sorted(samples, key=lambda s: s.labels),
        unit=family.unit,
        buckets=family.buckets,
        merge=family.merge,
    )


def only(snapshot: Snapshot, names: set[str]) -> tuple[Any, ...]:
    picked = [f for f in snapshot.families if f.name in names]
    families: tuple[Any, ...] = exact(Snapshot(families=picked, timestamp=0.0))[4]
    return families


def check_formats(view: Snapshot) -> None:
    """Every format renders the view so that it parses back to the same numbers and text."""
    every = exact(view)[4]
    assert exact(metricache_json.parse(render(view, "json")))[4] == every
    assert exact(metricache_csv.parse(render(view, "csv")))[4] == every
    text = render(view, "prometheus").decode("utf-8")
    assert_same_samples(
        parsed_samples(text_string_to_metric_families(text)), expected_samples(view)
    )
    om_text = render(view, "openmetrics").decode("utf-8")
    assert_same_samples(parsed_samples(om_families(om_text)), om_expected(view))


@pytest.mark.parametrize("store", STORE_NAMES, indirect=True)
@STORES
@given(specs=st.lists(family_specs(), min_size=1, max_size=3))
def test_what_a_registry_records_comes_back_exactly_through_the_store_and_every_format(
    store: metricache.Store, specs: list[FamilySpec]
) -> None:
    registry = metricache.Registry()
    declared = {f"fam{n}" for n, spec in enumerate(specs) if declare(registry, f"fam{n}", spec)}
    namespace = "p" + secrets.token_hex(6)
    syncer = metricache.Syncer(registry, store, interval=3600, namespace=namespace)
    report = syncer.flush()
    assert report.ok, report.error
    instance = syncer.instance.id
    view = metricache.merged_snapshot(store, namespace=namespace, instance_id=instance)

    local = registry.snapshot()
    strategy = syncer.strategy
    # A shared store shows what was synced: families with at least one series.
    shown = {
        f.name
        for f in local.families
        if f.name in declared and (f.samples or strategy is Strategy.LOCAL_ONLY)
    }
    expected = Snapshot(
        families=[as_stored(f, strategy, instance) for f in local.families if f.name in shown],
        timestamp=0.0,
    )
    assert {f.name for f in view.families} >= shown
    assert only(view, shown) == only(expected, shown)
    check_formats(view)
