"""The Redis store: one server, a master behind Sentinel, or a Redis Cluster.

A series is one hash (its parts, its life and the traces of the incarnations that
wrote it), so it expires whole. Keys carry hash tags (see
:mod:`metricache.sync.keyspace`): the epoch and the registrations share the control
tag, the series are spread over 256 shard tags, an instance's gauges share its own.

* One server (``redis://``, or the master Sentinel names): a sync batch is one Lua
  call, applied atomically.
* Redis Cluster: a batch is split into one call per slot it touches (the control
  call first: epoch and registrations; then one per shard and one for the gauges),
  sent as one pipeline per master (:mod:`metricache_redis.cluster`). If any call's
  answer is lost, the whole batch is re-sent as a retry, and each shard recognises
  the writes it applied already by their traces: exactly once, shard by shard. A
  shard whose marker is gone lost its data; the answer names it, and the instances
  check again only what they hold there.

With ``min_replicas`` > 0 a batch counts as confirmed only once that many replicas
acknowledged it (``WAIT``); otherwise the syncer keeps it and sends it again.
"""

from __future__ import annotations

import builtins
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any, NewType, TypeVar

import attrs
import redis
import redis.sentinel
from metricache.config import Seconds, register_structure_hook
from metricache.errors import CorruptValue, OutcomeUnknown, StoreError, StoreUnavailable
from metricache.masking import mask_url
from metricache.store import Capability, Store, ttl_ms
from metricache.sync.batch import OutcomeStatus, SyncBatch, SyncOutcome
from metricache.sync.keyspace import LIFE_FIELD, Keyspace
from redis.backoff import NoBackoff
from redis.retry import Retry

from metricache_redis import scripts
from metricache_redis.cluster import Call, Dispatch, State
from metricache_redis.payload import Step, StepPlan, split_batch, whole_payload
from metricache_redis.topology import Kind, Topology, parse_url

__all__ = ["RedisOptions", "RedisStore"]

log = logging.getLogger("metricache.redis")
T = TypeVar("T")

_CONNECTION_ERRORS = (
    redis.ConnectionError,
    redis.TimeoutError,
    OSError,
    redis.exceptions.RedisClusterException,
)
# Answers that say the command did not run (a failover or a migration under way).
_NOT_RUN = (
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ReadOnlyError,
)
_READ_CHUNK = 10_000
_SOCKET_TIMEOUT = Seconds(5.0)
_CONNECT_TIMEOUT = Seconds(2.0)
_REPLICA_TIMEOUT = Seconds(1.0)

ReplicaCount = NewType("ReplicaCount", int)
"""How many replicas must acknowledge a batch (0 or more)."""


def _check_replicas(value: object) -> ReplicaCount:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a whole number of replicas >= 0, got {value!r}")
    return ReplicaCount(value)


register_structure_hook(ReplicaCount, lambda value, _: _check_replicas(value))


