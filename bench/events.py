"""Publishing an event against a direct counter update and against blinker, in one run.

Run it with ``uv run python bench/events.py``. Every contender does the same work
for one ``task.completed`` event with the payload
``{"namespace": "billing", "status": "ok", "handler": "InvoiceTask"}``: one
``task_completed_total`` series incremented, labelled by the three payload keys.

* ``direct``: ``counter.labels("billing", "ok", "InvoiceTask").inc()`` — the floor;
* ``blinker``: ``signal.send("billing", **payload)`` to one receiver that does the
  direct update (blinker is the signal library Flask and Celery users know);
* ``router, metrics only``: ``router.publish("task.completed", payload)`` with
  ``task.completed`` mapped to the metrics backend alone;
* ``router, metrics + traces``: the same with the default mapping of
  ``task.completed`` (metrics, and traces through a queue and a worker thread). Each
  timing ends with ``router.flush()``, so the worker's share of the cost is in the
  figure. The queue has the router's default capacity (10,000; ``--queue-size``
  changes it: on a loaded machine the worker thread can wait for a CPU longer than
  10,000 events take), and a run in which an event was shed is void;
* ``router, traces only``: ``task.completed`` mapped to traces alone, to show what
  the traces share costs (the Event, the queue, the worker);
* ``metricache.events.publish``: the module function through the default router
  that :func:`metricache.start` installs (metrics only).

Only metricache's own ``events`` plugin is loaded (``METRICACHE_PLUGINS=events``):
the workspace also installs example plugins, one of which handles every event.
The statements are compiled into :mod:`timeit`'s loop. Rounds alternate the
contenders (and their order), so machine noise hits all of them; each figure is the
best round, and the script prints medians too. The garbage collector stays on
(``--no-gc`` turns it off, to show its share). The targets are absolute, on this
kind of machine: metrics only <= 2 us, metrics plus traces <= 3 us. This is a
benchmark, not a test: it reports and never asserts.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import time
import timeit
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

# Only metricache's own event plugin: the example plugins of this repository's
# workspace (one handles events too) stay out, as in an application.
os.environ["METRICACHE_PLUGINS"] = "events"

import blinker
import metricache
import metricache.events
from metricache.events import EventMapping, EventRouter

PAYLOAD = {"namespace": "billing", "status": "ok", "handler": "InvoiceTask"}
LABELS = ("namespace", "status", "handler")


@dataclass
class Contender:
    """One way of turning the event into the counter update."""

    name: str
    stmt: str
    namespace: dict[str, Any]
    target_ns: float | None = None
    after: Callable[[], object] | None = None  # run after each timing, inside it
    runs: list[float] = field(default_factory=list)

    def time(self, number: int, collect: bool = True) -> float:
        """Return ns per operation of one timing of ``number`` operations."""
        setup = "gc.enable()" if collect else "gc.disable()"
        timer = timeit.Timer(self.stmt, setup, globals={"gc": gc, **self.namespace})
        started = time.perf_counter()
        loop = timer.timeit(number)
        if self.after is not None:
            self.after()
            loop = time.perf_counter() - started
        return loop / number * 1e9


def contenders(
    queue_size: int,
) -> tuple[list[Contender], list[EventRouter], list[metricache.Registry], EventRouter]:
    """Build every contender, each on a registry of its own."""
    direct_registry = metricache.Registry()
    direct = metricache.Counter("task_completed", "Tasks", LABELS, registry=direct_registry)

    blinker_registry = metricache.Registry()
    blinked = metricache.Counter("task_completed", "Tasks", LABELS, registry=blinker_registry)
    signal = blinker.Namespace().signal("task.completed")

    def receiver(sender: str, **payload: Any) -> None:
        blinked.labels(sender, payload["status"], payload["handler"]).inc()

    signal.connect(receiver, weak=False)  # blinker holds receivers weakly by default

    metrics_registry = metricache.Registry()
    metrics_only = EventRouter(metrics_registry, [EventMapping(event="task.completed")])
    traced_registry = metricache.Registry()
    # The defaults: task.completed -> metrics, traces. A run whose queue shed an event
    # is void (shedding is cheaper than delivering): pass a larger --queue-size then.
    traced = EventRouter(traced_registry, queue_size=queue_size)
    traces_only = EventRouter(
        metricache.Registry(),
        [EventMapping(event="task.completed", backends=["traces"])],
        queue_size=queue_size,
    )

    # metricache.events.publish goes through the installed default router.
    default_registry = metricache.Registry()
    default = EventRouter(default_registry, [EventMapping(event="task.completed")])
    metricache.events.install(default)

    found = [
        Contender(
            "direct labels(...).inc()",
            'counter.labels("billing", "ok", "InvoiceTask").inc()',
            {"counter": direct},
        ),
        Contender(
            "blinker send(), one receiver doing the same",
            'signal.send("billing", status="ok", handler="InvoiceTask")',
            {"signal": signal},
        ),
        Contender(
            "router.publish(), metrics only",
            'router.publish("task.completed", payload)',
            {"router": metrics_only, "payload": PAYLOAD},
            target_ns=2000,
        ),
        Contender(
            "router.publish(), metrics + traces (default mapping)",
            'router.publish("task.completed", payload)',
            {"router": traced, "payload": PAYLOAD},
            target_ns=3000,
            after=traced.flush,
        ),
        Contender(
            "router.publish(), traces only (what the traces share costs)",
            'router.publish("task.completed", payload)',
            {"router": traces_only, "payload": PAYLOAD},
            after=traces_only.flush,
        ),
        Contender(
            "metricache.events.publish(), metrics only",
            'publish("task.completed", payload)',
            {"publish": metricache.events.publish, "payload": PAYLOAD},
            target_ns=2000,
        ),
    ]
    routers = [metrics_only, traced, default]
    return found, routers, [direct_registry, blinker_registry], traces_only


def check(routers: list[EventRouter], registries: list[metricache.Registry]) -> None:
    """Stop when a router shed an event or the counts do not add up (the run is void)."""
    for router in routers:
        stats = router.stats()
        traces = stats.backends["traces"]
        if traces.dropped or stats.kept != stats.published:
            sys.exit(
                f"a router shed {traces.dropped} events; the comparison is void "
                "(the worker thread got too little CPU: try a larger --queue-size)"
            )
        if traces.routed and router.traces.recorded != traces.routed:
            sys.exit("the traces worker did not record every event; the comparison is void")
    for registry in registries:
        family = registry.snapshot()["task_completed"]
        values = [getattr(s, "value", None) for s in family.samples]
        if len(values) != 1 or not values[0]:
            sys.exit(f"expected one task_completed series, got {values}")


def calibrate(contender: Contender, budget: float) -> int:
    """Pick how many operations one timing runs: about ``budget`` seconds for the floor."""
    number = 1000
    while True:
        elapsed = contender.time(number) * number / 1e9
        if elapsed >= budget / 4:
            return max(1000, int(number * budget / elapsed))
        number *= 4


def machine_note() -> str:
    """Describe the interpreter, the libraries and the machine."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.machine()}, {os.cpu_count() or 0} CPU(s), "
        f"load average {load:.1f}; metricache {metricache.__version__}, "
        f"blinker {metadata.version('blinker')}"
    )


