"""prometheus_client metrics that add up across processes and containers, through metricache.

Installed, this plugin makes :func:`metricache.start` sync every metric registered in
``prometheus_client.REGISTRY`` (through the ``metricache_collectors`` hook), next to
metricache's own metrics: code instrumented with prometheus_client, directly or
through a library, needs no change and no ``PROMETHEUS_MULTIPROC_DIR``. A program
that runs its own :class:`~metricache.Syncer`, or bridges another registry, calls
:func:`bridge`; :func:`start` is both in one call. :func:`expose_merged` makes a
prometheus_client registry serve the merged view of every instance.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from metricache import hookimpl
from metricache.registry import Registry
from metricache.snapshot import Family

from metricache_prometheus_client.bridge import (
    DEFAULT_COLLECTORS,
    Bridge,
    bridge,
    bridges,
    collectors_for,
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


@hookimpl
def metricache_collectors(registry: Registry) -> Iterable[Callable[[], Iterable[Family]]]:
    """Offer the bridge of ``prometheus_client.REGISTRY`` to ``metricache.REGISTRY``."""
    return collectors_for(registry)
