"""Conformance suite for metricache store plugins: does a store keep its promises?

Two ways in:

* ``metricache conformance STORE [--option key=value ...]`` on the command line;
* in a store package's own tests, a pytest class::

      from metricache_conformance import StoreConformance

      class TestMyStore(StoreConformance):
          store = "my-store"

From Python: ``Conformance(StoreTarget("redis", {"url": ...})).open().run_all()``.

The names below are loaded on first use, so that the pytest plugin can register the
package for assertion rewriting before any of its modules is imported.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from metricache_conformance.catalogue import Check, all_checks
    from metricache_conformance.checking import CheckFailed
    from metricache_conformance.context import Backdoor, Scale
    from metricache_conformance.results import CapabilityStatus, MatrixRow, Outcome, Report, Result
    from metricache_conformance.runner import Conformance
    from metricache_conformance.store_conformance import StoreConformance
    from metricache_conformance.target import StoreTarget

__all__ = [
    "Backdoor",
    "CapabilityStatus",
    "Check",
    "CheckFailed",
    "Conformance",
    "MatrixRow",
    "Outcome",
    "Report",
    "Result",
    "Scale",
    "StoreConformance",
    "StoreTarget",
    "all_checks",
]

_HOMES = {
    "Backdoor": "context",
    "CapabilityStatus": "results",
    "Check": "catalogue",
    "CheckFailed": "checking",
    "Conformance": "runner",
    "MatrixRow": "results",
    "Outcome": "results",
    "Report": "results",
    "Result": "results",
    "Scale": "context",
    "StoreConformance": "store_conformance",
    "StoreTarget": "target",
    "all_checks": "catalogue",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'metricache_conformance' has no attribute {name!r}")
    return getattr(importlib.import_module(f"metricache_conformance.{home}"), name)


def __dir__() -> list[str]:
    return sorted(__all__)
