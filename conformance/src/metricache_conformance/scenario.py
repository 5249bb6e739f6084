"""The end-to-end scenario: what two instances record, and the views they must produce.

Instance ``a`` and instance ``b`` each record counters, a histogram and gauges in two
phases, syncing after each. Every observed value is exact in binary, so sums are
exact whatever order the store adds them in. The expected views are computed from
the plan below, never written out by hand:

* on a distributed strategy the merged view holds the counters and histograms of
  both instances added up, and the gauges merged by their modes;
* on ``local_only`` each instance reads back its own view, and nothing of the other's.

A label value full of protocol bytes rides along: it must come back unchanged.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from metricache.registry import Registry
from metricache.snapshot import HistogramSample, Snapshot

__all__ = [
    "BUCKETS",
    "HOSTILE_LABEL",
    "PLAN",
    "ROLES",
    "Canonical",
    "canonical",
    "describe_differences",
    "expected_merged",
    "expected_own",
    "instance_id",
    "make_metrics",
    "record",
]

HOSTILE_LABEL = 'quote" back\\slash \r\n flush_all \x00 ünï 雪'
BUCKETS = (0.5, 1.0, 4.0)
PREFIX = "conformance_"
ROLES = ("a", "b")

# Per instance, per phase: counter increments and histogram observations by label
# value, and the gauges' values at the end of the phase.
PLAN: dict[str, list[dict[str, Any]]] = {
    "a": [
        {"jobs": {"plain": 3, HOSTILE_LABEL: 1}, "sizes": {"plain": [0.25, 2.0]}, "busy": 1.0},
        {"jobs": {"plain": 4}, "sizes": {"plain": [8.0]}, "busy": 2.0, "peak": 5.5, "seen": 1.0},
    ],
    "b": [
        {"jobs": {"plain": 5}, "sizes": {HOSTILE_LABEL: [0.75]}, "busy": 4.0, "peak": 1.5},
        {"jobs": {HOSTILE_LABEL: 2}, "sizes": {"plain": [0.5]}, "busy": 3.0, "seen": 2.0},
    ],
}

Canonical = dict[str, dict[str, Any]]
"""A view reduced to ``family -> JSON label values -> value`` (``[buckets, sum, count]``)."""


def instance_id(role: str) -> str:
    """Return the instance id of ``role``."""
    return f"conformance-{role}"


def make_metrics(registry: Registry) -> dict[str, Any]:
    """Declare the scenario's metrics in ``registry``; return them by short name."""
    from metricache.metrics import Counter, Gauge, Histogram

    return {
        "jobs": Counter("conformance_jobs", "Jobs done", ["kind"], registry=registry),
        "sizes": Histogram(
            "conformance_job_size", "Job sizes", ["kind"], buckets=BUCKETS, registry=registry
        ),
        "busy": Gauge("conformance_busy", "Busy workers", registry=registry, merge="sum"),
        "peak": Gauge("conformance_peak", "Queue peak", registry=registry, merge="max"),
        "seen": Gauge(
            "conformance_seen", "Seen per instance", registry=registry, merge="per_instance"
        ),
    }


def record(metrics: Mapping[str, Any], role: str, phase: int) -> None:
    """Record phase ``phase`` of ``role``'s plan with the metrics of :func:`make_metrics`."""
    step = PLAN[role][phase]
    for kind, amount in step.get("jobs", {}).items():
        metrics["jobs"].labels(kind).inc(amount)
    for kind, values in step.get("sizes", {}).items():
        for value in values:
            metrics["sizes"].labels(kind).observe(value)
    for name in ("busy", "peak", "seen"):
        if name in step:
            metrics[name].set(step[name])


def _labels(*values: str) -> str:
    return json.dumps(list(values), ensure_ascii=False)


def _histogram(observations: list[float]) -> list[Any]:
    bounds = (*BUCKETS, math.inf)
    counts = [sum(1 for v in observations if v <= bound) for bound in bounds]
    return [counts, math.fsum(observations), len(observations)]