def table(found: list[Contender]) -> str:
    """Return the results as a Markdown table (ratios against the direct update)."""
    floor = min(found[0].runs)
    peer = min(found[1].runs)
    lines = [
        "| operation | best | median | / direct | / blinker | target | met |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for c in found:
        best, median = min(c.runs), statistics.median(c.runs)
        target = f"<= {c.target_ns / 1000:g} us" if c.target_ns else "-"
        met = "-" if c.target_ns is None else ("yes" if best <= c.target_ns else "no")
        lines.append(
            f"| {c.name} | {best:,.0f} ns | {median:,.0f} ns | {best / floor:.1f}x | "
            f"{best / peer:.2f}x | {target} | {met} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Time every contender and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=9, help="timings per contender")
    parser.add_argument("--budget", type=float, default=0.2, help="seconds per timing (floor)")
    parser.add_argument(
        "--no-gc",
        action="store_true",
        help="time with the garbage collector off (to see what it costs the traces share)",
    )
    parser.add_argument(
        "--queue-size",
        type=int,
        default=10_000,
        help="the traces queue's capacity (default: the router's); a run that sheds is void",
    )
    args = parser.parse_args(argv)

    found, routers, registries, traces_only = contenders(args.queue_size)
    print(machine_note() + (", garbage collector off" if args.no_gc else ""))
    number = calibrate(found[0], args.budget)
    print(f"{number:,} operations per timing, {args.rounds} rounds", file=sys.stderr)
    for r in range(args.rounds):
        for contender in found if r % 2 == 0 else reversed(found):
            contender.runs.append(contender.time(number, collect=not args.no_gc))
    check([*routers, traces_only], [*registries, *(router.registry for router in routers)])
    print()
    print(table(found))
    for router in [*routers, traces_only]:
        router.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
