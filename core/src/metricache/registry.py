"""The registry: owns metric families and produces snapshots.

It also owns the *change tracker*, a deque into which a series appends itself the
first time it changes after a sync. The syncer drains it, so the cost of a sync
follows how many series changed, not how many exist. Until a syncer *arms* it the
tracker keeps nothing, so a registry nobody syncs holds no record of series it no
longer has.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

from metricache.snapshot import Family, Snapshot, ViewKind

if TYPE_CHECKING:
    from metricache.metrics import MetricBase

__all__ = ["REGISTRY", "Collector", "Registry"]


class Collector(Protocol):
    """A callable that returns families computed at snapshot time."""

    def __call__(self) -> Iterable[Family]:
        """Return the families this collector contributes to a snapshot."""
        ...


class Registry:
    """A set of metric families with unique names.

    ``cardinality_limit`` is the default per-metric limit on label sets; a metric may
    override it. Registering a name a second time returns the first declaration when
    type, label names (and buckets or merge mode) agree, and fails otherwise.
    """

    def __init__(self, *, cardinality_limit: int = 2000) -> None:
        if cardinality_limit < 1:
            raise ValueError("cardinality_limit must be at least 1")
        self.cardinality_limit = cardinality_limit
        self._lock = threading.RLock()
        self._metrics: dict[str, MetricBase[Any]] = {}
        # Every name an exposition of a metric uses (``x``, ``x_total``, ``x_bucket``
        # ...) -> the metric, so two metrics can never write the same sample name.
        self._exposed: dict[str, MetricBase[Any]] = {}
        self._collectors: list[Collector] = []
        # Series append themselves here when they first change after a drain; it keeps
        # nothing (maxlen 0) until a syncer arms it.
        self.tracker: deque[Any] = deque(maxlen=0)
        self._self_metrics: dict[str, Any] = {}
        # In a forked child: what each series held at the fork (its parent's to report).
        self.inherited: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        _registries.add(self)

    def register(self, metric: MetricBase[Any]) -> MetricBase[Any]:
        """Add ``metric``; return the metric that now owns the name.

        When an identical declaration already exists it is returned, and the caller
        shares its series. A conflicting declaration raises ``ValueError``.
        """
        with self._lock:
            existing = self._metrics.get(metric.name)
            if existing is None:
                names = metric._exposed_names()
                for name in names:
                    holder = self._exposed.get(name)
                    if holder is not None:
                        raise ValueError(
                            f"metric {metric.name!r} would expose the sample name {name!r}, "
                            f"which metric {holder.name!r} ({holder._describe()}) already "
                            "exposes in this registry"
                        )
                self._metrics[metric.name] = metric
                for name in names:
                    self._exposed[name] = metric
                metric._use_tracker(self.tracker)
                return metric
            problem = existing._conflict_with(metric)
            if problem:
                raise ValueError(
                    f"metric {metric.name!r} is already declared in this registry "
                    f"as {existing._describe()}; {problem}"
                )
            return existing

    def unregister(self, metric: MetricBase[Any] | str) -> None:
        """Remove a metric (or the metric of that name) from the registry."""
        name = metric if isinstance(metric, str) else metric.name
        with self._lock:
            removed = self._metrics.pop(name, None)
            if removed is not None:
                for exposed in removed._exposed_names():
                    self._exposed.pop(exposed, None)

    @property
    def armed(self) -> bool:
        """Whether a syncer armed the change tracker (it records changes)."""
        return self.tracker.maxlen is None

    def arm_tracker(self) -> deque[Any]:
        """Make the change tracker record changes from now on; return it.

        Called by the syncer that takes this registry over. Series that changed before
        are not in it: the syncer looks at every series once after arming.
        """
        with self._lock:
            if self.tracker.maxlen is not None:
                self.tracker = deque()
                for metric in self._metrics.values():
                    metric._use_tracker(self.tracker)
            return self.tracker

    def get(self, name: str) -> MetricBase[Any] | None:
        """Return the metric registered under ``name`` (base name), or None."""
        with self._lock:
            return self._metrics.get(name)

    def metrics(self) -> list[MetricBase[Any]]:
        """Return the registered metrics, in registration order."""
        with self._lock:
            return list(self._metrics.values())

    def register_collector(self, collector: Collector | Callable[[], Iterable[Family]]) -> None:
        """Add a callable whose families are included in every snapshot."""
        with self._lock:
            self._collectors.append(collector)

    def unregister_collector(self, collector: Collector | Callable[[], Iterable[Family]]) -> None:
        """Remove a callable added with :meth:`register_collector`."""
        with self._lock:
            self._collectors.remove(collector)

    def collectors(self) -> list[Collector]:
        """Return the registered collectors."""
        with self._lock:
            return list(self._collectors)

    def snapshot(
        self,
        *,
        instance: str | None = None,
        strategy: str | None = None,
    ) -> Snapshot:
        """Return an immutable snapshot of every family, sorted by name."""
        families = [m._collect() for m in self.metrics()]
        for collector in self.collectors():
            families.extend(collector())
        families.sort(key=_family_name)
        return Snapshot(
            families=families,
            timestamp=time.time(),
            view=ViewKind.INSTANCE,
            instance=instance,
            strategy=strategy,
        )

    def _reset_after_fork(self) -> None:
        """Prepare a forked child (called at fork, before anything else).

        Every lock gets a fresh state, and every series records what it inherited
        (:attr:`inherited`; a gauge keeps it as its base): what the parent recorded is
        the parent's to report, whether a syncer runs in the child already or is
        started later. Pending change marks are dropped: a series is changed in the
        child once the child records into it.
        """
        self._lock = threading.RLock()
        inherited: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        for metric in list(self._metrics.values()):
            metric._reset_locks()
            for child in list(metric._children.values()):
                child._dirty = False
                inherited[child] = child._inherit()
        self.inherited = inherited
        self.tracker.clear()

    def self_metric(self, key: str, factory: Callable[[Registry], Any]) -> Any:
        """Return metricache's own metric ``key`` in this registry, creating it once."""
        with self._lock:
            found = self._self_metrics.get(key)
            if found is None:
                found = factory(self)
                self._self_metrics[key] = found
            return found


def _family_name(family: Family) -> str:
    return family.name


# A lock held by another thread at fork time stays held forever in the child, whose
# first update of that series would hang. Reset every registry's locks in the child,
# before anything else (the syncer's own fork handler, registered later, reads metrics).
_registries: weakref.WeakSet[Registry] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for registry in list(_registries):
        registry._reset_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


REGISTRY = Registry()
"""The default registry that metrics join when none is given."""
