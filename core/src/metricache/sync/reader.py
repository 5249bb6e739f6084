"""The reader: the store's view as one Snapshot, for exporters and the endpoint.

On a distributed strategy it merges: shared counters and histograms as they are,
gauges of the instances alive now by each gauge's merge mode. On ``local_only`` it
returns one instance's saved view. It reads registrations of the last generations
only (never ``KEYS``), so its cost follows the series alive in the retention window,
not how many instances ever existed. Bad bytes in the store are skipped, logged and
counted (``metricache_store_corrupt_values_total``); they never raise.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import time
from collections.abc import Mapping
from typing import Any

from metricache.corruption import count_corrupt
from metricache.errors import CorruptValue, MetricacheError
from metricache.instance import current_instance
from metricache.names import INSTANCE_LABEL
from metricache.snapshot import (
    Family,
    GaugeMerge,
    HistogramSample,
    MetricType,
    Sample,
    Snapshot,
    ViewKind,
)
from metricache.store import Store
from metricache.sync import local
from metricache.sync.keyspace import FamilyMeta, Keyspace, decode_labels, join_fixed
from metricache.sync.strategy import Strategy, select_strategy

__all__ = [
    "INSTANCE_LABEL",
    "AmbiguousInstance",
    "covered_keys",
    "extend_retention",
    "live_instances",
    "merged_snapshot",
    "read_local",
    "read_merged",
]

log = logging.getLogger("metricache.reader")


class AmbiguousInstance(MetricacheError):
    """A local_only store holds views of several instances and none was chosen."""


def _count_corrupt(kind: str, detail: str) -> None:
    count_corrupt(kind, detail)


def _families(store: Store, keyspace: Keyspace, gens: list[int]) -> dict[str, FamilyMeta]:
    """Return the families registered in ``gens``."""
    fam_keys = [keyspace.families(g) for g in gens]
    maps = store.get_maps(fam_keys)
    found: dict[str, FamilyMeta] = {}
    for key in fam_keys:  # later generations win: a redeclaration replaces the old one
        for name, text in maps.get(key, {}).items():
            try:
                found[name] = FamilyMeta.decode(name, text)
            except CorruptValue as exc:
                _count_corrupt("family", str(exc))
    return found


def _headers(
    store: Store, keyspace: Keyspace, now: float | None = None
) -> dict[str, dict[str, str]]:
    """Return the headers of the instances alive now, by instance key."""
    gens = keyspace.read_generations(now)
    registries = store.get_maps([keyspace.instances(g) for g in gens])
    ikeys: set[str] = set()
    for entries in registries.values():
        ikeys.update(entries)
    header_keys = {keyspace.instance(k): k for k in sorted(ikeys)}
    maps = store.get_maps(list(header_keys))
    return {header_keys[key]: entries for key, entries in maps.items()}


def _page_keys(keyspace: Keyspace, ikey: str, header: Mapping[str, str]) -> list[bytes]:
    """Return the keys of the gauge pages an instance's header names."""
    layout = header.get("#", "")
    _, _, count = layout.rpartition(".")
    if not count.isdigit() or not 0 < int(count) <= 1 << 20:
        _count_corrupt("instance header", f"instance {ikey}: no valid page layout")
        return []
    return [keyspace.gauge_page(ikey, layout, n) for n in range(int(count))]


def live_instances(
    store: Store, keyspace: Keyspace, now: float | None = None
) -> dict[str, dict[str, str]]:
    """Return the gauges of the instances alive now: instance key -> entries.

    The entries are the instance's gauge series (series id -> ``[value, stamp]``)
    plus ``@`` -> its instance id.
    """
    headers = _headers(store, keyspace, now)
    pages: dict[bytes, str] = {}
    for ikey, header in headers.items():
        for key in _page_keys(keyspace, ikey, header):
            pages[key] = ikey
    found: dict[str, dict[str, str]] = {
        ikey: {"@": header.get("@", ikey)} for ikey, header in headers.items()
    }
    for key, entries in store.get_maps(list(pages)).items():
        target = found[pages[key]]
        for sid, entry in entries.items():
            if sid != "@":
                target[sid] = entry
    return found


