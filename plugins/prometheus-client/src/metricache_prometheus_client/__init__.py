"""prometheus_client metrics that add up across processes and containers, through metricache.

Installed, this plugin makes :func:`metricache.start` sync every metric registered in
``prometheus_client.REGISTRY`` (through the ``metricache_collectors`` hook), next to
metricache's own metrics: code instrumented with prometheus_client, directly or
through a library, needs no change and no ``PROMETHEUS_MULTIPROC_DIR``. A program
that runs its own :class:`~metricache.Syncer`, or bridges another registry, calls
:func:`bridge`; :func:`start` is both in one call. :func:`expose_merged` makes a
prometheus_client registry serve the merged view of every instance.

Importing this package imports neither prometheus_client nor the bridge: the names
below load on first use, so loading the plugin costs nothing to a program (or a
``metricache`` command) that does not use prometheus_client.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from metricache import hookimpl
from metricache.registry import Registry

from metricache_prometheus_client.deferred import DeferredBridge, collectors_for

if TYPE_CHECKING:
    from metricache_prometheus_client.bridging import (
        DEFAULT_COLLECTORS,
        Bridge,
        bridge,
        bridges,
        unbridge,
    )
    from metricache_prometheus_client.merged import (
        MergedCollector,
        MergedExposition,
        expose_merged,
        metric_of_family,
    )
    from metricache_prometheus_client.modes import (
        DEFAULT_MERGE,
        ENUM_MERGE,
        INFO_MERGE,
        MULTIPROCESS_MODES,
        merge_of_mode,
    )
    from metricache_prometheus_client.runtime import start

__all__ = [
    "DEFAULT_COLLECTORS",
    "DEFAULT_MERGE",
    "ENUM_MERGE",
    "INFO_MERGE",
    "MULTIPROCESS_MODES",
    "Bridge",
    "DeferredBridge",
    "MergedCollector",
    "MergedExposition",
    "bridge",
    "bridges",
    "expose_merged",
    "merge_of_mode",
    "metric_of_family",
    "start",
    "unbridge",
]

_MODULE_OF = {
    "DEFAULT_COLLECTORS": "bridging",
    "Bridge": "bridging",
    "bridge": "bridging",
    "bridges": "bridging",
    "unbridge": "bridging",
    "MergedCollector": "merged",
    "MergedExposition": "merged",
    "expose_merged": "merged",
    "metric_of_family": "merged",
    "DEFAULT_MERGE": "modes",
    "ENUM_MERGE": "modes",
    "INFO_MERGE": "modes",
    "MULTIPROCESS_MODES": "modes",
    "merge_of_mode": "modes",
    "start": "runtime",
}


def __getattr__(name: str) -> Any:
    """Load a public name from its module on first use (see the module docstring)."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


@hookimpl
def metricache_collectors(registry: Registry) -> Iterable[DeferredBridge]:
    """Offer ``metricache.REGISTRY`` the bridge of ``prometheus_client.REGISTRY``."""
    return collectors_for(registry)
