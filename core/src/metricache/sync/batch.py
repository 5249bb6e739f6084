"""What one sync sends to a store, and what the store answers.

A :class:`SyncBatch` is plain data: per series, the signed integer deltas of its parts
and the *life* the sending instance expects it to have; the series whose expiry it
pushes back (refresh); registrations to merge into maps; this instance's gauge
changes; and the bookkeeping a store needs to apply it exactly once (incarnation
token, sequence number, per-series traces) and to notice that it lost its data (the
epoch). Stores receive batches through ``Store.apply_sync``; the syncer builds them.

The rules a store applies, series by series (see ``docs/sync.md``):

* A write whose ``life`` is empty comes from an instance that has no contribution in
  the series yet. If the series is absent it is created with the batch's ``life``;
  if present, the write *joins* it (the outcome reports the life it found).
* A write with a ``life`` is applied only if the series still has that life. If it is
  absent or has another life (it expired, or the store lost it, and someone created
  it again), nothing is applied and the write is reported *lost*: the instance then
  sends its whole contribution, as a write with an empty life.
* A refresh resets the expiry of a series (every part of it) if it still has the
  expected life, and reports it *stale* otherwise.

A store spread over several servers may lose the data of some of them only. It keeps
the series of each *shard* together (:meth:`~metricache.sync.keyspace.Keyspace.shard`)
and answers, in ``lost_shards``, the shards it found to have lost their data (their
marker was gone while the batch expected series there): the instance then checks at
once every series it holds in those shards, and sends again what they lost.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence

import attrs

from metricache.errors import StoreError
from metricache.sync.keyspace import Keyspace

__all__ = [
    "GaugeUpdate",
    "OutcomeStatus",
    "PartialApply",
    "Refresh",
    "SyncBatch",
    "SyncOutcome",
    "Write",
]

Write = tuple[str, str, tuple[str, ...], Sequence[int]]
"""``(series id, expected life or "", part names, deltas aligned with the parts)``."""

Refresh = tuple[str, str, tuple[str, ...]]
"""``(series id, expected life, part names)``."""


class OutcomeStatus(str, enum.Enum):
    """How a store answered a batch."""

    APPLIED = "applied"
    EPOCH_CHANGED = "epoch_changed"  # the store lost its data: nothing was applied


@attrs.frozen
class SyncOutcome:
    """A store's answer to a batch, with the store's epoch after it.

    ``gauges_lost`` says the instance's header had expired and the batch did not
    rewrite the gauges: the next batch must carry every page. ``lost`` are the
    indexes of writes that were not applied (their series has another life, or none);
    ``joined`` maps the index of each write without a life that met an existing series
    to that series' life (a write without a life that met no series created it with
    the batch's life); ``stale`` are the indexes of refreshes whose series was gone
    or had another life. ``lost_shards`` are the shards (see the module docstring)
    that lost their data since this instance last wrote to them.
    """

    status: OutcomeStatus
    epoch: str
    gauges_lost: bool = False
    lost: tuple[int, ...] = ()
    joined: Mapping[int, str] = attrs.field(factory=dict)
    stale: tuple[int, ...] = ()
    lost_shards: tuple[str, ...] = ()


@attrs.define
class GaugeUpdate:
    """Changes to one instance's gauges, which live in pages under its header.

    ``layout`` names the page set (``TOKEN.COUNT``); ``pages`` is how many pages it
    has (a series' page is :func:`page_of` its id). ``full`` means every page is
    written anew (the first sync, a new layout, a store that lost them): ``contents``
    then holds every page. Otherwise ``changes`` holds, per changed page, the entries
    to set (series id -> entry) and to delete (-> None), and ``contents`` the whole
    of each changed page, for stores that rewrite a page rather than edit it.
    ``touch`` asks for the expiry of every page to be pushed back.
    """

    layout: str
    pages: int
    full: bool = False
    changes: dict[int, dict[str, str | None]] = attrs.field(factory=dict)
    contents: dict[int, Mapping[str, str]] = attrs.field(factory=dict)
    touch: bool = False


def page_of(sid: str, pages: int) -> int:
    """Return the page a gauge series belongs to in a layout of ``pages`` pages."""
    return int(sid[:8], 16) % pages if pages > 1 else 0


@attrs.define
class SyncBatch:
    """One sync's worth of changes from one instance.

    ``writes`` are ``(series id, expected life or "", part names, deltas)``: the
    series is ``keyspace.series(series id)`` (and, on stores without maps, each part
    ``keyspace.part(series id, part)``); deltas are signed 64-bit integers aligned
    with the parts, zeros included. ``refresh`` are ``(series id, expected life, part
    names)``. ``gauges`` is this instance's :class:`GaugeUpdate` (only the last batch
    of a sync carries one). ``epoch`` is the store epoch the deltas were computed
    against; a store whose epoch differs applies nothing and answers ``EPOCH_CHANGED`` (installing
    ``proposed_epoch`` first if it has none). ``life`` is the life of the series this
    batch creates. ``retry`` marks a batch sent again after its answer was lost.
    ``prune`` lists ``(series id, life)`` whose trace of this incarnation may be
    dropped (the instance knows the outcome of every batch that wrote them). ``registrations``
    maps a map key to the entries to add to it when absent.
    """

    keyspace: Keyspace
    instance_id: str
    instance_key: str
    token: str
    seq: int
    epoch: str
    proposed_epoch: str
    liveness_ttl: float
    life: str = ""
    retry: bool = False
    writes: list[Write] = attrs.field(factory=list)
    refresh: list[Refresh] = attrs.field(factory=list)
    prune: list[tuple[str, str]] = attrs.field(factory=list)
    registrations: dict[bytes, dict[str, str]] = attrs.field(factory=dict)
    gauges: GaugeUpdate | None = None

    @property
    def retention(self) -> float:
        """The TTL of series and the epoch."""
        return self.keyspace.retention

    @property
    def page_ttl(self) -> float:
        """The TTL of gauge pages (they must outlive the header that names them)."""
        return max(self.keyspace.retention, self.liveness_ttl)

    def is_empty(self) -> bool:
        """Return whether the batch changes nothing but the header's TTL."""
        return not (self.writes or self.refresh or self.prune or self.registrations or self.gauges)


