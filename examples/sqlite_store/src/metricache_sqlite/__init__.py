"""A metricache store on SQLite (the standard library's ``sqlite3``): a worked example.

This package is the example of ``docs/store-author-guide.md``: a complete third-party
store in one module. One table holds every key with its value and its expiry time.
Every process of a host that opens the same database file shares it, so the store
declares ``distributed`` (for the processes of one host: SQLite's locks do not work
over network file systems). Everything that reads and then writes runs inside
``BEGIN IMMEDIATE`` ... ``COMMIT``, which takes SQLite's write lock first, so
increments, set-if-absent and compare-and-swap are atomic across threads and
processes: ``atomic``, ``cas`` and ``locking``. The core therefore syncs to it with
the ``distributed_atomic`` strategy.

It does not override ``apply_sync``, so a batch re-sent after a lost reply may be
counted twice: it does not declare ``exactly_once``.
"""

from __future__ import annotations

import builtins
import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import attrs
from metricache import hookimpl
from metricache.errors import CorruptValue, StoreError, StoreUnavailable
from metricache.store import Capability, Store, decode_map, encode_map, parse_int, ttl_ms

__all__ = ["SqliteOptions", "SqliteStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS metricache_kv (
    key BLOB PRIMARY KEY,
    value BLOB NOT NULL,
    expires REAL NOT NULL  -- Unix time; a row whose time has passed counts as absent
) WITHOUT ROWID
"""
_IN_CHUNK = 500  # keys per "key IN (...)" query, well below SQLite's parameter limit
_SWEEP_EVERY = 60.0  # seconds between deletions of expired rows
_INT64 = (-(2**63), 2**63 - 1)


@attrs.frozen(kw_only=True)
class SqliteOptions:
    """Options of the SQLite store.

    ``path``
        The database file (required); created if missing. Processes that open the
        same file share the store.
    ``timeout``
        Seconds to wait for another writer's lock before an operation fails with
        ``StoreUnavailable`` (default 10).
    """

    path: str
    timeout: float = 10.0


class SqliteStore(Store):
    """Keys, values and expiry times in one SQLite table."""

    name = "sqlite"
    capabilities = frozenset(
        {Capability.DISTRIBUTED, Capability.ATOMIC, Capability.CAS, Capability.LOCKING}
    )
    options_class = SqliteOptions

    def __init__(self, options: SqliteOptions) -> None:
        super().__init__(options)
        self.options: SqliteOptions
        self._connect()

    def _connect(self) -> None:
        # One connection per store object, used by one thread at a time.
        self._lock = threading.Lock()
        self._next_sweep = 0.0
        with self._errors():
            self._db = sqlite3.connect(
                self.options.path,
                timeout=self.options.timeout,
                isolation_level=None,  # no implicit transactions: we open our own
                check_same_thread=False,
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
        self._sweep()

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn sqlite3's exceptions into metricache's."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(f"{self.describe()}: {exc}") from exc
        except sqlite3.Error as exc:
            raise StoreError(f"{self.describe()}: {exc}") from exc

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """Hold SQLite's write lock from the first read to the commit."""
        with self._lock, self._errors():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def _query(self, sql: str, params: Iterable[Any]) -> list[Any]:
        with self._lock, self._errors():
            return self._db.execute(sql, tuple(params)).fetchall()

    def _change(self, sql: str, params: Iterable[Any]) -> int:
        """Run one statement (atomic on its own); return how many rows it changed."""
        with self._lock, self._errors():
            return self._db.execute(sql, tuple(params)).rowcount

    def _sweep(self) -> None:
        now = time.time()
        if now >= self._next_sweep:
            self._next_sweep = now + _SWEEP_EVERY
            self._change("DELETE FROM metricache_kv WHERE expires <= ?", [now])

    @staticmethod
    def _live(db: sqlite3.Connection, key: bytes) -> bytes | None:
        row = db.execute(
            "SELECT value FROM metricache_kv WHERE key = ? AND expires > ?", (key, time.time())
        ).fetchone()
        return None if row is None else bytes(row[0])

    @staticmethod
    def _put(db: sqlite3.Connection, key: bytes, value: bytes, ttl: float) -> None:
        db.execute(
            "INSERT OR REPLACE INTO metricache_kv (key, value, expires) VALUES (?, ?, ?)",
            (bytes(key), bytes(value), time.time() + ttl_ms(ttl) / 1000),
        )

    # -- life cycle ---------------------------------------------------------------------

    def describe(self) -> str:
        """Return the database file."""
        return f"sqlite {self.options.path}"

    def ping(self) -> None:
        """Raise StoreUnavailable unless the database answers."""
        self._query("SELECT 1", [])

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()

    def after_fork(self) -> None:
        """Open a connection of our own: SQLite connections must not cross a fork."""
        self._connect()

    # -- basics -------------------------------------------------------------------------

    def get(self, key: bytes) -> bytes | None:
        """Return the value under ``key`` unless absent or expired."""
        rows = self._query(
            "SELECT value FROM metricache_kv WHERE key = ? AND expires > ?", [key, time.time()]
        )
        return bytes(rows[0][0]) if rows else None

    def set(self, key: bytes, value: bytes, ttl: float) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds."""
        with self._transaction() as db:
            self._put(db, key, value, ttl)
        self._sweep()

    def delete(self, key: bytes) -> bool:
        """Remove ``key``; return whether it held a live value."""
        now = time.time()
        return (
            self._change("DELETE FROM metricache_kv WHERE key = ? AND expires > ?", [key, now]) > 0
        )

    def touch(self, key: bytes, ttl: float) -> bool:
        """Give ``key`` a new TTL; False when it is absent."""
        now = time.time()
        changed = self._change(
            "UPDATE metricache_kv SET expires = ? WHERE key = ? AND expires > ?",
            [now + ttl_ms(ttl) / 1000, key, now],
        )
        return changed > 0

    # -- batch forms: one query or one transaction instead of one per key ---------------

    def get_many(self, keys: Iterable[bytes]) -> dict[bytes, bytes]:
        """Return the present keys among ``keys``, 500 keys per query."""
        wanted = list(dict.fromkeys(keys))
        found: dict[bytes, bytes] = {}
        now = time.time()
        for start in range(0, len(wanted), _IN_CHUNK):
            chunk = wanted[start : start + _IN_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._query(
                f"SELECT key, value FROM metricache_kv WHERE expires > ? AND key IN ({marks})",
                [now, *chunk],
            )
            found.update((bytes(k), bytes(v)) for k, v in rows)
        return found

    def set_many(self, items: Mapping[bytes, bytes], ttl: float) -> None:
        """Store every item in one transaction."""
        with self._transaction() as db:
            for key, value in items.items():
                self._put(db, key, value, ttl)
        self._sweep()

    def touch_many(self, keys: Iterable[bytes], ttl: float) -> builtins.set[bytes]:
        """Give every present key a new TTL in one transaction; return those keys."""
        touched: builtins.set[bytes] = builtins.set()
        with self._transaction() as db:
            now = time.time()
            for key in keys:
                cursor = db.execute(
                    "UPDATE metricache_kv SET expires = ? WHERE key = ? AND expires > ?",
                    (now + ttl_ms(ttl) / 1000, key, now),
                )
                if cursor.rowcount:
                    touched.add(key)
        return touched

    # -- atomic -------------------------------------------------------------------------

    def _add_to(self, db: sqlite3.Connection, key: bytes, amount: int, ttl: float) -> int:
        raw = self._live(db, key)
        current = 0
        if raw is not None:
            try:
                current = parse_int(key, raw)
            except CorruptValue as exc:
                self.on_corrupt(exc)  # replaced by the amount, as Redis's store does
        value = current + amount
        if not _INT64[0] <= value <= _INT64[1]:
            raise StoreError(f"incr {key!r}: {current} + {amount} leaves the signed 64-bit range")
        self._put(db, key, b"%d" % value, ttl)
        return value

    def incr(self, key: bytes, amount: int, ttl: float) -> int:
        """Add ``amount`` to the integer under ``key`` (absent: 0) in one transaction."""
        with self._transaction() as db:
            return self._add_to(db, key, amount, ttl)

    def incr_many(self, amounts: Mapping[bytes, int], ttl: float) -> dict[bytes, int]:
        """Apply every increment in one transaction."""
        with self._transaction() as db:
            return {key: self._add_to(db, key, amount, ttl) for key, amount in amounts.items()}

    # -- cas and locking ----------------------------------------------------------------

    def add(self, key: bytes, value: bytes, ttl: float) -> bool:
        """Store ``value`` only if ``key`` is absent (or expired)."""
        with self._transaction() as db:
            if self._live(db, key) is not None:
                return False
            self._put(db, key, value, ttl)
            return True

    def compare_and_swap(
        self, key: bytes, expected: bytes | None, value: bytes, ttl: float
    ) -> bool:
        """Replace the value only if it equals ``expected`` (None: absent)."""
        with self._transaction() as db:
            if self._live(db, key) != expected:
                return False
            self._put(db, key, value, ttl)
            return True

    def compare_and_delete(self, key: bytes, expected: bytes) -> bool:
        """Delete ``key`` only if it holds ``expected`` (one statement: atomic)."""
        changed = self._change(
            "DELETE FROM metricache_kv WHERE key = ? AND value = ? AND expires > ?",
            [key, expected, time.time()],
        )
        return changed > 0

    def compare_and_touch(self, key: bytes, expected: bytes, ttl: float) -> bool:
        """Give ``key`` a new TTL only if it holds ``expected`` (one statement: atomic)."""
        now = time.time()
        changed = self._change(
            "UPDATE metricache_kv SET expires = ? WHERE key = ? AND value = ? AND expires > ?",
            [now + ttl_ms(ttl) / 1000, key, expected, now],
        )
        return changed > 0

    # -- maps: one transaction instead of the default compare-and-swap loop ---------------

    def merge_map(
        self, key: bytes, entries: Mapping[str, str], ttl: float, *, only_new: bool = False
    ) -> None:
        """Add ``entries`` to the map under ``key`` in one transaction (never retried)."""
        with self._transaction() as db:
            try:
                merged = decode_map(key, self._live(db, key))
            except CorruptValue as exc:
                self.on_corrupt(exc)
                merged = {}
            for field, value in entries.items():
                if not (only_new and field in merged):
                    merged[field] = value
            self._put(db, key, encode_map(merged), ttl)


@hookimpl
def metricache_store_classes() -> Iterable[type[Store]]:
    """Offer the SQLite store to metricache."""
    return [SqliteStore]
