"""The default event router, and :func:`publish`, which publishes to it.

:func:`metricache.start` builds a router from the configuration (``[[events]]`` and
``[event_routing]``, the defaults where absent) on the registry it syncs, and
installs it here; from then on ``metricache.events.publish(name, payload)`` routes
through it, from any module, without passing a router around.

**Before** :func:`metricache.start`, :func:`publish` routes with the default
mappings and rules into the default registry: a router with the defaults is built
on first use. Nothing is buffered and nothing is lost — what it records is in the
registry, and the syncer that ``start()`` runs later sends it like any other
change — but the configuration's mappings, sampling and rules apply only from
``start()`` on. ``start()`` closes that first router (delivering what its traces
and logs queues hold) when it installs the configured one.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from metricache.events.router import EventRouter
from metricache.registry import REGISTRY

__all__ = ["default_router", "install", "publish"]

_router: EventRouter | None = None
_owned = False  # whether this module built the installed router (and may close it)
_lock = threading.Lock()


def default_router() -> EventRouter:
    """Return the installed router; before :func:`metricache.start`, one with the defaults."""
    global _router, _owned
    router = _router
    if router is None:
        with _lock:
            if _router is None:
                _router, _owned = EventRouter(REGISTRY), True
            router = _router
    return router


def install(router: EventRouter, *, owned: bool = False) -> EventRouter | None:
    """Make ``router`` the default; return the one it replaces.

    ``owned``: the caller hands the router over, so the next :func:`install` closes it
    (:func:`metricache.start` does). A router built here before ``start()`` is closed
    when replaced; one installed by the application is left open for it to close.
    """
    global _router, _owned
    with _lock:
        previous, previous_owned = _router, _owned
        _router, _owned = router, owned
    if previous is not None and previous is not router and previous_owned:
        previous.close(timeout=2.0)
    return previous


def publish(
    name: str, payload: Mapping[str, Any] | None = None, *, sampling_key: object = None
) -> bool:
    """Publish the event ``name`` through the default router; return whether it was kept.

    See :meth:`EventRouter.publish <metricache.events.router.EventRouter.publish>`.
    """
    router = _router
    if router is None:
        router = default_router()
    return router.publish(name, payload, sampling_key=sampling_key)
