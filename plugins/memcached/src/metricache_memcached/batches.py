"""Applying a sync batch to memcached, pipelined: the cost follows the series that changed.

The rules are the core's (:mod:`metricache.sync.apply`, the layout of stores without
maps: a life key per series and one integer key per part); only the transport
differs. Instead of one round trip per primitive, each step sends all its commands at
once, server by server (:mod:`metricache_memcached.pipeline`):

1. the epoch (as the core checks it) and the registrations;
2. one multi-get of the lives of the series written and refreshed, and of the markers
   of their shards: a shard whose marker is gone while the batch expects series
   there (a write with a life, or a refresh) lost its data (its server restarted
   empty), and the answer names it (``lost_shards``);
3. the series to create: ``add`` of their life keys;
4. every increment: ``incr`` (with a ``touch`` for writes that write every part),
   ``add`` for the parts a new writer finds missing, ``incr`` again when another
   writer created them first;
5. the refreshes: ``touch`` of every key of every series refreshed;
6. the shard markers, the gauge pages and the epoch's expiry.

A part missing under a series that still has the writer's life was lost on its own (a
server restarted between the two reads, an eviction): the series is broken, it is
removed, and the write answered *lost*, so every holder sends its whole contribution
again, as after a refresh finds a part missing.

When a connection fails half way, what was confirmed is reported through
:class:`~metricache.sync.batch.PartialApply` (write by write, part by part); the
increments written but not answered are *in doubt*: the syncer sends them again, so
they may count twice (at least once). Each is reported to
``MemcachedStore.increment_in_doubt``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import attrs
from metricache.errors import CorruptValue, OutcomeUnknown, StoreError
from metricache.sync.apply import create_series, current_epoch, write_gauges
from metricache.sync.batch import OutcomeStatus, PartialApply, SyncBatch, SyncOutcome
from metricache.sync.keyspace import LifeRecord

from metricache_memcached.items import FLAG_INT, WRAP, encode_int, exptime, signed
from metricache_memcached.keys import safe_key
from metricache_memcached.pipeline import Pipeline, Request, Status

if TYPE_CHECKING:
    from metricache_memcached.store import MemcachedStore

__all__ = ["apply_batch"]

_ROUNDS = 8  # add / incr again, when other writers create the same parts meanwhile


@attrs.define(eq=False, slots=True)
class _Increment(Request):
    """One part of one write: its ``incr`` request, and whether it landed."""

    write: int = 0
    part: int = 0
    key: bytes = b""
    mkey: bytes = b""
    amount: int = 0
    whole: bool = False
    sent: bool = False
    done: bool = False


class _Failed(Exception):
    """A step failed; what was applied before is reported through PartialApply."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


def apply_batch(store: MemcachedStore, batch: SyncBatch) -> SyncOutcome:
    """Apply ``batch`` to ``store``; see the module docstring."""
    epoch = current_epoch(store, batch)
    if epoch != batch.epoch:
        return SyncOutcome(OutcomeStatus.EPOCH_CHANGED, epoch)
    return _Apply(store, batch, epoch).run()


