"""The Redis store for metricache: ``distributed_atomic``, batches applied exactly once.

``open_store("redis", url="redis://127.0.0.1:6379/0")``; ``rediss://`` for TLS;
a password in the URL is never printed. A series is one hash (its parts, its life,
and the traces of the incarnations that wrote it), so it expires whole. A sync batch
is one Lua script call: Redis checks the store epoch, then applies registrations,
writes, refreshes and gauge changes in one atomic step; every write leaves a trace,
so a batch re-sent after a lost reply is recognised series by series, however late.
"""

from __future__ import annotations

import builtins
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar

import attrs
import redis
from metricache import hookimpl
from metricache.errors import CorruptValue, OutcomeUnknown, StoreError, StoreUnavailable
from metricache.masking import mask_url
from metricache.store import Capability, Store, parse_int, ttl_ms
from metricache.sync.batch import OutcomeStatus, SyncBatch, SyncOutcome
from metricache.sync.keyspace import LIFE_FIELD, TRACE_PREFIX, Keyspace
from redis.backoff import NoBackoff
from redis.retry import Retry

from metricache_redis import scripts

__all__ = ["RedisOptions", "RedisStore"]

log = logging.getLogger("metricache.redis")
T = TypeVar("T")

_EXACT = 2**53
_CONNECTION_ERRORS = (redis.ConnectionError, redis.TimeoutError, OSError)


@attrs.frozen(kw_only=True)
class RedisOptions:
    """Options of the Redis store.

    ``url``: ``redis://[[user]:password@]host[:port][/db]`` or ``rediss://`` (TLS).
    ``socket_timeout`` and ``connect_timeout`` bound how long one request may block
    the syncer (never the application). ``ssl_ca_certs`` names a CA bundle for TLS.
    """

    url: str = "redis://127.0.0.1:6379/0"
    socket_timeout: float = 5.0
    connect_timeout: float = 2.0
    ssl_ca_certs: str = ""


