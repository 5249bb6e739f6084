"""The bridge: every metric of a prometheus_client registry, as a metricache collector.

A :class:`Bridge` is a metricache collector (a callable returning
:class:`~metricache.snapshot.Family` objects). Registered in a metricache registry, it
is called at every sync and every snapshot, and the syncer treats what it returns like
the registry's own metrics: counters, histograms and summaries as cumulative values
whose deltas go to shared keys, gauges as this instance's values merged at read time
by their mode. prometheus_client's hot path is untouched: the bridge only reads.

What it reads, and how:

* ``Counter``, ``Histogram``, ``Summary``, ``Gauge``, ``Info`` and ``Enum`` objects
  are read directly (one pass over their series, no exposition rows built); other
  collectors through their ``collect()`` (:mod:`.reading` says how each type maps).
* A counter, histogram or summary series that went back (``Counter.reset()``, or
  ``remove()`` and ``labels()`` again between two syncs) is a restart: the bridge adds
  what it had before, so the value it reports, and the shared total, never go back.
* Custom collectors (anything registered that is not one of the six classes) are
  skipped unless ``include_custom=True``: the bridge cannot know whether their values
  are the process's own (a value read from a shared source would be counted once per
  process). One warning names the skipped ones. prometheus_client's default process,
  platform and GC collectors are skipped without a warning (as in its multiprocess
  mode, which does not show them either).
* A family whose name or label names metricache does not accept, or whose name a
  metric of the metricache registry already has, is left out with one warning.

Fork: see :mod:`.fork`. In a forked child the bridge starts from an empty record, as
the syncer does, and leaves inherited gauge, info and enum values out of the child's
report until the child changes them.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import weakref
from collections.abc import Hashable, Iterable, Mapping
from itertools import accumulate
from typing import Any

from metricache.names import validate_label_names, validate_metric_name
from metricache.registry import REGISTRY, Registry
from metricache.snapshot import (
    Family,
    GaugeMerge,
    HistogramSample,
    MetricType,
    Sample,
    SampleColumns,
)
from prometheus_client import REGISTRY as PROMETHEUS_REGISTRY
from prometheus_client.gc_collector import GCCollector
from prometheus_client.metrics import (
    Counter,
    Enum,
    Gauge,
    Histogram,
    Info,
    MetricWrapperBase,
    Summary,
)
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import CollectorRegistry
from prometheus_client.values import MutexValue

from metricache_prometheus_client.fork import Inherited, children_of, restart_values
from metricache_prometheus_client.modes import ENUM_MERGE, INFO_MERGE, merge_of_mode
from metricache_prometheus_client.reading import SUMMARY_BUCKETS, family_of_metric

__all__ = [
    "DEFAULT_COLLECTORS",
    "Bridge",
    "bridge",
    "bridge_for",
    "bridges",
    "is_merged_view",
    "unbridge",
]

log = logging.getLogger("metricache.prometheus_client")

DEFAULT_COLLECTORS: tuple[type, ...] = (ProcessCollector, PlatformCollector, GCCollector)
"""prometheus_client's own per-process collectors, skipped without a warning."""

_Key = tuple[str, ...]


def _read(value: Any) -> float:
    # A MutexValue keeps a plain float: read it without taking its lock (one
    # attribute read is atomic). A multiprocess value must go through get().
    if type(value) is MutexValue:
        result: float = value._value
        return result
    got: float = value.get()
    return got


