"""``StoreConformance``: the suite as a pytest base class, for a store package's tests.

In about three lines::

    from metricache_conformance import StoreConformance

    class TestMyStore(StoreConformance):
        store = "my-store"  # the entry-point name, or "my_package.module:MyStore"

Options come from the class-scoped ``store_options`` fixture (none by default),
which the test module overrides; it may use other fixtures (a server, a temporary
directory)::

    @pytest.fixture(scope="class")
    def store_options(tmp_path_factory):
        return {"path": str(tmp_path_factory.mktemp("db") / "metrics.db")}

(Inside the class it is a classmethod: ``@pytest.fixture(scope="class")`` above
``@classmethod``.)

Each check is one test, ``test_conformance[area.behaviour]``: it passes, fails with
a message naming the broken promise, or is skipped with its reason ("not declared:
locking"). Optional *backdoor* helpers (``backdoor_get``, ``backdoor_set``) read and
write the backend without the store's API, so the suite can check what really landed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import ClassVar

import pytest
from metricache.store import Store

from metricache_conformance.catalogue import all_checks
from metricache_conformance.context import Backdoor, Scale
from metricache_conformance.pytest_plugin import RUNS, verdict
from metricache_conformance.runner import Conformance
from metricache_conformance.target import StoreTarget

__all__ = ["CHECK_NAMES", "StoreConformance", "open_suite"]

CHECK_NAMES = [check.name for check in all_checks()]
"""The checks, in the order they run; each is one parameter of ``test_conformance``."""


class _MethodBackdoor:
    """The backdoor helpers of a test class, as the suite calls them."""

    def __init__(self, owner: StoreConformance) -> None:
        self.owner = owner

    def get(self, store: Store, key: bytes) -> bytes | None:
        return self.owner.backdoor_get(store, key)

    def set(self, store: Store, key: bytes, value: bytes, ttl: float) -> None:
        self.owner.backdoor_set(store, key, value, ttl)


class StoreConformance:
    """Base class of a pytest class that runs the conformance suite against a store.

    ``store`` names the store (entry-point name or ``package.module:Class``);
    ``scale`` sets how hard the concurrency checks push. The store's options come
    from the class-scoped ``store_options`` fixture; backdoor helpers
    (``backdoor_get`` and ``backdoor_set``) are optional.
    """

    store: ClassVar[str] = ""
    scale: ClassVar[Scale] = Scale()

    def backdoor_get(self, store: Store, key: bytes) -> bytes | None:
        """Return what the backend holds under ``key``, bypassing ``store`` (optional)."""
        raise NotImplementedError

    def backdoor_set(self, store: Store, key: bytes, value: bytes, ttl: float) -> None:
        """Write ``value`` under ``key`` in the backend, bypassing ``store`` (optional)."""
        raise NotImplementedError

    def backdoor(self) -> Backdoor | None:
        """Return the backdoor helpers as the suite calls them (None if not given)."""
        cls = type(self)
        given = (
            cls.backdoor_get is not StoreConformance.backdoor_get
            and cls.backdoor_set is not StoreConformance.backdoor_set
        )
        return _MethodBackdoor(self) if given else None

    @pytest.mark.parametrize("check", CHECK_NAMES)
    def test_conformance(self, conformance: Conformance, check: str) -> None:
        """Run one check of the suite."""
        verdict(check, conformance.run(check))


def open_suite(
    request: pytest.FixtureRequest, options: Mapping[str, object]
) -> Iterator[Conformance]:
    """Open the suite on the store of the ``StoreConformance`` class requesting it."""
    cls = request.cls
    if cls is None or not issubclass(cls, StoreConformance):
        pytest.fail("the 'conformance' fixture is for subclasses of StoreConformance", False)
    if not cls.store:
        pytest.fail(
            f"{cls.__name__}: set `store = ...` to the store's entry-point name or import path",
            pytrace=False,
        )
    runner = Conformance(
        StoreTarget(cls.store, options), scale=cls.scale, backdoor=cls().backdoor()
    )
    runner.open()
    runs = request.config.stash.get(RUNS, None)
    if runs is not None:
        runs.append(runner)
    try:
        yield runner
    finally:
        runner.close()
