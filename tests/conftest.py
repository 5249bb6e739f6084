"""Fixtures shared by the whole suite: real servers, unique namespaces, clean plugins."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from metricache.plugins import reset_plugin_manager

from tests.support.servers import MemcachedServer, RedisServer


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the session; tests isolate themselves by namespace."""
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
def memcached_server() -> Iterator[MemcachedServer]:
    """One memcached for the session; tests isolate themselves by namespace."""
    with MemcachedServer() as server:
        yield server


@pytest.fixture
def fresh_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own (for tests that stop, kill or pause it)."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def fresh_memcached() -> Iterator[MemcachedServer]:
    """A memcached of this test's own (for tests that restart it)."""
    with MemcachedServer() as server:
        yield server


@pytest.fixture
def namespace() -> str:
    """A key namespace no other test uses."""
    return "t" + secrets.token_hex(5)


@pytest.fixture
def clean_plugins() -> Iterator[None]:
    """Reload plugins before and after a test that changes what is installed."""
    reset_plugin_manager()
    yield
    reset_plugin_manager()