class _Track:
    """What the bridge remembers of one family's cumulative series between collections.

    ``last`` holds each series' value as read (a float, or a histogram sample),
    ``born`` when prometheus_client created it (None for a custom collector's), and
    ``offsets`` what a restarted series had reached before, added to what it reports
    so that it never goes back. Updated in place: a collection allocates nothing per
    series here.
    """

    __slots__ = ("born", "last", "offsets")

    def __init__(self) -> None:
        self.last: dict[_Key, Any] = {}
        self.born: dict[_Key, Any] = {}
        self.offsets: dict[_Key, Any] = {}

    def restarted(self, key: _Key, previous: Any) -> None:
        """Record that a series started again from zero after reaching ``previous``."""
        before = self.offsets.get(key)
        if isinstance(previous, HistogramSample):
            if before is not None:
                previous = HistogramSample(
                    key,
                    tuple(a + b for a, b in zip(before.buckets, previous.buckets)),
                    before.sum + previous.sum,
                    before.count + previous.count,
                )
            self.offsets[key] = previous
        else:
            self.offsets[key] = previous + (before or 0.0)

    def histogram(self, sample: HistogramSample, created: Any) -> HistogramSample:
        """Track one histogram series read now; return it as read."""
        key = sample.labels
        previous = self.last.get(key)
        if previous is not None and (
            sample.count < previous.count or self.born.get(key) != created
        ):
            self.restarted(key, previous)
        self.last[key] = sample
        self.born[key] = created
        return sample

    def _forget_others(self, keys: list[_Key]) -> None:
        # A series missing from a collection is forgotten, as the syncer forgets it.
        kept = set(keys)
        for table in (self.last, self.born, self.offsets):
            for key in [k for k in table if k not in kept]:
                del table[key]

    def settle(self, keys: list[_Key], values: list[float]) -> list[float]:
        """Forget series not read this time; return ``values`` with the offsets added."""
        if len(self.last) > len(keys):
            self._forget_others(keys)
        offsets = self.offsets
        if not offsets:
            return values
        return [value + offsets.get(key, 0.0) for key, value in zip(keys, values)]

    def settle_histograms(self, samples: list[HistogramSample]) -> list[HistogramSample]:
        """Forget series not read this time; return ``samples`` with the offsets added."""
        if len(self.last) > len(samples):
            self._forget_others([s.labels for s in samples])
        offsets = self.offsets
        if not offsets:
            return samples
        out = []
        for sample in samples:
            offset = offsets.get(sample.labels)
            if offset is None:
                out.append(sample)
                continue
            buckets = tuple(a + b for a, b in zip(sample.buckets, offset.buckets))
            out.append(
                HistogramSample(sample.labels, buckets, sample.sum + offset.sum, buckets[-1])
            )
        return out


