"""Fixtures of the property tests: one store of each built-in kind, real servers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import metricache
import pytest

from tests.support.servers import MemcachedServer, RedisServer

STORE_NAMES = ["memory", "file", "redis", "memcached"]
"""Parametrize ``store`` indirectly with these to run a property on every store."""


@pytest.fixture(scope="module")
def file_directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("property-file-store")


@pytest.fixture
def store(
    request: pytest.FixtureRequest,
    redis_server: RedisServer,
    memcached_server: MemcachedServer,
    file_directory: Path,
) -> Iterator[metricache.Store]:
    name = request.param
    if name == "memory":
        opened = metricache.open_store("memory")
    elif name == "file":
        opened = metricache.open_store("file", path=str(file_directory), fsync=False)
    elif name == "redis":
        opened = metricache.open_store("redis", url=redis_server.url)
    else:
        opened = metricache.open_store("memcached", url=memcached_server.url)
    yield opened
    opened.close()
