"""The store interface: key/value primitives, each tied to a declared capability.

A store plugin subclasses :class:`Store`, names itself, declares its capabilities,
and implements the primitives of each capability it declares. Keys and values are
``bytes``; every write carries a TTL in seconds (stores that count whole seconds
round up). The batch methods (``get_many`` ...) have loop-based defaults that a
store may override for speed.

=====================  ===========================================================
capability             primitives it promises
=====================  ===========================================================
(every store)          ``get``, ``set``, ``delete``, ``touch``, batch forms, ``ping``
``distributed``        two clients (processes, hosts) opened with the same options
                       see each other's writes
``atomic``             ``incr`` / ``incr_many`` never lose an update under concurrency
``cas``                ``add`` (set if absent) and ``compare_and_swap`` are atomic
``locking``            ``add``, ``compare_and_delete`` and ``compare_and_touch`` are
                       atomic, so a lease with an owner token works
``exactly_once``       ``apply_sync`` applies a batch once even when it is retried
                       after a lost reply, however late
=====================  ===========================================================

Series are read back through ``read_series`` and a store may lay them out its own
way (Redis keeps a series in one hash); the default layout uses the primitives
(see :mod:`metricache.sync.apply`).

The core chooses a sync strategy from the capabilities (see
:mod:`metricache.sync.strategy`).
"""

from __future__ import annotations

import builtins
import enum
import json
import logging
import math
import random
import time
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar

from metricache.errors import CorruptValue, StoreError, UnsupportedOperation

__all__ = ["Capability", "NoOptions", "Options", "Store", "decode_map", "encode_map"]

if TYPE_CHECKING:
    from metricache.sync.batch import SyncBatch, SyncOutcome
    from metricache.sync.keyspace import Keyspace

log = logging.getLogger("metricache.store")


class Capability(str, enum.Enum):
    """A promise a store makes about its behaviour."""

    DISTRIBUTED = "distributed"
    ATOMIC = "atomic"
    CAS = "cas"
    LOCKING = "locking"
    EXACTLY_ONCE = "exactly_once"


Options = Any
"""The type of a store's options object (an attrs class of the store's choosing)."""


class NoOptions:
    """The options of a store that takes none."""


