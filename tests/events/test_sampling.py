"""Sampling: decided once per event, keyed decisions hold a task's events together."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from metricache.events import EventMapping, Sampler, key_fraction
from metricache.registry import Registry
from metricache.snapshot import Sample

from tests.events.conftest import RouterFactory


def _counter_total(registry: Registry, family: str) -> float:
    found = registry.snapshot().get(family)
    if found is None:
        return 0.0
    return sum(s.value for s in found.samples if isinstance(s, Sample))


def test_rate_point_one_keeps_ten_percent_of_100000_events(make_router: RouterFactory) -> None:
    router = make_router(mappings=[EventMapping(event="job.completed", sampling_rate=0.1)])
    kept = sum(router.publish("job.completed") for _ in range(100_000))
    stats = router.stats()
    assert 9_000 <= kept <= 11_000, kept
    assert stats.kept == kept
    assert stats.sampled_out == 100_000 - kept
    assert stats.published == 100_000


@pytest.mark.parametrize(("rate", "expected"), [(1.0, 10_000), (0.0, 0)])
def test_rates_one_and_zero_are_exact(
    make_router: RouterFactory, registry: Registry, rate: float, expected: int
) -> None:
    router = make_router(mappings=[EventMapping(event="job.completed", sampling_rate=rate)])
    for i in range(5_000):
        router.publish("job.completed")
        router.publish("job.completed", sampling_key=f"task-{i}")
    assert router.stats().kept == expected
    assert router.stats().sampled_out == 10_000 - expected
    assert _counter_total(registry, "job_completed") == expected


def test_keyed_sampling_keeps_or_drops_all_events_of_a_key_together(
    make_router: RouterFactory,
) -> None:
    names = ["task.started", "step.started", "step.completed", "task.completed"]
    router = make_router(
        mappings=[EventMapping(event=name, sampling_rate=0.3) for name in names],
    )
    decisions: dict[str, set[bool]] = {}
    for _ in range(3):
        for task in range(2_000):
            key = f"task-{task}"
            for name in names:
                decisions.setdefault(key, set()).add(router.publish(name, sampling_key=key))
    assert all(len(seen) == 1 for seen in decisions.values())
    kept_keys = sum(1 for seen in decisions.values() if True in seen)
    assert 500 <= kept_keys <= 700, kept_keys  # 30% of 2,000 (deterministic for these keys)


def test_a_key_kept_at_a_low_rate_is_kept_at_every_higher_rate() -> None:
    sampler = Sampler()
    keys = [f"req-{i}" for i in range(5_000)]
    kept = {rate: {k for k in keys if sampler.keep(rate, k)} for rate in (0.05, 0.2, 0.6, 1.0)}
    assert kept[0.05] <= kept[0.2] <= kept[0.6] <= kept[1.0] == set(keys)


def test_a_key_falls_at_the_same_place_in_every_process() -> None:
    keys = ["task-1", "tâche-2", "42", "x" * 300]
    code = (
        "import json, sys; from metricache.events import key_fraction; "
        "print(json.dumps([key_fraction(k) for k in json.loads(sys.argv[1])]))"
    )
    other = subprocess.run(
        [sys.executable, "-c", code, json.dumps(keys)],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345"},
    )
    assert json.loads(other.stdout) == [key_fraction(k) for k in keys]
    assert all(0 <= key_fraction(k) < 1 for k in keys)
    assert key_fraction(b"\xff" * 8) < 1


@pytest.mark.parametrize("keyed", [False, True])
def test_no_event_is_sampled_twice_on_its_way_to_the_registry(
    make_router: RouterFactory, registry: Registry, keyed: bool
) -> None:
    router = make_router(mappings=[EventMapping(event="job.completed", sampling_rate=0.5)])
    for i in range(20_000):
        router.publish(
            "job.completed",
            {"namespace": "n", "duration": 0.1},
            sampling_key=f"job-{i}" if keyed else None,
        )
    kept = router.stats().kept
    # Sampled a second time on the way, the metric would hold about half of ``kept``.
    assert 9_000 <= kept <= 11_000
    assert _counter_total(registry, "job_completed") == kept
    duration = registry.snapshot()["job_duration_seconds"].samples[0]
    assert duration.count == kept  # type: ignore[union-attr]
