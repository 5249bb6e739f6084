"""Scheduled, TTL-safe exports coordinated across instances.

:class:`ExportCoordinator` exports the store's view every period, once across
instances (a lease on stores with ``locking``), before anything it covers expires;
:class:`Timing` holds its settings; :class:`Lease` is the lock it uses.
"""

from __future__ import annotations

from metricache.export.coordinator import ExportCoordinator, TickAction, TickResult
from metricache.export.lease import Lease
from metricache.export.schedule import Timing

__all__ = ["ExportCoordinator", "Lease", "TickAction", "TickResult", "Timing"]