def encode_map(entries: Mapping[str, str]) -> bytes:
    """Encode a string-to-string mapping as the JSON object stored for a map."""
    return json.dumps(dict(entries), separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def decode_map(key: bytes, raw: bytes | None) -> dict[str, str]:
    """Decode a map written by :func:`encode_map`; None (absent) gives an empty map."""
    if raw is None:
        return {}
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise CorruptValue(f"{key!r} does not hold a JSON map ({len(raw)} bytes)") from None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise CorruptValue(f"{key!r} does not hold a map of strings")
    return value


def parse_int(key: bytes, raw: bytes) -> int:
    """Parse the decimal text of a signed 64-bit integer; raise CorruptValue otherwise."""
    if len(raw) <= 20:
        try:
            value = int(raw)
        except ValueError:
            pass
        else:
            if -(2**63) <= value < 2**63 and b"_" not in raw:
                return value
    raise CorruptValue(f"{key!r} does not hold an integer ({raw[:30]!r})")


MERGE_ATTEMPTS = 64
"""How many times a read-modify-write of a map is tried before giving up."""


def contention_backoff(attempt: int) -> None:
    """Sleep a random, growing while after a lost compare-and-swap race.

    ``attempt`` counts the races lost so far; the spread lets contenders stop colliding.
    """
    time.sleep(random.uniform(0, min(0.0005 * 2**attempt, 0.05)))


def ttl_ms(ttl: float) -> int:
    """Return a TTL in whole milliseconds (at least 1), rejecting non-positive values."""
    if not ttl > 0 or math.isinf(ttl):
        raise ValueError(f"a TTL must be a finite number of seconds > 0, got {ttl!r}")
    return max(1, math.ceil(ttl * 1000))


def ttl_seconds(ttl: float) -> int:
    """Return a TTL in whole seconds, rounded up (at least 1)."""
    return max(1, math.ceil(ttl_ms(ttl) / 1000))


class Store:
    """Base class of every store plugin.

    Subclasses set ``name`` (the plugin name users pass to ``open_store``),
    ``capabilities`` (what they promise; leave it None to have them detected) and
    ``options_class`` (an attrs class whose fields are the options they accept; omit
    it for a store with no options), and implement ``__init__(self, options)`` plus
    the primitives of their capabilities.

    *Maps* (a key holding a small string-to-string mapping) are built on the
    primitives by default: a JSON object updated with ``compare_and_swap`` when the
    store declares ``cas``. A store with a native structure (a Redis hash) may
    override ``get_map``, ``get_maps``, ``merge_map`` and ``replace_map``.

    ``apply_sync`` applies one sync batch and ``read_series`` reads series back; the
    defaults (in :mod:`metricache.sync.apply`) use the primitives above. A store that
    overrides ``apply_sync`` to apply a batch atomically and exactly once (for
    instance by running :func:`~metricache.sync.apply.apply_exactly_once` under a
    lock or in a transaction) declares ``exactly_once``.

    ``gauge_page_size`` is how many gauge series one page of an instance's gauges
    holds before the syncer spreads them over more pages (a page is rewritten whole
    when one of its gauges changes); None keeps one page, for a store that edits a
    map in place (Redis).
    """

    name: ClassVar[str] = ""
    capabilities: ClassVar[frozenset[Capability] | None] = None
    options_class: ClassVar[type] = NoOptions
    gauge_page_size: ClassVar[int | None] = 512

    def __init__(self, options: Options = None) -> None:
        self.options = options if options is not None else self.options_class()

    # -- life cycle ------------------------------------------------------------------

    def describe(self) -> str:
        """Return where this store points, safe to print (passwords masked)."""
        return self.name

    def ping(self) -> None:
        """Raise :class:`~metricache.errors.StoreUnavailable` if unreachable."""

    def close(self) -> None:
        """Release connections and files; the store is not used afterwards."""

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def after_fork(self) -> None:
        """Drop connections inherited from the parent (called in a forked child).

        A :class:`~metricache.sync.Syncer` calls it in the child right after
        ``fork()`` (``os.register_at_fork``), in the thread that forked, before the
        child's own code runs, for the store of every syncer the parent had. Nothing
        calls it for a store no syncer uses: such a store checks ``os.getpid()``
        itself before using a connection. Open new connections here (or lazily on
        first use), and do not *close* the inherited ones: they share their sockets
        with the parent, and closing may talk to the server for the parent (libpq's
        close sends a Terminate message, ending the parent's session). Keep the
        inherited objects referenced, or drop their sockets without a goodbye.
        """

    def apply_sync(self, batch: SyncBatch) -> SyncOutcome:
        """Apply one sync batch (see :mod:`metricache.sync.apply`). (every store)

        The default uses the primitives and is not atomic. A store that overrides it
        to apply batches atomically and exactly once declares ``exactly_once``.
        Raises :class:`~metricache.sync.batch.PartialApply` when it fails half way.
        """
        from metricache.sync.apply import apply_generic

        return apply_generic(self, batch)

    def series_keys(self, keyspace: Keyspace, sid: str, parts: Sequence[str]) -> list[bytes]:
        """Return the keys one series occupies (to push their expiry back). (every store)

        The default layout: the life key and one key per part.
        """
        return [keyspace.series(sid), *(keyspace.part(sid, p) for p in parts)]

    def read_series(
        self, keyspace: Keyspace, wanted: Sequence[tuple[str, tuple[str, ...]]]
    ) -> list[list[int] | None]:
        """Return the integers of each series ``(series id, part names)`` in ``wanted``.

        Each answer is the list of the series' integers in the order of its parts, or
        None when the series is absent or not whole (a series is never shown in
        part). The default reads the layout of :mod:`metricache.sync.apply` (the life
        key and one key per part); a store that stores series its own way in
        ``apply_sync`` overrides this too. (every store)
        """
        lives = self.get_many([keyspace.series(sid) for sid, _ in wanted])
        part_key = keyspace.part
        values = self.read_counters([part_key(sid, p) for sid, parts in wanted for p in parts])
        found: list[list[int] | None] = []
        for sid, parts in wanted:
            if keyspace.series(sid) not in lives:
                found.append(None)
                continue
            ints = [values.get(part_key(sid, p)) for p in parts]
            found.append(None if None in ints else ints)  # type: ignore[arg-type]
        return found

    def declares(self, capability: Capability) -> bool:
        """Return whether this store declares ``capability``."""
        return capability in (self.capabilities or ())

    # -- basics: every store ---------------------------------------------------------

    def get(self, key: bytes) -> bytes | None:
        """Return the value under ``key``, or None when absent or expired. (every store)"""
        raise NotImplementedError

    def set(self, key: bytes, value: bytes, ttl: float) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds. (every store)"""
        raise NotImplementedError

    def delete(self, key: bytes) -> bool:
        """Remove ``key``; return whether it existed. (every store)"""
        raise NotImplementedError

    def touch(self, key: bytes, ttl: float) -> bool:
        """Reset the TTL of ``key`` to ``ttl`` without rewriting it. (every store)

        Returns False when the key is absent.
        """
        raise NotImplementedError

    def get_many(self, keys: Iterable[bytes]) -> dict[bytes, bytes]:
        """Return the present keys among ``keys`` with their values. (every store)"""
        found = {}
        for key in keys:
            value = self.get(key)
            if value is not None:
                found[key] = value
        return found

    def set_many(self, items: Mapping[bytes, bytes], ttl: float) -> None:
        """Store every item for ``ttl`` seconds. (every store)"""
        for key, value in items.items():
            self.set(key, value, ttl)

    def touch_many(self, keys: Iterable[bytes], ttl: float) -> builtins.set[bytes]:
        """Reset the TTL of every key; return the keys that were present. (every store)"""
        return {key for key in keys if self.touch(key, ttl)}

    # -- atomic ----------------------------------------------------------------------

    def incr(self, key: bytes, amount: int, ttl: float) -> int:
        """Add the signed 64-bit ``amount`` to the integer under ``key``. (``atomic``)

        A missing key counts as 0. The key's TTL becomes ``ttl``, on every call (a
        counter that is still incremented never expires; one that is not expires
        ``ttl`` after its last increment). Returns the new value. Concurrent calls
        never lose an update. The integer is kept as its decimal text, which
        :meth:`read_counters` parses (a store that encodes it otherwise overrides
        both). A result outside the signed 64-bit range never wraps around: the
        value stays as it was and the store says so (raises
        :class:`~metricache.errors.StoreError`, or reports it through
        :meth:`on_corrupt`).
        """
        raise UnsupportedOperation(f"store {self.name!r} does not declare 'atomic'")

    def incr_many(self, amounts: Mapping[bytes, int], ttl: float) -> dict[bytes, int]:
        """Apply :meth:`incr` to every key; return the new values. (``atomic``)"""
        return {key: self.incr(key, amount, ttl) for key, amount in amounts.items()}

    def read_counters(self, keys: Iterable[bytes]) -> dict[bytes, int]:
        """Return the integers :meth:`incr` keeps under ``keys``; absent keys left out.

        A value that is not an integer is reported through ``on_corrupt`` and left
        out. (``atomic``; a store that encodes integers its own way overrides this.)
        """
        found: dict[bytes, int] = {}
        for key, raw in self.get_many(list(keys)).items():
            try:
                found[key] = parse_int(key, raw)
            except CorruptValue as exc:
                self.on_corrupt(exc)
        return found

    # -- cas and locking -------------------------------------------------------------

    def add(self, key: bytes, value: bytes, ttl: float) -> bool:
        """Store ``value`` only if ``key`` is absent; return whether it did. (``cas``, ``locking``)"""  # noqa: E501
        raise UnsupportedOperation(f"store {self.name!r} declares neither 'cas' nor 'locking'")

    def compare_and_swap(
        self, key: bytes, expected: bytes | None, value: bytes, ttl: float
    ) -> bool:
        """Replace the value only if it equals ``expected`` (None: absent). (``cas``)

        Returns whether the value was replaced.
        """
        raise UnsupportedOperation(f"store {self.name!r} does not declare 'cas'")

    def compare_and_delete(self, key: bytes, expected: bytes) -> bool:
        """Delete ``key`` only if its value equals ``expected``. (``locking``)"""
        raise UnsupportedOperation(f"store {self.name!r} does not declare 'locking'")

    def compare_and_touch(self, key: bytes, expected: bytes, ttl: float) -> bool:
        """Reset the TTL of ``key`` only if its value equals ``expected``. (``locking``)"""
        raise UnsupportedOperation(f"store {self.name!r} does not declare 'locking'")

    # -- maps (optional overrides) -----------------------------------------------------

    def get_map(self, key: bytes) -> dict[str, str]:
        """Return the mapping under ``key`` (empty when absent). (every store)

        Raises :class:`~metricache.errors.CorruptValue` when the key holds something
        that is not a mapping metricache wrote.
        """
        return decode_map(key, self.get(key))

    def get_maps(self, keys: Iterable[bytes]) -> dict[bytes, dict[str, str]]:
        """Return the mappings under ``keys``; absent keys are left out. (every store)

        A corrupt value is left out too, and reported through ``on_corrupt``.
        """
        found: dict[bytes, dict[str, str]] = {}
        for key, raw in self.get_many(list(keys)).items():
            try:
                found[key] = decode_map(key, raw)
            except CorruptValue as exc:
                self.on_corrupt(exc)
        return found

    def merge_map(
        self, key: bytes, entries: Mapping[str, str], ttl: float, *, only_new: bool = False
    ) -> None:
        """Add ``entries`` to the mapping under ``key`` and reset its TTL. (every store)

        ``only_new`` keeps existing values of the same fields. Atomic with ``cas``;
        without it, two concurrent merges may lose one's entries (metricache
        re-registers what it needs once per retention window).
        """
        use_cas = self.declares(Capability.CAS)
        for attempt in range(MERGE_ATTEMPTS):
            raw = self.get(key)
            merged = self.merged_map(key, raw, entries, only_new=only_new)
            if merged is None:
                self.touch(key, ttl)
                return
            encoded = encode_map(merged)
            if not use_cas:
                self.set(key, encoded, ttl)
                return
            if self.compare_and_swap(key, raw, encoded, ttl):
                return
            contention_backoff(attempt)
        raise StoreError(
            f"merge_map({key!r}): too much contention, gave up after {MERGE_ATTEMPTS} tries"
        )

    def merged_map(
        self, key: bytes, raw: bytes | None, entries: Mapping[str, str], *, only_new: bool
    ) -> dict[str, str] | None:
        """Return the map stored as ``raw`` with ``entries`` merged in.

        None means the stored map holds them already. This is the step every
        ``merge_map`` shares; a corrupt stored value is reported through
        :meth:`on_corrupt` and replaced.
        """
        try:
            current = decode_map(key, raw)
        except CorruptValue as exc:
            self.on_corrupt(exc)
            current = {}
        merged = dict(current)
        for field, value in entries.items():
            if not (only_new and field in merged):
                merged[field] = value
        if merged == current and raw is not None:
            return None
        return merged

    def replace_map(self, key: bytes, entries: Mapping[str, str], ttl: float) -> None:
        """Replace the whole mapping under ``key``. (every store)"""
        self.set(key, encode_map(entries), ttl)

    def on_corrupt(self, error: CorruptValue) -> None:
        """Called when a value read back is corrupt; the default logs and counts it."""
        from metricache.corruption import count_corrupt

        count_corrupt("store value", f"{self.describe()}: {error}")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"
