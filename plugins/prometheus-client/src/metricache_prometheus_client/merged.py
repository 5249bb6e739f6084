"""The other direction: metricache's merged view, served by prometheus_client.

:class:`MergedCollector` is a prometheus_client collector whose ``collect()`` returns
the store's view (every live instance merged) as prometheus_client ``Metric``
families. Register it in a registry of its own and serve that, as prometheus_client's
multiprocess mode does with its ``MultiProcessCollector``; or call
:func:`expose_merged` on the registry an application already serves (its
``/metrics``, ``make_wsgi_app()``, ``generate_latest()``), which then shows the
merged numbers in place of this process's own.

A series is never reported twice: a registry given to :func:`expose_merged` shows a
family from the merged view only, never this process's copy of it next to it. What
the bridge syncs is left out of the registry's local output even when the store
cannot be read (a scrape then lacks those families, which Prometheus shows as a gap,
rather than a per-process number that it would take for a counter reset). Local
families that nothing syncs (the process, platform and GC collectors,
custom collectors the bridge skips) are still shown, unless the merged view has a
family of the same name.

Types come back as prometheus_client knows them: a counter, a gauge, a histogram;
a histogram whose only bound is ``+Inf`` (how the bridge carries a summary) comes
back as a summary with its ``_count`` and ``_sum``.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from metricache.config import Config, load_config
from metricache.errors import StoreError
from metricache.runtime import read_view, started_syncer, syncer_view
from metricache.snapshot import Family, HistogramSample, MetricType, Sample, Snapshot
from metricache.store import Store
from metricache.sync.syncer import Syncer
from prometheus_client import REGISTRY as PROMETHEUS_REGISTRY
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import CollectorRegistry
from prometheus_client.utils import floatToGoString as _untyped_go_string

from metricache_prometheus_client.bridging import bridges, is_merged_view

__all__ = ["MergedCollector", "MergedExposition", "expose_merged", "metric_of_family"]

log = logging.getLogger("metricache.prometheus_client")


def _go_string(bound: float) -> str:
    """``le`` as prometheus_client writes it (``1.0``, ``+Inf``)."""
    text: str = _untyped_go_string(bound)  # type: ignore[no-untyped-call]
    return text


def metric_of_family(family: Family) -> Metric:
    """Return a metricache family as a prometheus_client ``Metric`` with its samples."""
    name = family.name
    names = family.labelnames
    unit = family.unit if family.unit and name.endswith("_" + family.unit) else ""
    if family.type is MetricType.HISTOGRAM:
        summary = family.buckets == (math.inf,)
        metric = Metric(name, family.documentation, "summary" if summary else "histogram", unit)
        bounds = [_go_string(bound) for bound in family.buckets]
        for sample in family.samples:
            if not isinstance(sample, HistogramSample):
                continue
            labels = dict(zip(names, sample.labels))
            if not summary:
                for bound, count in zip(bounds, sample.buckets):
                    metric.add_sample(name + "_bucket", {**labels, "le": bound}, float(count))
            metric.add_sample(name + "_count", labels, float(sample.count))
            metric.add_sample(name + "_sum", labels, float(sample.sum))
        return metric
    counter = family.type is MetricType.COUNTER
    metric = Metric(name, family.documentation, "counter" if counter else "gauge", unit)
    sample_name = name + "_total" if counter else name
    for sample in family.samples:
        if isinstance(sample, Sample):
            metric.add_sample(sample_name, dict(zip(names, sample.labels)), float(sample.value))
    return metric


class MergedCollector:
    """A prometheus_client collector of metricache's merged view.

    ``view`` returns the snapshot to show. Without it: the view of ``syncer`` (synced
    first, so this process's latest changes are in it), else of the syncer
    :func:`metricache.start` started, else of the configured store (``config``, or
    loaded as every command loads it; ``store`` to read another store object).

    When the store cannot be read, ``collect()`` logs one warning (until it can again)
    and returns nothing, so a scrape never fails because of metrics. A bridge never
    reads it, even with ``include_custom``.
    """

    metricache_merged_view = True

    def __init__(
        self,
        view: Callable[[], Snapshot] | None = None,
        *,
        syncer: Syncer | None = None,
        config: Config | None = None,
        store: Store | None = None,
    ) -> None:
        self._view = view
        self._syncer = syncer
        self._config = config
        self._store = store
        self._failing = False
        self._lock = threading.Lock()

    def snapshot(self) -> Snapshot:
        """Return the merged view now (raises :class:`~metricache.errors.StoreError`)."""
        if self._view is not None:
            return self._view()
        syncer = self._syncer or started_syncer()
        if syncer is not None:
            return syncer_view(syncer, store=self._store)
        with self._lock:
            if self._config is None:
                self._config = load_config()
            if self._store is None:
                from metricache.store_plugins import open_store_from_config

                self._store = open_store_from_config(self._config.store)
            config, store = self._config, self._store
        return read_view(config, store)

    def describe(self) -> list[Metric]:
        """Return nothing: registering the collector must not read the store."""
        return []

    def collect(self) -> list[Metric]:
        """Return the merged view as prometheus_client metric families."""
        try:
            snapshot = self.snapshot()
        except StoreError as exc:
            if not self._failing:
                log.warning("cannot read the merged view (%s); the scrape leaves it out", exc)
            self._failing = True
            return []
        if self._failing:
            log.warning("the merged view can be read again")
            self._failing = False
        return [metric_of_family(family) for family in snapshot.families]


class MergedExposition:
    """What :func:`expose_merged` did to a registry; :meth:`close` undoes it."""

    def __init__(self, registry: CollectorRegistry, collector: MergedCollector) -> None:
        self.registry = registry
        self.collector = collector

    def collect(self) -> Iterator[Metric]:
        """Yield the merged families, then the local ones nothing syncs (see the module)."""
        registry = self.registry
        merged = self.collector.collect()
        shown = {metric.name for metric in merged}
        with registry._lock:
            collectors = list(registry._collector_to_names)
            target = _target_metric(registry)
        yield from merged
        if target is not None and target.name not in shown and not _target_synced(registry):
            yield target
        for collector in collectors:
            if _synced(registry, collector):
                continue
            for metric in collector.collect():
                if metric.name not in shown:
                    yield metric

    def restricted_registry(self, names: Iterable[str]) -> _Restricted:
        """Return a view of only the samples called ``names`` (prometheus_client's ``name[]``)."""
        return _Restricted(self, set(names))

    def close(self) -> None:
        """Show the registry's own values again."""
        for attribute in ("collect", "restricted_registry"):
            if getattr(vars(self.registry).get(attribute), "__self__", None) is self:
                delattr(self.registry, attribute)


class _Restricted:
    def __init__(self, exposition: MergedExposition, names: set[str]) -> None:
        self._exposition = exposition
        self._names = names

    def collect(self) -> Iterator[Metric]:
        for metric in self._exposition.collect():
            kept = [row for row in metric.samples if row.name in self._names]
            if kept:
                copy = Metric(metric.name, metric.documentation, metric.type)
                copy.samples = kept
                yield copy


def _synced(registry: CollectorRegistry, collector: Any) -> bool:
    """Whether ``collector``'s families are in the merged view already (or are it)."""
    if is_merged_view(collector):
        return True
    for made in bridges():
        if made.registry is registry and (
            made.include_custom or isinstance(collector, MetricWrapperBase)
        ):
            return True
    return False


def _target_metric(registry: CollectorRegistry) -> Metric | None:
    if not registry._target_info:
        return None
    metric: Metric = registry._target_info_metric()  # type: ignore[no-untyped-call]
    return metric


def _target_synced(registry: CollectorRegistry) -> bool:
    return any(made.registry is registry for made in bridges())


def expose_merged(
    registry: CollectorRegistry | None = None,
    *,
    syncer: Syncer | None = None,
    config: Config | None = None,
    store: Store | None = None,
) -> MergedExposition:
    """Make a prometheus_client registry show metricache's merged view.

    ``registry`` (default ``prometheus_client.REGISTRY``) then answers ``collect()``
    and ``restricted_registry()`` with the merged families (see :class:`MergedCollector`
    for ``syncer``, ``config`` and ``store``), followed by its local families that
    nothing syncs; everything that serves it (``generate_latest()``,
    ``make_wsgi_app()``, ``start_http_server()``) serves the fleet-wide numbers. The
    registry's metrics keep working and keep being synced. Returns what was done;
    its ``close()`` undoes it.
    """
    registry = PROMETHEUS_REGISTRY if registry is None else registry
    exposition = MergedExposition(
        registry, MergedCollector(syncer=syncer, config=config, store=store)
    )
    # prometheus_client's exposition code calls these two methods of the registry.
    registry.collect = exposition.collect  # type: ignore[method-assign]
    registry.restricted_registry = exposition.restricted_registry  # type: ignore[method-assign,assignment]
    return exposition
