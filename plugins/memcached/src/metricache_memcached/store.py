"""The memcached store: ``distributed_basic`` on one or more memcached servers.

Keys are made safe (:mod:`metricache_memcached.keys`), integers are kept biased for
memcached's unsigned ``incr`` and values larger than an item are split into chunks
(:mod:`metricache_memcached.items`). With several servers each key lives on the one
rendezvous hashing picks; a server that is down makes the operations on its keys
fail (they are never sent to another server, which would split a counter in two).
"""

from __future__ import annotations

import builtins
import logging
import os
import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NewType

import attrs
from metricache.config import Seconds, register_structure_hook
from metricache.errors import CorruptValue, OutcomeUnknown, StoreError
from metricache.store import (
    MERGE_ATTEMPTS,
    Capability,
    Store,
    contention_backoff,
    decode_map,
    encode_map,
    parse_int,
)
from metricache.sync.batch import SyncBatch, SyncOutcome
from metricache.sync.keyspace import INT64_MAX, Keyspace, hash_tag
from pymemcache.client.rendezvous import RendezvousHash  # type: ignore[import-untyped]
from pymemcache.exceptions import MemcacheClientError  # type: ignore[import-untyped]

from metricache_memcached.batches import apply_batch
from metricache_memcached.connection import Connection, parse_url, server_name
from metricache_memcached.items import (
    FLAG_CHUNK,
    FLAG_HEAD,
    FLAG_INT,
    WRAP,
    Head,
    as_int,
    decode_int,
    encode_int,
    exptime,
    signed,
    unsigned,
)
from metricache_memcached.keys import chunk_key, safe_key
from metricache_memcached.pipeline import Pipeline, Request, fetch

__all__ = ["MemcachedOptions", "MemcachedStore"]

log = logging.getLogger("metricache.memcached")


class _NotANumber(Exception):
    """The item under a counter's key holds something memcached cannot add to."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data[:30])
        self.data = data


Item = tuple[bytes, int]  # item data and flags

ServerURL = NewType("ServerURL", str)
"""A ``memcached://`` URL naming one or more servers."""
ItemSize = NewType("ItemSize", int)
"""Memcached's item size limit in bytes (at least 4 KiB)."""

_CHUNK_OVERHEAD = 1024  # item header, the longest key and slack, within the item limit
_ROUTES_KEPT = 65536  # hash tags whose server is remembered (rendezvous hashing is slow)
_MIN_ITEM_SIZE = 4096
_CONNECT_TIMEOUT = Seconds(2.0)
_TIMEOUT = Seconds(5.0)
_ITEM_SIZE = ItemSize(1024 * 1024)


def _check_url(value: object) -> ServerURL:
    if not isinstance(value, str):
        raise ValueError(f"expected a memcached:// URL, got {value!r}")
    parse_url(value)
    return ServerURL(value)


def _check_item_size(value: object) -> ItemSize:
    if isinstance(value, bool) or not isinstance(value, int) or value < _MIN_ITEM_SIZE:
        raise ValueError(f"expected a whole number of bytes >= {_MIN_ITEM_SIZE}, got {value!r}")
    return ItemSize(value)


# Options given as text or TOML are checked while they are structured, so that an
# error names its option (store.options.url: ...); direct construction checks too.
register_structure_hook(ServerURL, lambda value, _: _check_url(value))
register_structure_hook(ItemSize, lambda value, _: _check_item_size(value))