def _decode_entries(name: str, width: int, entries: Mapping[str, str]) -> list[Any]:
    """Decode a family's index entries in one JSON call (one by one if any is bad)."""
    texts = list(entries.values())
    try:
        decoded = json.loads("[" + ",".join(texts) + "]")
        if len(decoded) == len(texts):
            return list(decoded)
    except ValueError:
        pass
    out: list[Any] = []
    for text in texts:
        try:
            out.append(list(decode_labels(text)))
        except CorruptValue as exc:
            _count_corrupt("index entry", f"{name}: {exc}")
            out.append(None)
    return out


def _index(
    store: Store, keyspace: Keyspace, families: Mapping[str, FamilyMeta], gens: list[int]
) -> dict[str, dict[str, tuple[str, ...]]]:
    keys = {keyspace.index(name, g): name for name in families for g in gens}
    maps = store.get_maps(list(keys))
    index: dict[str, dict[str, tuple[str, ...]]] = {name: {} for name in families}
    for key, entries in maps.items():
        name = keys[key]
        width = len(families[name].labelnames)
        target = index[name]
        for sid, decoded in zip(entries, _decode_entries(name, width, entries)):
            if sid in target or decoded is None:
                continue
            # An empty array written by Lua's cjson comes back as {}.
            labels = [] if isinstance(decoded, dict) and not decoded else decoded
            if (
                not isinstance(labels, list)
                or len(labels) != width
                or not all(type(v) is str for v in labels)
            ):
                _count_corrupt("index entry", f"{name}: not {width} label values")
                continue
            target[sid] = tuple(labels)
    return index


def _shared_samples(
    store: Store,
    keyspace: Keyspace,
    families: Mapping[str, FamilyMeta],
    index: Mapping[str, Mapping[str, tuple[str, ...]]],
) -> dict[str, list[Sample | HistogramSample]]:
    # One read for every series of every counter and histogram family; the store
    # answers per series (None: absent or not whole, never shown in part).
    wanted: list[tuple[str, tuple[str, ...]]] = []
    plans: list[tuple[str, FamilyMeta, list[tuple[str, ...]]]] = []
    for name, meta in families.items():
        parts = meta.value_parts()
        if not parts:
            continue
        labels_of = index[name]
        wanted.extend((sid, parts) for sid in labels_of)
        plans.append((name, meta, list(labels_of.values())))
    answers = iter(store.read_series(keyspace, wanted) if wanted else [])
    samples: dict[str, list[Sample | HistogramSample]] = {}
    for name, meta, series in plans:
        out = samples[name] = []
        if meta.type is MetricType.COUNTER:
            for labels in series:
                ints = next(answers)
                if ints is not None:
                    out.append(Sample(labels, join_fixed(ints[0], ints[1])))
            continue
        nbuckets = len(meta.buckets)
        for labels in series:
            ints = next(answers)
            if ints is None:
                continue
            counts = ints[:nbuckets]
            if any(c < 0 for c in counts):
                _count_corrupt("histogram", f"{name}: negative bucket count")
                continue
            cumulative = list(itertools.accumulate(counts))
            out.append(
                HistogramSample(
                    labels,
                    tuple(cumulative),
                    join_fixed(ints[nbuckets], ints[nbuckets + 1]),
                    cumulative[-1],
                )
            )
    return samples


def _gauge_value(text: str) -> tuple[float, float]:
    try:
        value_text, stamp = json.loads(text)
        value = float(value_text)
        stamp = float(stamp)
    except (ValueError, TypeError):
        raise CorruptValue("a gauge entry is not [value, time]") from None
    return value, stamp