class RedisStore(Store):
    """A store on a Redis server (5.0 or newer)."""

    name = "redis"
    capabilities = frozenset(
        {
            Capability.DISTRIBUTED,
            Capability.ATOMIC,
            Capability.CAS,
            Capability.LOCKING,
            Capability.EXACTLY_ONCE,
        }
    )
    options_class = RedisOptions

    def __init__(self, options: RedisOptions | None = None) -> None:
        super().__init__(options)
        self.options: RedisOptions
        self._client = self._connect()
        self._scripts: dict[str, Any] = {}

    def _connect(self) -> redis.Redis:
        o = self.options
        extra: dict[str, Any] = {}
        if o.url.startswith("rediss://") and o.ssl_ca_certs:
            extra["ssl_ca_certs"] = o.ssl_ca_certs
        try:
            return redis.Redis.from_url(
                o.url,
                socket_timeout=o.socket_timeout,
                socket_connect_timeout=o.connect_timeout,
                retry=Retry(NoBackoff(), 0),
                **extra,
            )
        except ValueError as exc:
            raise StoreError(f"invalid redis url {mask_url(o.url)}: {exc}") from None

    def _script(self, name: str) -> Any:
        found = self._scripts.get(name)
        if found is None:
            found = self._scripts[name] = self._client.register_script(getattr(scripts, name))
        return found

    def describe(self) -> str:
        """Return the URL with any password masked."""
        return f"redis {mask_url(self.options.url)}"

    def _call(self, func: Callable[[], T], *, writes: bool = False) -> T:
        try:
            return func()
        except redis.AuthenticationError as exc:
            # Refused before any command ran: nothing was applied, nothing to resend.
            raise StoreUnavailable(f"{self.describe()}: {type(exc).__name__}: {exc}") from exc
        except _CONNECTION_ERRORS as exc:
            kind = OutcomeUnknown if writes else StoreUnavailable
            raise kind(f"{self.describe()}: {type(exc).__name__}: {exc}") from exc
        except redis.RedisError as exc:
            raise StoreError(f"{self.describe()}: {type(exc).__name__}: {exc}") from exc

    # -- life cycle ---------------------------------------------------------------------

    def ping(self) -> None:
        """Raise StoreUnavailable unless the server answers PING."""
        self._call(self._client.ping)

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def after_fork(self) -> None:
        """Open a fresh connection pool in a forked child."""
        self._client = self._connect()
        self._scripts.clear()

    # -- basics -------------------------------------------------------------------------

    def get(self, key: bytes) -> bytes | None:
        """GET ``key``."""
        value: object = self._call(lambda: self._client.get(key))
        return value if isinstance(value, bytes) else None

    def set(self, key: bytes, value: bytes, ttl: float) -> None:
        """SET ``key`` with a TTL in milliseconds."""
        self._call(lambda: self._client.set(key, value, px=ttl_ms(ttl)), writes=True)

    def delete(self, key: bytes) -> bool:
        """DEL ``key``."""
        return bool(self._call(lambda: self._client.delete(key), writes=True))

    def touch(self, key: bytes, ttl: float) -> bool:
        """PEXPIRE ``key``."""
        return bool(self._call(lambda: self._client.pexpire(key, ttl_ms(ttl)), writes=True))

    def get_many(self, keys: Iterable[bytes]) -> dict[bytes, bytes]:
        """MGET in chunks of 10,000 keys."""
        wanted = list(keys)
        found: dict[bytes, bytes] = {}
        for start in range(0, len(wanted), 10_000):
            chunk = wanted[start : start + 10_000]
            values: list[Any] = self._call(partial(self._client.mget, chunk))
            for key, value in zip(chunk, values):
                if isinstance(value, bytes):
                    found[key] = value
        return found

    def set_many(self, items: Mapping[bytes, bytes], ttl: float) -> None:
        """SET every item in one pipeline."""
        ms = ttl_ms(ttl)

        def run() -> None:
            pipe = self._client.pipeline(transaction=False)
            for key, value in items.items():
                pipe.set(key, value, px=ms)
            pipe.execute()

        self._call(run, writes=True)

    def touch_many(self, keys: Iterable[bytes], ttl: float) -> builtins.set[bytes]:
        """PEXPIRE every key in one pipeline; return those that existed."""
        wanted = list(keys)
        ms = ttl_ms(ttl)

        def run() -> list[Any]:
            pipe = self._client.pipeline(transaction=False)
            for key in wanted:
                pipe.pexpire(key, ms)
            return pipe.execute()

        results = self._call(run, writes=True)
        return {key for key, ok in zip(wanted, results) if ok}

    # -- atomic, cas, locking -------------------------------------------------------------

    def incr(self, key: bytes, amount: int, ttl: float) -> int:
        """INCRBY and PEXPIRE in one script."""
        script = self._script("INCR")
        return int(self._call(lambda: script(keys=[key], args=[amount, ttl_ms(ttl)]), writes=True))

    def read_counters(self, keys: Iterable[bytes]) -> dict[bytes, int]:
        """MGET integers; a non-integer value is reported and left out."""
        found: dict[bytes, int] = {}
        for key, raw in self.get_many(keys).items():
            try:
                found[key] = parse_int(key, raw)
            except CorruptValue as exc:
                self.on_corrupt(exc)
        return found

    def add(self, key: bytes, value: bytes, ttl: float) -> bool:
        """SET NX with a TTL."""
        return bool(
            self._call(lambda: self._client.set(key, value, nx=True, px=ttl_ms(ttl)), writes=True)
        )

    def compare_and_swap(
        self, key: bytes, expected: bytes | None, value: bytes, ttl: float
    ) -> bool:
        """Replace the value if it equals ``expected`` (None: absent), in one script."""
        script = self._script("CAS")
        args = [0 if expected is None else 1, expected or b"", value, ttl_ms(ttl)]
        return bool(self._call(lambda: script(keys=[key], args=args), writes=True))

    def compare_and_delete(self, key: bytes, expected: bytes) -> bool:
        """Delete the key if its value equals ``expected``, in one script."""
        script = self._script("CAD")
        return bool(self._call(lambda: script(keys=[key], args=[expected]), writes=True))

    def compare_and_touch(self, key: bytes, expected: bytes, ttl: float) -> bool:
        """Reset the TTL if the value equals ``expected``, in one script."""
        script = self._script("CAT")
        args = [expected, ttl_ms(ttl)]
        return bool(self._call(lambda: script(keys=[key], args=args), writes=True))

    # -- maps as hashes -----------------------------------------------------------------

    def get_map(self, key: bytes) -> dict[str, str]:
        """HGETALL ``key``."""
        return self.get_maps([key]).get(key, {})

    def get_maps(self, keys: Iterable[bytes]) -> dict[bytes, dict[str, str]]:
        """HGETALL every key in one pipeline; a key of another type is reported."""
        wanted = list(keys)
        if not wanted:
            return {}

        def run() -> list[Any]:
            pipe = self._client.pipeline(transaction=False)
            for key in wanted:
                pipe.hgetall(key)
            return pipe.execute(raise_on_error=False)

        results = self._call(run)
        found: dict[bytes, dict[str, str]] = {}
        for key, value in zip(wanted, results):
            if isinstance(value, Exception):
                self.on_corrupt(CorruptValue(f"{key!r} is not a hash: {value}"))
                continue
            if not value:
                continue
            try:
                found[key] = {k.decode("utf-8"): v.decode("utf-8") for k, v in value.items()}
            except UnicodeDecodeError:
                self.on_corrupt(CorruptValue(f"{key!r} holds fields that are not UTF-8"))
        return found

    def merge_map(
        self, key: bytes, entries: Mapping[str, str], ttl: float, *, only_new: bool = False
    ) -> None:
        """HSET (or HSETNX) the entries and PEXPIRE, in one script."""
        script = self._script("MERGE_MAP")
        args: list[Any] = [1 if only_new else 0, ttl_ms(ttl)]
        for field, value in entries.items():
            args += [field, value]
        self._call(lambda: script(keys=[key], args=args), writes=True)

    def replace_map(self, key: bytes, entries: Mapping[str, str], ttl: float) -> None:
        """DEL, HSET and PEXPIRE in one script."""
        script = self._script("REPLACE_MAP")
        args: list[Any] = [ttl_ms(ttl)]
        for field, value in entries.items():
            args += [field, value]
        self._call(lambda: script(keys=[key], args=args), writes=True)

    # -- sync ---------------------------------------------------------------------------

    gauge_page_size = None  # a page is a hash edited field by field: one page suffices

    def series_keys(self, keyspace: Keyspace, sid: str, parts: Sequence[str]) -> list[bytes]:
        """A series is one hash: its parts, its life and its traces."""
        return [keyspace.series(sid)]

    def apply_sync(self, batch: SyncBatch) -> SyncOutcome:
        """Apply a batch atomically and exactly once (one script call, one round trip)."""
        reply = self._call(partial(self._script("APPLY_SYNC"), args=[_payload(batch)]), writes=True)
        status, epoch, lost, repaired, lost_writes, joined, stale = reply
        if repaired:
            log.warning(
                "%s: replaced %d keys that held something metricache did not write",
                self.describe(),
                repaired,
            )
            self.on_corrupt(CorruptValue(f"{repaired} keys held unexpected values"))
        return SyncOutcome(
            OutcomeStatus(status.decode() if isinstance(status, bytes) else status),
            epoch.decode("ascii") if isinstance(epoch, bytes) else str(epoch),
            gauges_lost=bool(lost),
            lost=tuple(int(i) for i in lost_writes),
            joined={
                int(joined[k]): joined[k + 1].decode("ascii") for k in range(0, len(joined), 2)
            },
            stale=tuple(int(i) for i in stale),
        )

    def read_series(
        self, keyspace: Keyspace, wanted: Sequence[tuple[str, tuple[str, ...]]]
    ) -> list[list[int] | None]:
        """HMGET the life and parts of every series, 10,000 series per script call."""
        script = self._script("READ_SERIES")
        found: list[list[int] | None] = []
        for start in range(0, len(wanted), _READ_CHUNK):
            chunk = wanted[start : start + _READ_CHUNK]
            layouts: dict[tuple[str, ...], int] = {}
            which = [layouts.setdefault(parts, len(layouts) + 1) for _, parts in chunk]
            head = [
                keyspace.series_prefix,
                LIFE_FIELD,
                [list(p) for p in layouts],
                [sid for sid, _ in chunk],
                which,
            ]
            reply: list[Any] = self._call(
                partial(script, args=[json.dumps(head, separators=(",", ":"))])
            )
            at = 0
            for sid, parts in chunk:
                life = reply[at]
                width = len(parts)
                raw = reply[at + 1 : at + 1 + width]
                at += 1 + width
                if life is None or life == -1:
                    if life == -1:
                        key = keyspace.series(sid)
                        self.on_corrupt(CorruptValue(f"{key!r} does not hold a series"))
                    found.append(None)
                    continue
                try:
                    found.append([0 if v is None else _integer(v) for v in raw])
                except ValueError:
                    key = keyspace.series(sid)
                    self.on_corrupt(CorruptValue(f"{key!r} holds a part that is no integer"))
                    found.append(None)
        return found


