"""The event router: one entry point, :meth:`EventRouter.publish`, for lifecycle events.

For each event the router finds the mapping that applies (the last added that
matches its name), decides **once** whether to keep it (the mapping's sampling
rate, with an optional sampling key), and hands the kept event to the mapping's
backends:

* ``metrics`` at once, in the publisher's thread (an in-memory update);
* ``traces`` and ``logs`` through one bounded priority queue each, drained by a
  worker thread, so a slow tracer or log handler delays no publisher. A full
  queue sheds low before normal before high; critical events are never shed
  silently. Every shed event is counted in ``metricache_events_dropped_total``
  (labels ``priority`` and ``backend``) and in :meth:`EventRouter.stats`.

Reconfiguring (:meth:`~EventRouter.map`, :meth:`~EventRouter.map_many`,
:meth:`~EventRouter.unmap`, :meth:`~EventRouter.replace`) builds a new mapping table
and swaps it in; a publisher reads the table once per event, so it sees the old
table or the new one, never a mixture, and never waits for a writer.

Nothing here raises into the publisher: a handler or plugin that fails is logged
(once per plugin and error type at warning level, then at debug) and counted in
``metricache_event_handler_errors_total`` (labels ``backend`` and ``plugin``).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import weakref
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from metricache.events.backends import (
    LogsBackend,
    MetricsBackend,
    MetricsPlan,
    TraceRecorder,
    TracesBackend,
)
from metricache.events.defaults import DEFAULT_MAPPINGS
from metricache.events.event import Event, make_event
from metricache.events.handlers import configure_rules
from metricache.events.mapping import (
    Backend,
    EventMapping,
    MappingTable,
    Priority,
    parse_backend,
)
from metricache.events.queue import PriorityQueue
from metricache.events.rules import RuleSet
from metricache.events.sampling import Sampler
from metricache.metrics import Counter
from metricache.registry import REGISTRY, Registry

if TYPE_CHECKING:
    from metricache.config import Config
    from metricache.events.settings import EventSettings

__all__ = ["BackendStats", "EventRouter", "RoutingStats"]

log = logging.getLogger("metricache.events")

_SLOW = (Backend.TRACES, Backend.LOGS)
_BACKENDS = tuple(Backend)
_INDEX = {backend: index for index, backend in enumerate(_BACKENDS)}
_BATCH = 256  # events a traces or logs worker takes from its queue at once
_ROUTES_LIMIT = 4096
_NO_PLAN = MetricsPlan()
_EMPTY: Mapping[str, Any] = {}


class _Deliverer(Protocol):
    def deliver_many(self, items: list[tuple[Event, EventMapping]]) -> None: ...


@attrs.frozen
class BackendStats:
    """What one backend received.

    ``routed`` kept events were sent to it, ``delivered`` reached it (its handlers
    ran), ``dropped`` were shed by its queue (by priority in ``dropped_by_priority``),
    and ``errors`` counts handler or plugin failures.
    """

    routed: int = 0
    delivered: int = 0
    dropped: int = 0
    errors: int = 0
    dropped_by_priority: Mapping[str, int] = attrs.field(factory=dict)


@attrs.frozen
class RoutingStats:
    """Counts since the router was created.

    ``published`` = ``unrouted`` (no enabled mapping) + ``sampled_out`` + ``kept``.
    ``backends`` has one :class:`BackendStats` per backend name.
    """

    published: int
    unrouted: int
    sampled_out: int
    kept: int
    backends: Mapping[str, BackendStats]


def _dropped_counter(registry: Registry) -> Counter:
    return Counter(
        "metricache_events_dropped",
        "Kept events a full backend queue shed, by priority and backend",
        ["priority", "backend"],
        registry=registry,
    )


def _errors_counter(registry: Registry) -> Counter:
    return Counter(
        "metricache_event_handler_errors",
        "Event handler and plugin failures, by backend and plugin",
        ["backend", "plugin"],
        registry=registry,
    )


class _Counts:
    """The router's counts, under one lock (one acquisition per published event).

    ``published`` is not counted: it is ``unrouted + sampled_out + kept``. The
    metrics backend delivers before ``publish`` returns, so its ``delivered`` is its
    ``routed``, counted in the same step.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.unrouted = 0
        self.sampled_out = 0
        self.kept = 0
        self.routed = [0] * len(_BACKENDS)
        self.delivered = dict.fromkeys(Backend, 0)
        self.errors = dict.fromkeys(Backend, 0)
        self.dropped = {(b, p): 0 for b in Backend for p in Priority}


