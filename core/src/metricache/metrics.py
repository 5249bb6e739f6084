"""Counter, Gauge and Histogram: the hot path.

Every series is a small object (a *child*) with its own lock; an update takes the
lock, changes one or two numbers and releases it. Nothing on this path touches a
store: a background syncer reads what changed later. A series registers itself in
its registry's change tracker the first time it changes after a sync (one attribute
test per update otherwise).

The API follows prometheus_client: ``Counter(name, documentation, labelnames=())``,
``.labels(*values)`` or ``.labels(**values)`` returning a bound child, ``inc()``,
``dec()``, ``set()``, ``observe()``, ``time()``, ``remove()``, ``clear()``.
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
import operator
import threading
import time
import weakref
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import Any, ClassVar, Generic, TypeVar, cast

from metricache.names import INSTANCE_LABEL, full_metric_name, validate_label_names
from metricache.registry import REGISTRY, Registry
from metricache.snapshot import (
    Family,
    GaugeMerge,
    HistogramSample,
    MetricType,
    SampleColumns,
)

__all__ = [
    "DEFAULT_BUCKETS",
    "OVERFLOW_LABEL_VALUE",
    "Counter",
    "CounterChild",
    "Gauge",
    "GaugeChild",
    "Histogram",
    "HistogramChild",
    "MetricBase",
]

log = logging.getLogger("metricache")

INF = math.inf
DEFAULT_BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    INF,
)
"""Prometheus's default histogram buckets (upper bounds, ``+Inf`` last)."""

OVERFLOW_LABEL_VALUE = "__overflow__"
"""The value of every label of the series that collects label sets over the limit."""

F = TypeVar("F", bound=Callable[..., Any])
ChildT = TypeVar("ChildT", bound="_Child")

_LABELS = operator.attrgetter("_labels")
_VALUE = operator.attrgetter("_value")

# A tracker that keeps nothing, for metrics that belong to no registry.
_NO_TRACKER: deque[Any] = deque(maxlen=0)


