"""metricache against prometheus_client, side by side in one process.

Run it with ``uv run python bench/hotpath.py``. It prints the time per operation of
both libraries and their ratio (metricache / prometheus_client; lower is better) for:

* ``inc()`` on a bound child (``c.labels("a", "b")`` taken once),
* ``labels("a", "b").inc()`` (the label lookup on every call),
* ``observe(0.3)`` on a histogram with the default buckets,
* ``set(3.0)`` on a gauge,
* rendering 10,000 and 100,000 series as Prometheus text, collection included:
  ``metricache.render(registry.snapshot(), "prometheus")`` against
  ``prometheus_client.generate_latest(registry)``.

Both libraries time the very same statement shapes with :mod:`timeit` (the statement
is compiled into timeit's loop, no extra call per operation). Rounds alternate the
two libraries, and which goes first, so machine noise hits both; each figure is the
best of all rounds. The garbage collector stays on while timing, as in a live
process. prometheus_client's ``_created`` series are turned off so both expositions
hold the same samples, which the script checks before timing the renders.

This is a benchmark, not a test: it reports and never asserts a speed.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import timeit
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import metricache
import prometheus_client
from prometheus_client.parser import text_string_to_metric_families

SERIES_PER_FAMILY = 1_000
LABELNAMES = ("path", "code")


@dataclass
class Case:
    """One operation timed in both libraries with the same statement shape."""

    name: str
    stmt_ours: str
    stmt_peer: str
    namespace_ours: dict[str, Any]
    namespace_peer: dict[str, Any]
    target: float | None
    number: int = 0  # operations per timing; 0: calibrate
    unit: str = "ns"
    best: dict[str, float] = field(default_factory=dict)
    all_runs: dict[str, list[float]] = field(default_factory=dict)


def hot_path_cases() -> list[Case]:
    """Return the single-operation cases, each library on its own registry."""
    ours_reg = metricache.Registry()
    peer_reg = prometheus_client.CollectorRegistry()

    ours_counter = metricache.Counter("ops", "Operations", LABELNAMES, registry=ours_reg)
    peer_counter = prometheus_client.Counter("ops", "Operations", LABELNAMES, registry=peer_reg)
    ours_hist = metricache.Histogram("latency_seconds", "Latency", registry=ours_reg)
    peer_hist = prometheus_client.Histogram("latency_seconds", "Latency", registry=peer_reg)
    ours_gauge = metricache.Gauge("temperature", "Temperature", registry=ours_reg)
    peer_gauge = prometheus_client.Gauge("temperature", "Temperature", registry=peer_reg)

    ours = {
        "child": ours_counter.labels("a", "b"),
        "counter": ours_counter,
        "hist": ours_hist,
        "gauge": ours_gauge,
    }
    peer = {
        "child": peer_counter.labels("a", "b"),
        "counter": peer_counter,
        "hist": peer_hist,
        "gauge": peer_gauge,
    }

    def case(name: str, stmt: str, target: float | None) -> Case:
        return Case(name, stmt, stmt, ours, peer, target)

    return [
        case("bound child inc()", "child.inc()", 0.8),
        case('labels("a", "b").inc()', 'counter.labels("a", "b").inc()', 0.5),
        case("histogram observe() (default buckets)", "hist.observe(0.3)", 0.8),
        case("gauge set()", "gauge.set(3.0)", None),
    ]


def fill(series: int) -> tuple[metricache.Registry, prometheus_client.CollectorRegistry]:
    """Return two registries holding the same ``series`` series, half counters, half gauges.

    Families of 1,000 series each, two labels per series.
    """
    ours_reg = metricache.Registry()
    peer_reg = prometheus_client.CollectorRegistry()
    for f in range(series // SERIES_PER_FAMILY):
        name = f"family_{f:03d}"
        doc = f"Family number {f}"
        ours: metricache.Counter | metricache.Gauge
        peer: prometheus_client.Counter | prometheus_client.Gauge
        if f % 2 == 0:
            ours = metricache.Counter(name, doc, LABELNAMES, registry=ours_reg)
            peer = prometheus_client.Counter(name, doc, LABELNAMES, registry=peer_reg)
        else:
            ours = metricache.Gauge(name, doc, LABELNAMES, registry=ours_reg)
            peer = prometheus_client.Gauge(name, doc, LABELNAMES, registry=peer_reg)
        for i in range(SERIES_PER_FAMILY):
            path, code = f"/api/v1/items/{i}", str(200 + i % 7)
            value = float(i * 3 + f)
            ours.labels(path, code).inc(value)
            peer.labels(path, code).inc(value)
    return ours_reg, peer_reg


def parsed(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Return every sample of a Prometheus text as ``(name, labels) -> value``."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def render_case(series: int, target: float | None) -> Case:
    """Return the case that renders ``series`` series, after checking both agree."""
    ours_reg, peer_reg = fill(series)
    ours_text = metricache.render(ours_reg.snapshot(), "prometheus").decode("utf-8")
    peer_text = prometheus_client.generate_latest(peer_reg).decode("utf-8")
    if series <= 10_000:
        ours_samples, peer_samples = parsed(ours_text), parsed(peer_text)
        if ours_samples != peer_samples or len(ours_samples) != series:
            sys.exit(f"the two expositions of {series} series differ; the comparison is void")
    elif ours_text.count("\n") != peer_text.count("\n"):
        sys.exit(f"the two expositions of {series} series differ in length")
    return Case(
        f"render {series:,} series (Prometheus text)",
        'render(registry.snapshot(), "prometheus")',
        "generate_latest(registry)",
        {"render": metricache.render, "registry": ours_reg},
        {"generate_latest": prometheus_client.generate_latest, "registry": peer_reg},
        target,
        number=1,
        unit="ms",
    )


def calibrate(case: Case, budget: float) -> None:
    """Pick how many operations one timing runs: about ``budget`` seconds for the peer."""
    timer = timeit.Timer(case.stmt_peer, "gc.enable()", globals=_globals(case.namespace_peer))
    number = 1
    while True:
        elapsed = timer.timeit(number)
        if elapsed >= budget / 4:
            case.number = max(1, int(number * budget / elapsed))
            return
        number *= 4


def _globals(namespace: dict[str, Any]) -> dict[str, Any]:
    return {"gc": gc, **namespace}


def run(case: Case, rounds: int) -> None:
    """Time both libraries ``rounds`` times, alternating which goes first."""
    timers = {
        "metricache": timeit.Timer(
            case.stmt_ours, "gc.enable()", globals=_globals(case.namespace_ours)
        ),
        "prometheus_client": timeit.Timer(
            case.stmt_peer, "gc.enable()", globals=_globals(case.namespace_peer)
        ),
    }
    order = list(timers)
    scale = 1e9 if case.unit == "ns" else 1e3
    runs: dict[str, list[float]] = {name: [] for name in timers}
    for r in range(rounds):
        for name in order if r % 2 == 0 else reversed(order):
            runs[name].append(timers[name].timeit(case.number) / case.number * scale)
    case.all_runs = runs
    case.best = {name: min(values) for name, values in runs.items()}


def machine_note() -> str:
    """Describe the interpreter, the libraries and the machine."""
    cpus = os.cpu_count() or 0
    return (
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.machine()}, {cpus} CPU(s); "
        f"metricache {metricache.__version__}, "
        f"prometheus_client {metadata.version('prometheus_client')}"
    )


def table(cases: list[Case]) -> str:
    """Return the results as a Markdown table."""

    def cell(value: float, unit: str) -> str:
        return f"{value:,.0f} ns" if unit == "ns" else f"{value:,.1f} ms"

    lines = [
        "| operation | prometheus_client | metricache | ratio | target | met |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for c in cases:
        ours, peer = c.best["metricache"], c.best["prometheus_client"]
        ratio = ours / peer
        target = f"<= {c.target}x" if c.target is not None else "-"
        met = "-" if c.target is None else ("yes" if ratio <= c.target else "no")
        lines.append(
            f"| {c.name} | {cell(peer, c.unit)} | {cell(ours, c.unit)} | "
            f"{ratio:.2f}x | {target} | {met} |"
        )
    return "\n".join(lines)


def spread(cases: list[Case]) -> str:
    """Return the median of every case next to its best, to show the noise."""
    lines = []
    for c in cases:
        parts = []
        for name in ("prometheus_client", "metricache"):
            values = c.all_runs[name]
            parts.append(
                f"{name} best {min(values):,.1f} / median {statistics.median(values):,.1f} {c.unit}"
            )
        lines.append(f"  {c.name}: " + "; ".join(parts))
    return "\n".join(lines)


def log(text: str) -> None:
    """Report progress on standard error (the results go to standard output)."""
    print(text, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run every case and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=7, help="timings per library and case")
    parser.add_argument(
        "--budget", type=float, default=0.2, help="seconds per timing of a hot-path case"
    )
    parser.add_argument(
        "--skip-render", action="store_true", help="time only the hot-path operations"
    )
    args = parser.parse_args(argv)

    # Both expositions then hold exactly the same samples (no x_created lines).
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
    print(machine_note())

    cases = hot_path_cases()
    for case in cases:
        calibrate(case, args.budget)
        log(f"timing {case.name} ({case.number:,} operations x {args.rounds} rounds x 2)")
        run(case, args.rounds)
    if not args.skip_render:
        for series, target, rounds in ((10_000, None, args.rounds), (100_000, 0.2, 5)):
            log(f"building and checking {series:,} series in both libraries")
            case = render_case(series, target)
            log(f"timing {case.name} ({rounds} rounds x 2)")
            run(case, rounds)
            cases.append(case)
            # Free this size's registries before the next one is built.
            case.namespace_ours.clear()
            case.namespace_peer.clear()
            gc.collect()
    print()
    print(table(cases))
    print()
    print("best and median of the rounds:")
    print(spread(cases))
    return 0


if __name__ == "__main__":
    sys.exit(main())
