"""The conformance suite against the SQLite store, through its pytest entry."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping

import pytest
from metricache.store import Store
from metricache_conformance import StoreConformance


@pytest.fixture(scope="class")
def store_options(tmp_path_factory: pytest.TempPathFactory) -> Mapping[str, object]:
    return {"path": str(tmp_path_factory.mktemp("sqlite") / "metrics.db")}


class TestSqliteStore(StoreConformance):
    store = "sqlite"

    # Optional backdoor helpers: the suite reads and writes the table through them,
    # bypassing the store, to check what really landed.
    def backdoor_get(self, store: Store, key: bytes) -> bytes | None:
        with sqlite3.connect(store.options.path) as db:
            row = db.execute(
                "SELECT value FROM metricache_kv WHERE key = ? AND expires > ?",
                (key, time.time()),
            ).fetchone()
        return None if row is None else bytes(row[0])

    def backdoor_set(self, store: Store, key: bytes, value: bytes, ttl: float) -> None:
        with sqlite3.connect(store.options.path) as db:
            db.execute(
                "INSERT OR REPLACE INTO metricache_kv (key, value, expires) VALUES (?, ?, ?)",
                (key, value, time.time() + ttl),
            )