class _Route:
    """What publishing one event name does under one mapping table, worked out once.

    ``mapping``: the mapping that applies (None: unrouted). ``rate``: its sampling
    rate. ``metrics``: whether it goes to the metrics backend, and ``plan`` how (for
    the plugins of ``generation``, worked out on the first kept event). ``lanes``: the
    queues of the slow backends it goes to. ``routed``: the indexes of its backends
    in the routed counts.
    """

    __slots__ = ("generation", "lanes", "mapping", "metrics", "plan", "rate", "routed")

    def __init__(self, mapping: EventMapping | None, lanes: Mapping[Backend, _Lane]) -> None:
        if mapping is not None and not (mapping.enabled and mapping.backends):
            mapping = None
        backends = mapping.backends if mapping is not None else ()
        self.mapping = mapping
        self.rate = float(mapping.sampling_rate) if mapping is not None else 0.0
        self.metrics = Backend.METRICS in backends
        self.lanes = tuple(lanes[b] for b in backends if b in lanes)
        self.routed = tuple(_INDEX[b] for b in backends)
        self.plan = _NO_PLAN
        self.generation = -1


class _Routing:
    """A mapping table and the routes worked out from it (swapped in together)."""

    __slots__ = ("routes", "table")

    def __init__(self, table: MappingTable) -> None:
        self.table = table
        self.routes: dict[str, _Route] = {}


class _Lane:
    """A slow backend's bounded queue and the worker thread that drains it, in batches."""

    def __init__(
        self,
        router: EventRouter,
        backend: Backend,
        deliverer: _Deliverer,
        capacity: int,
        critical_wait: float,
    ) -> None:
        self.router = router
        self.backend = backend
        self.deliverer = deliverer
        self.capacity = capacity
        self.critical_wait = critical_wait
        self._start_lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self.queue: PriorityQueue[tuple[Event, EventMapping]] = PriorityQueue(
            self.capacity, critical_wait=self.critical_wait
        )
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    def _after_fork(self) -> None:
        # The parent's queued events are the parent's to deliver; its locks may be held.
        self._start_lock = threading.Lock()
        self._reset()

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._work, name=f"metricache-events-{self.backend.value}", daemon=True
                )
                self._thread.start()

    def _work(self) -> None:
        queue = self.queue
        while True:
            items = queue.get_many(_BATCH)
            if not items:
                return
            try:
                self.deliverer.deliver_many(items)
            except Exception as exc:
                self.router._error(self.backend, "metricache", exc)
            finally:
                self.router._delivered(self.backend, len(items))
                queue.task_done(len(items))

    def flush(self, timeout: float | None) -> bool:
        return self._thread is None or self.queue.join(timeout)

    def close(self, timeout: float | None) -> None:
        self.flush(timeout)
        left = self.queue.close()
        for (event, _), priority in left:
            self.router._dropped(self.backend, (priority,), event, refused=False)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)