class PartialApply(StoreError):
    """A batch was applied in part (only stores that apply it step by step raise this).

    The first ``done`` writes were applied whole, and of the next one the parts whose
    indexes are in ``parts``. A store that applies writes out of order (pipelined,
    server by server) gives ``applied`` instead: write index -> the indexes of its
    parts that were applied (None: all of them). ``outcome`` says what is known of the
    writes that were done (lost, joined). ``in_doubt`` says whether increments after
    them may have landed too (their request went out but no answer came back).
    """

    def __init__(
        self,
        done: int,
        in_doubt: bool,
        cause: BaseException,
        *,
        parts: tuple[int, ...] = (),
        outcome: SyncOutcome | None = None,
        applied: Mapping[int, tuple[int, ...] | None] | None = None,
    ) -> None:
        self.done = done
        self.parts = parts
        self.in_doubt = in_doubt
        self.cause = cause
        self.outcome = outcome
        self._applied = applied
        count = done if applied is None else sum(1 for p in applied.values() if p is None)
        super().__init__(f"applied {count} series before {type(cause).__name__}: {cause}")

    @property
    def applied(self) -> Mapping[int, tuple[int, ...] | None]:
        """Write index -> the parts of it that were applied (None: the whole write)."""
        if self._applied is not None:
            return self._applied
        found: dict[int, tuple[int, ...] | None] = dict.fromkeys(range(self.done))
        if self.parts:
            found[self.done] = self.parts
        return found