class Bridge:
    """Every metric of the prometheus_client ``registry``, as a metricache collector.

    Call it to get the families; :func:`bridge` registers it in a metricache registry.
    ``include_custom``: also read custom collectors (see the module). ``merge`` maps a
    family name to the merge mode of that gauge (``"sum"``, ``"max"``, ``"min"``,
    ``"last"``, ``"per_instance"``), overriding the one its ``multiprocess_mode`` names
    (a custom collector's gauges have none: they merge per instance by default).
    """

    def __init__(
        self,
        registry: CollectorRegistry = PROMETHEUS_REGISTRY,
        into: Registry = REGISTRY,
        *,
        include_custom: bool = False,
        merge: Mapping[str, str | GaugeMerge] | None = None,
    ) -> None:
        self.registry = registry
        self.include_custom = include_custom
        self.merge = {name: GaugeMerge(mode) for name, mode in (merge or {}).items()}
        # The metricache registry, weakly: it holds this bridge among its collectors.
        self._into = weakref.ref(into)
        self._lock = threading.Lock()
        self._tracks: dict[str, _Track] = {}
        self._inherited: Inherited = {}
        self._warned: set[str] = set()
        self._accepted: set[tuple[str, tuple[str, ...], MetricType]] = set()

    @property
    def into(self) -> Registry | None:
        """The metricache registry the bridge was made for (None once it is gone)."""
        return self._into()

    def __call__(self) -> list[Family]:
        """Return the families of every bridged metric, read now."""
        with self._lock:
            return self._collect()

    def __repr__(self) -> str:
        return f"<Bridge of prometheus_client registry {id(self.registry):#x}>"

    # -- one collection ----------------------------------------------------------------

    def _collect(self) -> list[Family]:
        registry = self.registry
        with registry._lock:
            collectors = list(registry._collector_to_names.items())
            target = dict(registry._target_info or {})
        present: set[str] = set()
        families: list[Family] = []
        skipped: list[str] = []
        if target:
            names = tuple(sorted(target))
            families.append(
                Family(
                    "target_info",
                    MetricType.GAUGE,
                    "Target metadata",
                    names,
                    [Sample(tuple(target[n] for n in names), 1.0)],
                    merge=self.merge.get("target_info", INFO_MERGE),
                )
            )
        for collector, exposed in collectors:
            if isinstance(collector, MetricWrapperBase):
                try:
                    family = self._read_metric(collector, present)
                except AttributeError:
                    # Not laid out as the prometheus_client we know: read its rows.
                    families.extend(self._read_collector(collector, present))
                else:
                    families.append(family)
            elif is_merged_view(collector):
                continue  # the store's view: reading it back would count it again
            elif self.include_custom:
                families.extend(self._read_collector(collector, present))
            elif not isinstance(collector, DEFAULT_COLLECTORS):
                skipped.append(_describe(collector, exposed))
        for name in [n for n in self._tracks if n not in present]:
            del self._tracks[name]  # gone for a collection: forgotten, as the syncer forgets
        if skipped:
            self._warn_skipped(skipped)
        return [family for family in families if self._accept(family)]

    def _read_collector(self, collector: Any, present: set[str]) -> Iterable[Family]:
        try:
            metrics = list(collector.collect())
        except Exception:
            self._warn_once(
                f"failed:{_describe(collector, [])}",
                "the prometheus_client collector %s failed; its families are left out",
                _describe(collector, []),
                exc_info=True,
            )
            return []
        out = []
        for metric in metrics:
            family = family_of_metric(metric, self.merge.get(metric.name))
            if family is None:
                self._warn_once(
                    f"type:{metric.name}",
                    "the prometheus_client family %r is a %s, which metricache cannot "
                    "add up across processes; it is left out",
                    metric.name,
                    metric.type,
                )
                continue
            if family.type is MetricType.COUNTER:
                family = self._monotonic_values(family, present)
            elif family.type is MetricType.HISTOGRAM:
                family = self._monotonic_histograms(family, present)
            out.append(family)
        return out

    def _read_metric(self, metric: MetricWrapperBase, present: set[str]) -> Family:
        """Read one of prometheus_client's metric objects, series by series."""
        if isinstance(metric, Counter):
            return self._read_counter(metric, present)
        if isinstance(metric, Histogram):
            return self._read_histogram(metric, present)
        if isinstance(metric, Summary):
            return self._read_summary(metric, present)
        if isinstance(metric, Gauge):
            return self._read_gauge(metric)
        if isinstance(metric, Info):
            return self._read_info(metric)
        if isinstance(metric, Enum):
            return self._read_enum(metric)
        raise AttributeError(f"unknown prometheus_client metric type {metric._type!r}")

    def _track(self, name: str, present: set[str]) -> _Track:
        present.add(name)
        track = self._tracks.get(name)
        if track is None:
            track = self._tracks[name] = _Track()
        return track

    def _read_counter(self, metric: Counter, present: set[str]) -> Family:
        name = metric._name
        track = self._track(name, present)
        last, born = track.last, track.born
        labelsets: list[_Key] = []
        values: list[float] = []
        mutex = MutexValue
        for key, child in children_of(metric):
            raw = child._value
            value: float = raw._value if type(raw) is mutex else raw.get()
            created = child._created
            previous = last.get(key)
            if previous is not None and (value < previous or born[key] != created):
                track.restarted(key, previous)
            last[key] = value
            born[key] = created
            labelsets.append(key)
            values.append(value)
        return Family(
            name,
            MetricType.COUNTER,
            metric._documentation,
            tuple(metric._labelnames),
            SampleColumns(labelsets, track.settle(labelsets, values)),
            unit=metric._unit,
        )

    def _read_histogram(self, metric: Histogram, present: set[str]) -> Family:
        name = metric._name
        track = self._track(name, present)
        samples = []
        mutex = MutexValue
        for key, child in children_of(metric):
            buckets = child._buckets
            if type(buckets[0]) is mutex:
                counts = [bucket._value for bucket in buckets]
            else:
                counts = [bucket.get() for bucket in buckets]
            cumulative = tuple(map(int, accumulate(counts)))
            sample = HistogramSample(key, cumulative, _read(child._sum), cumulative[-1])
            samples.append(track.histogram(sample, child._created))
        return Family(
            name,
            MetricType.HISTOGRAM,
            metric._documentation,
            tuple(metric._labelnames),
            track.settle_histograms(samples),
            unit=metric._unit,
            buckets=tuple(float(b) for b in metric._upper_bounds),
        )

    def _read_summary(self, metric: Summary, present: set[str]) -> Family:
        name = metric._name
        track = self._track(name, present)
        samples = []
        for key, child in children_of(metric):
            count = int(_read(child._count))
            sample = HistogramSample(key, (count,), _read(child._sum), count)
            samples.append(track.histogram(sample, child._created))
        return Family(
            name,
            MetricType.HISTOGRAM,
            metric._documentation,
            tuple(metric._labelnames),
            track.settle_histograms(samples),
            unit=metric._unit,
            buckets=SUMMARY_BUCKETS,
        )

    def _read_gauge(self, metric: Gauge) -> Family:
        name = metric._name
        inherited = self._inherited
        labelsets = []
        values = []
        for key, child in children_of(metric):
            if "_child_samples" in vars(child):  # set_function(): computed now
                try:
                    value = float(next(iter(child._child_samples())).value)
                except Exception:
                    self._warn_once(
                        f"function:{name}",
                        "the function of gauge %r failed; the series is left out",
                        name,
                        exc_info=True,
                    )
                    continue
            else:
                value = _read(child._value)
                if inherited and self._still_inherited(name, key, value):
                    continue
            labelsets.append(key)
            values.append(value)
        return Family(
            name,
            MetricType.GAUGE,
            metric._documentation,
            tuple(metric._labelnames),
            SampleColumns(labelsets, values),
            unit=metric._unit,
            merge=self.merge.get(name) or merge_of_mode(metric._multiprocess_mode),
        )

    def _read_info(self, metric: Info) -> Family:
        name = metric._name + "_info"
        rows: list[tuple[_Key, dict[str, str]]] = []
        for key, child in children_of(metric):
            with child._lock:
                value = dict(child._value)
            if self._inherited and self._still_inherited(name, key, frozenset(value.items())):
                continue
            rows.append((key, value))
        extra = sorted({label for _, value in rows for label in value})
        samples = [
            Sample((*key, *(value.get(label, "") for label in extra)), 1.0) for key, value in rows
        ]
        return Family(
            name,
            MetricType.GAUGE,
            metric._documentation,
            (*metric._labelnames, *extra),
            samples,
            merge=self.merge.get(name, INFO_MERGE),
        )

    def _read_enum(self, metric: Enum) -> Family:
        name = metric._name
        states = list(metric._states)
        samples: list[Sample] = []
        for key, child in children_of(metric):
            current = int(child._value)
            if self._inherited and self._still_inherited(name, key, current):
                continue
            samples.extend(
                Sample((*key, state), 1.0 if i == current else 0.0)
                for i, state in enumerate(states)
            )
        return Family(
            name,
            MetricType.GAUGE,
            metric._documentation,
            (*metric._labelnames, name),
            samples,
            merge=self.merge.get(name, ENUM_MERGE),
        )

    # -- restarts of a custom collector's cumulative series -----------------------------

    def _monotonic_values(self, family: Family, present: set[str]) -> Family:
        """Counters of a custom collector: a value that went back is a restart."""
        track = self._track(family.name, present)
        last = track.last
        labelsets: list[_Key] = []
        values: list[float] = []
        for sample in family.samples:
            if not isinstance(sample, Sample):
                continue
            key, value = sample.labels, sample.value
            previous = last.get(key)
            if previous is not None and value < previous:
                track.restarted(key, previous)
            last[key] = value
            labelsets.append(key)
            values.append(value)
        return Family(
            family.name,
            family.type,
            family.documentation,
            family.labelnames,
            SampleColumns(labelsets, track.settle(labelsets, values)),
            unit=family.unit,
        )

    def _monotonic_histograms(self, family: Family, present: set[str]) -> Family:
        """Histograms of a custom collector: a count that went back is a restart."""
        track = self._track(family.name, present)
        samples = [
            track.histogram(sample, None)
            for sample in family.samples
            if isinstance(sample, HistogramSample)
        ]
        return Family(
            family.name,
            family.type,
            family.documentation,
            family.labelnames,
            track.settle_histograms(samples),
            unit=family.unit,
            buckets=family.buckets,
        )

    # -- fork ----------------------------------------------------------------------------

    def _still_inherited(self, name: str, key: _Key, token: Hashable) -> bool:
        """Whether a series still holds what this forked child inherited (then hide it)."""
        ident = (name, key)
        found = self._inherited.get(ident, _MISSING)
        if found is _MISSING:
            return False
        if found == token or (
            isinstance(found, float)
            and isinstance(token, float)
            and math.isnan(found)
            and math.isnan(token)
        ):
            return True  # NaN equals nothing, not even the NaN it was
        del self._inherited[ident]  # changed by the child: its own from now on
        return False

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        self._tracks = {}
        self._inherited = restart_values(self.registry)

    # -- what is left out ----------------------------------------------------------------

    def _accept(self, family: Family) -> bool:
        ident = (family.name, family.labelnames, family.type)
        if ident in self._accepted:
            into = self._into()
            if into is None or into.get(family.name) is None:
                return True
        try:
            validate_metric_name(family.name)
            validate_label_names(
                family.labelnames,
                reserved=("le",) if family.type is MetricType.HISTOGRAM else (),
                metric=family.name,
            )
        except (TypeError, ValueError) as exc:
            self._warn_once(
                f"name:{family.name}",
                "the prometheus_client family %r is left out: %s",
                family.name,
                exc,
            )
            return False
        into = self._into()
        if into is not None and into.get(family.name) is not None:
            self._warn_once(
                f"taken:{family.name}",
                "the prometheus_client family %r is left out: the metricache registry has "
                "a metric of that name",
                family.name,
            )
            return False
        self._accepted.add(ident)
        return True

    def _warn_skipped(self, skipped: list[str]) -> None:
        new = [text for text in skipped if f"skip:{text}" not in self._warned]
        if not new:
            return
        self._warned.update(f"skip:{text}" for text in new)
        log.warning(
            "prometheus_client bridge: %d custom collector(s) skipped, their values are not "
            "synced: %s. Bridge them with include_custom=True if their values are this "
            "process's own (see the migration recipe)",
            len(new),
            "; ".join(new),
        )

    def _warn_once(self, key: str, message: str, *args: Any, exc_info: bool = False) -> None:
        if key in self._warned:
            return
        self._warned.add(key)
        log.warning(message, *args, exc_info=exc_info)


