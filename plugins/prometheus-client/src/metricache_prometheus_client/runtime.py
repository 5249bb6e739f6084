"""One call for a program instrumented with prometheus_client: bridge, sync, and serve merged."""

from __future__ import annotations

import metricache
from metricache.config import Config
from metricache.sync.syncer import Syncer
from prometheus_client.registry import CollectorRegistry

from metricache_prometheus_client.bridging import bridge
from metricache_prometheus_client.merged import expose_merged

__all__ = ["start"]


def start(
    config: Config | str | None = None,
    *,
    registry: CollectorRegistry | None = None,
    expose_merged_view: bool = False,
) -> Syncer:
    """Bridge ``registry`` (default ``prometheus_client.REGISTRY``) and start metricache.

    This is :func:`metricache.start` (``config``: a Config, a file path, or found as
    every command finds it) after :func:`~metricache_prometheus_client.bridge`; the
    plugin's hook does the same for the default registry on its own. With
    ``expose_merged_view``, ``registry`` then serves the merged view of every
    instance (:func:`~metricache_prometheus_client.expose_merged`), so the program's
    existing ``/metrics`` shows the fleet-wide numbers. Returns the running syncer.
    """
    bridge(registry)
    syncer = metricache.start(config)
    if expose_merged_view:
        expose_merged(registry, syncer=syncer)
    return syncer