def _check_url(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a redis URL, got {value!r}")
    parse_url(value)  # raises ValueError naming the problem, never the password
    return value


@attrs.frozen(kw_only=True)
class RedisOptions:
    """Options of the Redis store.

    ``url``
        ``redis://[[user]:password@]host[:port][/db]`` or ``rediss://`` (TLS) for one
        server; ``redis+sentinel://[[user]:password@]host:port[,host:port...]/SERVICE[/db]``
        for the master the sentinels name ``SERVICE``;
        ``redis+cluster://[[user]:password@]host:port[,host:port...]`` for a Redis
        Cluster (any of its nodes; the others are discovered).
    ``socket_timeout`` and ``connect_timeout``
        Bound how long one request may block the syncer (never the application). On
        a cluster, ``socket_timeout`` is also how long a batch keeps following
        redirections and waiting out a failover before it fails.
    ``ssl_ca_certs``
        A CA bundle for TLS.
    ``min_replicas``
        How many replicas must acknowledge a batch (``WAIT``) before it counts as
        confirmed; 0 (the default) confirms it when the master applied it.
    ``replica_timeout``
        Seconds ``WAIT`` waits for them (default 1); a batch they did not all
        acknowledge in time is kept and sent again.
    ``sentinel_password``
        The sentinels' own password (``requirepass`` of the sentinels), if any.
    """

    url: str = attrs.field(default="redis://127.0.0.1:6379/0", converter=_check_url)
    socket_timeout: Seconds = _SOCKET_TIMEOUT
    connect_timeout: Seconds = _CONNECT_TIMEOUT
    ssl_ca_certs: str = ""
    min_replicas: ReplicaCount = attrs.field(default=ReplicaCount(0), converter=_check_replicas)
    replica_timeout: Seconds = _REPLICA_TIMEOUT
    sentinel_password: str = ""


class RedisStore(Store):
    """A store on Redis (5.0 or newer; 7.0 or newer for Redis Cluster)."""

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
    gauge_page_size = None  # a page is a hash edited field by field: one page suffices

    def __init__(self, options: RedisOptions | None = None) -> None:
        super().__init__(options)
        self.options: RedisOptions
        try:
            self.topology: Topology = parse_url(self.options.url)
        except ValueError as exc:
            raise StoreError(f"invalid redis url: {exc}") from None
        self._pid = os.getpid()
        self._client_object: Any = None
        self._scripts: dict[str, Any] = {}
        self._shas: dict[str, str] = {}
        if self.topology.kind is not Kind.CLUSTER:
            self._client_object = self._connect()

    @property
    def clustered(self) -> bool:
        """Whether the store is a Redis Cluster."""
        return self.topology.kind is Kind.CLUSTER

    # -- connections --------------------------------------------------------------------

    def _connect(self) -> Any:
        o = self.options
        topology = self.topology
        common: dict[str, Any] = {
            "socket_timeout": o.socket_timeout,
            "socket_connect_timeout": o.connect_timeout,
            "retry": Retry(NoBackoff(), 0),
        }
        if topology.kind is Kind.SINGLE:
            extra: dict[str, Any] = {}
            if o.url.startswith("rediss://") and o.ssl_ca_certs:
                extra["ssl_ca_certs"] = o.ssl_ca_certs
            try:
                return redis.Redis.from_url(o.url, **common, **extra)
            except ValueError as exc:
                raise StoreError(f"invalid redis url {mask_url(o.url)}: {exc}") from None
        auth: dict[str, Any] = {"username": topology.username, "password": topology.password}
        if topology.kind is Kind.SENTINEL:
            sentinel = redis.sentinel.Sentinel(
                list(topology.nodes),
                sentinel_kwargs={
                    "password": o.sentinel_password or None,
                    "socket_timeout": o.socket_timeout,
                    "socket_connect_timeout": o.connect_timeout,
                },
                **common,
                **auth,
                db=topology.db,
            )
            return sentinel.master_for(topology.service)
        from redis.cluster import ClusterNode, RedisCluster

        node: Any = ClusterNode  # untyped in redis-py
        try:
            return RedisCluster(
                startup_nodes=[node(host, port) for host, port in topology.nodes],
                require_full_coverage=False,
                **common,
                **auth,
            )
        except (redis.RedisError, redis.exceptions.RedisClusterException, OSError) as exc:
            raise StoreUnavailable(f"{self.describe()}: {type(exc).__name__}: {exc}") from exc

    @property
    def _client(self) -> Any:
        if self._pid != os.getpid():
            self.after_fork()
        if self._client_object is None:
            self._client_object = self._connect()
        return self._client_object

    def _script(self, name: str) -> Any:
        found = self._scripts.get(name)
        if found is None:
            found = self._scripts[name] = self._client.register_script(getattr(scripts, name))
        return found

    def _sha(self, name: str) -> str:
        sha = self._shas.get(name)
        if sha is None:
            sha = self._shas[name] = self._script(name).sha
        return sha

    def describe(self) -> str:
        """Return the URL with any password masked."""
        return f"redis {mask_url(self.options.url)}"

    def _call(self, func: Callable[[], T], *, writes: bool = False) -> T:
        try:
            return func()
        except redis.AuthenticationError as exc:
            # Refused before any command ran: nothing was applied, nothing to resend.
            raise StoreUnavailable(f"{self.describe()}: {type(exc).__name__}: {exc}") from exc
        except _NOT_RUN as exc:
            raise StoreUnavailable(f"{self.describe()}: {type(exc).__name__}: {exc}") from exc
        except _CONNECTION_ERRORS as exc:
            kind = OutcomeUnknown if writes else StoreUnavailable
            raise kind(f"{self.describe()}: {type(exc).__name__}: {exc}") from exc
        except redis.RedisError as exc:
            raise StoreError(f"{self.describe()}: {type(exc).__name__}: {exc}") from exc

    def _dispatch(self) -> Dispatch:
        return Dispatch(self._client, patience=self.options.socket_timeout)

    def _run_calls(
        self, calls: Sequence[Call], *, writes: bool, unconfirmed_ok: bool = False
    ) -> None:
        """Run calls on the cluster; raise the store error their failures call for.

        ``unconfirmed_ok`` leaves calls that ran without the replicas' acknowledgement
        alone (their answers are there); the caller raises later.
        """
        replicas = self.options.min_replicas if writes else 0
        self._call(
            partial(
                self._dispatch().run,
                calls,
                replicas=replicas,
                replica_timeout_ms=ttl_ms(self.options.replica_timeout),
            ),
            writes=writes,
        )
        ok = (State.DONE, State.UNCONFIRMED) if unconfirmed_ok else (State.DONE,)
        failed = [c for c in calls if c.state not in ok]
        if not failed:
            return
        first = failed[0]
        detail = f"{self.describe()}: {len(failed)} of {len(calls)} calls failed, first: "
        detail += f"{first.state.value}: {type(first.error).__name__}: {first.error}"
        if not writes:
            if first.state is State.REFUSED:
                raise StoreError(detail)
            raise StoreUnavailable(detail)
        if all(c.state is State.NOT_SENT for c in failed) and not any(
            c.state is State.DONE for c in calls
        ):
            raise StoreUnavailable(detail)
        if any(c.state is State.DONE for c in calls) or any(
            c.state in (State.IN_DOUBT, State.UNCONFIRMED) for c in failed
        ):
            # Some calls ran: the batch is re-sent whole, and what ran is recognised.
            raise OutcomeUnknown(detail)
        raise StoreError(detail)

    # -- life cycle ---------------------------------------------------------------------

    def ping(self) -> None:
        """Raise StoreUnavailable unless the server (every cluster master) answers PING."""
        self._call(self._client.ping)

    def close(self) -> None:
        """Close the connections."""
        if self._client_object is not None:
            self._client_object.close()

    def after_fork(self) -> None:
        """Open fresh connections in a forked child (the parent keeps its own)."""
        self._pid = os.getpid()
        self._scripts.clear()
        self._client_object = None
        if self.topology.kind is not Kind.CLUSTER:
            self._client_object = self._connect()

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

    def _per_key(
        self, keys: list[bytes], command: Callable[[bytes], tuple[Any, ...]], *, writes: bool
    ) -> list[Any]:
        """Run one command per key, pipelined (per master on a cluster); return the replies.

        A reply that is an error is returned as the exception.
        """
        if not keys:
            return []
        if self.clustered:
            dispatch_calls = [Call(self._dispatch().slot(k), command(k)) for k in keys]
            self._run_calls_lenient(dispatch_calls, writes=writes)
            return [c.reply if c.state is State.DONE else c.error for c in dispatch_calls]

        def run() -> list[Any]:
            pipe = self._client.pipeline(transaction=False)
            for key in keys:
                pipe.execute_command(*command(key))
            return list(pipe.execute(raise_on_error=False))

        return self._call(run, writes=writes)

    def _run_calls_lenient(self, calls: list[Call], *, writes: bool) -> None:
        """Like :meth:`_run_calls`, but an error answer is left on its call (not raised)."""
        try:
            self._run_calls(calls, writes=writes)
        except StoreError:
            if any(c.state not in (State.DONE, State.REFUSED) for c in calls):
                raise

    def get_many(self, keys: Iterable[bytes]) -> dict[bytes, bytes]:
        """GET every key, pipelined (MGET in chunks of 10,000 keys on one server)."""
        wanted = list(keys)
        found: dict[bytes, bytes] = {}
        if self.clustered:
            for key, value in zip(wanted, self._per_key(wanted, _get, writes=False)):
                if isinstance(value, bytes):
                    found[key] = value
            return found
        for start in range(0, len(wanted), 10_000):
            chunk = wanted[start : start + 10_000]
            values: list[Any] = self._call(partial(self._client.mget, chunk))
            for key, value in zip(chunk, values):
                if isinstance(value, bytes):
                    found[key] = value
        return found

    def set_many(self, items: Mapping[bytes, bytes], ttl: float) -> None:
        """SET every item in one pipeline (one per master on a cluster)."""
        ms = ttl_ms(ttl)
        keys = list(items)
        replies = self._per_key(keys, lambda k: ("SET", k, items[k], "PX", ms), writes=True)
        for reply in replies:
            if isinstance(reply, Exception):
                raise StoreError(f"{self.describe()}: SET failed: {reply}")

    def touch_many(self, keys: Iterable[bytes], ttl: float) -> builtins.set[bytes]:
        """PEXPIRE every key in one pipeline; return those that existed."""
        wanted = list(keys)
        ms = ttl_ms(ttl)
        replies = self._per_key(wanted, lambda k: ("PEXPIRE", k, ms), writes=True)
        return {key for key, ok in zip(wanted, replies) if ok is True or ok == 1}

    # -- atomic, cas, locking -------------------------------------------------------------

    def incr(self, key: bytes, amount: int, ttl: float) -> int:
        """INCRBY and PEXPIRE in one script."""
        script = self._script("INCR")
        return int(self._call(lambda: script(keys=[key], args=[amount, ttl_ms(ttl)]), writes=True))

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
        results = self._per_key(wanted, lambda k: ("HGETALL", k), writes=False)
        found: dict[bytes, dict[str, str]] = {}
        for key, reply in zip(wanted, results):
            if isinstance(reply, Exception):
                self.on_corrupt(CorruptValue(f"{key!r} is not a hash: {reply}"))
                continue
            # A cluster's raw reply is a list: field, value, ...
            value = dict(zip(reply[0::2], reply[1::2])) if isinstance(reply, list) else reply
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

    def series_keys(self, keyspace: Keyspace, sid: str, parts: Sequence[str]) -> list[bytes]:
        """A series is one hash: its parts, its life and its traces."""
        return [keyspace.series(sid)]

    def apply_sync(self, batch: SyncBatch) -> SyncOutcome:
        """Apply a batch exactly once: one script call, or one per slot on a cluster."""
        if self.clustered:
            return self._apply_clustered(batch)
        plan = split_batch(batch, markers=False)
        reply = self._call(partial(self._run_script, whole_payload(plan)), writes=True)
        status, epoch, lost, repaired, lost_writes, joined, stale, _resets = reply
        self._repaired(repaired)
        return SyncOutcome(
            OutcomeStatus(_text(status)),
            _text(epoch),
            gauges_lost=bool(lost),
            lost=tuple(int(i) for i in lost_writes),
            joined=_joined(joined),
            stale=tuple(int(i) for i in stale),
        )

    def _run_script(self, payload: str) -> Any:
        """Run APPLY_SYNC on the server, then WAIT for the replicas asked for."""
        replicas = self.options.min_replicas
        if not replicas:
            return self._script("APPLY_SYNC")(args=[payload])
        sha = self._sha("APPLY_SYNC")
        for _ in range(2):
            pipe = self._client.pipeline(transaction=False)
            pipe.evalsha(sha, 0, payload)
            pipe.execute_command("WAIT", replicas, ttl_ms(self.options.replica_timeout))
            reply, acknowledged = pipe.execute(raise_on_error=False)
            if isinstance(reply, redis.exceptions.NoScriptError):
                self._client.script_load(scripts.APPLY_SYNC)
                continue
            if isinstance(reply, Exception):
                raise reply
            if int(acknowledged) < replicas:
                raise OutcomeUnknown(
                    f"{self.describe()}: {acknowledged} of {replicas} replicas acknowledged "
                    f"the batch within {self.options.replica_timeout} s; it is sent again"
                )
            return reply
        raise StoreError(f"{self.describe()}: the batch script could not be loaded")

    def _script_call(self, name: str, step: Step) -> Call:
        keys = step.keys
        return Call(
            self._dispatch().slot(keys[0]),
            ("EVALSHA", self._sha(name), len(keys), *keys, step.encoded()),
            script=getattr(scripts, name),
        )

    def _apply_clustered(self, batch: SyncBatch) -> SyncOutcome:
        """The control call, then every shard's call and the gauges' call, per master."""
        plan: StepPlan = split_batch(batch, markers=True)
        control = self._script_call("APPLY_CONTROL", plan.control)
        # The control call ran even if its replicas did not acknowledge it in time: go
        # on with the shards (more is applied per attempt), and fail the batch at the end.
        self._run_calls([control], writes=True, unconfirmed_ok=True)
        status, epoch, repaired = control.reply
        self._repaired(repaired)
        if _text(status) != OutcomeStatus.APPLIED.value:
            return SyncOutcome(OutcomeStatus(_text(status)), _text(epoch))
        names = list(plan.shards)
        calls = [self._script_call("APPLY_SHARD", plan.shards[name]) for name in names]
        gauges = None
        if plan.gauges is not None:
            gauges = self._script_call("APPLY_GAUGES", plan.gauges)
            calls.append(gauges)
        self._run_calls(calls, writes=True)
        lost: list[int] = []
        joined: dict[int, str] = {}
        stale: list[int] = []
        resets: list[str] = []  # shards without a marker where the batch expected series
        fresh: list[str] = []  # shards without a marker, the batch expecting nothing there
        repaired = 0
        for name, call in zip(names, calls):
            fixed, lost_writes, joins, stales, reset = call.reply
            repaired += int(fixed)
            lost += (int(i) for i in lost_writes)
            joined.update(_joined(joins))
            stale += (int(i) for i in stales)
            if reset:
                (resets if int(reset[1]) else fresh).append(name)
        gauges_lost = False
        if gauges is not None:
            glost, fixed = gauges.reply
            gauges_lost = bool(glost)
            repaired += int(fixed)
        self._repaired(repaired)
        if control.state is State.UNCONFIRMED:
            raise OutcomeUnknown(f"{self.describe()}: {control.error}; the batch is sent again")
        if resets:
            # A master that lost some shards lost the others it served too, whether this
            # batch wrote to them or not: name every shard whose marker was gone.
            gone = self._shards_without_marker(batch.keyspace) - set(names)
            resets = sorted({*resets, *fresh, *gone})
        return SyncOutcome(
            OutcomeStatus.APPLIED,
            _text(epoch),
            gauges_lost=gauges_lost,
            lost=tuple(sorted(lost)),
            joined=joined,
            stale=tuple(sorted(stale)),
            lost_shards=tuple(resets),
        )

    def _shards_without_marker(self, keyspace: Keyspace) -> builtins.set[str]:
        """Return the shards whose marker is gone (one EXISTS each, pipelined per master)."""
        names = keyspace.shard_names()
        keys = [keyspace.shard_epoch(name) for name in names]
        replies = self._per_key(keys, lambda k: ("EXISTS", k), writes=False)
        return {name for name, found in zip(names, replies) if found == 0}

    def _repaired(self, repaired: Any) -> None:
        if repaired:
            log.warning(
                "%s: replaced %d keys that held something metricache did not write",
                self.describe(),
                repaired,
            )
            self.on_corrupt(CorruptValue(f"{repaired} keys held unexpected values"))

    def read_series(
        self, keyspace: Keyspace, wanted: Sequence[tuple[str, tuple[str, ...]]]
    ) -> list[list[int] | None]:
        """HMGET the life and parts of every series, 10,000 series per script call.

        On a cluster the calls are made shard by shard, pipelined per master.
        """
        chunks: list[list[int]] = []  # indexes into wanted
        if self.clustered:
            by_shard: dict[str, list[int]] = {}
            for n, (sid, _) in enumerate(wanted):
                by_shard.setdefault(keyspace.shard(sid), []).append(n)
            for members in by_shard.values():
                chunks += [
                    members[s : s + _READ_CHUNK] for s in range(0, len(members), _READ_CHUNK)
                ]
        else:
            chunks = [
                list(range(s, min(s + _READ_CHUNK, len(wanted))))
                for s in range(0, len(wanted), _READ_CHUNK)
            ]
        steps: list[tuple[list[int], list[Any]]] = []
        clustered = self.clustered
        prefixes: dict[str, str] = {}
        shard_of = keyspace.shard

        def series_key(sid: str) -> str:
            # Keyspace.series, as text, its shard's prefix built once.
            shard = shard_of(sid)
            prefix = prefixes.get(shard)
            if prefix is None:
                prefix = prefixes[shard] = keyspace.shard_prefix(shard)
            return prefix + sid

        for chunk in chunks:
            layouts: dict[tuple[str, ...], int] = {}
            keys: list[str] = []
            which: list[int] = []
            for n in chunk:
                sid, parts = wanted[n]
                keys.append(series_key(sid))
                which.append(layouts.setdefault(parts, len(layouts) + 1))
            head: list[Any] = [LIFE_FIELD, [list(p) for p in layouts], which]
            if clustered:
                # Declared as KEYS: the call is routed to the shard's slot, and a slot
                # being migrated answers ASK or TRYAGAIN.
                declared = [key.encode() for key in keys]
                steps.append((chunk, [declared, [json.dumps(head, separators=(",", ":"))]]))
            else:
                # One server: the keys travel inside the JSON argument, one argument
                # rather than 10,000 for the client to encode.
                head.append(keys)
                steps.append((chunk, [[], [json.dumps(head, separators=(",", ":"))]]))
        replies = self._read_replies([step for _, step in steps])
        found: list[list[int] | None] = [None] * len(wanted)
        for (chunk, _), reply in zip(steps, replies):
            at = 0
            for n in chunk:
                sid, parts = wanted[n]
                life = reply[at]
                raw = reply[at + 1 : at + 1 + len(parts)]
                at += 1 + len(parts)
                if life is None or life == -1:
                    if life == -1:
                        key = keyspace.series(sid)
                        self.on_corrupt(CorruptValue(f"{key!r} does not hold a series"))
                    continue
                try:
                    found[n] = [0 if v is None else _integer(v) for v in raw]
                except ValueError:
                    key = keyspace.series(sid)
                    self.on_corrupt(CorruptValue(f"{key!r} holds a part that is no integer"))
        return found

    def _read_replies(self, steps: list[list[Any]]) -> list[Any]:
        """Run READ_SERIES once per ``[keys, args]``; return the replies in order."""
        if not steps:
            return []
        if self.clustered:
            sha = self._sha("READ_SERIES")
            calls = [
                Call(
                    self._dispatch().slot(keys[0]),
                    ("EVALSHA", sha, len(keys), *keys, *args),
                    script=scripts.READ_SERIES,
                )
                for keys, args in steps
            ]
            self._run_calls(calls, writes=False)
            return [c.reply for c in calls]
        script = self._script("READ_SERIES")
        return [self._call(partial(script, keys=keys, args=args)) for keys, args in steps]


def _integer(raw: bytes) -> int:
    """A part's value: the decimal text of a signed 64-bit integer (ValueError else)."""
    value = int(raw)
    if not -(2**63) <= value < 2**63 or not raw.lstrip(b"-").isdigit():
        raise ValueError(raw)
    return value


def _get(key: bytes) -> tuple[Any, ...]:
    return ("GET", key)


def _text(value: Any) -> str:
    return value.decode("ascii") if isinstance(value, bytes) else str(value)


def _joined(flat: list[Any]) -> dict[int, str]:
    return {int(flat[k]): _text(flat[k + 1]) for k in range(0, len(flat), 2)}