class EventRouter:
    """Routes published events to the metrics, traces and logs backends.

    ``registry``: where event metrics (and the router's own counts) are recorded.
    ``mappings``: the initial mappings (default: :data:`DEFAULT_MAPPINGS`).
    ``rules``: the metric rules of ``registry``'s events (default: leave the
    registry's rules as they are, which are the conventions unless configured).
    ``queue_size``: the capacity of the traces and logs queues.
    ``critical_wait``: seconds a critical event may wait for room in a queue full of
    critical events before it is dropped (counted and logged at error level).
    ``trace_capacity``: the in-memory trace recorder's size. ``sampler``: the
    sampling decision (a seeded :class:`Sampler` makes tests reproducible).
    ``logger``: the logs backend's logger (default ``metricache.events``).
    """

    def __init__(
        self,
        registry: Registry = REGISTRY,
        mappings: Iterable[EventMapping] | None = None,
        *,
        rules: RuleSet | None = None,
        queue_size: int = 10_000,
        critical_wait: float = 0.1,
        trace_capacity: int = 10_000,
        sampler: Sampler | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        if critical_wait < 0:
            raise ValueError("critical_wait must be >= 0 seconds")
        self.registry = registry
        self._write_lock = threading.Lock()
        self._routing = _Routing(MappingTable(DEFAULT_MAPPINGS if mappings is None else mappings))
        if rules is not None:
            configure_rules(registry, rules)
        self._sampler = sampler or Sampler()
        self._keep = self._sampler.keep
        self._counts = _Counts()
        self._dropped_total: Counter = registry.self_metric("events_dropped", _dropped_counter)
        self._errors_total: Counter = registry.self_metric("event_errors", _errors_counter)
        self._reported: set[tuple[Backend, str, str]] = set()
        self.traces = TraceRecorder(trace_capacity)
        """The bounded in-memory recorder of trace events (latest ``trace_capacity``)."""
        self._metrics = MetricsBackend(registry, self._on_error(Backend.METRICS))
        deliverers: dict[Backend, _Deliverer] = {
            Backend.TRACES: TracesBackend(self.traces, self._on_error(Backend.TRACES)),
            Backend.LOGS: LogsBackend(logger),
        }
        self._lanes = {
            backend: _Lane(self, backend, deliverers[backend], queue_size, critical_wait)
            for backend in _SLOW
        }
        _routers.add(self)
        atexit.register(_close_at_exit, weakref.ref(self))

    @classmethod
    def from_config(
        cls,
        config: Config | str | os.PathLike[str] | None = None,
        registry: Registry = REGISTRY,
        **options: Any,
    ) -> EventRouter:
        """Build a router as the configuration says (a Config, a file path, or found).

        The mappings are the defaults (unless ``event_routing.default_mappings`` is
        false) followed by the ``[[events]]`` tables; the rules are
        ``[event_routing]``'s. An invalid or contradictory configuration raises
        :class:`~metricache.errors.ConfigError` naming each problem's path (see
        :func:`~metricache.events.settings.event_settings`). ``options`` go to the
        constructor (``sampler`` ...).
        """
        from metricache.config import Config, load_config
        from metricache.events.settings import event_settings

        if not isinstance(config, Config):
            config = load_config(config)
        return cls.from_settings(event_settings(config), registry, **options)

    @classmethod
    def from_settings(
        cls, settings: EventSettings, registry: Registry = REGISTRY, **options: Any
    ) -> EventRouter:
        """Build a router from validated :class:`~metricache.events.settings.EventSettings`."""
        routing = settings.routing
        built: dict[str, Any] = {
            "queue_size": routing.queue_size,
            "critical_wait": routing.critical_wait,
            "trace_capacity": routing.trace_capacity,
        }
        built.update(options)
        return cls(registry, settings.mappings, rules=settings.rule_set(), **built)

    # -- configuration -------------------------------------------------------------------

    def map(
        self,
        event: str | EventMapping,
        backends: Iterable[Backend | str] | Backend | str = (Backend.METRICS,),
        *,
        enabled: bool = True,
        sampling_rate: float = 1.0,
        priority: Priority | str = Priority.NORMAL,
        metadata: Mapping[str, object] | None = None,
    ) -> EventMapping:
        """Add a mapping (or replace the one of the same pattern); return it.

        ``router.map("task.*", ["metrics", "logs"], sampling_rate=0.5)``, or
        ``router.map(EventMapping(...))``. Invalid values raise ``ValueError``.
        """
        if isinstance(event, EventMapping):
            mapping = event
        else:
            mapping = EventMapping(
                event=event,
                backends=backends,
                enabled=enabled,
                sampling_rate=sampling_rate,
                priority=priority,
                metadata=metadata or {},
            )
        self.map_many([mapping])
        return mapping

    def map_many(
        self, mappings: Iterable[EventMapping | Mapping[str, Any]]
    ) -> tuple[EventMapping, ...]:
        """Add several mappings at once (all or none): EventMapping objects or tables.

        A table has the keys of an ``[[events]]`` entry:
        ``{"event": "step.*", "backends": ["traces"], "priority": "low"}``. An invalid
        one raises ``ValueError`` naming its position, and nothing is added.
        """
        built = []
        for index, item in enumerate(mappings):
            if isinstance(item, EventMapping):
                built.append(item)
                continue
            try:
                built.append(EventMapping(**item))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"mappings[{index}]: {exc}") from None
        with self._write_lock:
            self._routing = _Routing(self._routing.table.with_mappings(built))
        return tuple(built)

    def unmap(self, *patterns: str) -> None:
        """Remove the mappings of these patterns (exactly as mapped)."""
        with self._write_lock:
            self._routing = _Routing(self._routing.table.without(patterns))

    def replace(self, mappings: Iterable[EventMapping]) -> None:
        """Replace every mapping (the defaults included) with ``mappings``."""
        routing = _Routing(MappingTable(mappings))
        with self._write_lock:
            self._routing = routing

    @property
    def mappings(self) -> tuple[EventMapping, ...]:
        """Every mapping, in the order added."""
        return self._routing.table.mappings

    # -- queries ---------------------------------------------------------------------------

    def mapping_for(self, name: str) -> EventMapping | None:
        """Return the mapping that applies to the event ``name``, or None."""
        return self._routing.table.lookup(name)

    def routes_to(self, name: str, backend: Backend | str) -> bool:
        """Whether events named ``name`` can reach ``backend`` (mapped, enabled, rate > 0)."""
        mapping = self._routing.table.lookup(name)
        return mapping is not None and mapping.routes_to(backend)

    def routes_to_metrics(self, name: str) -> bool:
        """Whether events named ``name`` can reach the metrics backend."""
        return self.routes_to(name, Backend.METRICS)

    def routes_to_traces(self, name: str) -> bool:
        """Whether events named ``name`` can reach the traces backend."""
        return self.routes_to(name, Backend.TRACES)

    def routes_to_logs(self, name: str) -> bool:
        """Whether events named ``name`` can reach the logs backend."""
        return self.routes_to(name, Backend.LOGS)

    def events_for_backend(self, backend: Backend | str) -> list[str]:
        """Return the patterns of the active mappings that route to ``backend``.

        An unknown backend name raises ``ValueError`` listing the known ones.
        """
        wanted = parse_backend(backend)
        return [m.event for m in self._routing.table.mappings if m.routes_to(wanted)]

    def stats(self) -> RoutingStats:
        """Return the routing counts so far."""
        counts = self._counts
        with counts.lock:
            backends = {
                backend.value: BackendStats(
                    routed=counts.routed[_INDEX[backend]],
                    delivered=(
                        counts.routed[_INDEX[backend]]
                        if backend is Backend.METRICS
                        else counts.delivered[backend]
                    ),
                    dropped=sum(counts.dropped[backend, p] for p in Priority),
                    errors=counts.errors[backend],
                    dropped_by_priority={p.value: counts.dropped[backend, p] for p in Priority},
                )
                for backend in Backend
            }
            return RoutingStats(
                published=counts.unrouted + counts.sampled_out + counts.kept,
                unrouted=counts.unrouted,
                sampled_out=counts.sampled_out,
                kept=counts.kept,
                backends=backends,
            )

    # -- publishing ------------------------------------------------------------------------

    def publish(
        self,
        name: str,
        payload: Mapping[str, Any] | None = None,
        *,
        sampling_key: object = None,
    ) -> bool:
        """Route the event ``name``; return whether it was kept.

        The sampling decision is made here, once: with ``sampling_key`` (a task id)
        it is the same for every event of that key, in every process. Never raises
        for a backend's sake; only a non-string ``name`` is a programmer error.
        """
        # What this name does under the current table was worked out on its first
        # event: here, one lock for the counts, one Event, then the backends.
        route = self._routing.routes.get(name)
        if route is None:
            route = self._route(name)
        counts = self._counts
        mapping = route.mapping
        if mapping is None:
            with counts.lock:
                counts.unrouted += 1
            return False
        if route.rate < 1.0 and not self._keep(route.rate, sampling_key):
            with counts.lock:
                counts.sampled_out += 1
            return False
        with counts.lock:
            counts.kept += 1
            routed = counts.routed
            for index in route.routed:
                routed[index] += 1
        event = None
        if route.metrics:
            try:
                metrics = self._metrics
                if route.generation != metrics.generation():  # first event, or new plugins
                    route.plan = metrics.plan(name)
                    route.generation = metrics.generation()
                plan = route.plan
                for plugin, record in plan.recorders:
                    try:
                        record(payload or _EMPTY)
                    except Exception as exc:
                        self._error(Backend.METRICS, plugin, exc)
                if plan.handlers:
                    event = make_event(name, payload)
                    metrics.deliver(event, plan)
            except Exception as exc:  # the plugin manager itself failed to load
                self._error(Backend.METRICS, "metricache", exc)
        if route.lanes:
            if event is None:
                event = make_event(name, payload)
            item = (event, mapping)
            for lane in route.lanes:
                if lane._thread is None:
                    lane._start()
                result = lane.queue.put(item, mapping.priority)  # _Lane.offer, unrolled
                if result.shed:
                    self._dropped(lane.backend, result.shed, event, refused=not result.accepted)
        return True

    def _route(self, name: str) -> _Route:
        """Work out (and remember, for up to 4096 names per table) what ``name`` does."""
        if not isinstance(name, str):
            raise TypeError(f"an event name is a str, got {type(name).__name__}")
        routing = self._routing
        route = _Route(routing.table.lookup(name), self._lanes)
        if len(routing.routes) < _ROUTES_LIMIT:
            routing.routes[name] = route
        return route

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Wait until the traces and logs queues are drained; return whether they were."""
        return all(lane.flush(timeout) for lane in self._lanes.values())

    def close(self, timeout: float | None = 5.0) -> None:
        """Deliver what is queued (waiting at most ``timeout`` seconds), then stop.

        Events still queued after that are dropped and counted. Publishing after
        close counts traces and logs events as dropped; metrics still work.
        """
        for lane in self._lanes.values():
            lane.close(timeout)

    def __enter__(self) -> EventRouter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- accounting ------------------------------------------------------------------------

    def _delivered(self, backend: Backend, count: int = 1) -> None:
        with self._counts.lock:
            self._counts.delivered[backend] += count

    def _dropped(
        self, backend: Backend, priorities: tuple[Priority, ...], event: Event, *, refused: bool
    ) -> None:
        with self._counts.lock:
            for priority in priorities:
                self._counts.dropped[backend, priority] += 1
        for priority in priorities:
            self._dropped_total.labels(priority.value, backend.value).inc()
            if priority is Priority.CRITICAL:
                log.error(
                    "critical event %r dropped: the %s queue stayed full of critical events "
                    "(counted in metricache_events_dropped_total)",
                    event.name,
                    backend.value,
                )

    def _on_error(self, backend: Backend) -> Any:
        def report(plugin: str, exc: BaseException) -> None:
            self._error(backend, plugin, exc)

        return report

    def _error(self, backend: Backend, plugin: str, exc: BaseException) -> None:
        with self._counts.lock:
            self._counts.errors[backend] += 1
        self._errors_total.labels(backend.value, plugin).inc()
        key = (backend, plugin, type(exc).__name__)
        if key in self._reported:
            log.debug("%s event handler of plugin %r failed: %r", backend.value, plugin, exc)
            return
        self._reported.add(key)
        log.warning(
            "%s event handler of plugin %r failed: %s: %s (counted in "
            "metricache_event_handler_errors_total; further %s errors of it are logged at "
            "debug level)",
            backend.value,
            plugin,
            type(exc).__name__,
            exc,
            type(exc).__name__,
        )

    def _after_fork(self) -> None:
        self._write_lock = threading.Lock()
        self._counts.lock = threading.Lock()
        self.traces._after_fork()
        for lane in self._lanes.values():
            lane._after_fork()


_routers: weakref.WeakSet[EventRouter] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for router in list(_routers):
        router._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _close_at_exit(ref: weakref.ReferenceType[EventRouter]) -> None:
    router = ref()
    if router is not None:
        router.close(timeout=2.0)