class _Timer:
    """Times a block or a function and reports the seconds to a callback."""

    __slots__ = ("_callback", "_start")

    def __init__(self, callback: Callable[[float], None]) -> None:
        self._callback = callback
        self._start = 0.0

    def __enter__(self) -> _Timer:
        self._start = time.perf_counter()
        return self

    def __exit__(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._callback(max(time.perf_counter() - self._start, 0.0))

    def __call__(self, func: F) -> F:
        callback = self._callback

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                callback(max(time.perf_counter() - start, 0.0))

        return cast(F, wrapper)


class _ExceptionCounter:
    """Counts exceptions of given types raised by a block or a function."""

    __slots__ = ("_child", "_types")

    def __init__(
        self, child: CounterChild, types: type[BaseException] | tuple[type[BaseException], ...]
    ) -> None:
        self._child = child
        self._types = types

    def __enter__(self) -> _ExceptionCounter:
        return self

    def __exit__(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if typ is not None and issubclass(typ, self._types):
            self._child.inc()

    def __call__(self, func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self:
                return func(*args, **kwargs)

        return cast(F, wrapper)


class _Child:
    """State shared by every series: its lock, labels and change-tracking flag."""

    __slots__ = ("__weakref__", "_dirty", "_gone", "_labels", "_lock", "family")

    def __init__(self, family: MetricBase[Any], labels: tuple[str, ...]) -> None:
        self.family = family
        self._labels = labels
        self._lock = threading.Lock()
        self._gone = False  # removed from its metric (remove(), clear())
        # A new series is "changed": the syncer must learn that it exists.
        self._dirty = True
        family._tracker.append(self)

    @property
    def labels(self) -> tuple[str, ...]:
        """The label values of this series, in the order of the family's label names."""
        return self._labels

    def _mark(self) -> None:
        # Runs after the value changed; see Syncer for why this order is safe. The
        # tracker is the family's current one: it keeps nothing until a syncer arms it.
        self._dirty = True
        self.family._tracker.append(self)

    def _inherit(self) -> Any:
        """Return what this series holds at a fork, in the child (its parent's part)."""
        raise NotImplementedError


class CounterChild(_Child):
    """One counter series. Only goes up."""

    __slots__ = ("_value",)

    def __init__(self, family: MetricBase[Any], labels: tuple[str, ...]) -> None:
        self._value = 0.0
        super().__init__(family, labels)

    def inc(self, amount: float = 1.0) -> None:
        """Add ``amount`` (default 1), which must be finite and not negative."""
        if not 0 <= amount < INF:
            raise ValueError(
                f"counter {self.family.name!r}: inc() takes a finite amount >= 0, got {amount!r}"
            )
        lock = self._lock
        lock.acquire()
        try:
            self._value += amount
        finally:
            lock.release()
        if not self._dirty:
            self._mark()

    def count_exceptions(
        self, exception: type[BaseException] | tuple[type[BaseException], ...] = Exception
    ) -> _ExceptionCounter:
        """Count exceptions of the given type(s); a context manager and a decorator."""
        return _ExceptionCounter(self, exception)

    def get(self) -> float:
        """Return the current value of this series in this process."""
        return self._value

    def _inherit(self) -> float:
        return self._value


class GaugeChild(_Child):
    """One gauge series: set, increased or decreased freely.

    It also remembers when it last changed (wall clock), which the ``last`` merge
    mode uses to pick the most recent value across instances, and what it inherited
    through ``fork()`` (``_base``): a child reports only what it records itself, so
    its own value is ``value - base`` until it sets the gauge.
    """

    __slots__ = ("_base", "_stamp", "_value")

    def __init__(self, family: MetricBase[Any], labels: tuple[str, ...]) -> None:
        self._value = 0.0
        self._base = 0.0
        self._stamp = time.time()
        super().__init__(family, labels)

    def set(self, value: float) -> None:
        """Set the gauge to ``value``."""
        value = float(value)
        lock = self._lock
        lock.acquire()
        try:
            self._value = value
            self._base = 0.0
            self._stamp = time.time()
        finally:
            lock.release()
        if not self._dirty:
            self._mark()

    def inc(self, amount: float = 1.0) -> None:
        """Add ``amount`` (default 1)."""
        lock = self._lock
        lock.acquire()
        try:
            self._value += amount
            self._stamp = time.time()
        finally:
            lock.release()
        if not self._dirty:
            self._mark()

    def dec(self, amount: float = 1.0) -> None:
        """Subtract ``amount`` (default 1)."""
        self.inc(-amount)

    def set_to_current_time(self) -> None:
        """Set the gauge to the current Unix time in seconds."""
        self.set(time.time())

    def track_inprogress(self) -> _InProgress:
        """Increase on entry and decrease on exit; a context manager and a decorator."""
        return _InProgress(self)

    def time(self) -> _Timer:
        """Set the gauge to the duration of a block or call, in seconds."""
        return _Timer(self.set)

    def get(self) -> float:
        """Return the current value of this series in this process."""
        return self._value

    def read(self) -> tuple[float, float]:
        """Return ``(value, wall-clock time of the last change)`` consistently."""
        with self._lock:
            return self._value, self._stamp

    def _inherit(self) -> float:
        # A gauge keeps what it inherited as its base, so its own value starts at 0.
        self._base = self._value
        return self._value

    def own(self) -> tuple[float, float]:
        """Return ``(this process's own value, time of the last change)``.

        The own value leaves out what a forked child inherited and has not replaced
        with ``set()``; in a process that was not forked it is the value.
        """
        with self._lock:
            return self._value - self._base, self._stamp


class _InProgress:
    __slots__ = ("_gauge",)

    def __init__(self, gauge: GaugeChild) -> None:
        self._gauge = gauge

    def __enter__(self) -> _InProgress:
        self._gauge.inc()
        return self

    def __exit__(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._gauge.dec()

    def __call__(self, func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self:
                return func(*args, **kwargs)

        return cast(F, wrapper)


class HistogramChild(_Child):
    """One histogram series: per-bucket counts and the sum of observations.

    Counts are kept per bucket (not cumulative); the total count is their sum, so a
    snapshot can never show a count that disagrees with the buckets.
    """

    __slots__ = ("_counts", "_sum", "_upper")

    def __init__(self, family: MetricBase[Any], labels: tuple[str, ...]) -> None:
        upper = cast("Histogram", family)._upper_bounds
        self._upper = upper
        self._counts = [0] * len(upper)
        self._sum = 0.0
        super().__init__(family, labels)

    def observe(self, amount: float) -> None:
        """Record one observation, which must be a finite number."""
        if not -INF < amount < INF:
            raise ValueError(
                f"histogram {self.family.name!r}: observe() takes a finite number, got {amount!r}"
            )
        i = bisect_left(self._upper, amount)
        lock = self._lock
        lock.acquire()
        try:
            self._counts[i] += 1
            self._sum += amount
        finally:
            lock.release()
        if not self._dirty:
            self._mark()

    def time(self) -> _Timer:
        """Observe the duration of a block or call, in seconds."""
        return _Timer(self.observe)

    def _inherit(self) -> tuple[tuple[int, ...], float]:
        return tuple(self._counts), self._sum

    def read(self) -> tuple[tuple[int, ...], float]:
        """Return ``(per-bucket counts, sum)``, taken together under the series lock."""
        lock = self._lock
        lock.acquire()
        try:
            return tuple(self._counts), self._sum
        finally:
            lock.release()


class MetricBase(Generic[ChildT]):
    """What Counter, Gauge and Histogram share: naming, labels, children, registry."""

    _type: ClassVar[MetricType]
    _child_class: ClassVar[type[_Child]]
    _reserved_labels: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Iterable[str] = (),
        namespace: str = "",
        subsystem: str = "",
        unit: str = "",
        registry: Registry | None = REGISTRY,
        cardinality_limit: int | None = None,
    ) -> None:
        if not isinstance(documentation, str):
            raise TypeError("documentation must be a str")
        if not documentation.isascii() and _not_utf8(documentation):
            raise ValueError(f"the documentation of {name!r} is not valid UTF-8 text{_SURROGATE}")
        # A counter's ``_total`` goes before the unit is appended, as in prometheus_client:
        # Counter("sent_total", unit="bytes") is the family ``sent_bytes``.
        self.name = full_metric_name(self._base_name(name), namespace, subsystem, unit)
        self.documentation = documentation
        self.unit = unit
        self.labelnames = validate_label_names(
            labelnames, reserved=self._reserved(), metric=self.name
        )
        if cardinality_limit is not None and cardinality_limit < 1:
            raise ValueError("cardinality_limit must be at least 1")
        limit = cardinality_limit or (registry.cardinality_limit if registry else 2000)
        self.cardinality_limit = limit
        self.registry = registry
        self._prepare()
        # The registry hands its tracker over when it registers the metric (and again
        # when a syncer arms it); until then, and without a registry, nothing is kept.
        self._tracker: deque[Any] = _NO_TRACKER
        self._lock = threading.Lock()
        self._children: dict[tuple[str, ...], ChildT] = {}
        self._folded = [0]  # label lookups folded into the overflow series
        self._default: ChildT | None = None
        self._adopters: list[weakref.ReferenceType[MetricBase[ChildT]]] = []
        owner = registry.register(self) if registry is not None else self
        if owner is not self:
            self._adopt(cast("MetricBase[ChildT]", owner))
        else:
            self._ensure_default()

    # -- declaration -----------------------------------------------------------------

    def _base_name(self, full: str) -> str:
        return full

    def _reserved(self) -> tuple[str, ...]:
        """Label names this metric keeps for itself."""
        return self._reserved_labels

    def _prepare(self) -> None:
        """Let a subclass check its own arguments before children exist."""

    def _describe(self) -> str:
        return f"a {self._type.value} with labels {list(self.labelnames)}"

    def _exposed_names(self) -> tuple[str, ...]:
        """Every name this metric's family and samples use in an exposition."""
        return (self.name,)

    def _conflict_with(self, other: MetricBase[Any]) -> str:
        if other._type is not self._type:
            return f"it cannot be redeclared as a {other._type.value}"
        if other.labelnames != self.labelnames:
            return f"it cannot be redeclared with labels {list(other.labelnames)}"
        return ""

    def _ensure_default(self) -> None:
        if not self.labelnames:
            with self._lock:
                if self._default is None:
                    self._default = self._make_child(())

    def _adopt(self, owner: MetricBase[ChildT]) -> None:
        # An identical redeclaration shares the first declaration's series.
        owner._ensure_default()
        # The registry knows only the owner; it hands a new lock (after a fork) and its
        # armed tracker to the adopters too. Listed before the tracker is copied, so an
        # arming in between reaches this adopter either way.
        owner._adopters.append(weakref.ref(self))
        self._lock = owner._lock
        self._children = owner._children
        self._default = owner._default
        self._folded = owner._folded
        self._tracker = owner._tracker
        self.documentation = owner.documentation

    def _use_tracker(self, tracker: deque[Any]) -> None:
        """Record changes of this metric's series (and its adopters') in ``tracker``."""
        self._tracker = tracker
        for ref in self._adopters:
            adopter = ref()
            if adopter is not None:
                adopter._tracker = tracker

    def _reset_locks(self) -> None:
        self._lock = threading.Lock()
        for ref in self._adopters:
            adopter = ref()
            if adopter is not None:
                adopter._lock = self._lock
        for child in list(self._children.values()):
            child._lock = threading.Lock()

    # -- children --------------------------------------------------------------------

    def _make_child(self, labels: tuple[str, ...]) -> ChildT:
        child = cast(ChildT, self._child_class(self, labels))
        self._children[labels] = child
        return child

    def labels(self, *labelvalues: object, **labelkwargs: object) -> ChildT:
        """Return the series for these label values (positional or by name).

        Values are converted with ``str()``. A new label set beyond the cardinality
        limit returns the shared overflow series instead (and is counted).
        """
        if labelkwargs:
            labelvalues = self._values_from_names(labelvalues, labelkwargs)
        elif not labelvalues:
            return self._child_slow(labelvalues)
        try:
            child = self._children.get(labelvalues)  # type: ignore[arg-type]
        except TypeError:
            child = None
        if child is not None:
            return child
        return self._child_slow(labelvalues)

    def _values_from_names(
        self, labelvalues: tuple[object, ...], labelkwargs: dict[str, object]
    ) -> tuple[object, ...]:
        if labelvalues:
            raise ValueError(
                f"metric {self.name!r}: give label values positionally or by name, not both"
            )
        if labelkwargs.keys() != set(self.labelnames):
            raise ValueError(
                f"metric {self.name!r} takes labels {list(self.labelnames)}, "
                f"got {sorted(labelkwargs)}"
            )
        return tuple(labelkwargs[name] for name in self.labelnames)

    def _check_values(self, labelvalues: Sequence[object]) -> tuple[str, ...]:
        if not self.labelnames:
            raise ValueError(f"metric {self.name!r} has no labels; call its methods directly")
        if len(labelvalues) != len(self.labelnames):
            raise ValueError(
                f"metric {self.name!r} takes {len(self.labelnames)} label values "
                f"{list(self.labelnames)}, got {len(labelvalues)}"
            )
        values = tuple(v if type(v) is str else str(v) for v in labelvalues)
        for position, value in enumerate(values):
            # Stores and formats write UTF-8: a value that has no UTF-8 form would make
            # every later sync and rendering fail, so it is refused here, where it is made.
            if not value.isascii() and _not_utf8(value):
                raise ValueError(
                    f"metric {self.name!r}: the value of label "
                    f"{self.labelnames[position]!r}, {ascii(value)[:60]}, is not valid "
                    f"UTF-8 text{_SURROGATE}"
                )
        return values

    def _child_slow(self, labelvalues: Sequence[object]) -> ChildT:
        key = self._check_values(labelvalues)
        folded = False
        with self._lock:
            child = self._children.get(key)
            if child is None:
                if len(self._children) >= self.cardinality_limit:
                    child = self._overflow_child()
                    folded = child._labels != key
                else:
                    child = self._make_child(key)
        if folded:
            self._count_fold()
        return child

    def _overflow_child(self) -> ChildT:
        key = (OVERFLOW_LABEL_VALUE,) * len(self.labelnames)
        child = self._children.get(key)
        if child is None:
            child = self._make_child(key)
            log.warning(
                "metric %r reached its cardinality limit of %d label sets; further label "
                "sets are folded into the series with every label = %r",
                self.name,
                self.cardinality_limit,
                OVERFLOW_LABEL_VALUE,
            )
        return child

    def _count_fold(self) -> None:
        with self._lock:
            self._folded[0] += 1
        if self.registry is not None:
            counter = self.registry.self_metric("overflow", _overflow_counter)
            counter.labels(self.name).inc()

    def remove(self, *labelvalues: object) -> None:
        """Forget the series with these label values in this process."""
        key = self._check_values(labelvalues)
        with self._lock:
            child = self._children.pop(key, None)
            if child is not None:
                child._gone = True
        if child is not None:
            # A syncer learns at its next sync that the series is gone (it sends what
            # the series counted since the last sync, then stops holding it).
            self._tracker.append(child)

    def clear(self) -> None:
        """Forget every series of this labelled metric in this process."""
        if not self.labelnames:
            raise ValueError(f"metric {self.name!r} has no labels; there is nothing to clear")
        with self._lock:
            removed = list(self._children.values())
            self._children.clear()
            for child in removed:
                child._gone = True
        self._tracker.extend(removed)

    def children(self) -> list[ChildT]:
        """Return the live series of this metric."""
        with self._lock:
            return list(self._children.values())

    @property
    def folded(self) -> int:
        """How many label lookups were folded into the overflow series."""
        return self._folded[0]

    def _only_child(self) -> ChildT:
        child = self._default
        if child is None:
            raise ValueError(
                f"metric {self.name!r} has labels {list(self.labelnames)}; call .labels(...) first"
            )
        return child

    # -- snapshot --------------------------------------------------------------------

    def _collect(self) -> Family:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, labels={list(self.labelnames)})"


def _overflow_counter(registry: Registry) -> Counter:
    return Counter(
        "metricache_cardinality_overflow",
        "Label lookups folded into a metric's overflow series after its cardinality limit",
        ["metric"],
        registry=registry,
    )


class Counter(MetricBase[CounterChild]):
    """A monotonic counter. Exposed with the ``_total`` suffix.

    ``Counter("requests", "Requests served", ["method"])`` and
    ``Counter("requests_total", ...)`` name the same family.
    """

    _type = MetricType.COUNTER
    _child_class = CounterChild

    def _base_name(self, full: str) -> str:
        return full[: -len("_total")] if isinstance(full, str) and full.endswith("_total") else full

    def _exposed_names(self) -> tuple[str, ...]:
        # ``_created`` is never written, but OpenMetrics reserves it for counters.
        name = self.name
        return (name, f"{name}_total", f"{name}_created")

    def inc(self, amount: float = 1.0) -> None:
        """Add ``amount`` to an unlabelled counter."""
        self._only_child().inc(amount)

    def count_exceptions(
        self, exception: type[BaseException] | tuple[type[BaseException], ...] = Exception
    ) -> _ExceptionCounter:
        """Count exceptions of the given type(s); a context manager and a decorator."""
        return self._only_child().count_exceptions(exception)

    def _collect(self) -> Family:
        children = self.children()
        samples = SampleColumns(map(_LABELS, children), map(_VALUE, children))
        return Family(
            name=self.name,
            type=MetricType.COUNTER,
            documentation=self.documentation,
            labelnames=self.labelnames,
            samples=samples,
            unit=self.unit,
        )


class Gauge(MetricBase[GaugeChild]):
    """A value that goes up and down.

    ``merge`` says how instances combine in the merged view: ``"sum"`` (default),
    ``"max"``, ``"min"``, ``"last"`` or ``"per_instance"`` (a ``metricache_instance``
    label names each instance's series).
    """

    _type = MetricType.GAUGE
    _child_class = GaugeChild

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Iterable[str] = (),
        namespace: str = "",
        subsystem: str = "",
        unit: str = "",
        registry: Registry | None = REGISTRY,
        cardinality_limit: int | None = None,
        merge: str | GaugeMerge = GaugeMerge.SUM,
    ) -> None:
        try:
            self.merge = GaugeMerge(merge)
        except ValueError:
            modes = ", ".join(m.value for m in GaugeMerge)
            raise ValueError(f"gauge merge mode must be one of {modes}; got {merge!r}") from None
        super().__init__(
            name,
            documentation,
            labelnames,
            namespace,
            subsystem,
            unit,
            registry,
            cardinality_limit,
        )

    def _reserved(self) -> tuple[str, ...]:
        # The merged view adds a label naming the instance to per-instance gauges.
        return (INSTANCE_LABEL,) if self.merge is GaugeMerge.PER_INSTANCE else ()

    def _describe(self) -> str:
        return f"{super()._describe()} (merge {self.merge.value!r})"

    def _conflict_with(self, other: MetricBase[Any]) -> str:
        problem = super()._conflict_with(other)
        if not problem and cast(Gauge, other).merge is not self.merge:
            problem = f"it cannot be redeclared with merge {cast(Gauge, other).merge.value!r}"
        return problem

    def set(self, value: float) -> None:
        """Set an unlabelled gauge."""
        self._only_child().set(value)

    def inc(self, amount: float = 1.0) -> None:
        """Increase an unlabelled gauge."""
        self._only_child().inc(amount)

    def dec(self, amount: float = 1.0) -> None:
        """Decrease an unlabelled gauge."""
        self._only_child().inc(-amount)

    def set_to_current_time(self) -> None:
        """Set an unlabelled gauge to the current Unix time."""
        self._only_child().set_to_current_time()

    def track_inprogress(self) -> _InProgress:
        """Count a block or call while it runs (unlabelled gauge)."""
        return self._only_child().track_inprogress()

    def time(self) -> _Timer:
        """Set an unlabelled gauge to the duration of a block or call."""
        return self._only_child().time()

    def _collect(self) -> Family:
        children = self.children()
        samples = SampleColumns(map(_LABELS, children), map(_VALUE, children))
        return Family(
            name=self.name,
            type=MetricType.GAUGE,
            documentation=self.documentation,
            labelnames=self.labelnames,
            samples=samples,
            unit=self.unit,
            merge=self.merge,
        )


class Histogram(MetricBase[HistogramChild]):
    """Observations counted in cumulative buckets, with their sum and count.

    ``buckets`` are upper bounds in increasing order; ``+Inf`` is added when missing.
    The default is Prometheus's :data:`DEFAULT_BUCKETS`.
    """

    _type = MetricType.HISTOGRAM
    _child_class = HistogramChild
    _reserved_labels = ("le",)

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Iterable[str] = (),
        namespace: str = "",
        subsystem: str = "",
        unit: str = "",
        registry: Registry | None = REGISTRY,
        buckets: Sequence[float] = DEFAULT_BUCKETS,
        cardinality_limit: int | None = None,
    ) -> None:
        self._upper_bounds = _check_buckets(buckets)
        super().__init__(
            name,
            documentation,
            labelnames,
            namespace,
            subsystem,
            unit,
            registry,
            cardinality_limit,
        )

    @property
    def buckets(self) -> tuple[float, ...]:
        """The bucket upper bounds, ``+Inf`` last."""
        return self._upper_bounds

    def _describe(self) -> str:
        return f"{super()._describe()} and buckets {list(self._upper_bounds)}"

    def _exposed_names(self) -> tuple[str, ...]:
        name = self.name
        return (name, f"{name}_bucket", f"{name}_sum", f"{name}_count", f"{name}_created")

    def _conflict_with(self, other: MetricBase[Any]) -> str:
        problem = super()._conflict_with(other)
        if not problem and cast(Histogram, other)._upper_bounds != self._upper_bounds:
            problem = "it cannot be redeclared with other buckets"
        return problem

    def observe(self, amount: float) -> None:
        """Observe a value on an unlabelled histogram."""
        self._only_child().observe(amount)

    def time(self) -> _Timer:
        """Observe the duration of a block or call (unlabelled histogram)."""
        return self._only_child().time()

    def _collect(self) -> Family:
        samples = []
        for c in self.children():
            counts, total = c.read()
            cumulative = tuple(itertools.accumulate(counts))
            samples.append(HistogramSample(c._labels, cumulative, total, cumulative[-1]))
        return Family(
            name=self.name,
            type=MetricType.HISTOGRAM,
            documentation=self.documentation,
            labelnames=self.labelnames,
            samples=samples,
            unit=self.unit,
            buckets=self._upper_bounds,
        )


_SURROGATE = (
    " (it holds a lone surrogate, as os.fsdecode() or errors='surrogateescape' make of "
    "bytes that are not UTF-8; decode such bytes with errors='replace' or "
    "'backslashreplace' instead)"
)


def _not_utf8(text: str) -> bool:
    """Whether ``text`` has no UTF-8 form (it holds a lone surrogate)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _check_buckets(buckets: Sequence[float]) -> tuple[float, ...]:
    if isinstance(buckets, (str, bytes)):
        raise TypeError("buckets must be a sequence of numbers")
    bounds = [float(b) for b in buckets]
    if any(math.isnan(b) for b in bounds):
        raise ValueError("histogram buckets must not be NaN")
    if bounds and bounds[-1] != INF:
        bounds.append(INF)
    if len(bounds) < 2:
        raise ValueError("a histogram needs at least one finite bucket besides +Inf")
    if any(b >= c for b, c in itertools.pairwise(bounds)):
        raise ValueError(f"histogram buckets must be strictly increasing, got {bounds}")
    return tuple(bounds)
