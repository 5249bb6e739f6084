"""metricache-celery: Celery's task lifecycle as metricache events.

In the module that defines the Celery app (imported by workers and producers)::

    import metricache
    import metricache_celery

    metricache_celery.connect(metricache.start())

Tasks then publish ``task.enqueued``, ``task.started``, ``task.completed``,
``task.failed``, ``task.retried`` and ``task.revoked`` through the default event
router; see :mod:`metricache_celery.source` and ``docs/sources/celery.md``.
"""

from __future__ import annotations

from metricache_celery.source import STATUS_BY_EVENT, CelerySource, connect

__all__ = ["STATUS_BY_EVENT", "CelerySource", "connect"]
