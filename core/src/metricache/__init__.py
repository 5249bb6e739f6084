"""metricache: application metrics that add up across processes and containers.

Record with :class:`Counter`, :class:`Gauge` and :class:`Histogram` at in-memory
speed; a background syncer folds what changed into a shared store; exporters read
the merged view and ship it in standard formats.
"""

from __future__ import annotations

from importlib import metadata as _metadata

from metricache.config import Config, load_config
from metricache.errors import (
    ConfigError,
    FormatNotFound,
    MetricacheError,
    PluginError,
    StoreError,
    StoreUnavailable,
)
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
from metricache.metrics import DEFAULT_BUCKETS, Counter, Gauge, Histogram
from metricache.registry import REGISTRY, Registry
from metricache.runtime import start
from metricache.snapshot import (
    Family,
    GaugeMerge,
    HistogramSample,
    MetricType,
    Sample,
    Snapshot,
    ViewKind,
)
from metricache.store import Capability, Store
from metricache.store_plugins import open_store
from metricache.sync import Strategy, Syncer, merged_snapshot

try:
    __version__ = _metadata.version("metricache")
except _metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0+unknown"

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
    "open_store",
    "render",
    "start",
    "start_http_server",
]
