"""The snapshot: the one immutable data model every format and exporter receives.

A :class:`Snapshot` holds :class:`Family` objects; a family holds its samples. Label
values are stored as a tuple aligned with ``Family.labelnames`` (not as pairs), which
keeps large snapshots small and fast to build. Formats never reach back into live
metrics or into a store: what they render is exactly what a snapshot holds.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Union, cast, overload

import attrs

__all__ = [
    "INF",
    "AnySample",
    "Family",
    "GaugeMerge",
    "HistogramSample",
    "MetricType",
    "Sample",
    "SampleColumns",
    "Snapshot",
    "ViewKind",
]

INF = math.inf


class MetricType(str, enum.Enum):
    """The kind of a metric family."""

    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


class GaugeMerge(str, enum.Enum):
    """How the values of one gauge series from several instances merge at read time.

    ``SUM`` adds them, ``MAX``/``MIN`` keep the extreme, ``LAST`` keeps the most
    recently set value, ``PER_INSTANCE`` keeps every instance's value apart under an
    extra ``instance`` label.
    """

    SUM = "sum"
    MAX = "max"
    MIN = "min"
    LAST = "last"
    PER_INSTANCE = "per_instance"


class ViewKind(str, enum.Enum):
    """Whose values a snapshot shows: one instance's, or every live instance's merged."""

    INSTANCE = "instance"
    MERGED = "merged"


@attrs.frozen
class Sample:
    """One counter or gauge series: its label values and its value."""

    labels: tuple[str, ...]
    value: float


@attrs.frozen
class HistogramSample:
    """One histogram series.

    ``buckets`` holds cumulative counts aligned with ``Family.buckets`` (the upper
    bounds, the last being ``+Inf``), so ``buckets[-1] == count`` always holds.
    """

    labels: tuple[str, ...]
    buckets: tuple[int, ...]
    sum: float
    count: int


AnySample = Union[Sample, HistogramSample]  # noqa: UP007 (a runtime alias on 3.10)

# Writing the two slots directly builds a Sample in about two thirds of the time
# attrs' frozen __init__ takes. Sample has no converter or validator, so nothing is
# skipped (a test holds both equal).
_new_object = object.__new__
_set_labels = cast(Any, Sample).__dict__["labels"].__set__
_set_value = cast(Any, Sample).__dict__["value"].__set__


def _build_samples(
    labelsets: Iterable[tuple[str, ...]], values: Iterable[float]
) -> Iterator[Sample]:
    new, set_labels, set_value = _new_object, _set_labels, _set_value
    for labels, value in zip(labelsets, values):
        sample = new(Sample)
        set_labels(sample, labels)
        set_value(sample, value)
        yield sample


class SampleColumns(Sequence[Sample]):
    """The counter or gauge samples of a family, held as two parallel tuples.

    A registry snapshot stores its counters and gauges this way: taking a snapshot of
    100,000 series then allocates two tuples per family instead of 100,000 objects
    that outlive the call (and would wake the garbage collector's full collection
    on every scrape). It is an immutable sequence of :class:`Sample`: iterating or
    indexing it builds the samples; it equals any sequence holding the same samples.
    Formats that care for speed read :attr:`labelsets` and :attr:`values` directly.
    """

    __slots__ = ("labelsets", "values")

    labelsets: tuple[tuple[str, ...], ...]
    values: tuple[float, ...]

    def __init__(self, labelsets: Iterable[tuple[str, ...]], values: Iterable[float]) -> None:
        labelsets = tuple(labelsets)
        values = tuple(values)
        if len(labelsets) != len(values):
            raise ValueError(
                f"{len(labelsets)} label sets but {len(values)} values: columns must align"
            )
        object.__setattr__(self, "labelsets", labelsets)
        object.__setattr__(self, "values", values)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"SampleColumns is immutable (cannot set {name!r})")

    def __len__(self) -> int:
        return len(self.values)

    @overload
    def __getitem__(self, index: int) -> Sample: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[Sample, ...]: ...

    def __getitem__(self, index: int | slice) -> Sample | tuple[Sample, ...]:
        if isinstance(index, slice):
            return tuple(_build_samples(self.labelsets[index], self.values[index]))
        return Sample(self.labelsets[index], self.values[index])

    def __iter__(self) -> Iterator[Sample]:
        return _build_samples(self.labelsets, self.values)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SampleColumns):
            return self.labelsets == other.labelsets and self.values == other.values
        if isinstance(other, (tuple, list)):
            return len(other) == len(self) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return repr(tuple(self))


def _strings(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _samples(value: Iterable[AnySample]) -> Sequence[AnySample]:
    return value if isinstance(value, SampleColumns) else tuple(value)


def _floats(value: Iterable[float]) -> tuple[float, ...]:
    return tuple(value)


@attrs.frozen
class Family:
    """A metric family: metadata plus every series it holds at snapshot time.

    ``name`` is the base name (a counter's without ``_total``). ``samples`` is a tuple,
    or a :class:`SampleColumns` in a registry's snapshot of a counter or gauge (an
    immutable sequence of samples all the same). ``unit`` is empty when none was
    declared. ``buckets`` is empty except for histograms. ``merge`` is the
    gauge merge mode (``None`` for other types).
    """

    name: str
    type: MetricType
    documentation: str
    labelnames: tuple[str, ...] = attrs.field(converter=_strings, default=())
    samples: Sequence[AnySample] = attrs.field(converter=_samples, default=())
    unit: str = ""
    buckets: tuple[float, ...] = attrs.field(converter=_floats, default=())
    merge: GaugeMerge | None = None

    def sample(self, *labelvalues: str, **labelkwargs: str) -> AnySample | None:
        """Return the sample with these label values (positional or by name), or None."""
        if labelkwargs:
            if labelvalues:
                raise ValueError("give label values positionally or by name, not both")
            try:
                labelvalues = tuple(labelkwargs[n] for n in self.labelnames)
            except KeyError as exc:
                raise ValueError(
                    f"family {self.name!r} has labels {self.labelnames}, missing {exc}"
                ) from None
        for s in self.samples:
            if s.labels == labelvalues:
                return s
        return None

    def by_labels(self) -> dict[tuple[str, ...], AnySample]:
        """Return the samples keyed by their label values."""
        return {s.labels: s for s in self.samples}


def _families(value: Iterable[Family]) -> tuple[Family, ...]:
    return tuple(value)


@attrs.frozen
class Snapshot:
    """An immutable view of metric families at one moment.

    ``view`` says whether it shows one instance or the merge of every live instance;
    ``instance`` and ``strategy`` describe where it came from (``None`` when unknown,
    e.g. a registry snapshot with no syncer).
    """

    families: tuple[Family, ...] = attrs.field(converter=_families)
    timestamp: float = 0.0
    view: ViewKind = ViewKind.INSTANCE
    instance: str | None = None
    strategy: str | None = None

    def __iter__(self) -> Iterator[Family]:
        return iter(self.families)

    def __len__(self) -> int:
        return len(self.families)

    def get(self, name: str) -> Family | None:
        """Return the family called ``name`` (a counter's base name), or None."""
        for fam in self.families:
            if fam.name == name:
                return fam
        return None

    def __getitem__(self, name: str) -> Family:
        fam = self.get(name)
        if fam is None:
            raise KeyError(name)
        return fam

    def series_count(self) -> int:
        """Return how many series (samples) the snapshot holds in all."""
        return sum(len(f.samples) for f in self.families)

    def values(self) -> Mapping[tuple[str, tuple[str, ...]], float | HistogramSample]:
        """Return a flat mapping ``(family, labels) -> value`` (handy for comparisons).

        Counter and gauge samples map to their float value, histogram samples to the
        sample itself.
        """
        out: dict[tuple[str, tuple[str, ...]], float | HistogramSample] = {}
        for fam in self.families:
            for s in fam.samples:
                out[(fam.name, s.labels)] = s.value if isinstance(s, Sample) else s
        return out
