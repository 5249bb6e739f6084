"""The ``local_only`` strategy: one instance's whole view, saved under one key.

Stores that are not shared (memory, file) cannot hold totals several processes add
to. Each instance saves its own cumulative view instead. On start, an instance with
the same id finds its previous view and continues from it (counters and histograms
resume; gauges start over), which is how the file store survives restarts.

:class:`LocalSync` is the syncer's engine for this strategy: it writes the view when
something changed and otherwise only pushes back its expiry.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from metricache.errors import CorruptValue
from metricache.instance import Instance
from metricache.registry import Registry
from metricache.snapshot import (
    Family,
    HistogramSample,
    MetricType,
    Sample,
    Snapshot,
    ViewKind,
)
from metricache.store import Store
from metricache.sync.keyspace import FamilyMeta, Keyspace

__all__ = ["STATE_VERSION", "LocalSync", "combine", "decode_state", "encode_state"]

log = logging.getLogger("metricache.sync")

STATE_VERSION = 1


def _number(value: Any) -> float:
    if not isinstance(value, str):
        raise CorruptValue("a value in a saved view is not text")
    try:
        return float(value)
    except ValueError:
        raise CorruptValue(f"a value in a saved view is not a number: {value[:40]!r}") from None


def encode_state(snapshot: Snapshot, instance_id: str) -> bytes:
    """Encode an instance's view for the store."""
    families = []
    for fam in snapshot.families:
        meta = FamilyMeta(
            fam.name,
            fam.type,
            fam.documentation,
            fam.labelnames,
            fam.unit,
            fam.buckets,
            fam.merge,
        )
        samples: list[Any] = []
        for s in fam.samples:
            if isinstance(s, HistogramSample):
                samples.append([list(s.labels), list(s.buckets), repr(s.sum)])
            else:
                samples.append([list(s.labels), repr(s.value)])
        families.append({"meta": json.loads(meta.encode()), "name": fam.name, "samples": samples})
    data = {
        "v": STATE_VERSION,
        "id": instance_id,
        "time": snapshot.timestamp,
        "families": families,
    }
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _decode_family(item: Any) -> Family:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise CorruptValue("a family in a saved view is malformed")
    meta = FamilyMeta.decode(item["name"], json.dumps(item.get("meta")))
    samples: list[Sample | HistogramSample] = []
    raw_samples = item.get("samples")
    if not isinstance(raw_samples, list):
        raise CorruptValue(f"family {meta.name!r}: samples are not a list")
    width = len(meta.labelnames)
    for raw in raw_samples:
        if not isinstance(raw, list) or len(raw) < 2 or not isinstance(raw[0], list):
            raise CorruptValue(f"family {meta.name!r}: a sample is malformed")
        labels = tuple(raw[0])
        if len(labels) != width or not all(isinstance(v, str) for v in labels):
            raise CorruptValue(f"family {meta.name!r}: a sample has the wrong labels")
        if meta.type is MetricType.HISTOGRAM:
            counts = raw[1]
            if (
                len(raw) != 3
                or not isinstance(counts, list)
                or len(counts) != len(meta.buckets)
                or not all(isinstance(c, int) and not isinstance(c, bool) for c in counts)
                or any(b > c for b, c in itertools.pairwise(counts))
            ):
                raise CorruptValue(f"family {meta.name!r}: histogram buckets are malformed")
            samples.append(HistogramSample(labels, tuple(counts), _number(raw[2]), counts[-1]))
        else:
            samples.append(Sample(labels, _number(raw[1])))
    return Family(
        name=meta.name,
        type=meta.type,
        documentation=meta.documentation,
        labelnames=meta.labelnames,
        samples=samples,
        unit=meta.unit,
        buckets=meta.buckets,
        merge=meta.merge,
    )