_MISSING = object()


def is_merged_view(collector: Any) -> bool:
    """Whether ``collector`` shows metricache's merged view (a bridge never reads one)."""
    return getattr(collector, "metricache_merged_view", False) is True


def _describe(collector: Any, exposed: Iterable[str]) -> str:
    kind = type(collector)
    names = ", ".join(sorted(exposed))
    text = f"{kind.__module__}.{kind.__qualname__}"
    return f"{text} ({names})" if names else text


# -- which bridges exist -------------------------------------------------------------------

_lock = threading.Lock()
# metricache registry -> {id of a prometheus_client registry: its bridge}. The bridge
# holds its prometheus_client registry, so that id stays its own while the entry lives.
_bridges: weakref.WeakKeyDictionary[Registry, dict[int, Bridge]] = weakref.WeakKeyDictionary()
_live: weakref.WeakSet[Bridge] = weakref.WeakSet()


def bridge(
    registry: CollectorRegistry | None = None,
    into: Registry | None = None,
    *,
    include_custom: bool = False,
    merge: Mapping[str, str | GaugeMerge] | None = None,
) -> Bridge:
    """Sync every metric of a prometheus_client registry through metricache.

    ``registry``: the prometheus_client registry (default ``prometheus_client.REGISTRY``);
    ``into``: the metricache registry whose syncer carries them (default
    ``metricache.REGISTRY``, the one :func:`metricache.start` syncs). Returns the
    :class:`Bridge`, registered as a collector of ``into``. Calling it again for the
    same pair returns the same bridge (its options unchanged), so a metric is never
    read twice. ``include_custom`` and ``merge``: see :class:`Bridge`.
    """
    registry = PROMETHEUS_REGISTRY if registry is None else registry
    into = REGISTRY if into is None else into
    made, created = bridge_for(registry, into, include_custom=include_custom, merge=merge)
    if created:
        into.register_collector(made)
    return made


