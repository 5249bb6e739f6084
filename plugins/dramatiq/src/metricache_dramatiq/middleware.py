"""A Dramatiq middleware that publishes each message's life as metricache events.

Dramatiq calls a middleware at every step of a message's life, in every process
that sends or runs one. :class:`EventsMiddleware` publishes through the default
event router (``metricache.events.publish``), so the ``[[events]]`` mappings,
sampling and rules apply:

=============================  ==================  ==================================
Dramatiq hook                  event               status
=============================  ==================  ==================================
``after_enqueue``              ``task.enqueued``   ``enqueued`` (a retry is enqueued
                                                   again, by the worker)
``before_process_message``     ``task.started``    ``started``
``after_process_message``      ``task.completed``  ``success``, with ``duration``
                               ``task.retried``    ``retry``: it raised and the
                                                   Retries middleware enqueued it
                                                   again, with ``duration``
                               ``task.failed``     ``failure``: it raised and will
                                                   not run again, with ``duration``
``after_skip_message``         ``task.revoked``    ``skipped``: a middleware skipped
                                                   it (too old for ``max_age``)
=============================  ==================  ==================================

Every payload has ``queue`` (the queue's own name, never its delay queue), ``task``
(the actor's name), ``status`` and ``task_id`` (the message id), and the same values
under the default label keys (``namespace`` = queue, ``handler`` = actor), so the
conventional ``task_<status>_total`` counters and ``task_duration_seconds`` work
without configuration. The message id is the sampling key: every event of one
message, its retries included, is kept or dropped together.

Dramatiq's worker processes end with ``os._exit`` (they are ``multiprocessing``
children), which skips ``atexit`` and the syncer's final sync; the middleware stops
the syncer it was given, with a final sync, when the worker shuts down.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import dramatiq
import metricache.events
from dramatiq.common import q_name
from dramatiq.middleware import Retries
from metricache.sync import Syncer

__all__ = ["STATUS_BY_EVENT", "EventsMiddleware", "install"]

STATUS_BY_EVENT = {
    "task.enqueued": "enqueued",
    "task.started": "started",
    "task.completed": "success",
    "task.retried": "retry",
    "task.failed": "failure",
    "task.revoked": "skipped",
}
"""The ``status`` each event carries."""

Publish = Callable[..., bool]


class EventsMiddleware(dramatiq.Middleware):
    """Publishes Dramatiq's message lifecycle (see the module documentation).

    ``syncer``: the syncer to stop, with a final sync, when a worker shuts down (pass
    what :func:`metricache.start` returned). ``publish``: where events go (default:
    ``metricache.events.publish``). Add it with :func:`install`, which puts it where
    it sees the Retries middleware's decision.
    """

    def __init__(self, syncer: Syncer | None = None, publish: Publish | None = None) -> None:
        self.syncer = syncer
        self._publish = publish or metricache.events.publish
        # message id -> (perf_counter when it began, retries before this run)
        self._started: dict[str, tuple[float, int]] = {}
        self._delayed: set[str] = set()  # ids of delayed messages this worker holds
        self._lock = threading.Lock()

    def _emit(self, event: str, message: Any, retries: int | None = None, **extra: Any) -> None:
        queue = q_name(str(message.queue_name))
        task = str(message.actor_name)
        task_id = str(message.message_id)
        payload = {
            "queue": queue,
            "task": task,
            "status": STATUS_BY_EVENT[event],
            "task_id": task_id,
            "namespace": queue,
            "handler": task,
            "retries": _retries(message) if retries is None else retries,
            **extra,
        }
        self._publish(event, payload, sampling_key=task_id)

    def after_enqueue(self, broker: Any, message: Any, delay: Any) -> None:
        """A producer (or the Retries middleware) enqueued ``message``."""
        if delay is None:
            with self._lock:
                moved = message.message_id in self._delayed
                self._delayed.discard(message.message_id)
            if moved:
                return  # a delayed message that came due, moved to its queue: not new
        self._emit("task.enqueued", message, delay=delay or 0)

    def before_delay_message(self, broker: Any, message: Any) -> None:
        """A worker holds a delayed ``message`` until it is due, then enqueues it again."""
        with self._lock:
            self._delayed.add(message.message_id)

    def before_process_message(self, broker: Any, message: Any) -> None:
        """A worker thread is about to run ``message``."""
        with self._lock:
            self._started[message.message_id] = (time.perf_counter(), _retries(message))
        self._emit("task.started", message)

    def after_process_message(
        self, broker: Any, message: Any, *, result: Any = None, exception: Any = None
    ) -> None:
        """``message`` ran: it succeeded, will be retried, or failed for good."""
        with self._lock:
            started = self._started.pop(message.message_id, None)
        timing: dict[str, Any] = {}
        if started is not None:  # the Retries middleware has counted this run already
            timing = {"duration": max(time.perf_counter() - started[0], 0.0)}
            timing["retries"] = started[1]
        if exception is None:
            self._emit("task.completed", message, **timing)
            return
        retried = not message.failed and any(isinstance(m, Retries) for m in broker.middleware)
        event = "task.retried" if retried else "task.failed"
        self._emit(event, message, exception=type(exception).__name__, **timing)

    def after_skip_message(self, broker: Any, message: Any) -> None:
        """A middleware skipped ``message`` (it never ran)."""
        with self._lock:
            self._started.pop(message.message_id, None)
        self._emit("task.revoked", message)

    def after_worker_shutdown(self, broker: Any, worker: Any) -> None:
        """The worker stopped: sync what this process recorded before it exits."""
        if self.syncer is not None:
            self.syncer.stop(timeout=10.0)


def _retries(message: Any) -> int:
    return int(message.options.get("retries", 0) or 0)


def install(
    broker: Any, syncer: Syncer | None = None, publish: Publish | None = None
) -> EventsMiddleware:
    """Add an :class:`EventsMiddleware` to ``broker`` and return it.

    It goes before the Retries middleware when the broker has one: Dramatiq calls
    ``after_*`` hooks in reverse order, so it then learns whether a failed message
    is retried or has failed for good.
    """
    middleware = EventsMiddleware(syncer, publish)
    if any(isinstance(m, Retries) for m in broker.middleware):
        broker.add_middleware(middleware, before=Retries)
    else:
        broker.add_middleware(middleware)
    return middleware
