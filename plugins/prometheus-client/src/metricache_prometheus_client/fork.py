"""What a forked child does to the prometheus_client metrics it inherited.

metricache's rule: what a process recorded before ``fork()`` is counted once, by that
process; a child reports only what it records itself. prometheus_client keeps its
values in plain objects that a child inherits with the parent's numbers (and with
locks that another thread may have held at the moment of the fork). In the child,
:func:`restart_values` therefore

* gives every lock of the registry and of its metrics a fresh state;
* sets counters, histograms, summaries and ``sum``/``livesum`` gauges to zero (what
  prometheus_client's multiprocess mode does with one file per pid); the parent
  keeps reporting what it had;
* keeps the values of the other gauges, of ``Info`` and of ``Enum`` (the program in
  the child may read them), and returns them so that the bridge leaves each one out
  of the child's report until the child changes it: a ``max``, ``min``, ``last`` or
  per-instance value set before the fork is the parent's to report.

Values kept in prometheus_client's multiprocess files (``PROMETHEUS_MULTIPROC_DIR``
set) already start from zero in a child, which opens its own file; they are left
alone.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Hashable, Iterator
from typing import Any

from metricache.snapshot import GaugeMerge
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import CollectorRegistry
from prometheus_client.values import MutexValue

from metricache_prometheus_client.modes import merge_of_mode

__all__ = ["Inherited", "children_of", "restart_values", "token_of"]

log = logging.getLogger("metricache.prometheus_client")

Inherited = dict[tuple[str, tuple[str, ...]], Hashable]
"""What a child inherited and reports only once it changes: ``(family, label values)``
of a metric child -> its token (see :func:`token_of`)."""


def children_of(metric: MetricWrapperBase) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Iterate ``(label values, child)`` over every series of a prometheus_client metric."""
    if metric._labelnames:
        # Two lists rather than a list of pairs: no tuple per series to allocate.
        with metric._lock:
            series: dict[tuple[str, ...], Any] = metric._metrics  # type: ignore[assignment]
            keys = list(series)
            children = list(series.values())
        return zip(keys, children)
    return iter([((), metric)])


def token_of(kind: str | None, child: Any) -> Hashable:
    """Return what tells whether a gauge, info or enum series changed since the fork."""
    if kind == "info":
        with child._lock:
            return frozenset(child._value.items())
    if kind == "stateset":
        return int(child._value)
    return float(child._value.get())


def _fresh_value(value: Any, zero: bool) -> None:
    if type(value) is MutexValue:
        value._lock = threading.Lock()
        if zero:
            value._value = 0.0
            value._exemplar = None


def _zero(value: Any) -> None:
    _fresh_value(value, zero=True)


def _fresh_lock(holder: Any) -> None:
    if "_lock" in vars(holder):
        holder._lock = threading.Lock()


def restart_values(registry: CollectorRegistry) -> Inherited:
    """Restart the values of ``registry``'s metrics in a forked child (see the module).

    Returns the gauge, info and enum series whose inherited values the child must
    not report until they change.
    """
    registry._lock = threading.Lock()
    inherited: Inherited = {}
    now = time.time()
    for collector in list(registry._collector_to_names):
        if not isinstance(collector, MetricWrapperBase):
            continue
        try:
            _restart_metric(collector, inherited, now)
        except AttributeError:
            # Not laid out as the prometheus_client we know (a subclass of its own):
            # what was not restarted yet keeps its inherited values.
            log.warning("cannot restart %r in a forked child; it keeps its values", collector)
    return inherited


def _restart_metric(collector: Any, inherited: Inherited, now: float) -> None:
    """Restart one metric's series (``collector`` is typed loosely: private fields)."""
    _fresh_lock(collector)
    kind = collector._type
    name = collector._name
    for labelvalues, child in children_of(collector):
        if child is not collector:
            _fresh_lock(child)
        if kind == "counter":
            _zero(child._value)
            child._created = now
        elif kind == "histogram":
            for bucket in child._buckets:
                _zero(bucket)
            _zero(child._sum)
            child._created = now
        elif kind == "summary":
            _zero(child._count)
            _zero(child._sum)
            child._created = now
        elif kind == "gauge":
            if "_child_samples" in vars(child):
                continue  # set_function(): read live in the child, it is the child's
            if merge_of_mode(collector._multiprocess_mode) is GaugeMerge.SUM:
                _zero(child._value)
            else:
                _fresh_value(child._value, zero=False)
                inherited[(name, labelvalues)] = token_of(kind, child)
        elif kind in ("info", "stateset"):
            inherited[(_family_name(kind, name), labelvalues)] = token_of(kind, child)


def _family_name(kind: str, name: str) -> str:
    return name + "_info" if kind == "info" else name