def _gauge_samples(
    families: Mapping[str, FamilyMeta],
    index: Mapping[str, Mapping[str, tuple[str, ...]]],
    instances: Mapping[str, Mapping[str, str]],
) -> dict[str, list[Sample | HistogramSample]]:
    gauge_families = {n: m for n, m in families.items() if m.type is MetricType.GAUGE}
    sid_owner: dict[str, tuple[str, tuple[str, ...]]] = {}
    for name in gauge_families:
        for sid, labels in index[name].items():
            sid_owner[sid] = (name, labels)
    # family -> labels -> [(instance id, value, stamp)]
    collected: dict[str, dict[tuple[str, ...], list[tuple[str, float, float]]]] = {
        n: {} for n in gauge_families
    }
    for ikey, entries in sorted(instances.items()):
        instance_id = entries.get("@", ikey)
        for sid, text in entries.items():
            owner = sid_owner.get(sid)
            if owner is None:
                continue
            try:
                value, stamp = _gauge_value(text)
            except CorruptValue as exc:
                _count_corrupt("gauge", str(exc))
                continue
            collected[owner[0]].setdefault(owner[1], []).append((instance_id, value, stamp))
    out: dict[str, list[Sample | HistogramSample]] = {}
    for name, meta in gauge_families.items():
        mode = meta.merge or GaugeMerge.SUM
        samples: list[Sample | HistogramSample] = []
        for labels, values in collected[name].items():
            if mode is GaugeMerge.PER_INSTANCE:
                for instance_id, value, _ in values:
                    samples.append(Sample((*labels, instance_id), value))
                continue
            numbers = [v for _, v, _ in values]
            if mode is GaugeMerge.SUM:
                merged = math.fsum(numbers) if all(map(math.isfinite, numbers)) else sum(numbers)
            elif mode is GaugeMerge.MAX:
                merged = max(numbers)
            elif mode is GaugeMerge.MIN:
                merged = min(numbers)
            else:
                merged = max(values, key=lambda item: (item[2], item[0]))[1]
            samples.append(Sample(labels, merged))
        out[name] = samples
    return out


def _instance_label(meta: FamilyMeta, wanted: str) -> str:
    """Return ``wanted``, or (if the gauge has a label of that name) a free variant."""
    label = wanted
    while label in meta.labelnames:
        label = "_" + label
    if label != wanted:
        log.warning(
            "gauge %r has a label named %r: its instances are named by %r instead",
            meta.name,
            wanted,
            label,
        )
    return label


def read_merged(
    store: Store,
    keyspace: Keyspace,
    *,
    strategy: str | None = None,
    instance_label: str = INSTANCE_LABEL,
    now: float | None = None,
) -> Snapshot:
    """Return the merged view of every live instance in a distributed store.

    ``instance_label`` names the instance in the series of ``per_instance`` gauges;
    ``now`` is the wall time to read at (default: the clock's).
    """
    gens = keyspace.read_generations(now)
    families = _families(store, keyspace, gens)
    index = _index(store, keyspace, families, gens)
    samples = _shared_samples(store, keyspace, families, index)
    samples.update(_gauge_samples(families, index, live_instances(store, keyspace, now)))
    result = []
    for name in sorted(families):
        meta = families[name]
        labelnames = meta.labelnames
        if meta.type is MetricType.GAUGE and meta.merge is GaugeMerge.PER_INSTANCE:
            labelnames = (*labelnames, _instance_label(meta, instance_label))
        found = sorted(samples.get(name, []), key=lambda s: s.labels)
        result.append(
            Family(
                name=name,
                type=meta.type,
                documentation=meta.documentation,
                labelnames=labelnames,
                samples=found,
                unit=meta.unit,
                buckets=meta.buckets,
                merge=meta.merge,
            )
        )
    return Snapshot(families=result, timestamp=time.time(), view=ViewKind.MERGED, strategy=strategy)


def local_instances(store: Store, keyspace: Keyspace) -> dict[str, str]:
    """Return the instances that saved a view in a local_only store (key -> id)."""
    found = dict(store.get_map(keyspace.local_instances()))
    present = store.get_many([keyspace.local(k) for k in found])
    return {k: v for k, v in found.items() if keyspace.local(k) in present}


