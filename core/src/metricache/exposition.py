"""prometheus_client's exposition names, for programs switching to metricache.

``generate_latest()``, ``make_wsgi_app()``, ``make_asgi_app()``,
``start_http_server()`` and ``CONTENT_TYPE_LATEST`` do what their prometheus_client
namesakes do, with one difference that is the point of metricache: where a syncer
runs (the one :func:`metricache.start` started, or one given), they serve the
store's view, every live instance merged, after syncing this process's latest
changes. Without a syncer, ``generate_latest()`` renders the registry's own values,
and the apps and the server read the configured store.

The apps and the server are those of :mod:`metricache.http` (content negotiation,
gzip, bearer tokens, 503 when the store is down); their keyword arguments are those
of :func:`metricache.http.make_endpoint`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from metricache.registry import REGISTRY, Registry
from metricache.snapshot import Snapshot

if TYPE_CHECKING:
    from metricache.config import Config
    from metricache.http import ASGIApp, MetricsServer, WSGIApp
    from metricache.store import Store
    from metricache.sync.syncer import Syncer

__all__ = [
    "CONTENT_TYPE_LATEST",
    "generate_latest",
    "make_asgi_app",
    "make_wsgi_app",
    "start_http_server",
]

CONTENT_TYPE_LATEST = "text/plain; version=0.0.4; charset=utf-8"
"""The media type of what :func:`generate_latest` returns by default (Prometheus 0.0.4)."""


def generate_latest(
    source: Registry | Syncer | Snapshot | None = None, format: str = "prometheus"
) -> bytes:
    """Return the metrics as exposition text (Prometheus 0.0.4 unless ``format`` says).

    ``source``: a :class:`~metricache.Syncer` (the store's view after a sync: merged
    across instances on a distributed store), a :class:`~metricache.Snapshot`, or a
    :class:`~metricache.Registry` (default ``metricache.REGISTRY``): the view of the
    syncer :func:`metricache.start` runs on it, else the registry's own values.
    """
    from metricache.formats import render
    from metricache.runtime import started_syncer, syncer_view
    from metricache.sync.syncer import Syncer

    if source is None:
        source = REGISTRY
    if isinstance(source, Registry):
        running = started_syncer(source)
        source = source.snapshot() if running is None else running
    if isinstance(source, Syncer):
        source = syncer_view(source)
    return render(source, format)


def _syncer(config: Config | None, store: Store | None, syncer: Syncer | None) -> Syncer | None:
    if syncer is None and config is None and store is None:
        from metricache.runtime import started_syncer

        return started_syncer()
    return syncer


def make_wsgi_app(
    config: Config | None = None,
    store: Store | None = None,
    *,
    syncer: Syncer | None = None,
    **options: Any,
) -> WSGIApp:
    """Return a WSGI app serving the metrics (see the module for whose view)."""
    from metricache.http import make_wsgi_app as make

    return make(config, store, syncer=_syncer(config, store, syncer), **options)


def make_asgi_app(
    config: Config | None = None,
    store: Store | None = None,
    *,
    syncer: Syncer | None = None,
    **options: Any,
) -> ASGIApp:
    """Return an ASGI app serving the metrics (see the module for whose view)."""
    from metricache.http import make_asgi_app as make

    return make(config, store, syncer=_syncer(config, store, syncer), **options)


def start_http_server(
    port: int,
    addr: str = "0.0.0.0",  # prometheus_client's default: every interface
    *,
    config: Config | None = None,
    store: Store | None = None,
    syncer: Syncer | None = None,
    **options: Any,
) -> MetricsServer:
    """Serve the metrics on ``addr``:``port`` from a background thread; return the server.

    ``/metrics`` (and ``/``) answer with the metrics, ``/healthz`` with the store's
    health. Port 0 picks a free port (``server.port`` tells which). Stop it with
    ``server.stop()``.
    """
    from metricache.http import MetricsServer, make_endpoint

    endpoint = make_endpoint(config, store, syncer=_syncer(config, store, syncer), **options)
    return MetricsServer(endpoint, addr, port).start()
