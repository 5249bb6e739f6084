"""Installing the collectors that plugins offer through the ``metricache_collectors`` hook.

Every place that makes a registry's numbers leave the process calls
:func:`install_collectors` on it: :func:`metricache.start`, the syncer when it
starts, ``metricache serve``, ``metricache export``, ``metricache sync`` and the
export coordinator. It is idempotent, so they can all call it: the hook runs once
per registry (and once more only after the plugins were loaded again).
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import TYPE_CHECKING

from metricache.plugins import call_each, get_plugin_manager

if TYPE_CHECKING:
    import pluggy

    from metricache.registry import Registry

__all__ = ["install_collectors"]

log = logging.getLogger("metricache.plugins")

_lock = threading.Lock()
# registry -> the plugin manager whose collectors it holds. Weak keys: a registry
# that is gone never blocks another one that happens to get the same id().
_installed: weakref.WeakKeyDictionary[Registry, pluggy.PluginManager] = weakref.WeakKeyDictionary()


def install_collectors(registry: Registry) -> None:
    """Register every collector the plugins offer into ``registry``, once.

    Calls the ``metricache_collectors`` hook with ``registry`` and registers each
    callable it returns with :meth:`~metricache.registry.Registry.register_collector`.
    A second call for the same registry does nothing, so a collector never reports
    its families twice. A plugin whose hook raises, or answers with something that is
    not a list of callables, is logged and left out; the others are installed.
    """
    manager = get_plugin_manager()
    with _lock:
        if _installed.get(registry) is manager:
            return
        _installed[registry] = manager

    def failed(plugin: str, exc: BaseException) -> None:
        log.warning(
            "metricache plugin %r: metricache_collectors raised %s: %s; its collectors are "
            "left out",
            plugin,
            type(exc).__name__,
            exc,
        )

    for plugin, answer in call_each("metricache_collectors", {"registry": registry}, failed):
        try:
            collectors = list(answer or ())
            if not all(callable(c) for c in collectors):
                raise TypeError("it returned something that is not a callable")
        except TypeError as exc:
            failed(plugin, exc)
            continue
        for collector in collectors:
            registry.register_collector(collector)
