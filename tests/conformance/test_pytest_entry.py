"""The pytest entry (``StoreConformance``) against the four built-in stores and the example.

Each built-in store gets a class with its options and zarr-style backdoor helpers
that read and write the backend without the store's API. The example's own test
file runs in a pytest subprocess, as its author would run it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import pytest
import redis
from metricache.store import Store
from metricache_conformance import StoreConformance
from metricache_file import records
from metricache_file.store import file_name
from metricache_memcached.keys import safe_key
from pymemcache.client.base import Client  # type: ignore[import-untyped]

from tests.support.servers import MemcachedServer, RedisServer

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sqlite_store"


class TestMemoryStore(StoreConformance):
    store = "memory"

    def backdoor_get(self, store: Store, key: bytes) -> bytes | None:
        entry = store._data.get(key)  # type: ignore[attr-defined]
        return None if entry is None or entry[1] <= time.monotonic() else bytes(entry[0])

    def backdoor_set(self, store: Store, key: bytes, value: bytes, ttl: float) -> None:
        store._data[key] = (value, time.monotonic() + ttl)  # type: ignore[attr-defined]


class TestFileStore(StoreConformance):
    store = "file"

    @pytest.fixture(scope="class")
    @classmethod
    def store_options(cls, tmp_path_factory: pytest.TempPathFactory) -> Mapping[str, object]:
        return {"path": str(tmp_path_factory.mktemp("file-store"))}

    def backdoor_get(self, store: Store, key: bytes) -> bytes | None:
        path = Path(store.options.path) / file_name(key)
        try:
            record = records.decode(path.read_bytes())
        except FileNotFoundError:
            return None
        return None if record.expired(time.time()) else record.value

    def backdoor_set(self, store: Store, key: bytes, value: bytes, ttl: float) -> None:
        path = Path(store.options.path) / file_name(key)
        path.write_bytes(records.encode(records.Record(key, value, time.time() + ttl)))


class TestRedisStore(StoreConformance):
    store = "redis"

    @pytest.fixture(scope="class")
    @classmethod
    def store_options(cls, redis_server: RedisServer) -> Mapping[str, object]:
        return {"url": redis_server.url}

    def backdoor_get(self, store: Store, key: bytes) -> bytes | None:
        with redis.Redis.from_url(store.options.url) as client:
            value = client.get(key)
        return value if isinstance(value, bytes) else None

    def backdoor_set(self, store: Store, key: bytes, value: bytes, ttl: float) -> None:
        with redis.Redis.from_url(store.options.url) as client:
            client.set(key, value, px=int(ttl * 1000))


class TestMemcachedStore(StoreConformance):
    store = "memcached"

    @pytest.fixture(scope="class")
    @classmethod
    def store_options(cls, memcached_server: MemcachedServer) -> Mapping[str, object]:
        return {"url": memcached_server.url}

    def _client(self, store: Store) -> Client:
        host, _, port = store.options.url.removeprefix("memcached://").partition(":")
        return Client((host, int(port)))

    def backdoor_get(self, store: Store, key: bytes) -> bytes | None:
        # The suite's backdoor values are small and not integers: stored as they are.
        client = self._client(store)
        try:
            value = client.get(safe_key(key))
        finally:
            client.close()
        return None if value is None else bytes(value)

    def backdoor_set(self, store: Store, key: bytes, value: bytes, ttl: float) -> None:
        client = self._client(store)
        try:
            client.set(safe_key(key), value, expire=int(ttl) + 1, noreply=False)
        finally:
            client.close()


def test_the_example_store_passes_through_its_own_test_file() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider"],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=EXAMPLE,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^22 passed, 2 skipped in ", result.stdout, re.M), result.stdout
    assert "SKIPPED [2]" in result.stdout
    assert "not declared: exactly_once" in result.stdout
    section = result.stdout[result.stdout.index(" metricache conformance ") :]
    lines = section.splitlines()
    assert lines[1] == "sqlite: 22 passed, 0 failed, 2 skipped"
    assert re.split(r"\s{2,}", lines[3]) == [
        "sqlite",
        "✓",
        "✓",
        "✓",
        "✓",
        "✓",
        "skip",
        "distributed_atomic",
    ]
    assert "warning" not in result.stdout.lower()