@attrs.frozen(kw_only=True)
class MemcachedOptions:
    """Options of the memcached store.

    ``url``
        ``memcached://host[:port]``, or several servers separated by commas
        (``memcached://10.0.0.1:11211,10.0.0.2:11211``); the port defaults to 11211
        and an IPv6 address goes in brackets (``memcached://[::1]:11211``). Keys are
        spread over the servers by rendezvous hashing of their hash tag (a series'
        keys share a server, and so do the epoch and the registrations); every
        process must list the same servers. Memcached's text protocol has no
        passwords: a URL with user information is refused.
    ``connect_timeout``
        Seconds to wait for a connection (default 2). A server that cannot be
        reached fails the sync, which keeps its deltas for the next one.
    ``timeout``
        Seconds to wait for an answer once a request is sent (default 5). A write
        whose answer does not come in time has an unknown outcome.
    ``item_size_limit``
        The largest item the servers accept, in bytes: memcached's ``-I`` setting
        (default 1 MiB, at least 4 KiB). Larger values are split into chunks.
    """

    url: ServerURL = attrs.field(
        default=ServerURL("memcached://127.0.0.1:11211"), converter=_check_url
    )
    connect_timeout: Seconds = _CONNECT_TIMEOUT
    timeout: Seconds = _TIMEOUT
    item_size_limit: ItemSize = attrs.field(default=_ITEM_SIZE, converter=_check_item_size)


