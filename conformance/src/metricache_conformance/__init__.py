"""Conformance suites for metricache plugins: does a plugin keep its promises?

The store suite, and the author's kits for formats and exporters. Two ways in:

* ``metricache conformance STORE [--option key=value ...]``,
  ``metricache conformance --formats NAME``, ``--exporters NAME`` on the command line;
* in a plugin package's own tests, a pytest class::

      from metricache_conformance import StoreConformance

      class TestMyStore(StoreConformance):
          store = "my-store"

  (``FormatConformance`` with ``format = ...``, ``ExporterConformance`` with
  ``exporter = ...`` for the kits).

From Python: ``Conformance(StoreTarget("redis", {"url": ...})).open().run_all()``,
``FormatSuite("json").run_all()``, ``ExporterSuite("http", destination).run_all()``.

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
    from metricache_conformance.destinations import (
        Destination,
        HttpDestination,
        HttpReceiver,
        SilentServer,
        Unreachable,
        unreachable_url,
    )
    from metricache_conformance.exporter_conformance import ExporterConformance
    from metricache_conformance.exporter_suite import ExporterSuite
    from metricache_conformance.format_conformance import FormatConformance
    from metricache_conformance.format_suite import FormatSuite
    from metricache_conformance.kit import KitReport
    from metricache_conformance.results import CapabilityStatus, MatrixRow, Outcome, Report, Result
    from metricache_conformance.runner import Conformance
    from metricache_conformance.snapshot_catalogue import (
        FlatSample,
        flat_samples,
        hostile_snapshots,
    )
    from metricache_conformance.store_conformance import StoreConformance
    from metricache_conformance.target import StoreTarget

__all__ = [
    "Backdoor",
    "CapabilityStatus",
    "Check",
    "CheckFailed",
    "Conformance",
    "Destination",
    "ExporterConformance",
    "ExporterSuite",
    "FlatSample",
    "FormatConformance",
    "FormatSuite",
    "HttpDestination",
    "HttpReceiver",
    "KitReport",
    "MatrixRow",
    "Outcome",
    "Report",
    "Result",
    "Scale",
    "SilentServer",
    "StoreConformance",
    "StoreTarget",
    "Unreachable",
    "all_checks",
    "flat_samples",
    "hostile_snapshots",
    "unreachable_url",
]

_HOMES = {
    "Backdoor": "context",
    "CapabilityStatus": "results",
    "Check": "catalogue",
    "CheckFailed": "checking",
    "Conformance": "runner",
    "Destination": "destinations",
    "ExporterConformance": "exporter_conformance",
    "ExporterSuite": "exporter_suite",
    "FlatSample": "snapshot_catalogue",
    "FormatConformance": "format_conformance",
    "FormatSuite": "format_suite",
    "HttpDestination": "destinations",
    "HttpReceiver": "destinations",
    "KitReport": "kit",
    "MatrixRow": "results",
    "Outcome": "results",
    "Report": "results",
    "Result": "results",
    "Scale": "context",
    "SilentServer": "destinations",
    "StoreConformance": "store_conformance",
    "StoreTarget": "target",
    "Unreachable": "destinations",
    "all_checks": "catalogue",
    "flat_samples": "snapshot_catalogue",
    "hostile_snapshots": "snapshot_catalogue",
    "unreachable_url": "destinations",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'metricache_conformance' has no attribute {name!r}")
    return getattr(importlib.import_module(f"metricache_conformance.{home}"), name)


def __dir__() -> list[str]:
    return sorted(__all__)
