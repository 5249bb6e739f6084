"""Celery's task signals, published as metricache events.

:class:`CelerySource` connects handlers to Celery's signals and publishes one event
per step of a task's life through the default event router
(``metricache.events.publish``), so the ``[[events]]`` mappings, sampling and
rules apply to them like to any other event:

==========================  ==================  =====================================
Celery signal               event               where it fires
==========================  ==================  =====================================
``before_task_publish``     ``task.enqueued``   the process that sends the task (a
                                                retry is sent again by the worker)
``task_prerun``             ``task.started``    the pool process that runs it
``task_success``            ``task.completed``  the pool process, with ``duration``
``task_failure``            ``task.failed``     the pool process, with ``duration``
``task_retry``              ``task.retried``    the pool process, with ``duration``
``task_revoked``            ``task.revoked``    the worker's main process
==========================  ==================  =====================================

Every payload has ``queue``, ``task`` (the task's name), ``status`` (``pending``,
``started``, ``success``, ``failure``, ``retry``, ``revoked``) and ``task_id``; the
same values also go under the default label keys (``namespace`` = queue, ``handler``
= task name), so the conventional counters ``task_<status>_total`` and the
histogram ``task_duration_seconds`` are labelled by queue, task and status without
any configuration. The task id is the sampling key: every event of one task (its
retries included) is kept or dropped together.

A pool process of the prefork pool ends with ``os._exit``, which skips ``atexit``
and so the syncer's final sync: the source stops the syncer it was given (a final
sync) on ``worker_process_shutdown``, in the pool process, and on
``worker_shutdown`` in the main process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import metricache.events
from celery import signals
from metricache.sync import Syncer

__all__ = ["STATUS_BY_EVENT", "CelerySource", "connect"]

STATUS_BY_EVENT = {
    "task.enqueued": "pending",
    "task.started": "started",
    "task.completed": "success",
    "task.failed": "failure",
    "task.retried": "retry",
    "task.revoked": "revoked",
}
"""The ``status`` each event carries (Celery's state names, in lower case)."""

Publish = Callable[..., bool]


class CelerySource:
    """Publishes Celery's task lifecycle (see the module documentation).

    ``syncer``: the syncer to stop, with a final sync, when a worker process ends
    (pass what :func:`metricache.start` returned). ``publish``: where events go
    (default: ``metricache.events.publish``, the default router).
    """

    def __init__(self, syncer: Syncer | None = None, publish: Publish | None = None) -> None:
        self.syncer = syncer
        self._publish = publish or metricache.events.publish
        self._started: dict[str, float] = {}  # task id -> perf_counter at task_prerun
        self._lock = threading.Lock()
        self._connected = False
        self._handlers: list[tuple[Any, Callable[..., None]]] = [
            (signals.before_task_publish, self._on_publish),
            (signals.task_prerun, self._on_prerun),
            (signals.task_success, self._on_success),
            (signals.task_failure, self._on_failure),
            (signals.task_retry, self._on_retry),
            (signals.task_postrun, self._on_postrun),
            (signals.task_revoked, self._on_revoked),
            (signals.worker_process_shutdown, self._on_process_shutdown),
            (signals.worker_shutdown, self._on_process_shutdown),
        ]

    def connect(self) -> CelerySource:
        """Connect every handler (once; strongly referenced, so nothing drops them)."""
        with self._lock:
            if not self._connected:
                for signal, handler in self._handlers:
                    signal.connect(handler, weak=False)
                self._connected = True
        return self

    def disconnect(self) -> None:
        """Disconnect every handler."""
        with self._lock:
            if self._connected:
                for signal, handler in self._handlers:
                    signal.disconnect(handler)
                self._connected = False

    # -- publishing ----------------------------------------------------------------------

    def _emit(self, event: str, task: str, queue: str, task_id: str, **extra: Any) -> None:
        payload = {
            "queue": queue,
            "task": task,
            "status": STATUS_BY_EVENT[event],
            "task_id": task_id,
            "namespace": queue,
            "handler": task,
            **extra,
        }
        self._publish(event, payload, sampling_key=task_id or None)

    def _duration(self, task_id: str) -> dict[str, float]:
        with self._lock:
            started = self._started.pop(task_id, None)
        if started is None:
            return {}
        return {"duration": max(time.perf_counter() - started, 0.0)}

    # -- handlers (Celery calls them with keyword arguments) -------------------------------

    def _on_publish(
        self,
        sender: Any = None,
        headers: Mapping[str, Any] | None = None,
        body: Any = None,
        routing_key: str | None = None,
        **_: Any,
    ) -> None:
        headers = headers or {}
        # Message protocol 2 keeps the task's name and id in the headers, 1 in the body.
        legacy = body if isinstance(body, Mapping) else {}
        task = headers.get("task") or legacy.get("task") or str(sender or "")
        task_id = headers.get("id") or legacy.get("id") or ""
        retries = headers.get("retries", legacy.get("retries", 0)) or 0
        self._emit("task.enqueued", task, routing_key or "", task_id, retries=retries)

    def _on_prerun(self, task_id: str = "", task: Any = None, **_: Any) -> None:
        with self._lock:
            self._started[task_id] = time.perf_counter()
        self._emit("task.started", _name(task), _queue(task), task_id, retries=_retries(task))

    def _on_success(self, sender: Any = None, runtime: float | None = None, **_: Any) -> None:
        task_id = _request_id(sender)
        timing = self._duration(task_id)
        if runtime is not None:  # Celery measures it itself (5.5 and later)
            timing = {"duration": float(runtime)}
        self._emit(
            "task.completed",
            _name(sender),
            _queue(sender),
            task_id,
            retries=_retries(sender),
            **timing,
        )

    def _on_failure(
        self, sender: Any = None, task_id: str = "", exception: Any = None, **_: Any
    ) -> None:
        self._emit(
            "task.failed",
            _name(sender),
            _queue(sender),
            task_id,
            exception=type(exception).__name__,
            retries=_retries(sender),
            **self._duration(task_id),
        )

    def _on_retry(
        self, sender: Any = None, request: Any = None, reason: Any = None, **_: Any
    ) -> None:
        task_id = str(getattr(request, "id", "") or "")
        self._emit(
            "task.retried",
            _name(sender),
            _queue_of_request(request),
            task_id,
            reason=type(reason).__name__,
            retries=int(getattr(request, "retries", 0) or 0),
            **self._duration(task_id),
        )

    def _on_postrun(self, task_id: str = "", **_: Any) -> None:
        # Whatever the outcome signal did, nothing of this run is kept any longer.
        with self._lock:
            self._started.pop(task_id, None)

    def _on_revoked(
        self,
        sender: Any = None,
        request: Any = None,
        terminated: bool = False,
        expired: bool = False,
        **_: Any,
    ) -> None:
        self._emit(
            "task.revoked",
            _name(sender),
            _queue_of_request(request),
            str(getattr(request, "id", "") or ""),
            terminated=bool(terminated),
            expired=bool(expired),
        )

    def _on_process_shutdown(self, **_: Any) -> None:
        if self.syncer is not None:
            self.syncer.stop(timeout=10.0)


def _name(task: Any) -> str:
    return str(getattr(task, "name", "") or "")


def _request_id(task: Any) -> str:
    return str(getattr(getattr(task, "request", None), "id", "") or "")


def _retries(task: Any) -> int:
    return int(getattr(getattr(task, "request", None), "retries", 0) or 0)


def _queue(task: Any) -> str:
    return _queue_of_request(getattr(task, "request", None))


def _queue_of_request(request: Any) -> str:
    info = getattr(request, "delivery_info", None) or {}
    if not isinstance(info, Mapping):
        return ""
    return str(info.get("routing_key") or info.get("queue") or "")


_default: CelerySource | None = None


def connect(syncer: Syncer | None = None, publish: Publish | None = None) -> CelerySource:
    """Connect a :class:`CelerySource` for this process and return it.

    Call it once, where the Celery app is defined, after :func:`metricache.start`:
    ``metricache_celery.connect(metricache.start())``. A second call replaces the
    first source.
    """
    global _default
    if _default is not None:
        _default.disconnect()
    _default = CelerySource(syncer, publish).connect()
    return _default
