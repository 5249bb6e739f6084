"""A simulated workflow engine that publishes its lifecycle through an event router.

``metricache demo`` runs several :class:`SimulatedWorker` objects: each runs tasks
of a few steps with random durations, failures (retried once), and the odd
cancellation, and publishes the task, step and workflow lifecycle events of the
default mappings. Each worker also keeps its own :class:`Tally` of what happened
(tasks and steps started, completed, failed, cancelled, and the durations it
published), counted apart from any metric: the demo's ground truth.

Payloads carry exactly the keys the metric rules read (``namespace``, ``status``,
``handler``, and ``duration`` for completed and failed runs) plus
:data:`CONTEXT_KEYS` for traces and logs.

Run as ``python -m metricache.events.simulation``, this module is one worker
*process* of ``metricache demo`` on a shared store: it reads a JSON spec line on
standard input, syncs its own registry to the store, prints JSON progress lines,
and a final line with its tally.
"""

from __future__ import annotations

import json
import random
import signal
import sys
import threading
import time
from collections import Counter as Tallies
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from metricache.events.router import EventRouter
from metricache.events.rules import convention_names

__all__ = [
    "CONTEXT_KEYS",
    "TASK_TYPES",
    "SimulatedWorker",
    "Tally",
    "expected_totals",
    "worker_main",
]

CONTEXT_KEYS = frozenset({"task_id", "attempt", "steps"})
"""Payload keys for traces and logs that no metric rule reads."""

TASK_TYPES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("billing", "InvoiceTask", ("fetch_order", "compute_tax", "render_pdf", "send_email")),
    ("ingest", "ImportTask", ("download", "validate", "transform", "load", "index")),
    ("reports", "ReportTask", ("query", "aggregate", "render")),
)
"""(namespace, task handler, step handlers) of the tasks the workers run."""


