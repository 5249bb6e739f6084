"""Fixtures of the event tests: a fresh registry, routers closed after the test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from metricache.events import EventRouter
from metricache.registry import Registry

RouterFactory = Callable[..., EventRouter]


@pytest.fixture
def registry() -> Registry:
    """A registry of this test's own."""
    return Registry()


@pytest.fixture
def make_router(registry: Registry) -> Iterator[RouterFactory]:
    """Build routers on the test's registry; each is closed when the test ends."""
    routers: list[EventRouter] = []

    def make(*args: Any, **kwargs: Any) -> EventRouter:
        router = EventRouter(registry, *args, **kwargs)
        routers.append(router)
        return router

    yield make
    for router in routers:
        router.close(timeout=5.0)
