"""Every hook a metricache plugin can implement.

A plugin is a module listed under the ``metricache`` entry-point group that defines
functions decorated with :data:`hookimpl` and named after the hooks below. Plugin
authors import ``hookimpl`` from here (``from metricache import hookimpl``) and never
need pluggy themselves.

The hooks come in three groups, following the data flow:

* **collection** — what becomes a metric: custom collectors, event handlers,
  event tracers;
* **sync** — how metrics reach a store: store classes, capability detectors,
  the "cache synced" notification;
* **export** — how a snapshot leaves: formats, exporters, export life cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from metricache.events import Event
    from metricache.events.mapping import EventMapping
    from metricache.exporters import Exporter, ExportReport, ExportRequest
    from metricache.formats import Format
    from metricache.registry import Collector, Registry
    from metricache.store import Capability, Store
    from metricache.sync.report import SyncReport

__all__ = ["PROJECT", "hookimpl", "hookspec"]

PROJECT = "metricache"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)
"""Decorator marking a plugin function as the implementation of a hook."""


# -- collection ------------------------------------------------------------------------


@hookspec
def metricache_collectors(registry: Registry) -> Iterable[Collector] | None:
    """Return callables whose families join every snapshot of ``registry``.

    Called once per registry, by :func:`metricache.collectors.install_collectors`,
    which :func:`metricache.start`, a starting syncer, the endpoint, the export
    coordinator and the ``serve``, ``export`` and ``sync`` commands call. Each
    callable returns an iterable of :class:`~metricache.snapshot.Family` computed at
    snapshot time; a syncer syncs them like the registry's own metrics.
    """


@hookspec
def metricache_handle_event(event: Event, registry: Registry) -> None:
    """Record metrics for an event that the event router sent to the metrics backend.

    Called once per kept event (sampling is already decided) for every plugin; each
    records what it wants in ``registry``. Raise nothing: errors are logged and
    counted by the router.
    """


@hookspec
def metricache_event_recorder(
    event_name: str, registry: Registry
) -> Callable[[Mapping[str, Any]], None] | None:
    """Return a function recording the metrics of events named ``event_name``, or None.

    The fast form of ``metricache_handle_event``: the event router asks each plugin
    once per event name (again when its mappings or the plugins change) and then
    calls the function with the payload of every kept event of that name routed to
    the metrics backend, in the publisher's thread, instead of calling that plugin's
    ``metricache_handle_event`` for it. The payload is the publisher's mapping: read
    it during the call, never keep it. None: the plugin's
    ``metricache_handle_event`` is called as usual. Raise nothing from the function:
    errors are logged and counted by the router.
    """


@hookspec
def metricache_trace_event(event: Event, mapping: EventMapping) -> None:
    """Hand an event the event router sent to the traces backend to a tracing system.

    Called once per kept event (sampling is already decided) for every plugin, from
    the router's traces worker thread, never the publisher's: a slow tracer delays
    no one, and when it falls behind, the bounded queue sheds low priorities first.
    ``mapping`` gives the event's priority and metadata. The router also keeps the
    latest events in its bounded in-memory recorder. Raise nothing: errors are
    logged and counted by the router.
    """


# -- sync ------------------------------------------------------------------------------


@hookspec
def metricache_store_classes() -> Iterable[type[Store]] | None:
    """Return store classes (subclasses of :class:`~metricache.store.Store`).

    Each class has a unique ``name``; when two plugins offer the same name, that name
    is refused (asking for it is an error naming both) and the rest works. A plugin
    whose registration hook raises is left out, with a warning.
    """


@hookspec(firstresult=True)
def metricache_detect_capabilities(store: Store) -> Iterable[Capability] | None:
    """Return the capabilities of ``store``, or None to let the next detector decide.

    ``firstresult``: the first non-None answer wins. Consulted only for stores that
    declare no capabilities themselves; a live probe runs when no detector answers.
    """


@hookspec
def metricache_cache_synced(report: SyncReport) -> None:
    """Called after every sync attempt, successful or not, with its report."""


# -- export ----------------------------------------------------------------------------


@hookspec
def metricache_formats() -> Iterable[Format] | None:
    """Return format objects (subclasses of :class:`~metricache.formats.Format`).

    Each has a unique ``name`` (a name two plugins offer is refused) and the media
    types it answers to in ``Accept``.
    """


@hookspec
def metricache_exporters() -> Iterable[type[Exporter]] | None:
    """Return exporter classes (subclasses of :class:`~metricache.exporters.Exporter`).

    Each class has a unique ``name`` (``file``, ``stdout``, ``http``, ...; a name two
    plugins offer is refused).
    """


@hookspec
def metricache_export_requested(request: ExportRequest) -> None:
    """Called when an export starts, before the snapshot is rendered."""


@hookspec
def metricache_export_completed(request: ExportRequest, report: ExportReport) -> None:
    """Called when an export has delivered its bytes."""


@hookspec
def metricache_export_failed(
    request: ExportRequest, error: BaseException, attempt: int, will_retry: bool
) -> None:
    """Called when an export attempt fails; ``will_retry`` says whether it is retried."""
