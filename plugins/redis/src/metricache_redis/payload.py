"""What the batch scripts read: a sync batch as JSON, split the way the scripts run it.

:func:`split_batch` turns a :class:`~metricache.sync.batch.SyncBatch` into the payload
of each step of :mod:`metricache_redis.scripts` (control, one per shard, gauges), with
the keys each step touches: on Redis Cluster each step is one call whose keys are
declared and share a slot; on one server the steps are merged into one payload
(:func:`whole_payload`). Every key and field name comes from the batch's
:class:`~metricache.sync.keyspace.Keyspace`.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import attrs
from metricache.store import ttl_ms
from metricache.sync.batch import SyncBatch
from metricache.sync.keyspace import LIFE_FIELD, TRACE_PREFIX

__all__ = ["Step", "StepPlan", "split_batch", "whole_payload"]

_EXACT = 2**53


@attrs.define
class Step:
    """One script call: its payload (before JSON) and the keys it touches."""

    payload: dict[str, Any]
    keys: list[bytes]

    def encoded(self) -> str:
        """The payload as the JSON text the script decodes."""
        # Lua's cjson turns an empty array into an object: lists are sent as lists.
        return json.dumps(self.payload, separators=(",", ":"))


@attrs.define
class StepPlan:
    """A batch split into steps: control, shards (by shard name), gauges (or None)."""

    control: Step
    shards: dict[str, Step]
    gauges: Step | None


@attrs.define
class _Group:
    """What a batch does in one shard, on its way to the shard's payload."""

    writes: list[Any] = attrs.field(factory=list)
    refresh: list[Any] = attrs.field(factory=list)
    pruned: list[Any] = attrs.field(factory=list)
    keys: list[bytes] = attrs.field(factory=list)
    lives: dict[str, int] = attrs.field(factory=lambda: {"": 0})

    def life_index(self, life: str) -> int:
        """The place of ``life`` in the shard's list of lives (added when new)."""
        at = self.lives.get(life)
        if at is None:
            at = self.lives[life] = len(self.lives)
        return at


def _number(delta: int) -> int | str:
    # A JSON number beyond 2**53 would be rounded by Lua's doubles: send it as text
    # (HINCRBY parses it exactly).
    return delta if -_EXACT < delta < _EXACT else str(delta)


