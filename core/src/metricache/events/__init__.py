"""Event routing: lifecycle events to metrics, traces and logs.

An application publishes named events (``task.completed``) with a payload through an
:class:`EventRouter` — usually the default one, which :func:`metricache.start` builds
from the configuration, with :func:`publish`. A mapping per event name or glob says
which backends receive it, how many are kept (sampling, decided once per event),
and how urgent it is when a slow backend's queue is full. Events that reach the
metrics backend become counters and histograms through the
``metricache_handle_event`` hook (the built-in handler follows the
``<entity>.<status>`` conventions and the configured rules). See ``docs/events.md``.
"""

from __future__ import annotations

from metricache.events.backends import TraceRecord, TraceRecorder
from metricache.events.default import default_router, install, publish
from metricache.events.defaults import DEFAULT_MAPPINGS
from metricache.events.event import Event
from metricache.events.mapping import Backend, EventMapping, MappingTable, Priority
from metricache.events.queue import PriorityQueue, PutResult
from metricache.events.router import BackendStats, EventRouter, RoutingStats
from metricache.events.rules import DEFAULT_LABELS, MetricRule, RuleSet
from metricache.events.sampling import Sampler, key_fraction
from metricache.events.settings import EventRoutingConfig, EventSettings, event_settings

__all__ = [
    "DEFAULT_LABELS",
    "DEFAULT_MAPPINGS",
    "Backend",
    "BackendStats",
    "Event",
    "EventMapping",
    "EventRouter",
    "EventRoutingConfig",
    "EventSettings",
    "MappingTable",
    "MetricRule",
    "Priority",
    "PriorityQueue",
    "PutResult",
    "RoutingStats",
    "RuleSet",
    "Sampler",
    "TraceRecord",
    "TraceRecorder",
    "default_router",
    "event_settings",
    "install",
    "key_fraction",
    "publish",
]