class _Apply:
    """One batch being applied."""

    def __init__(self, store: MemcachedStore, batch: SyncBatch, epoch: str) -> None:
        self.store = store
        self.batch = batch
        self.epoch = epoch
        self.keyspace = batch.keyspace
        self.expire = exptime(batch.retention)
        self.lost: list[int] = []
        self.joined: dict[int, str] = {}
        self.created: set[int] = set()
        self.increments: list[_Increment] = []
        self.broken_writes: set[int] = set()
        self.in_doubt = False

    # -- the steps --------------------------------------------------------------------

    def run(self) -> SyncOutcome:
        store, batch, keyspace = self.store, self.batch, self.keyspace
        for key, entries in batch.registrations.items():
            store.merge_map(key, entries, keyspace.generation_ttl, only_new=True)
        write_keys = [keyspace.series(w[0]) for w in batch.writes]
        refresh_keys = [keyspace.series(r[0]) for r in batch.refresh]
        shards = {keyspace.shard(w[0]) for w in batch.writes}
        shards.update(keyspace.shard(r[0]) for r in batch.refresh)
        markers = {shard: keyspace.shard_epoch(shard) for shard in shards}
        raw = store.get_many([*write_keys, *refresh_keys, *markers.values()])
        markers_set = set(markers.values())
        lives: dict[bytes, str] = {}  # series key -> its life
        expected = {
            **{k: w[1] for k, w in zip(write_keys, batch.writes) if w[1]},
            **{k: r[1] for k, r in zip(refresh_keys, batch.refresh)},
        }
        for key, value in raw.items():
            if key in lives or key in markers_set:
                continue
            life = expected.get(key)
            if life is not None and value == life.encode("ascii"):
                lives[key] = life  # the usual case: the life expected, alone
                continue
            try:
                lives[key] = LifeRecord.decode(key, value).life
            except CorruptValue as exc:
                store.on_corrupt(exc)
        expecting = {keyspace.shard(sid) for sid, life, _, _ in batch.writes if life}
        expecting.update(keyspace.shard(r[0]) for r in batch.refresh)
        lost_shards = tuple(sorted(s for s in expecting if markers[s] not in raw))
        if lost_shards:
            # A server that lost some shards lost the others it held too, whether this
            # batch writes to them or not: name every shard whose marker is gone.
            every = {name: keyspace.shard_epoch(name) for name in keyspace.shard_names()}
            present = store.get_many(every.values())
            gone = {s for s, key in every.items() if key not in present and s not in markers}
            fresh = {s for s, key in markers.items() if key not in raw}
            lost_shards = tuple(sorted({*lost_shards, *fresh, *gone}))
        try:
            applying = self._lives(write_keys, lives)
            self._increments(applying, write_keys)
            broken = self._broken()
            stale = self._refresh(refresh_keys, lives)
            self._markers(markers, present={s for s, key in markers.items() if key in raw})
            gauges_lost = write_gauges(store, batch)
            store.touch(keyspace.epoch(), batch.retention)
        except (_Failed, StoreError) as exc:
            cause = exc.cause if isinstance(exc, _Failed) else exc
            raise PartialApply(
                0,
                self.in_doubt,
                cause,
                outcome=self._outcome(),
                applied=self._applied(),
            ) from cause
        self.lost += broken
        return attrs.evolve(
            self._outcome(),
            gauges_lost=gauges_lost,
            stale=stale,
            lost_shards=lost_shards,
        )

    def _outcome(self) -> SyncOutcome:
        return SyncOutcome(
            OutcomeStatus.APPLIED,
            self.epoch,
            lost=tuple(sorted(self.lost)),
            joined=dict(self.joined),
        )

    def _applied(self) -> dict[int, tuple[int, ...] | None]:
        """Write index -> its parts applied (None: all), for the writes begun."""
        wanted: dict[int, list[_Increment]] = {}
        for inc in self.increments:
            wanted.setdefault(inc.write, []).append(inc)
        applied: dict[int, tuple[int, ...] | None] = {}
        for write, incs in wanted.items():
            if write in self.lost:
                continue
            done = tuple(inc.part for inc in incs if inc.done)
            if len(done) == len(incs):
                applied[write] = None
            elif done:
                applied[write] = done
        return applied

    def _lives(self, write_keys: list[bytes], lives: dict[bytes, str]) -> list[int]:
        """Sort the writes by the lives found: lost, joined, created; return the applied."""
        store, batch = self.store, self.batch
        applying: list[int] = []
        create: list[int] = []
        for i, (_sid, life, _parts, _deltas) in enumerate(batch.writes):
            found = lives.get(write_keys[i])
            if life and found != life:
                self.lost.append(i)
                continue
            if found is None:
                create.append(i)
            elif not life:
                self.joined[i] = found
            applying.append(i)
        if not create:
            return applying
        data = LifeRecord(batch.life).encode()
        pipe = Pipeline()
        requests: dict[int, Request] = {}
        for i in dict.fromkeys(create):
            mkey = safe_key(write_keys[i])
            line = b"add %s 0 %d %d\r\n%s\r\n" % (mkey, self.expire, len(data), data)
            requests[i] = pipe.add(store.route(mkey), Request(line))
        failure = pipe.run()
        again: list[int] = []
        for i in create:
            request = requests[i]
            if request.status is Status.ANSWERED and request.answer == b"STORED":
                self.created.add(i)
            elif request.status is Status.ANSWERED and request.answer == b"NOT_STORED":
                again.append(i)  # another writer created it first: join it
            elif failure is None:
                failure = StoreError(f"memcached refused to add a series: {request.answer!r}")
        if failure is not None:
            # No increment went out: writes that created their series are re-sent
            # whole next time, and join the life they gave it.
            raise _Failed(failure)
        if again:
            present = store.get_many([write_keys[i] for i in again])
            for i in again:
                key = write_keys[i]
                try:
                    raw = present.get(key)
                    if raw is None:
                        raise CorruptValue(f"{key!r} vanished as it was created")
                    self.joined[i] = LifeRecord.decode(key, raw).life
                except CorruptValue:
                    # Gone again, or bytes written behind our back: create it step by
                    # step, as the core does.
                    record, created = create_series(store, key, batch.life, batch.retention)
                    if created:
                        self.created.add(i)
                    else:
                        self.joined[i] = record.life
        return applying

    def _increments(self, applying: list[int], write_keys: list[bytes]) -> None:
        """Send every increment of the writes applied; create the parts missing."""
        store, batch = self.store, self.batch
        part_key = self.keyspace.part
        pipe = Pipeline()
        for i in applying:
            sid, life, parts, deltas = batch.writes[i]
            whole = not life
            for k, (part, delta) in enumerate(zip(parts, deltas)):
                if not (delta or whole):
                    continue
                key = part_key(sid, part)
                inc = _Increment(b"", True, write=i, part=k, key=key, mkey=safe_key(key))
                inc.amount = delta
                inc.whole = whole
                self.increments.append(inc)
            if whole and i not in self.created:
                mkey = safe_key(write_keys[i])
                line = b"touch %s %d noreply\r\n" % (mkey, self.expire)
                pipe.add(store.route(mkey), Request(line, reply=False))
        todo = list(self.increments)
        for _ in range(_ROUNDS):
            if not todo:
                return
            self._send_incr(todo, pipe)
            pipe = Pipeline()
            missing = self._read_incr(todo)
            if not missing:
                return
            todo = self._add_missing(missing)
        raise _Failed(StoreError("parts kept disappearing as they were created"))

    def _send_incr(self, todo: list[_Increment], pipe: Pipeline) -> None:
        route, expire = self.store.route, self.expire
        for inc in todo:
            mkey = inc.mkey
            if inc.whole:
                inc.line = b"incr %s %d\r\ntouch %s %d noreply\r\n" % (
                    mkey,
                    inc.amount % WRAP,
                    mkey,
                    expire,
                )
            else:
                inc.line = b"incr %s %d\r\n" % (mkey, inc.amount % WRAP)
            inc.status = Status.UNSENT
            inc.sent = True
            pipe.add(route(mkey), inc)
        failure = pipe.run()
        if failure is not None:
            self._settle(todo)
            raise _Failed(failure)

    def _settle(self, todo: Iterable[_Increment]) -> None:
        """Record what a failed pipeline confirmed; report the increments in doubt."""
        for inc in todo:
            if not inc.sent:
                continue
            if inc.status is Status.IN_DOUBT:
                self.in_doubt = True
                self.store.increment_in_doubt(inc.key, inc.amount)
            elif inc.status is Status.ANSWERED:
                self._answered(inc, inc.answer)

    def _read_incr(self, todo: list[_Increment]) -> list[_Increment]:
        """Read the answers of ``todo``; return the increments whose key was missing."""
        missing: list[_Increment] = []
        for inc in todo:
            if self._answered(inc, inc.answer):
                missing.append(inc)
        return missing

    def _answered(self, inc: _Increment, answer: bytes) -> bool:
        """Take in an ``incr`` answer; return True when the key was missing."""
        if answer.isdigit():
            new = int(answer)
            delta = inc.amount % WRAP
            old = (new - delta) % WRAP
            if signed(new) - signed(old) != inc.amount:
                self.store.undo_overflow(inc.key, inc.amount)
            inc.done = True
            return False
        if answer == b"NOT_FOUND":
            if inc.whole:
                return True
            self.broken_writes.add(inc.write)
            inc.done = True  # nothing landed; the whole series goes (see _broken)
            return False
        if answer.startswith(b"CLIENT_ERROR"):
            # Not a number memcached can add to (bytes written behind our back, or a
            # biased number of 2**63 or more): the step-by-step increment handles it.
            try:
                self.store.incr(inc.key, inc.amount, self.batch.retention)
            except OutcomeUnknown as exc:
                self.in_doubt = True
                raise _Failed(exc) from exc
            inc.done = True
            return False
        raise _Failed(StoreError(f"memcached refused an increment: {answer!r}"))

    def _add_missing(self, missing: list[_Increment]) -> list[_Increment]:
        """``add`` the parts a new writer found missing; return those to ``incr`` again."""
        pipe = Pipeline()
        requests: list[Request] = []
        for inc in missing:
            data = encode_int(inc.amount)
            line = b"add %s %d %d %d\r\n%s\r\n" % (inc.mkey, FLAG_INT, self.expire, len(data), data)
            requests.append(pipe.add(self.store.route(inc.mkey), Request(line)))
        failure = pipe.run()
        again: list[_Increment] = []
        for inc, request in zip(missing, requests):
            if request.status is Status.IN_DOUBT:
                self.in_doubt = True
                self.store.increment_in_doubt(inc.key, inc.amount)
            elif request.status is Status.ANSWERED:
                if request.answer == b"STORED":
                    inc.done = True
                elif request.answer == b"NOT_STORED":
                    again.append(inc)  # created meanwhile by another writer: add to it
                elif failure is None:
                    failure = StoreError(f"memcached refused to add a part: {request.answer!r}")
        if failure is not None:
            raise _Failed(failure)
        return again

    def _broken(self) -> list[int]:
        """Remove the series whose parts went missing under a life; return their writes."""
        broken = sorted(self.broken_writes)
        if not broken:
            return []
        keyspace = self.keyspace
        keys: list[bytes] = []
        for i in broken:
            sid, _life, parts, _deltas = self.batch.writes[i]
            keys += [keyspace.series(sid), *(keyspace.part(sid, p) for p in parts)]
        self._delete(keys)
        return broken

    def _delete(self, keys: list[bytes]) -> None:
        pipe = Pipeline()
        for key in keys:
            mkey = safe_key(key)
            pipe.add(self.store.route(mkey), Request(b"delete %s noreply\r\n" % mkey, False))
        failure = pipe.run()
        if failure is not None:
            raise _Failed(failure)

    def _refresh(self, refresh_keys: list[bytes], lives: dict[bytes, str]) -> tuple[int, ...]:
        """Push back the expiry of every series refreshed whole; return the stale ones."""
        keyspace, batch = self.keyspace, self.batch
        stale: list[int] = []
        pipe = Pipeline()
        wanted: list[tuple[int, list[tuple[bytes, Request]]]] = []
        for j, (sid, life, parts) in enumerate(batch.refresh):
            if lives.get(refresh_keys[j]) != life:
                stale.append(j)
                continue
            requests = []
            for key in (refresh_keys[j], *(keyspace.part(sid, p) for p in parts)):
                mkey = safe_key(key)
                line = b"touch %s %d\r\n" % (mkey, self.expire)
                requests.append((key, pipe.add(self.store.route(mkey), Request(line))))
            wanted.append((j, requests))
        if not wanted:
            return tuple(stale)
        failure = pipe.run()
        if failure is not None:
            raise _Failed(failure)
        gone: list[bytes] = []
        for j, requests in wanted:
            if all(r.answer == b"TOUCHED" for _, r in requests):
                continue
            # A part expired or was lost on its own: the series can no longer be read
            # whole. Remove it; every holder sends its whole contribution again.
            gone += [key for key, r in requests if r.answer == b"TOUCHED"]
            stale.append(j)
        if gone:
            self._delete(gone)
        return tuple(sorted(stale))

    def _markers(self, markers: dict[str, bytes], present: set[str]) -> None:
        """Write the marker of each shard that has none; push back the others' expiry.

        A marker holds the epoch its shard's series were written in.
        """
        if not markers:
            return
        data = self.epoch.encode("ascii")
        pipe = Pipeline()
        for shard, key in markers.items():
            mkey = safe_key(key)
            if shard in present:
                line = b"touch %s %d noreply\r\n" % (mkey, self.expire)
            else:
                line = b"set %s 0 %d %d noreply\r\n%s\r\n" % (mkey, self.expire, len(data), data)
            pipe.add(self.store.route(mkey), Request(line, False))
        failure = pipe.run()
        if failure is not None:
            raise _Failed(failure)