class MemcachedStore(Store):
    """A store on one or more memcached servers (1.4.8 or newer, for ``touch``)."""

    name = "memcached"
    capabilities = frozenset({Capability.DISTRIBUTED, Capability.ATOMIC, Capability.CAS})
    options_class = MemcachedOptions

    def __init__(self, options: MemcachedOptions | None = None) -> None:
        super().__init__(options)
        self.options: MemcachedOptions
        self._addresses = parse_url(self.options.url)
        self._chunk_size = self.options.item_size_limit - _CHUNK_OVERHEAD
        self._open()

    def _open(self) -> None:
        o = self.options
        self._pid = os.getpid()
        self._servers = [
            Connection(a, connect_timeout=o.connect_timeout, timeout=o.timeout)
            for a in self._addresses
        ]
        self._by_name = {s.name: s for s in self._servers}
        self._routes: dict[bytes, Connection] = {}
        self._hasher: Any = (
            RendezvousHash(nodes=[s.name for s in self._servers])
            if len(self._servers) > 1
            else None
        )

    # -- life cycle ---------------------------------------------------------------------

    def describe(self) -> str:
        """Return the servers (memcached URLs hold no secrets)."""
        return "memcached " + ",".join(server_name(a) for a in self._addresses)

    def ping(self) -> None:
        """Raise StoreUnavailable unless every server answers ``version``."""
        for server in self._connections():
            server.call("version", writes=False)

    def close(self) -> None:
        """Close every connection."""
        for server in self._servers:
            server.close()

    def after_fork(self) -> None:
        """Open new connections in a forked child; the parent keeps the inherited ones.

        Closing an inherited socket in the child only drops the child's reference:
        the parent's connection stays open and in sync.
        """
        for server in self._servers:
            client = server.client
            if client.sock is not None:
                client.sock.close()
                client.sock = None
        self._open()

    def _connections(self) -> list[Connection]:
        if self._pid != os.getpid():
            self.after_fork()
        return self._servers

    def route(self, mkey: bytes) -> Connection:
        """Return the server of the memcached key ``mkey``.

        Keys with the same hash tag (the text between the first ``{`` and the next
        ``}``, see :mod:`metricache.sync.keyspace`) share a server, as in Redis
        Cluster: a series' life and parts, a shard's marker, an instance's gauges, the
        epoch with the registrations. They are lost together when their server restarts.
        """
        servers = self._connections()
        if self._hasher is None:
            return servers[0]
        return self._routed(mkey)

    def _routed(self, mkey: bytes) -> Connection:
        """:meth:`route` without the fork check, for a fleet (the caller made it)."""
        tag = hash_tag(mkey)
        found = self._routes.get(tag)
        if found is None:
            if len(self._routes) >= _ROUTES_KEPT:
                self._routes.clear()
            found = self._by_name[self._hasher.get_node(tag.decode("ascii"))]
            self._routes[tag] = found
        return found

    def _group(self, mkeys: Iterable[bytes]) -> dict[Connection, list[bytes]]:
        servers = self._connections()
        if self._hasher is None:
            return {servers[0]: list(mkeys)}
        groups: dict[Connection, list[bytes]] = {}
        routed = self._routed
        for mkey in mkeys:
            server = routed(mkey)
            group = groups.get(server)
            if group is None:
                group = groups[server] = []
            group.append(mkey)
        return groups

    # -- items: fetching, encoding, writing ----------------------------------------------

    def _fetch(self, mkeys: Iterable[bytes]) -> dict[bytes, Item]:
        """Return the items present among ``mkeys``: multi-gets, pipelined per server."""
        return fetch(self._group(dict.fromkeys(mkeys)))

    def _values(self, items: Mapping[bytes, tuple[bytes, Item]]) -> dict[bytes, bytes]:
        """Return the values of ``items`` (key -> (memcached key, item)), chunks joined.

        A value whose chunks are gone (evicted) is absent; a corrupt one is reported
        through ``on_corrupt`` and left out.
        """
        values: dict[bytes, bytes] = {}
        heads: dict[bytes, Head] = {}
        for key, (_mkey, (data, flags)) in items.items():
            try:
                if flags == FLAG_INT:
                    values[key] = str(decode_int(key, data)).encode("ascii")
                elif flags == FLAG_HEAD:
                    heads[key] = Head.decode(key, data)
                elif flags == FLAG_CHUNK:
                    raise CorruptValue(f"{key!r} holds a chunk of another value")
                else:
                    values[key] = data
            except CorruptValue as exc:
                self.on_corrupt(exc)
        if heads:
            wanted = [chunk_key(h.generation, i) for h in heads.values() for i in range(h.count)]
            chunks = self._fetch(wanted)
            for key, head in heads.items():
                parts = [chunks.get(chunk_key(head.generation, i)) for i in range(head.count)]
                try:
                    joined = head.join(key, [p[0] if p is not None else None for p in parts])
                except CorruptValue as exc:
                    self.on_corrupt(exc)
                    continue
                if joined is not None:
                    values[key] = joined
        return values

    def _encode(self, value: bytes) -> tuple[Item, dict[bytes, Item]]:
        """Return the item to store under the key, and the chunks to store first."""
        number = as_int(value)
        if number is not None:
            return (encode_int(number), FLAG_INT), {}
        size = self._chunk_size
        if len(value) <= size:
            return (value, 0), {}
        generation = secrets.token_hex(12).encode("ascii")
        chunks = {
            chunk_key(generation, i): (value[start : start + size], FLAG_CHUNK)
            for i, start in enumerate(range(0, len(value), size))
        }
        head = Head(generation, len(chunks), len(value), Head.digest_of(value))
        return (head.encode(), FLAG_HEAD), chunks

    def _store(self, items: Mapping[bytes, Item], expire: int) -> None:
        """``set`` every item: one pipelined ``set_many`` per server."""
        for server, group in self._group(items).items():
            batch = {k: items[k] for k in group}
            failed: list[bytes] = server.call("set_many", batch, expire, noreply=False, writes=True)
            if failed:
                raise StoreError(f"memcached {server.name} did not store {len(failed)} items")

    def _drop_chunks(self, head_item: Item | None) -> None:
        """Delete the chunks of a replaced large value (best effort: they expire anyway)."""
        if head_item is None or head_item[1] != FLAG_HEAD:
            return
        try:
            head = Head.decode(b"", head_item[0])
            for i in range(head.count):
                ckey = chunk_key(head.generation, i)
                self.route(ckey).call("delete", ckey, noreply=True, writes=True)
        except (CorruptValue, StoreError):
            pass

    def _touch_chunks(self, item: Item, expire: int) -> None:
        if item[1] != FLAG_HEAD:
            return
        try:
            head = Head.decode(b"", item[0])
        except CorruptValue:
            return
        for i in range(head.count):
            ckey = chunk_key(head.generation, i)
            self.route(ckey).call("touch", ckey, expire, noreply=True, writes=True)

    # -- basics -------------------------------------------------------------------------

    def get(self, key: bytes) -> bytes | None:
        """Return the value under ``key`` (one round trip; two for a large value)."""
        return self.get_many([key]).get(key)

    def get_many(self, keys: Iterable[bytes]) -> dict[bytes, bytes]:
        """Return the present keys: one multi-get per server, one more for chunks."""
        mkeys = {key: safe_key(key) for key in keys}
        items = self._fetch(mkeys.values())
        return self._values(
            {key: (mkey, items[mkey]) for key, mkey in mkeys.items() if mkey in items}
        )

    def set(self, key: bytes, value: bytes, ttl: float) -> None:
        """``set`` the value (its chunks first when it is larger than an item)."""
        self.set_many({key: value}, ttl)

    def set_many(self, items: Mapping[bytes, bytes], ttl: float) -> None:
        """``set`` every item: chunks first, then the items naming them, pipelined."""
        expire = exptime(ttl)
        heads: dict[bytes, Item] = {}
        chunks: dict[bytes, Item] = {}
        for key, value in items.items():
            head, parts = self._encode(bytes(value))
            heads[safe_key(key)] = head
            chunks.update(parts)
        if chunks:
            self._store(chunks, expire)
        self._store(heads, expire)

    def delete(self, key: bytes) -> bool:
        """``delete`` the key, and the chunks of a large value (a ``get`` first)."""
        mkey = safe_key(key)
        item = self._fetch([mkey]).get(mkey)
        deleted = bool(self.route(mkey).call("delete", mkey, noreply=False, writes=True))
        self._drop_chunks(item)
        return deleted

    def touch(self, key: bytes, ttl: float) -> bool:
        """Reset the TTL of the key, and of its chunks when it has some."""
        return key in self.touch_many([key], ttl)

    def touch_many(self, keys: Iterable[bytes], ttl: float) -> builtins.set[bytes]:
        """Reset the TTL of every present key; return the keys touched.

        A multi-get finds them (and the chunks of large values), then every ``touch``
        goes out pipelined.
        """
        expire = exptime(ttl)
        mkeys = {key: safe_key(key) for key in keys}
        items = self._fetch(mkeys.values())
        pipe = Pipeline()
        requests: list[tuple[bytes, Request]] = []
        for key, mkey in mkeys.items():
            item = items.get(mkey)
            if item is None:
                continue
            if item[1] == FLAG_HEAD:
                self._touch_chunks(item, expire)
            line = b"touch %s %d\r\n" % (mkey, expire)
            requests.append((key, pipe.add(self.route(mkey), Request(line))))
        failure = pipe.run()
        if failure is not None:
            raise OutcomeUnknown(f"memcached: touch failed: {type(failure).__name__}: {failure}")
        return {key for key, request in requests if request.answer == b"TOUCHED"}

    # -- atomic -------------------------------------------------------------------------

    def incr(self, key: bytes, amount: int, ttl: float) -> int:
        """Add a signed 64-bit ``amount`` with ``incr`` (``add`` when absent), then ``touch``.

        Usually one round trip (the ``touch`` is sent without waiting for its
        answer). An amount that would take the value out of the signed 64-bit range
        is undone and reported through ``on_corrupt``, and the value stays as it
        was; a key holding something that is not an integer is replaced by
        ``amount`` and reported. Either way the sync goes on.
        """
        if not -INT64_MAX - 1 <= amount <= INT64_MAX:
            raise ValueError(f"the amount must be a signed 64-bit integer, got {amount}")
        mkey = safe_key(key)
        expire = exptime(ttl)
        delta = amount % WRAP  # a negative amount is added modulo 2**64
        fresh = (encode_int(amount), FLAG_INT)

        def run(c: Any) -> tuple[int, str | None]:
            for _ in range(16):
                try:
                    new = self._add_modulo(c, mkey, delta, expire)
                except _NotANumber as exc:
                    c.set(mkey, fresh, expire, noreply=False)
                    return amount, f"held {exc.data[:30]!r}, not an integer; replaced"
                if new is None:
                    if c.add(mkey, fresh, expire, noreply=False):
                        return amount, None
                    continue  # another client created it first: add to theirs
                old = (new - delta) % WRAP
                if signed(new) - signed(old) != amount:
                    restored = self._add_modulo(c, mkey, WRAP - delta, expire)
                    c.touch(mkey, expire, noreply=True)
                    value = signed(old if restored is None else restored)
                    return value, f"would overflow by adding {amount}; not added"
                c.touch(mkey, expire, noreply=True)
                return signed(new), None
            raise StoreError(f"incr {key!r}: the key kept disappearing")

        try:
            value, problem = self.route(mkey).run(run, writes=True)
        except OutcomeUnknown:
            self.increment_in_doubt(key, amount)
            raise
        if problem is not None:
            self.on_corrupt(CorruptValue(f"{key!r} {problem}"))
        return value

    @staticmethod
    def _add_modulo(c: Any, mkey: bytes, delta: int, expire: int) -> int | None:
        """Add ``delta`` modulo 2**64 to the number under ``mkey``; None if absent.

        ``incr`` first. Memcached refuses to ``incr`` what it cannot read as a
        number, and sometimes a number of 2**63 or more (see
        :mod:`metricache_memcached.items`): then ``gets`` and ``cas``, which are
        atomic too. Raises _NotANumber when the item really holds no number.
        """
        try:
            raw = c.incr(mkey, delta, noreply=False)
        except MemcacheClientError:
            pass
        else:
            return None if raw is None else int(raw)
        for _ in range(64):
            item, token = c.gets(mkey)
            if item is None:
                return None
            data, flags = item
            number = unsigned(data)
            if number is None:
                raise _NotANumber(data)
            new = (number + delta) % WRAP
            if c.cas(mkey, (str(new).encode("ascii"), flags), token, expire, noreply=False):
                return new
        raise StoreError(f"incr {mkey!r}: too much contention, gave up after 64 tries")

    def read_counters(self, keys: Iterable[bytes]) -> dict[bytes, int]:
        """Return the integers under ``keys`` (biased items decoded without parsing twice)."""
        mkeys = {key: safe_key(key) for key in keys}
        items = self._fetch(mkeys.values())
        found: dict[bytes, int] = {}
        others: dict[bytes, tuple[bytes, Item]] = {}
        for key, mkey in mkeys.items():
            item = items.get(mkey)
            if item is None:
                continue
            if item[1] != FLAG_INT:
                others[key] = (mkey, item)
                continue
            try:
                found[key] = decode_int(key, item[0])
            except CorruptValue as exc:
                self.on_corrupt(exc)
        for key, raw in self._values(others).items():
            try:
                found[key] = parse_int(key, raw)
            except CorruptValue as exc:
                self.on_corrupt(exc)
        return found

    # -- cas --------------------------------------------------------------------------

    def add(self, key: bytes, value: bytes, ttl: float) -> bool:
        """``add`` the value (its chunks first when large); False if the key exists."""
        mkey = safe_key(key)
        expire = exptime(ttl)
        head, chunks = self._encode(bytes(value))
        if chunks:
            self._store(chunks, expire)
        added = bool(self.route(mkey).call("add", mkey, head, expire, noreply=False, writes=True))
        if not added:
            self._drop_chunks(head)
        return added

    def _read_for_swap(self, key: bytes, mkey: bytes) -> tuple[Item | None, Any, bytes | None]:
        """Return ``(item, cas token, value)``; a value whose chunks are gone is None."""
        item, token = self.route(mkey).call("gets", mkey, writes=False)
        if item is None:
            return None, None, None
        value = self._values({key: (mkey, item)}).get(key)
        return item, token, value

    def _swap(self, mkey: bytes, old: Item | None, token: Any, value: bytes, ttl: float) -> bool:
        """Write ``value`` if the item is still the one read with ``token`` (None: absent)."""
        expire = exptime(ttl)
        head, chunks = self._encode(value)
        if chunks:
            self._store(chunks, expire)
        server = self.route(mkey)
        if old is None:
            done = server.call("add", mkey, head, expire, noreply=False, writes=True)
        else:
            done = server.call("cas", mkey, head, token, expire, noreply=False, writes=True)
        if not done:
            self._drop_chunks(head)
            return False
        self._drop_chunks(old)
        return True

    def compare_and_swap(
        self, key: bytes, expected: bytes | None, value: bytes, ttl: float
    ) -> bool:
        """Replace the value if it equals ``expected`` (None: absent): ``gets``, then ``cas``.

        A large value whose chunks were evicted counts as absent.
        """
        mkey = safe_key(key)
        item, token, current = self._read_for_swap(key, mkey)
        if current != expected:
            return False
        return self._swap(mkey, item, token, bytes(value), ttl)

    # -- maps ---------------------------------------------------------------------------

    def merge_map(
        self, key: bytes, entries: Mapping[str, str], ttl: float, *, only_new: bool = False
    ) -> None:
        """Add entries to the JSON map under ``key``: ``gets`` then ``cas``, retried.

        Two round trips when nothing else writes the map at the same time.
        """
        mkey = safe_key(key)
        for attempt in range(MERGE_ATTEMPTS):
            item, token, raw = self._read_for_swap(key, mkey)
            merged = self.merged_map(key, raw, entries, only_new=only_new)
            if merged is None and item is not None:
                expire = exptime(ttl)
                self._touch_chunks(item, expire)
                if self.route(mkey).call("touch", mkey, expire, noreply=False, writes=True):
                    return
                continue  # expired between the read and the touch: write it again
            if merged is None:  # a stored map without a head item cannot be read; rewrite
                merged = decode_map(key, raw)
            if self._swap(mkey, item, token, encode_map(merged), ttl):
                return
            contention_backoff(attempt)
        raise StoreError(
            f"merge_map({key!r}): too much contention, gave up after {MERGE_ATTEMPTS} tries"
        )

    # -- sync ---------------------------------------------------------------------------

    def apply_sync(self, batch: SyncBatch) -> SyncOutcome:
        """Apply a batch by the core's rules, every step pipelined: at least once.

        See :mod:`metricache_memcached.batches`.
        """
        return apply_batch(self, batch)

    def read_series(
        self, keyspace: Keyspace, wanted: Sequence[tuple[str, tuple[str, ...]]]
    ) -> list[list[int] | None]:
        """Read the life and parts of every series: one multi-get per server (in chunks).

        A series whose life key or one of whose parts is missing reads as absent.
        """
        mkeys: list[bytes] = []
        for sid, parts in wanted:
            mkeys.append(safe_key(keyspace.series(sid)))
            mkeys.extend(safe_key(keyspace.part(sid, p)) for p in parts)
        items = self._fetch(mkeys)
        found: list[list[int] | None] = []
        at = 0
        for sid, parts in wanted:
            life = items.get(mkeys[at])
            keys = mkeys[at + 1 : at + 1 + len(parts)]
            at += 1 + len(parts)
            if life is None:
                found.append(None)
                continue
            values: list[int] = []
            for n, mkey in enumerate(keys):
                value = self._integer(keyspace.part(sid, parts[n]), items.get(mkey))
                if value is None:
                    break
                values.append(value)
            found.append(values if len(values) == len(parts) else None)
        return found

    def _integer(self, key: bytes, item: Item | None) -> int | None:
        """Return the integer an item holds; None when absent or (reported) corrupt."""
        if item is None:
            return None
        data, flags = item
        try:
            if flags == FLAG_INT:
                return decode_int(key, data)
            value = self._values({key: (safe_key(key), item)}).get(key)
            return None if value is None else parse_int(key, value)
        except CorruptValue as exc:
            self.on_corrupt(exc)
            return None

    def undo_overflow(self, key: bytes, amount: int) -> None:
        """Take back an increment that took an integer out of the signed 64-bit range."""
        mkey = safe_key(key)
        delta = WRAP - amount % WRAP
        expire = exptime(60.0)

        def run(c: Any) -> None:
            self._add_modulo(c, mkey, delta, expire)

        self.route(mkey).run(run, writes=True)
        self.on_corrupt(CorruptValue(f"{key!r} would overflow by adding {amount}; not added"))

    def increment_in_doubt(self, key: bytes, amount: int) -> None:
        """Called for each increment whose request went out and whose answer was lost.

        It may have been applied; the syncer sends it again (at least once). The
        default logs it at debug level; a subclass may count such amounts.
        """
        log.debug("memcached: the increment of %r by %d is in doubt", key, amount)
