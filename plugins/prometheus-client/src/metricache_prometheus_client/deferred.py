"""The bridge the plugin's hook offers, made only once prometheus_client is in use.

Loading the plugin must cost nothing to a program that never imports
prometheus_client (and to every ``metricache`` command): the hook answers with a
:class:`DeferredBridge`, which imports neither prometheus_client nor the bridge until
it is called in a process that has imported prometheus_client. In a process that
has, it makes the bridge of ``prometheus_client.REGISTRY`` at its first call, and
delegates to it from then on.

Fork: a program can import prometheus_client and record values after
:func:`metricache.start` and before the fork, with no sync in between, so that the
bridge does not exist yet at the fork. This module's own fork handler (cheap, and
registered when the plugin loads) then makes the bridge in the child and restarts the
inherited values, as the bridge's handler does for a bridge that existed.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import weakref
from typing import TYPE_CHECKING

from metricache.registry import REGISTRY, Registry

if TYPE_CHECKING:
    from metricache.snapshot import Family

    from metricache_prometheus_client.bridging import Bridge

__all__ = ["DeferredBridge", "collectors_for"]

log = logging.getLogger("metricache.prometheus_client")

_lock = threading.Lock()
_offered: weakref.WeakSet[DeferredBridge] = weakref.WeakSet()


class DeferredBridge:
    """``metricache.REGISTRY``'s collector of ``prometheus_client.REGISTRY``, made on use.

    It reports the families of the bridge it made. If a bridge of that pair existed
    already (a program called :func:`~metricache_prometheus_client.bridge` itself), it
    reports nothing, so that no metric is read twice.
    """

    def __init__(self, into: Registry) -> None:
        self._into = weakref.ref(into)
        self._made: Bridge | None = None
        self._settled = False
        self._lock = threading.Lock()

    def resolve(self) -> Bridge | None:
        """Return the bridge this collector reports (None: prometheus_client is not in use)."""
        if not self._settled and "prometheus_client" in sys.modules:
            with self._lock:
                into = self._into()
                if not self._settled and into is not None:
                    from prometheus_client import REGISTRY as PROMETHEUS_REGISTRY

                    from metricache_prometheus_client.bridging import bridge_for

                    made, created = bridge_for(PROMETHEUS_REGISTRY, into)
                    self._made = made if created else None
                    self._settled = True
        return self._made

    def __call__(self) -> list[Family]:
        """Return the bridge's families (none before prometheus_client is imported)."""
        made = self.resolve()
        if made is None:
            return []
        from metricache_prometheus_client.bridging import bridges

        if made not in bridges():  # unbridged since
            return []
        return made()

    def __repr__(self) -> str:
        return f"<DeferredBridge of prometheus_client.REGISTRY, made: {self._made!r}>"

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        if self._settled or "prometheus_client" not in sys.modules:
            return  # made before the fork: the bridge's own fork handler restarts it
        made = self.resolve()
        if made is not None:
            made._after_fork_in_child()


def collectors_for(into: Registry) -> list[DeferredBridge]:
    """The ``metricache_collectors`` hook's answer: a :class:`DeferredBridge`, once.

    Only for ``metricache.REGISTRY`` (the registry :func:`metricache.start` syncs by
    default): bridging one prometheus_client registry into two synced registries would
    count its values twice. A program bridges other registries with
    :func:`~metricache_prometheus_client.bridge`.
    """
    if into is not REGISTRY:
        return []
    with _lock:
        if any(offered._into() is into for offered in _offered):
            return []
        deferred = DeferredBridge(into)
        _offered.add(deferred)
        return [deferred]


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()
    for deferred in list(_offered):
        try:
            deferred._after_fork_in_child()
        except Exception:  # never break a fork
            log.exception("restarting the prometheus_client values after fork failed")


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
