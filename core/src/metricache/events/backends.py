"""The three backends a kept event can go to: metrics, traces and logs.

* :class:`MetricsBackend` calls every ``metricache_handle_event`` implementation
  (the built-in one applies the registry's rules), in the publisher's thread:
  recording a metric is an in-memory update.
* :class:`TracesBackend` keeps the event in a bounded :class:`TraceRecorder` and
  calls every ``metricache_trace_event`` implementation (a tracing plugin).
* :class:`LogsBackend` writes one line per event to the ``metricache.events``
  logger, with the event in structured ``extra`` fields.

The router runs the traces and logs backends on worker threads behind bounded
priority queues. Each implementation of a hook is called on its own, so one
plugin that raises neither stops the others nor reaches the publisher; the
backend reports ``(plugin, exception)`` to its ``on_error`` callback.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from metricache.events.event import Event
from metricache.events.mapping import EventMapping, Priority
from metricache.plugins import ErrorCallback, get_plugin_manager
from metricache.registry import Registry

__all__ = [
    "EVENT_LOGGER",
    "HookCalls",
    "LogsBackend",
    "MetricsBackend",
    "MetricsPlan",
    "TraceRecord",
    "TraceRecorder",
    "TracesBackend",
]

EVENT_LOGGER = "metricache.events"
"""The logger the logs backend writes to."""


_Call = tuple[str, Callable[..., Any], tuple[str, ...]]


class HookCalls:
    """The implementations of one event hook, resolved once and again only when they change.

    pluggy stops at the first implementation that raises; event hooks must not, so
    each is called separately (in pluggy's order, the last registered first) and its
    error is reported to ``on_error`` with the plugin's name. Resolving which
    functions to call costs more than an event, so it is remembered, and checked
    against the plugin manager's current list (a short list, compared) per call.
    Hook wrappers are not supported for event hooks and are skipped.
    """

    def __init__(self, hook_name: str) -> None:
        self.hook_name = hook_name
        self._manager: object = None
        self._caller: Any = None
        self._seen: list[Any] = []
        self._calls: tuple[_Call, ...] = ()

    def resolve(self, manager: Any = None) -> tuple[_Call, ...]:
        """Return ``(plugin, function, argument names)`` for every implementation.

        The same tuple object as long as the implementations stay the same.
        """
        if manager is None:
            manager = get_plugin_manager()
        if manager is not self._manager:
            self._caller = getattr(manager.hook, self.hook_name)
        # pluggy's own list, not the copy get_hookimpls() makes: compared, never changed.
        impls = self._caller._hookimpls
        if impls != self._seen or manager is not self._manager:
            self._calls = tuple(
                (impl.plugin_name, impl.function, _argnames(impl.argnames))
                for impl in reversed(impls)
                if not (impl.wrapper or impl.hookwrapper)
            )
            self._seen, self._manager = list(impls), manager
        return self._calls


_EVENT_AND_REGISTRY = ("event", "registry")


def _argnames(names: Iterable[str]) -> tuple[str, ...]:
    # The usual signature is one shared tuple, recognised by identity on every call.
    found = tuple(names)
    return _EVENT_AND_REGISTRY if found == _EVENT_AND_REGISTRY else found


Recorder = Callable[[Mapping[str, Any]], None]


@attrs.frozen
class MetricsPlan:
    """How the metrics backend handles the events of one name, worked out once.

    ``recorders``: ``(plugin, function)`` pairs from ``metricache_event_recorder``,
    called with the payload. ``handlers``: the ``metricache_handle_event``
    implementations of the other plugins, called with an Event.
    """

    recorders: tuple[tuple[str, Recorder], ...] = ()
    handlers: tuple[_Call, ...] = ()


class MetricsBackend:
    """Hands kept events to the event handlers, which record metrics in ``registry``."""

    name = "metrics"

    def __init__(self, registry: Registry, on_error: ErrorCallback) -> None:
        self.registry = registry
        self._on_error = on_error
        self._handlers = HookCalls("metricache_handle_event")
        self._recorders = HookCalls("metricache_event_recorder")
        self._generation = 0

    def generation(self) -> int:
        """A number that changes whenever the event-handling plugins change.

        Checked on every kept metrics event, so the check is three comparisons: the
        plugin manager, and pluggy's lists of the two hooks' implementations (which
        pluggy changes in place) against copies taken when they were resolved.
        """
        handlers, recorders = self._handlers, self._recorders
        if (
            get_plugin_manager() is handlers._manager is recorders._manager
            and handlers._caller._hookimpls == handlers._seen
            and recorders._caller._hookimpls == recorders._seen
        ):
            return self._generation
        manager = get_plugin_manager()
        handlers.resolve(manager)
        recorders.resolve(manager)
        self._generation += 1
        return self._generation

    def plan(self, event_name: str) -> MetricsPlan:
        """Ask every plugin for a recorder of ``event_name``; the rest get Events."""
        recorders = []
        for plugin, function, argnames in self._recorders.resolve():
            arguments = {"event_name": event_name, "registry": self.registry}
            try:
                record = function(*[arguments[n] for n in argnames])
            except Exception as exc:
                self._on_error(plugin, exc)
                continue
            if record is not None:
                recorders.append((plugin, record))
        taken = {plugin for plugin, _ in recorders}
        handlers = tuple(c for c in self._handlers.resolve() if c[0] not in taken)
        return MetricsPlan(tuple(recorders), handlers)

    def deliver(self, event: Event, plan: MetricsPlan | None = None) -> None:
        """Call the ``metricache_handle_event`` implementations (of ``plan``) with ``event``."""
        registry = self.registry
        handlers = self._handlers.resolve() if plan is None else plan.handlers
        for plugin, function, argnames in handlers:
            try:
                if argnames is _EVENT_AND_REGISTRY:
                    function(event, registry)
                else:
                    function(*[{"event": event, "registry": registry}[n] for n in argnames])
            except Exception as exc:
                self._on_error(plugin, exc)


@attrs.frozen
class TraceRecord:
    """One event as the trace recorder keeps it, with its mapping's priority and metadata."""

    event: Event
    priority: Priority
    metadata: Mapping[str, object] = attrs.field(factory=dict, eq=False)


class TraceRecorder:
    """The latest ``capacity`` trace events, in memory.

    Bounded on purpose (the engine this design comes from kept every trace for
    ever): the oldest record makes room for a new one. ``recorded`` counts every
    record ever made, ``evicted`` those that made room.
    """

    def __init__(self, capacity: int = 10_000) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        # (event, mapping) pairs: a TraceRecord is built only when someone reads them.
        self._records: deque[tuple[Event, EventMapping]] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        self.recorded = 0
        self.evicted = 0

    def record(self, event: Event, mapping: EventMapping) -> None:
        """Keep ``event``, evicting the oldest record when full."""
        self.record_many([(event, mapping)])

    def record_many(self, items: list[tuple[Event, EventMapping]]) -> None:
        """Keep several events at once (one lock for all), evicting the oldest."""
        with self._lock:
            room = self.capacity - len(self._records)
            self.evicted += max(0, len(items) - room)
            self._records.extend(items)
            self.recorded += len(items)

    def records(self) -> list[TraceRecord]:
        """Return the records held, oldest first."""
        with self._lock:
            held = list(self._records)
        return [TraceRecord(event, mapping.priority, mapping.metadata) for event, mapping in held]

    def __len__(self) -> int:
        return len(self._records)

    def clear(self) -> None:
        """Forget every record (the counts stay)."""
        with self._lock:
            self._records.clear()

    def _after_fork(self) -> None:
        # A parent thread may have held the lock at fork time.
        self._lock = threading.Lock()


class TracesBackend:
    """Records trace events in ``recorder`` and hands them to tracing plugins."""

    name = "traces"

    def __init__(self, recorder: TraceRecorder, on_error: ErrorCallback) -> None:
        self.recorder = recorder
        self._on_error = on_error
        self._tracers = HookCalls("metricache_trace_event")

    def deliver(self, event: Event, mapping: EventMapping) -> None:
        """Record ``event``, then call every ``metricache_trace_event`` implementation."""
        self.deliver_many([(event, mapping)])

    def deliver_many(self, items: list[tuple[Event, EventMapping]]) -> None:
        """Record a batch of events, then hand each to every tracing plugin, in order."""
        self.recorder.record_many(items)
        tracers = self._tracers.resolve()
        if not tracers:
            return
        for event, mapping in items:
            for plugin, function, argnames in tracers:
                try:
                    function(*[{"event": event, "mapping": mapping}[n] for n in argnames])
                except Exception as exc:
                    self._on_error(plugin, exc)


class LogsBackend:
    """Writes one log record per event to ``logger`` (default ``metricache.events``).

    The level is INFO unless the mapping's metadata names another in ``log_level``
    (``"warning"``, ``"error"`` ...). The message is ``event NAME key=value ...``;
    the record's ``extra`` fields are ``event_name``, ``event_payload`` (a dict),
    ``event_priority``, ``event_timestamp`` and ``event_metadata``, for structured
    log handlers.
    """

    name = "logs"

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger(EVENT_LOGGER)

    def deliver_many(self, items: list[tuple[Event, EventMapping]]) -> None:
        """Log a batch of events, in order."""
        for event, mapping in items:
            self.deliver(event, mapping)

    def deliver(self, event: Event, mapping: EventMapping) -> None:
        """Log ``event`` at its mapping's level."""
        level = _level(mapping.metadata.get("log_level"))
        if not self.logger.isEnabledFor(level):
            return
        fields = " ".join(f"{key}={value!r}" for key, value in event.payload.items())
        self.logger.log(
            level,
            "event %s %s",
            event.name,
            fields,
            extra={
                "event_name": event.name,
                "event_payload": dict(event.payload),
                "event_priority": mapping.priority.value,
                "event_timestamp": event.timestamp,
                "event_metadata": dict(mapping.metadata),
            },
        )


def _level(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        level = logging.getLevelName(value.upper())
        if isinstance(level, int):
            return level
    return logging.INFO
