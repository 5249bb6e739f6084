"""metricache-dramatiq: Dramatiq's message lifecycle as metricache events.

In the module that defines the broker (imported by workers and producers)::

    import metricache
    import metricache_dramatiq

    broker = RedisBroker(url=...)
    metricache_dramatiq.install(broker, metricache.start())
    dramatiq.set_broker(broker)

Messages then publish ``task.enqueued``, ``task.started``, ``task.completed``,
``task.retried``, ``task.failed`` and ``task.revoked`` through the default event
router; see :mod:`metricache_dramatiq.middleware` and ``docs/sources/dramatiq.md``.
"""

from __future__ import annotations

from metricache_dramatiq.middleware import STATUS_BY_EVENT, EventsMiddleware, install

__all__ = ["STATUS_BY_EVENT", "EventsMiddleware", "install"]
