"""Capability detection and strategy selection: declared, detectors, probe, fallback."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

import metricache
import pytest
from metricache import hookimpl
from metricache.plugins import get_plugin_manager
from metricache.store import Capability, Store
from metricache.sync.strategy import Strategy, select_strategy, strategy_for
from metricache_memory import MemoryStore

from tests.support.servers import RedisServer


@pytest.mark.parametrize(
    ("caps", "expected"),
    [
        ({"distributed", "atomic", "locking"}, Strategy.DISTRIBUTED_ATOMIC),
        ({"distributed", "atomic", "cas", "locking", "exactly_once"}, Strategy.DISTRIBUTED_ATOMIC),
        ({"distributed", "atomic", "cas"}, Strategy.DISTRIBUTED_BASIC),
        ({"distributed", "atomic"}, Strategy.DISTRIBUTED_BASIC),
        ({"distributed", "locking"}, Strategy.LOCAL_ONLY),
        ({"atomic", "cas", "locking"}, Strategy.LOCAL_ONLY),
        (set(), Strategy.LOCAL_ONLY),
    ],
)
def test_the_compatibility_matrix_decides_the_strategy(caps: set[str], expected: Strategy) -> None:
    assert strategy_for(Capability(c) for c in caps) is expected


def test_built_in_stores_get_their_matrix_row(redis_server: RedisServer) -> None:
    assert select_strategy(metricache.open_store("memory")).strategy is Strategy.LOCAL_ONLY
    redis = select_strategy(metricache.open_store("redis", url=redis_server.url))
    assert redis.strategy is Strategy.DISTRIBUTED_ATOMIC
    assert redis.source == "declared"


class Undeclared(MemoryStore):
    """A store that says nothing about itself (capabilities left as None)."""

    name = "undeclared"
    capabilities = None  # type: ignore[assignment]


class Broken(Undeclared):
    """A store whose basics do not work."""

    name = "broken"

    def get(self, key: bytes) -> bytes | None:
        raise ConnectionError("no route to store")


def test_an_undeclared_store_is_probed() -> None:
    choice = select_strategy(Undeclared(), twin=Undeclared())
    # The memory store keeps data per client: the probe cannot see a twin's writes.
    assert choice.source == "probe"
    assert Capability.DISTRIBUTED not in choice.capabilities
    assert choice.strategy is Strategy.LOCAL_ONLY


def test_a_failing_store_degrades_to_local_only_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="metricache.sync"):
        choice = select_strategy(Broken())
    assert choice.strategy is Strategy.LOCAL_ONLY
    assert choice.source == "fallback"
    assert choice.problem is not None
    assert "no route to store" in choice.problem
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1


def test_a_failing_store_never_raises_into_the_application() -> None:
    registry = metricache.Registry()
    counter = metricache.Counter("c", "c", registry=registry)
    syncer = metricache.Syncer(registry, Broken(), interval=60)
    counter.inc()
    report = syncer.flush()
    assert not report.ok
    assert report.error is not None
    assert "no route to store" in report.error
    counter.inc()  # still fine


class _Detector:
    @hookimpl
    def metricache_detect_capabilities(self, store: Store) -> Iterable[Capability] | None:
        if store.name == "undeclared":
            return [Capability.DISTRIBUTED, Capability.ATOMIC]
        return None


@pytest.fixture
def detector() -> Iterator[None]:
    pm = get_plugin_manager()
    plugin = _Detector()
    pm.register(plugin, name="test-detector")
    yield
    pm.unregister(plugin)


@pytest.mark.usefixtures("detector")
def test_a_detector_answers_before_the_probe() -> None:
    choice = select_strategy(Undeclared())
    assert choice.source == "detector:test-detector"
    assert choice.strategy is Strategy.DISTRIBUTED_BASIC
    # Declared capabilities are never second-guessed by detectors.
    assert select_strategy(MemoryStore()).source == "declared"