_READ_CHUNK = 10_000


def _integer(raw: bytes) -> int:
    """A part's value: the decimal text of a signed 64-bit integer (ValueError else)."""
    value = int(raw)
    if not -(2**63) <= value < 2**63 or not raw.lstrip(b"-").isdigit():
        raise ValueError(raw)
    return value


def _payload(batch: SyncBatch) -> str:
    """Return the JSON the batch script reads (key and field names included)."""
    keyspace = batch.keyspace
    # Lives travel once each: writes and refreshes name them by their place in "lv"
    # (1-based; 0 is no life).
    lives: dict[str, int] = {"": 0}
    writes: list[str | int] = []
    extend = writes.extend
    for sid, life, parts, deltas in batch.writes:
        at = lives.get(life)
        if at is None:
            at = lives[life] = len(lives)
        if len(deltas) == 2:  # a counter, inlined: the usual case
            whole, nanos = deltas
            if -_EXACT < whole < _EXACT and -_EXACT < nanos < _EXACT:
                if whole and nanos:
                    extend((sid, at, 2, parts[0], whole, parts[1], nanos))
                elif whole:
                    extend((sid, at, 1, parts[0], whole))
                elif nanos:
                    extend((sid, at, 1, parts[1], nanos))
                else:
                    extend((sid, at, 0))
                continue
        changed = [
            (part, delta if -_EXACT < delta < _EXACT else str(delta))
            for part, delta in zip(parts, deltas)
            if delta
        ]
        extend((sid, at, len(changed)))
        for pair in changed:
            extend(pair)
    refresh: list[str | int] = []
    for sid, life, _parts in batch.refresh:
        at = lives.get(life)
        if at is None:
            at = lives[life] = len(lives)
        refresh += (sid, at)
    prune: list[str | int] = []
    for sid, life in batch.prune:
        at = lives.get(life)
        if at is None:
            at = lives[life] = len(lives)
        prune += (sid, at)
    payload: dict[str, Any] = {
        "ek": keyspace.epoch().decode("ascii"),
        "ep": batch.epoch,
        "pe": batch.proposed_epoch,
        "ttl": ttl_ms(keyspace.retention),
        "gttl": ttl_ms(keyspace.generation_ttl),
        "live": ttl_ms(batch.liveness_ttl),
        "pttl": ttl_ms(batch.page_ttl),
        "sp": keyspace.series_prefix,
        "lf": LIFE_FIELD,
        "tf": f"{TRACE_PREFIX}{batch.token}:",
        "life": batch.life,
        "seq": batch.seq,
        "chk": 1 if batch.retry else 0,
        "lv": list(lives)[1:],
        "w": writes,
        "r": refresh,
        "pr": prune,
        "hk": keyspace.instance(batch.instance_key).decode("ascii"),
        "reg": [
            [key.decode("ascii"), [x for item in entries.items() for x in item]]
            for key, entries in batch.registrations.items()
        ],
    }
    update = batch.gauges
    if update is not None:
        page = partial(keyspace.gauge_page, batch.instance_key, update.layout)
        marker = ["@", update.layout]
        if update.full:
            pages = [
                [
                    page(n).decode("ascii"),
                    marker + [x for item in update.contents.get(n, {}).items() for x in item],
                ]
                for n in range(update.pages)
            ]
        else:
            pages = []
            for n, changes in update.changes.items():
                sets = [
                    x for sid, entry in changes.items() if entry is not None for x in (sid, entry)
                ]
                drops = [sid for sid, entry in changes.items() if entry is None]
                pages.append([page(n).decode("ascii"), sets, drops])
        payload["g"] = {
            "full": 1 if update.full else 0,
            "id": batch.instance_id,
            "layout": update.layout,
            "pages": pages,
            "touch": (
                [page(n).decode("ascii") for n in range(update.pages) if n not in update.changes]
                if update.touch and not update.full
                else []
            ),
        }
    # Lua's cjson turns an empty array into an object: send lists it can iterate.
    return json.dumps(payload, separators=(",", ":"))


@hookimpl
def metricache_store_classes() -> Iterable[type[Store]]:
    """Offer the Redis store."""
    return [RedisStore]
