"""The snapshot: the one immutable data model every format and exporter receives.

A :class:`Snapshot` holds :class:`Family` objects; a family holds its samples. Label
values are stored as a tuple aligned with ``Family.labelnames`` (not as pairs), which
keeps large snapshots small and fast to build. Formats never reach back into live
metrics or into a store: what they render is exactly what a snapshot holds.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Union

import attrs

__all__ = [
    "INF",
    "AnySample",
    "Family",
    "GaugeMerge",
    "HistogramSample",
    "MetricType",
    "Sample",
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


def _strings(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _samples(value: Iterable[AnySample]) -> tuple[AnySample, ...]:
    return tuple(value)


def _floats(value: Iterable[float]) -> tuple[float, ...]:
    return tuple(value)


@attrs.frozen
class Family:
    """A metric family: metadata plus every series it holds at snapshot time.

    ``name`` is the base name (a counter's without ``_total``). ``unit`` is empty when
    none was declared. ``buckets`` is empty except for histograms. ``merge`` is the
    gauge merge mode (``None`` for other types).
    """

    name: str
    type: MetricType
    documentation: str
    labelnames: tuple[str, ...] = attrs.field(converter=_strings, default=())
    samples: tuple[AnySample, ...] = attrs.field(converter=_samples, default=())
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