def decode_state(raw: bytes) -> tuple[str, float, list[Family]]:
    """Decode a saved view: ``(instance id, time, families)``; CorruptValue if invalid."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise CorruptValue("a saved view is not JSON") from None
    if not isinstance(data, dict) or data.get("v") != STATE_VERSION:
        raise CorruptValue("a saved view has an unknown layout")
    instance_id = data.get("id")
    when = data.get("time")
    families = data.get("families")
    if not isinstance(instance_id, str) or not isinstance(families, list):
        raise CorruptValue("a saved view lacks its instance id or families")
    if isinstance(when, bool) or not isinstance(when, (int, float)):
        raise CorruptValue("a saved view lacks its time")
    return instance_id, float(when), [_decode_family(f) for f in families]


def _add_samples(base: Family, live: Family) -> Family:
    if (
        base.type is not live.type
        or base.labelnames != live.labelnames
        or (base.type is MetricType.HISTOGRAM and base.buckets != live.buckets)
    ):
        return live  # the declaration changed between runs: the old totals no longer fit
    merged: dict[tuple[str, ...], Sample | HistogramSample] = base.by_labels()
    for s in live.samples:
        old = merged.get(s.labels)
        if isinstance(s, HistogramSample) and isinstance(old, HistogramSample):
            buckets = tuple(a + b for a, b in zip(old.buckets, s.buckets))
            merged[s.labels] = HistogramSample(s.labels, buckets, old.sum + s.sum, buckets[-1])
        elif isinstance(s, Sample) and isinstance(old, Sample):
            merged[s.labels] = Sample(s.labels, old.value + s.value)
        else:
            merged[s.labels] = s
    return Family(
        name=live.name,
        type=live.type,
        documentation=live.documentation,
        labelnames=live.labelnames,
        samples=list(merged.values()),
        unit=live.unit,
        buckets=live.buckets,
        merge=live.merge,
    )


def combine(base: Iterable[Family], live: Snapshot) -> Snapshot:
    """Return ``live`` with ``base`` (a previous run's view) added to it.

    Counters and histograms add up; gauges come from ``live`` only. A base family
    the live registry does not declare (yet) is kept as it was.
    """
    by_name = {f.name: f for f in base if f.type is not MetricType.GAUGE}
    families = []
    for fam in live.families:
        previous = by_name.pop(fam.name, None)
        families.append(_add_samples(previous, fam) if previous is not None else fam)
    families.extend(by_name.values())
    families.sort(key=lambda f: f.name)
    return Snapshot(
        families=families,
        timestamp=live.timestamp,
        view=ViewKind.INSTANCE,
        instance=live.instance,
        strategy=live.strategy,
    )


class LocalSync:
    """Save one instance's view in a ``local_only`` store; resume a previous run's.

    ``snapshot(instance)`` returns the view to save (the live registry combined with
    what a previous run saved). ``ttl`` is how long the store keeps the saved view.
    """

    def __init__(self, registry: Registry, store: Store, keyspace: Keyspace, ttl: float) -> None:
        self.registry = registry
        self.store = store
        self.keyspace = keyspace
        self.ttl = ttl
        self._base: list[Family] | None = None
        self._written = False
        self._dirty = True
        self._instance_gen = -1
        registry.arm_tracker()

    def base(self, instance: Instance) -> list[Family]:
        """Return what a previous run with this instance id saved (loaded once)."""
        if self._base is None:
            self._base = []
            key = self.keyspace.local(instance.key)
            raw = self.store.get(key)
            if raw is not None:
                try:
                    instance_id, _when, families = decode_state(raw)
                except Exception as exc:
                    log.warning("ignoring the saved view under %r: %s", key, exc)
                else:
                    if instance_id == instance.id:
                        self._base = families
        return self._base

    def _drain(self) -> int:
        tracker = self.registry.tracker
        changed = 0
        while True:
            try:
                child = tracker.popleft()
            except IndexError:
                return changed
            child._dirty = False
            changed += 1

    def sync(self, instance: Instance, snapshot: Callable[[], Snapshot], now: float) -> int:
        """Save the view if anything changed, else push its expiry back; return changes.

        ``now`` is the wall time (it names the registration generation).
        """
        changed = self._drain()
        key = self.keyspace.local(instance.key)
        gen = self.keyspace.generation(now)
        if self._instance_gen != gen:
            # Lets a reader in another process find this instance's saved view.
            self.store.merge_map(
                self.keyspace.local_instances(),
                {instance.key: instance.id},
                self.ttl + self.keyspace.generation_ttl,
            )
            self._instance_gen = gen
        if changed or self._dirty or not self._written or self.registry.collectors():
            self.store.set(key, encode_state(snapshot(), instance.id), self.ttl)
            self._written = True
            self._dirty = False
        elif not self.store.touch(key, self.ttl):
            self._written = False
            return self.sync(instance, snapshot, now)
        return changed

    def after_fork(self) -> None:
        """A forked child is another instance: it saves its own view from scratch.

        The syncer gives the child a new engine; what it must not inherit is the view
        the parent resumed (the child never loads a saved view).
        """
        self._base = []