def _own_parts(role: str) -> tuple[dict[str, int], dict[str, list[float]], dict[str, float]]:
    jobs: dict[str, int] = {}
    sizes: dict[str, list[float]] = {}
    gauges: dict[str, float] = {}
    for step in PLAN[role]:
        for kind, amount in step.get("jobs", {}).items():
            jobs[kind] = jobs.get(kind, 0) + amount
        for kind, values in step.get("sizes", {}).items():
            sizes.setdefault(kind, []).extend(values)
        for name in ("busy", "peak", "seen"):
            if name in step:
                gauges[name] = step[name]
    return jobs, sizes, gauges


def expected_own(role: str) -> Canonical:
    """Return the view ``role`` alone produces (what ``local_only`` shows it)."""
    jobs, sizes, gauges = _own_parts(role)
    view: Canonical = {
        "conformance_jobs": {_labels(k): float(v) for k, v in jobs.items()},
        "conformance_job_size": {_labels(k): _histogram(v) for k, v in sizes.items()},
    }
    for name, value in gauges.items():
        view[f"conformance_{name}"] = {_labels(): value}
    return view


def expected_merged() -> Canonical:
    """Return the merged view of both instances (what distributed strategies promise)."""
    jobs: dict[str, int] = {}
    sizes: dict[str, list[float]] = {}
    gauges: dict[str, dict[str, float]] = {}
    for role in ROLES:
        own_jobs, own_sizes, own_gauges = _own_parts(role)
        for kind, amount in own_jobs.items():
            jobs[kind] = jobs.get(kind, 0) + amount
        for kind, values in own_sizes.items():
            sizes.setdefault(kind, []).extend(values)
        for name, value in own_gauges.items():
            gauges.setdefault(name, {})[role] = value
    return {
        "conformance_jobs": {_labels(k): float(v) for k, v in jobs.items()},
        "conformance_job_size": {_labels(k): _histogram(v) for k, v in sizes.items()},
        "conformance_busy": {_labels(): math.fsum(gauges["busy"].values())},
        "conformance_peak": {_labels(): max(gauges["peak"].values())},
        "conformance_seen": {
            _labels(instance_id(role)): value for role, value in gauges["seen"].items()
        },
    }


def canonical(snapshot: Snapshot) -> Canonical:
    """Reduce the scenario's families of ``snapshot`` to plain JSON data."""
    view: Canonical = {}
    for family in snapshot.families:
        if not family.name.startswith(PREFIX):
            continue
        samples: dict[str, Any] = {}
        for sample in family.samples:
            key = _labels(*sample.labels)
            if isinstance(sample, HistogramSample):
                samples[key] = [list(sample.buckets), sample.sum, sample.count]
            else:
                samples[key] = sample.value
        view[family.name] = samples
    return view


def _series(family: str, labels: str) -> str:
    values = json.loads(labels)
    inside = ",".join(json.dumps(v, ensure_ascii=False) for v in values)
    return f"{family}{{{inside}}}" if values else family


def describe_differences(got: Mapping[str, Any], want: Mapping[str, Any], limit: int = 4) -> str:
    """Describe how view ``got`` differs from ``want`` ("" when they are equal)."""
    problems: list[str] = []
    for family in sorted(set(got) | set(want)):
        if family not in got:
            problems.append(f"{family} is missing")
            continue
        if family not in want:
            problems.append(f"{family} should not be there")
            continue
        mine, theirs = got[family], want[family]
        for labels in sorted(set(mine) | set(theirs)):
            series = _series(family, labels)
            if labels not in mine:
                problems.append(f"{series} is missing (expected {theirs[labels]!r})")
            elif labels not in theirs:
                problems.append(f"{series} = {mine[labels]!r} should not be there")
            elif mine[labels] != theirs[labels]:
                problems.append(f"{series} = {mine[labels]!r}, expected {theirs[labels]!r}")
    if not problems:
        return ""
    more = f" (and {len(problems) - limit} more)" if len(problems) > limit else ""
    return "; ".join(problems[:limit]) + more
