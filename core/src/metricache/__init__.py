"""metricache: application metrics that add up across processes and containers.

Record with :class:`Counter`, :class:`Gauge` and :class:`Histogram` at in-memory
speed; a background syncer folds what changed into a shared store; exporters read
the merged view and ship it in standard formats.

``import metricache`` loads only what recording needs (the metric types, the
registry, snapshots and errors). Every other name below (the syncer, configuration,
formats, stores, events, ...) is loaded from its module the first time it is used,
so that a program that only records pays for nothing else.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from metricache.errors import (
    ConfigError,
    FormatNotFound,
    MetricacheError,
    PluginError,
    StoreError,
    StoreUnavailable,
)
from metricache.metrics import DEFAULT_BUCKETS, Counter, Gauge, Histogram
from metricache.registry import REGISTRY, Registry
from metricache.snapshot import (
    Family,
    GaugeMerge,
    HistogramSample,
    MetricType,
    Sample,
    Snapshot,
    ViewKind,
)

if TYPE_CHECKING:
    from metricache.config import Config, load_config
    from metricache.events import Event, EventMapping, EventRouter
    from metricache.exposition import (
        CONTENT_TYPE_LATEST,
        generate_latest,
        make_asgi_app,
        make_wsgi_app,
        start_http_server,
    )
    from metricache.formats import Format, content_type, negotiate, render
    from metricache.hookspecs import hookimpl
    from metricache.runtime import open_reader, start
    from metricache.store import Capability, Store
    from metricache.store_plugins import open_store
    from metricache.sync import Strategy, Syncer, merged_snapshot

    __version__: str

__all__ = [
    "CONTENT_TYPE_LATEST",
    "DEFAULT_BUCKETS",
    "REGISTRY",
    "Capability",
    "Config",
    "ConfigError",
    "Counter",
    "Event",
    "EventMapping",
    "EventRouter",
    "Family",
    "Format",
    "FormatNotFound",
    "Gauge",
    "GaugeMerge",
    "Histogram",
    "HistogramSample",
    "MetricType",
    "MetricacheError",
    "PluginError",
    "Registry",
    "Sample",
    "Snapshot",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "Strategy",
    "Syncer",
    "ViewKind",
    "__version__",
    "content_type",
    "generate_latest",
    "hookimpl",
    "load_config",
    "make_asgi_app",
    "make_wsgi_app",
    "merged_snapshot",
    "negotiate",
    "open_reader",
    "open_store",
    "render",
    "start",
    "start_http_server",
]

_LAZY = {
    "CONTENT_TYPE_LATEST": "metricache.exposition",
    "Capability": "metricache.store",
    "Config": "metricache.config",
    "Event": "metricache.events",
    "EventMapping": "metricache.events",
    "EventRouter": "metricache.events",
    "Format": "metricache.formats",
    "Store": "metricache.store",
    "Strategy": "metricache.sync",
    "Syncer": "metricache.sync",
    "content_type": "metricache.formats",
    "generate_latest": "metricache.exposition",
    "hookimpl": "metricache.hookspecs",
    "load_config": "metricache.config",
    "make_asgi_app": "metricache.exposition",
    "make_wsgi_app": "metricache.exposition",
    "merged_snapshot": "metricache.sync",
    "negotiate": "metricache.formats",
    "open_reader": "metricache.runtime",
    "open_store": "metricache.store_plugins",
    "render": "metricache.formats",
    "start": "metricache.runtime",
    "start_http_server": "metricache.exposition",
}
"""The names loaded on first use, and the module each comes from."""


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("metricache")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        value: Any = _version()
    else:
        home = _LAZY.get(name)
        if home is None:
            raise AttributeError(f"module 'metricache' has no attribute {name!r}")
        value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
