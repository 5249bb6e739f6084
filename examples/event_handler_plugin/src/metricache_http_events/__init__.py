"""Turn ``http.request`` events into request metrics.

A worked example of an event handler plugin
(``docs/plugins/writing-an-event-handler.md``). For every ``http.request`` event
routed to the metrics backend it counts ``http_requests_total{method,status_class}``
and observes ``duration`` in ``http_request_duration_seconds{method}``. The event
router's built-in conventions cannot do this: they take label values from payload
keys as they are, while here the status is reduced to its class (``2xx``, ``5xx``)
and unusual methods to ``OTHER``, which keeps the number of series small whatever
clients send.
"""

from __future__ import annotations

import math
import weakref

from metricache import Counter, Histogram, Registry, hookimpl
from metricache.events import Event

__all__ = ["EVENT", "METHODS", "metricache_handle_event", "status_class"]

EVENT = "http.request"
"""The event this plugin handles."""
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""Methods kept as they are; any other becomes ``OTHER``."""

_metrics: weakref.WeakKeyDictionary[Registry, tuple[Counter, Histogram]] = (
    weakref.WeakKeyDictionary()
)


def _metrics_of(registry: Registry) -> tuple[Counter, Histogram]:
    found = _metrics.get(registry)
    if found is None:
        # Declaring twice from two threads is harmless: an identical declaration
        # shares the first one's series.
        found = (
            Counter(
                "http_requests",
                "HTTP requests by method and status class",
                ["method", "status_class"],
                registry=registry,
            ),
            Histogram(
                "http_request_duration_seconds",
                "Time to answer an HTTP request",
                ["method"],
                registry=registry,
            ),
        )
        _metrics[registry] = found
    return found


def status_class(status: object) -> str:
    """Return ``2xx`` for 200 to 299 (and so on), ``unknown`` for anything else."""
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        return "unknown"
    return f"{status // 100}xx"


@hookimpl
def metricache_handle_event(event: Event, registry: Registry) -> None:
    """Count an ``http.request`` event and observe its duration; ignore other events."""
    if event.name != EVENT:
        return
    requests, durations = _metrics_of(registry)
    method = str(event.payload.get("method", "")).upper()
    if method not in METHODS:
        method = "OTHER"
    requests.labels(method, status_class(event.payload.get("status"))).inc()
    duration = event.payload.get("duration")
    if (
        isinstance(duration, (int, float))
        and not isinstance(duration, bool)
        and math.isfinite(duration)
        and duration >= 0
    ):
        durations.labels(method).observe(duration)
