"""Series in sync batches (stores that declare ``atomic``): created, joined, lost, refreshed.

Every store that syncs shared totals applies batches by the rules of
:mod:`metricache.sync.batch`, whether it keeps the core's default ``apply_sync`` or
overrides it: a write that expects a life the series no longer has is not applied and
is answered *lost*; a write from an instance with no contribution yet creates the
series or joins it (the answer names its life); a refresh is answered *stale* when the
life differs; a series that does not exist reads as absent. :class:`SyncDriver` builds
such batches for the checks (the exactly-once checks use it too).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from metricache.instance import instance_key
from metricache.store import Capability, Store
from metricache.sync.batch import SyncBatch, SyncOutcome, Write
from metricache.sync.keyspace import COUNTER_PARTS, Keyspace, series_id

from metricache_conformance.catalogue import Check
from metricache_conformance.checking import expect
from metricache_conformance.context import Context

__all__ = ["CHECKS", "SyncDriver", "Writer"]


class Writer:
    """One instance sending batches: its incarnation token, batch numbers and lives."""

    def __init__(self, driver: SyncDriver, instance_id: str) -> None:
        self.driver = driver
        self.instance_id = instance_id
        self.token = secrets.token_hex(8)
        self.seq = 0
        self.lives: dict[str, str] = {}  # series name -> the life its writes went into
        self.last: SyncBatch | None = None
        self._names: dict[int, list[str]] = {}  # batch number -> the series it writes

    def batch(
        self,
        writes: list[tuple[str, int]],
        *,
        refresh: Sequence[tuple[str, str]] = (),
        seq: int | None = None,
    ) -> SyncBatch:
        """Return a batch adding ``amount`` whole units to each named counter series."""
        self.seq = seq if seq is not None else self.seq + 1
        driver = self.driver
        built: list[Write] = [
            (series_id(name, ()), self.lives.get(name, ""), COUNTER_PARTS, [amount, 0])
            for name, amount in writes
        ]
        batch = SyncBatch(
            keyspace=driver.keyspace,
            instance_id=self.instance_id,
            instance_key=instance_key(self.instance_id),
            token=self.token,
            seq=self.seq,
            epoch=driver.epoch,
            proposed_epoch=driver.epoch,
            liveness_ttl=120.0,
            life=f"{self.token}.{self.seq}",
            writes=built,
            refresh=[(series_id(name, ()), life, COUNTER_PARTS) for name, life in refresh],
        )
        self._names[batch.seq] = [name for name, _ in writes]
        self.last = batch
        return batch

    def confirm(self, batch: SyncBatch, outcome: SyncOutcome) -> None:
        """Record the lives the store reported for ``batch``'s writes."""
        for i, name in enumerate(self._names.get(batch.seq, [])):
            if i in outcome.lost:
                self.lives.pop(name, None)
            elif name not in self.lives:
                self.lives[name] = outcome.joined.get(i, batch.life)

    def confirm_last(self, outcome: SyncOutcome) -> None:
        """Record the lives the store reported for the last batch built."""
        assert self.last is not None
        self.confirm(self.last, outcome)


class SyncDriver:
    """Builds sync batches on the checked store, in a namespace of the check's own."""

    def __init__(self, ctx: Context, suffix: str) -> None:
        self.store: Store = ctx.store
        self.keyspace = Keyspace(ctx.namespace + suffix, 120.0)
        self.epoch = secrets.token_hex(8)

    def instance(self, instance_id: str) -> Writer:
        """Return a new instance (a new incarnation token)."""
        return Writer(self, instance_id)

    def total(self, name: str) -> int | None:
        """Return the whole units of a counter series, None when it is absent."""
        (found,) = self.store.read_series(self.keyspace, [(series_id(name, ()), COUNTER_PARTS)])
        return None if found is None else found[0]


def lives(ctx: Context) -> None:
    """Writes create, join and lose series by their life; refreshes see a changed life."""
    sync = SyncDriver(ctx, "lives")
    store = sync.store
    expect(sync.total("x") is None, f"a series never written reads as {sync.total('x')!r}")
    a = sync.instance("conformance-lives-a")
    created = store.apply_sync(a.batch([("x", 5)]))
    expect(
        not created.lost and not created.joined,
        f"the first write of a series did not create it: answered {created!r}",
    )
    a.confirm_last(created)
    b = sync.instance("conformance-lives-b")
    joined = store.apply_sync(b.batch([("x", 2)]))
    expect(
        joined.joined.get(0) == a.lives["x"],
        f"a second instance's first write did not join the series' life "
        f"{a.lives['x']!r}: answered {joined!r}",
    )
    expect(sync.total("x") == 7, f"+5 then +2 from two instances read back as {sync.total('x')}")
    a.lives["x"] = "an-earlier-life"
    lost = store.apply_sync(a.batch([("x", 100)]))
    expect(
        lost.lost == (0,),
        f"a write expecting a life the series does not have was answered {lost!r}, "
        "expected it lost",
    )
    expect(
        sync.total("x") == 7,
        f"a write expecting another life was applied: the series holds {sync.total('x')}",
    )
    right = b.lives.get("x", "")
    if not right:
        b.confirm_last(joined)
        right = b.lives["x"]
    refreshed = store.apply_sync(b.batch([], refresh=[("x", right), ("x", "an-earlier-life")]))
    expect(
        refreshed.stale == (1,),
        f"refreshes with the series' life and another life were answered {refreshed!r}, "
        "expected only the second stale",
    )


CHECKS = [Check("series.lives", Capability.ATOMIC, lives)]