def bridge_for(
    registry: CollectorRegistry,
    into: Registry,
    *,
    include_custom: bool = False,
    merge: Mapping[str, str | GaugeMerge] | None = None,
) -> tuple[Bridge, bool]:
    """Return the bridge of ``registry`` into ``into``, and whether it is new.

    A new bridge is not registered in ``into``: :func:`bridge` does that, the plugin's
    hook lets :func:`~metricache.collectors.install_collectors` do it.
    """
    with _lock:
        per_registry = _bridges.setdefault(into, {})
        found = per_registry.get(id(registry))
        if found is not None:
            return found, False
        made = Bridge(registry, into, include_custom=include_custom, merge=merge)
        per_registry[id(registry)] = made
        _live.add(made)
        return made, True


def unbridge(made: Bridge) -> None:
    """Stop syncing what ``made`` reads: unregister it from its metricache registry.

    What it synced stays in the store until the retention window passes.
    """
    into = made.into
    with _lock:
        _live.discard(made)
        if into is not None:
            per_registry = _bridges.get(into, {})
            if per_registry.get(id(made.registry)) is made:
                del per_registry[id(made.registry)]
    if into is not None and made in into.collectors():
        into.unregister_collector(made)


def bridges() -> list[Bridge]:
    """Return every bridge in use in this process."""
    with _lock:
        return list(_live)


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()
    for made in list(_live):
        try:
            made._after_fork_in_child()
        except Exception:  # never break a fork
            log.exception("restarting the prometheus_client values after fork failed")


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