def read_local(store: Store, keyspace: Keyspace, instance_id: str | None = None) -> Snapshot:
    """Return the saved view of one instance in a local_only store.

    Without ``instance_id``: this process's instance if it saved a view, else the
    only instance that did; several candidates raise :class:`AmbiguousInstance`.
    """
    from metricache.instance import instance_key

    if instance_id is None:
        own = current_instance()
        if store.get(keyspace.local(own.key)) is not None:
            instance_id = own.id
        else:
            candidates = local_instances(store, keyspace)
            if len(candidates) > 1:
                names = ", ".join(sorted(candidates.values()))
                raise AmbiguousInstance(
                    f"the store holds the views of several instances ({names}); "
                    "choose one with --instance ID"
                )
            if not candidates:
                return Snapshot(
                    families=(),
                    timestamp=time.time(),
                    view=ViewKind.INSTANCE,
                    strategy=Strategy.LOCAL_ONLY.value,
                )
            instance_id = next(iter(candidates.values()))
    raw = store.get(keyspace.local(instance_key(instance_id)))
    families: list[Family] = []
    when = time.time()
    if raw is not None:
        try:
            saved_id, when, families = local.decode_state(raw)
            if saved_id != instance_id:
                raise CorruptValue(f"the view saved for {instance_id!r} names {saved_id!r}")
        except CorruptValue as exc:
            _count_corrupt("saved view", str(exc))
            families = []
    return Snapshot(
        families=sorted(families, key=lambda f: f.name),
        timestamp=when,
        view=ViewKind.INSTANCE,
        instance=instance_id,
        strategy=Strategy.LOCAL_ONLY.value,
    )


def merged_snapshot(
    store: Store,
    *,
    namespace: str = "metricache",
    retention: float = 300.0,
    strategy: Strategy | str | None = None,
    instance_id: str | None = None,
    instance_label: str = INSTANCE_LABEL,
    now: float | None = None,
) -> Snapshot:
    """Return the store's view for export: merged, or one instance's on local_only.

    ``namespace`` and ``retention`` must match the syncers' (they name the keys; see
    :func:`metricache.read_view` for reading them from the configuration).
    ``instance_label`` names the instance in ``per_instance`` gauges' series.
    """
    chosen = Strategy(strategy) if strategy is not None else select_strategy(store).strategy
    keyspace = Keyspace(namespace, retention)
    if chosen is Strategy.LOCAL_ONLY:
        return read_local(store, keyspace, instance_id)
    return read_merged(
        store, keyspace, strategy=chosen.value, instance_label=instance_label, now=now
    )


def covered_keys(store: Store, keyspace: Keyspace) -> tuple[list[bytes], list[bytes]]:
    """Return the keys a merged read covers: ``(series keys, registration keys)``.

    The first list lives for the retention window, the second for a generation's TTL.
    An export extends both before it retries, so nothing it covers expires while it
    is pending. Instance headers are not covered: an instance's gauges live while it
    syncs (the liveness TTL), and an export must never keep a dead instance's gauges
    in the view.
    """
    gens = keyspace.read_generations()
    registration = [keyspace.families(g) for g in gens] + [keyspace.instances(g) for g in gens]
    families = _families(store, keyspace, gens)
    registration += [keyspace.index(name, g) for name in families for g in gens]
    index = _index(store, keyspace, families, gens)
    values: list[bytes] = [keyspace.epoch()]
    for name, meta in families.items():
        parts = meta.value_parts()
        if parts:
            for sid in index[name]:
                values.extend(store.series_keys(keyspace, sid, parts))
    return values, registration


def extend_retention(store: Store, keyspace: Keyspace, extra: float) -> int:
    """Push back the expiry of everything a merged read covers by ``extra`` seconds.

    A store can only set a TTL, not add to one, so every key gets the longest TTL it
    can have had plus ``extra`` (retention + extra, or a generation's TTL + extra):
    an extension never shortens a key's life. The values are not rewritten. Returns
    how many keys were present and extended.
    """
    if not extra > 0:
        raise ValueError("extra must be > 0 seconds")
    values, registration = covered_keys(store, keyspace)
    touched = len(store.touch_many(values, keyspace.retention + extra))
    return touched + len(store.touch_many(registration, keyspace.generation_ttl + extra))
