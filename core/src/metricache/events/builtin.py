"""The built-in event plugin: the default event -> metric handler.

Registered through the core's entry point ``events`` like any third-party plugin,
so ``METRICACHE_PLUGINS`` can leave it out (events then make no metrics unless
another plugin handles them).
"""

from __future__ import annotations

from metricache.events.event import Event
from metricache.events.handlers import rules_for
from metricache.hookspecs import hookimpl
from metricache.registry import Registry

__all__ = ["metricache_handle_event"]


@hookimpl
def metricache_handle_event(event: Event, registry: Registry) -> None:
    """Apply the registry's rules (conventions and configured rules) to ``event``."""
    rules_for(registry).handle(event)