@attrs.define
class Tally:
    """What one worker did, counted apart from metrics: the ground truth.

    ``outcomes`` counts lifecycle events by name (``task.completed`` ...);
    ``durations`` counts the durations published per entity (``task``, ``step``);
    ``events`` counts every event published, kept or not.
    """

    outcomes: Tallies[str] = attrs.field(factory=Tallies)
    durations: Tallies[str] = attrs.field(factory=Tallies)
    events: int = 0
    tasks: int = 0

    def add(self, other: Tally) -> None:
        """Add ``other``'s counts to this tally."""
        self.outcomes.update(other.outcomes)
        self.durations.update(other.durations)
        self.events += other.events
        self.tasks += other.tasks

    def to_json(self) -> dict[str, Any]:
        """Return the tally as plain JSON values."""
        return {
            "outcomes": dict(self.outcomes),
            "durations": dict(self.durations),
            "events": self.events,
            "tasks": self.tasks,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Tally:
        """Rebuild a tally from :meth:`to_json`'s output."""
        return cls(
            outcomes=Tallies({str(k): int(v) for k, v in data["outcomes"].items()}),
            durations=Tallies({str(k): int(v) for k, v in data["durations"].items()}),
            events=int(data["events"]),
            tasks=int(data["tasks"]),
        )


def expected_totals(tally: Tally) -> dict[str, int]:
    """Return the totals the merged view must show: family name -> count.

    ``task_completed`` (exposed as ``task_completed_total``) and its siblings for every
    outcome, and ``task_duration_seconds`` / ``step_duration_seconds`` for the
    number of durations observed.
    """
    expected: dict[str, int] = {}
    for name, count in sorted(tally.outcomes.items()):
        names = convention_names(name)
        if names is not None:
            expected[names[0]] = count
    for entity, count in sorted(tally.durations.items()):
        expected[f"{entity}_duration_seconds"] = count
    return expected


class SimulatedWorker:
    """One worker of the simulated engine, publishing through ``router``.

    ``failure_rate``: the chance that a step attempt fails (a failed step is retried
    ``retries`` times, then fails its task, whose remaining steps are cancelled).
    ``cancel_rate``: the chance that a task is cancelled before a step.
    ``time_scale``: real seconds slept per simulated second (durations published
    are the simulated ones).
    """

    def __init__(
        self,
        router: EventRouter,
        name: str,
        *,
        seed: int | None = None,
        failure_rate: float = 0.15,
        retries: int = 1,
        cancel_rate: float = 0.01,
        time_scale: float = 0.01,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        self.router = router
        self.name = name
        self.tally = Tally()
        self.failure_rate = failure_rate
        self.retries = retries
        self.cancel_rate = cancel_rate
        self.time_scale = time_scale
        self._random = random.Random(seed)
        self._sleep = sleep

    def _publish(self, name: str, payload: dict[str, Any], task_id: str) -> None:
        self.router.publish(name, payload, sampling_key=task_id)
        self.tally.events += 1
        if convention_names(name) is not None:
            self.tally.outcomes[name] += 1
            if "duration" in payload:
                self.tally.durations[name.partition(".")[0]] += 1

    def run(self, until: float, stop: threading.Event | None = None) -> Tally:
        """Run tasks until ``time.monotonic()`` passes ``until`` (or ``stop`` is set)."""
        while time.monotonic() < until and not (stop is not None and stop.is_set()):
            self.run_task()
        return self.tally

    def run_task(self) -> None:
        """Run one task from start to end, publishing its lifecycle."""
        rng = self._random
        namespace, handler, steps = rng.choice(TASK_TYPES)
        self.tally.tasks += 1
        task_id = f"{self.name}-{self.tally.tasks}"
        context = {"task_id": task_id}
        self._publish("task.initialize_requested", context, task_id)
        self._publish(
            "task.started",
            {"namespace": namespace, "status": "running", "handler": handler, **context},
            task_id,
        )
        self._publish("workflow.viable_steps_discovered", {"steps": len(steps), **context}, task_id)
        elapsed = 0.0
        outcome = "completed"
        for step in steps:
            if outcome == "completed" and rng.random() < self.cancel_rate:
                outcome = "cancelled"
            if outcome != "completed":
                self._publish(
                    "step.cancelled",
                    {"namespace": namespace, "status": "cancelled", "handler": step, **context},
                    task_id,
                )
                continue
            elapsed, ok = self._run_step(namespace, step, task_id, elapsed)
            if not ok:
                outcome = "failed"
        final: dict[str, Any] = {"namespace": namespace, "handler": handler, **context}
        if outcome == "completed":
            final.update(status="ok", duration=elapsed)
        elif outcome == "failed":
            final.update(status="error", duration=elapsed)
        else:
            final.update(status="cancelled")
        self._publish(f"task.{outcome}", final, task_id)

    def _run_step(
        self, namespace: str, step: str, task_id: str, elapsed: float
    ) -> tuple[float, bool]:
        rng = self._random
        for attempt in range(1, self.retries + 2):
            context = {"task_id": task_id, "attempt": attempt}
            self._publish("step.execution_requested", context, task_id)
            self._publish(
                "step.started",
                {"namespace": namespace, "status": "running", "handler": step, **context},
                task_id,
            )
            duration = min(rng.lognormvariate(-2.0, 1.0), 30.0)
            self._sleep(duration * self.time_scale)
            elapsed += duration
            if rng.random() >= self.failure_rate:
                self._publish(
                    "step.completed",
                    {
                        "namespace": namespace,
                        "status": "ok",
                        "handler": step,
                        "duration": duration,
                        **context,
                    },
                    task_id,
                )
                return elapsed, True
            self._publish(
                "step.failed",
                {
                    "namespace": namespace,
                    "status": rng.choice(("timeout", "error")),
                    "handler": step,
                    "duration": duration,
                    **context,
                },
                task_id,
            )
            if attempt <= self.retries:
                self._publish("step.retry_requested", context, task_id)
        self._publish("step.max_retries_reached", {"task_id": task_id}, task_id)
        return elapsed, False


# -- one worker process -------------------------------------------------------------------


def _emit(message: Mapping[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def worker_main() -> int:
    """Run one demo worker process (spec on stdin, JSON lines on stdout)."""
    from metricache.config import Seconds, StoreConfig, load_config
    from metricache.registry import Registry
    from metricache.runtime import syncer_from_config

    # The parent stops workers with a "stop" line; Ctrl-C in a terminal reaches every
    # process of the group, and a worker must still report its tally.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    spec = json.loads(sys.stdin.readline())
    config = load_config(spec["config"])
    config = attrs.evolve(
        config,
        instance_id=spec["instance_id"],
        store=StoreConfig(name=spec["store"]["name"], options=spec["store"]["options"]),
        sync=attrs.evolve(
            config.sync, namespace=spec["namespace"], interval=Seconds(float(spec["interval"]))
        ),
    )
    registry = Registry()
    router = EventRouter(registry)
    syncer = syncer_from_config(config, registry).start()
    worker = SimulatedWorker(
        router,
        spec["worker"],
        seed=spec["seed"],
        failure_rate=spec["failure_rate"],
        time_scale=spec["time_scale"],
    )
    stop = threading.Event()

    def watch_stdin() -> None:
        for line in sys.stdin:
            if line.strip() == "stop":
                break
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    done = threading.Event()

    def report_progress() -> None:
        while not done.wait(0.5):
            _emit({"progress": {"events": worker.tally.events, "tasks": worker.tally.tasks}})

    reporter = threading.Thread(target=report_progress, daemon=True)
    reporter.start()
    _emit({"started": syncer.instance.id})
    worker.run(time.monotonic() + float(spec["duration"]), stop)
    router.close()
    report = syncer.stop()
    done.set()
    reporter.join()
    _emit(
        {
            "done": worker.tally.to_json(),
            "sync_ok": bool(report is not None and report.ok),
            "sync_error": None if report is None else report.error,
            "dropped": router.stats().backends["traces"].dropped
            + router.stats().backends["logs"].dropped,
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(worker_main())
