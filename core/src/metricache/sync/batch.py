"""What one sync sends to a store, and what the store answers.

A :class:`SyncBatch` is plain data: signed integer increments for shared keys,
registrations to merge into maps, this instance's gauge map, and the bookkeeping a
store needs to apply it exactly once (incarnation token and sequence number) and to
notice that it lost its data (the epoch). Stores receive batches through
``Store.apply_sync``; the syncer builds them.
"""

from __future__ import annotations

import enum

import attrs

from metricache.errors import StoreError
from metricache.sync.keyspace import Keyspace

__all__ = ["OutcomeStatus", "PartialApply", "SyncBatch", "SyncOutcome"]


class OutcomeStatus(str, enum.Enum):
    """How a store answered a batch."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"  # already applied earlier (a retry after a lost reply)
    EPOCH_CHANGED = "epoch_changed"  # the store lost its data: nothing was applied


@attrs.frozen
class SyncOutcome:
    """A store's answer to a batch, with the store's epoch after it.

    ``gauges_lost`` says the instance's stored gauge map had expired and was not
    rewritten (the batch carried none): the next batch must carry the whole map.
    """

    status: OutcomeStatus
    epoch: str
    gauges_lost: bool = False


@attrs.define
class SyncBatch:
    """One sync's worth of changes from one instance.

    ``increments`` are ``(series id, part, signed amount)``; the key of one is
    ``keyspace.value(series id, part)``. ``epoch`` is the store epoch the increments
    were computed against; a store whose
    epoch differs applies nothing and answers ``EPOCH_CHANGED`` (installing
    ``proposed_epoch`` first if it has none). ``registrations`` maps a map key to the
    entries to add to it when absent. ``gauges`` is this instance's whole gauge map,
    or None to keep the stored one (its TTL is refreshed either way).
    """

    keyspace: Keyspace
    instance_id: str
    instance_key: str
    token: str
    seq: int
    epoch: str
    proposed_epoch: str
    liveness_ttl: float
    increments: list[tuple[str, str, int]] = attrs.field(factory=list)
    registrations: dict[bytes, dict[str, str]] = attrs.field(factory=dict)
    gauges: dict[str, str] | None = None

    @property
    def retention(self) -> float:
        """The TTL of shared values and the epoch."""
        return self.keyspace.retention

    def is_empty(self) -> bool:
        """Return whether the batch changes nothing but TTLs."""
        return not self.increments and not self.registrations and self.gauges is None


class PartialApply(StoreError):
    """A batch was applied in part: the first ``done`` increments landed.

    ``in_doubt`` says whether the increment after them may have landed too (its
    request went out but no answer came back).
    """

    def __init__(self, done: int, in_doubt: bool, cause: BaseException) -> None:
        self.done = done
        self.in_doubt = in_doubt
        self.cause = cause
        super().__init__(f"applied {done} increments before {type(cause).__name__}: {cause}")
