"""The built-in event plugin: the default event -> metric handler.

It implements both event-handler hooks: ``metricache_event_recorder`` (what the
router calls for each kept event, a function per event name) and
``metricache_handle_event`` (for whoever calls the hook with an Event).

Registered through the core's entry point ``events`` like any third-party plugin,
so ``METRICACHE_PLUGINS`` can leave it out (events then make no metrics unless
another plugin handles them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from metricache.events.event import Event
from metricache.events.handlers import rules_for
from metricache.hookspecs import hookimpl
from metricache.registry import Registry

__all__ = ["metricache_event_recorder", "metricache_handle_event"]


@hookimpl
def metricache_handle_event(event: Event, registry: Registry) -> None:
    """Apply the registry's rules (conventions and configured rules) to ``event``."""
    rules_for(registry).handle(event)


@hookimpl
def metricache_event_recorder(
    event_name: str, registry: Registry
) -> Callable[[Mapping[str, Any]], None] | None:
    """The same rules, worked out once per event name (the router's fast path)."""
    return rules_for(registry).recorder(event_name)