def split_batch(batch: SyncBatch, *, markers: bool) -> StepPlan:
    """Split ``batch`` into its steps.

    ``markers`` (a cluster) adds each shard's marker, and lists the keys every shard
    step touches (a cluster needs them declared; one server does not).
    """
    keyspace = batch.keyspace
    ttl = ttl_ms(keyspace.retention)
    registrations = [
        [key.decode("ascii"), [x for item in entries.items() for x in item]]
        for key, entries in batch.registrations.items()
    ]
    control = Step(
        {
            "ek": keyspace.epoch().decode("ascii"),
            "ep": batch.epoch,
            "pe": batch.proposed_epoch,
            "ttl": ttl,
            "gttl": ttl_ms(keyspace.generation_ttl),
            "reg": registrations,
        },
        [keyspace.epoch(), *batch.registrations],
    )

    # Per shard: [writes, refreshes, pruned, keys, lives]; keys only where they are
    # declared. Lives travel once per shard: writes, refreshes and prunes name them by
    # their place in the shard's list (1-based; 0 is no life).
    groups: dict[str, _Group] = {}
    shard_of = keyspace.shard

    series_key = keyspace.series

    def group(shard: str) -> _Group:
        found = groups.get(shard)
        if found is None:
            found = groups[shard] = _Group()
        return found

    for i, (sid, life, parts, deltas) in enumerate(batch.writes):
        found = group(shard_of(sid))
        at = found.life_index(life)
        if markers:
            found.keys.append(series_key(sid))
        writes = found.writes
        if len(deltas) == 2:  # a counter, inlined: the usual case
            whole, nanos = deltas
            if -_EXACT < whole < _EXACT and -_EXACT < nanos < _EXACT:
                if whole and nanos:
                    writes += (i, sid, at, 2, parts[0], whole, parts[1], nanos)
                elif whole:
                    writes += (i, sid, at, 1, parts[0], whole)
                elif nanos:
                    writes += (i, sid, at, 1, parts[1], nanos)
                else:
                    writes += (i, sid, at, 0)
                continue
        changed = [(part, _number(delta)) for part, delta in zip(parts, deltas) if delta]
        writes += (i, sid, at, len(changed))
        for pair in changed:
            writes += pair
    for j, (sid, life, _parts) in enumerate(batch.refresh):
        found = group(shard_of(sid))
        at = found.life_index(life)
        found.refresh += (j, sid, at)
        if markers:
            found.keys.append(series_key(sid))
    for sid, life in batch.prune:
        found = group(shard_of(sid))
        at = found.life_index(life)
        found.pruned += (sid, at)
        if markers:
            found.keys.append(series_key(sid))
    common = {
        "ep": batch.epoch,
        "ttl": ttl,
        "lf": LIFE_FIELD,
        # A trace's field is this prefix and the life it was written in.
        "tf": f"{TRACE_PREFIX}{batch.token}:",
        "life": batch.life,
        "seq": batch.seq,
        "chk": 1 if batch.retry else 0,
    }
    shards: dict[str, Step] = {}
    for shard, found in groups.items():
        marker = keyspace.shard_epoch(shard) if markers else b""
        step: list[Any] = [
            keyspace.shard_prefix(shard),
            marker.decode("ascii"),
            found.writes,
            found.refresh,
            found.pruned,
            list(found.lives)[1:],
        ]
        keys = found.keys
        shards[shard] = Step({**common, "sh": [step]}, [*keys, marker] if markers else keys)
    return StepPlan(control, shards, _gauges(batch))


def _gauges(batch: SyncBatch) -> Step | None:
    update = batch.gauges
    if update is None:
        return None
    keyspace = batch.keyspace
    header = keyspace.instance(batch.instance_key)
    page = partial(keyspace.gauge_page, batch.instance_key, update.layout)
    marker = ["@", update.layout]
    keys = [header]
    if update.full:
        pages: list[list[Any]] = []
        for n in range(update.pages):
            key = page(n)
            keys.append(key)
            contents = [x for item in update.contents.get(n, {}).items() for x in item]
            pages.append([key.decode("ascii"), marker + contents])
        touch: list[str] = []
    else:
        pages = []
        for n, changes in update.changes.items():
            key = page(n)
            keys.append(key)
            sets = [x for sid, entry in changes.items() if entry is not None for x in (sid, entry)]
            drops = [sid for sid, entry in changes.items() if entry is None]
            pages.append([key.decode("ascii"), sets, drops])
        touch = []
        if update.touch:
            for n in range(update.pages):
                if n not in update.changes:
                    key = page(n)
                    keys.append(key)
                    touch.append(key.decode("ascii"))
    payload = {
        "hk": header.decode("ascii"),
        "live": ttl_ms(batch.liveness_ttl),
        "pttl": ttl_ms(batch.page_ttl),
        "g": {
            "full": 1 if update.full else 0,
            "id": batch.instance_id,
            "layout": update.layout,
            "pages": pages,
            "touch": touch,
        },
    }
    return Step(payload, keys)


def whole_payload(plan: StepPlan) -> str:
    """Return the JSON of the whole batch, for one call of ``APPLY_SYNC`` (one server)."""
    payload: dict[str, Any] = dict(plan.control.payload)
    shards = list(plan.shards.values())
    if shards:
        payload.update({k: v for k, v in shards[0].payload.items() if k != "sh"})
    payload["sh"] = [step.payload["sh"][0] for step in shards]
    if plan.gauges is not None:
        payload.update(plan.gauges.payload)
    return json.dumps(payload, separators=(",", ":"))
