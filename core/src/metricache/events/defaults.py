"""The default mapping set: the task, step and workflow lifecycle of a workflow engine.

These are the lifecycle events of the engine this design comes from, and the three
a task queue adds (``task.enqueued``, ``task.retried``, ``task.revoked``). Outcomes
(``started``, ``completed``, ``failed``, ``cancelled``) go to metrics, where the
conventions make ``<entity>_<status>_total`` counters and
``<entity>_duration_seconds`` histograms, and to traces; failures also go to the
log. Requests and orchestration steps go to traces only. Every rate is 1: counts
must add up, and sampling is a decision for the operator (override a mapping with
a lower rate, a sampling key keeps each task's events together).

Use them as they are (an :class:`~metricache.events.router.EventRouter` starts with
them), extend them (``router.map(...)`` adds or overrides one pattern), or replace
them (``EventRouter(registry, mappings=[...])``, or ``default_mappings = false`` in
``[event_routing]``).
"""

from __future__ import annotations

from metricache.events.mapping import Backend, EventMapping, Priority

__all__ = ["DEFAULT_MAPPINGS", "LIFECYCLE_ENTITIES"]

LIFECYCLE_ENTITIES = ("task", "step", "workflow")
"""The entities whose lifecycle the defaults cover."""

_M, _T, _L = Backend.METRICS, Backend.TRACES, Backend.LOGS


def _outcomes(entity: str, failed: Priority, level: str) -> list[EventMapping]:
    return [
        EventMapping(event=f"{entity}.started", backends=(_M, _T), priority=Priority.LOW),
        EventMapping(event=f"{entity}.completed", backends=(_M, _T)),
        EventMapping(
            event=f"{entity}.failed",
            backends=(_M, _T, _L),
            priority=failed,
            metadata={"log_level": level},
        ),
        EventMapping(event=f"{entity}.cancelled", backends=(_M, _T, _L)),
    ]


def _traced(*names: str, priority: Priority = Priority.LOW) -> list[EventMapping]:
    return [EventMapping(event=name, backends=(_T,), priority=priority) for name in names]


DEFAULT_MAPPINGS: tuple[EventMapping, ...] = (
    *_outcomes("task", Priority.HIGH, "warning"),
    *_traced(
        "task.initialize_requested",
        "task.start_requested",
        "task.retry_requested",
    ),
    EventMapping(event="task.resolved_manually", backends=(_T, _L)),
    # Task queues (Celery, Dramatiq): enqueued by a producer, retried, revoked.
    EventMapping(event="task.enqueued", backends=(_M,), priority=Priority.LOW),
    EventMapping(event="task.retried", backends=(_M, _T)),
    EventMapping(event="task.revoked", backends=(_M, _T, _L)),
    *_outcomes("step", Priority.HIGH, "warning"),
    *_traced(
        "step.initialize_requested",
        "step.execution_requested",
        "step.before_handle",
        "step.retry_requested",
    ),
    EventMapping(
        event="step.max_retries_reached",
        backends=(_T, _L),
        priority=Priority.HIGH,
        metadata={"log_level": "warning"},
    ),
    *_outcomes("workflow", Priority.CRITICAL, "error"),
    *_traced(
        "workflow.viable_steps_discovered",
        "workflow.no_viable_steps",
        "workflow.task_finalization_started",
        "workflow.task_finalization_completed",
    ),
)
"""The default mappings, one per lifecycle event name; what you map later wins."""
