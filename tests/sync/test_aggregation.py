"""Exact cross-instance aggregation: many processes, many syncs, one correct total."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import metricache
import pytest
from metricache.snapshot import HistogramSample, Sample

from tests.support.servers import MemcachedServer, RedisServer
from tests.sync.workers import OBSERVED

ROOT = Path(__file__).resolve().parents[2]
BUCKETS = (0.1, 0.5, 1.0, 5.0, float("inf"))


def run_workers(kind: str, args: list[dict[str, Any]]) -> list[subprocess.Popen[str]]:
    return [
        subprocess.Popen(
            [sys.executable, "-m", "tests.sync.workers", kind, json.dumps(a)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for a in args
    ]


def expected_totals(
    processes: int, threads: int, increments: int, labels: int
) -> tuple[Counter[str], dict[str, list[float]]]:
    """Replay one worker thread's loop and scale it: the ground truth."""
    counts: Counter[str] = Counter()
    observed: dict[str, list[float]] = {}
    for i in range(increments):
        kind = f"k{i % labels}"
        counts[kind] += 1
        if i % 5 == 0:
            observed.setdefault(kind, []).append(OBSERVED[i % len(OBSERVED)])
    scale = processes * threads
    return Counter({k: v * scale for k, v in counts.items()}), {
        k: v * scale for k, v in observed.items()
    }


def check_histogram(sample: HistogramSample, values: list[float]) -> None:
    cumulative = [sum(1 for v in values if v <= bound) for bound in BUCKETS]
    assert list(sample.buckets) == cumulative
    assert sample.count == len(values)
    assert sample.sum == sum(values)


@pytest.mark.slow
@pytest.mark.parametrize("store_name", ["redis", "memcached"])
def test_eight_processes_four_threads_add_up_exactly(
    store_name: str,
    redis_server: RedisServer,
    memcached_server: MemcachedServer,
    namespace: str,
) -> None:
    server = redis_server if store_name == "redis" else memcached_server
    processes, threads, increments, labels = 8, 4, 25_000, 50
    args = [
        {
            "store": store_name,
            "options": {"url": server.url},
            "namespace": namespace,
            "instance": f"worker-{n}",
            "interval": 0.2,
            "threads": threads,
            "increments": increments,
            "labels": labels,
            "chunks": 25,
            "pause": 0.2,
        }
        for n in range(processes)
    ]
    procs = run_workers("aggregate", args)
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, out
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert all(r["final_ok"] for r in results), results
    # Every worker synced over many rounds while it was counting.
    assert min(r["syncs"] for r in results) >= 20, [r["syncs"] for r in results]

    store = metricache.open_store(store_name, url=server.url)
    view = metricache.merged_snapshot(store, namespace=namespace)
    counts, observed = expected_totals(processes, threads, increments, labels)
    jobs = view["jobs"]
    got = {s.labels[0]: s.value for s in jobs.samples if isinstance(s, Sample)}
    assert got == {k: float(v) for k, v in counts.items()}
    assert sum(got.values()) == processes * threads * increments
    sizes = view["job_size"].by_labels()
    assert set(sizes) == {(k,) for k in observed}
    for kind, values in observed.items():
        sample = sizes[(kind,)]
        assert isinstance(sample, HistogramSample)
        check_histogram(sample, values)


def start_gauge_workers(
    store_name: str, url: str, namespace: str, values: list[float]
) -> list[subprocess.Popen[str]]:
    procs = []
    for n, value in enumerate(values):
        # One at a time, so "last" is the value of the last worker started.
        (proc,) = run_workers(
            "gauges",
            [
                {
                    "store": store_name,
                    "options": {"url": url},
                    "namespace": namespace,
                    "instance": f"g-{n}",
                    "value": value,
                    "visits": n + 1,
                    "interval": 0.2,
                    "liveness": 1.5,
                }
            ],
        )
        assert proc.stdout is not None
        assert json.loads(proc.stdout.readline()) == {"ready": True}
        procs.append(proc)
        time.sleep(0.05)
    return procs


def gauge_values(view: metricache.Snapshot) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode in ("sum", "max", "min", "last"):
        fam = view.get(f"g_{mode}")
        out[mode] = {s.labels: s.value for s in fam.samples if isinstance(s, Sample)} if fam else {}
    fam = view.get("g_per_instance")
    out["per_instance"] = (
        {s.labels: s.value for s in fam.samples if isinstance(s, Sample)} if fam else {}
    )
    return out


@pytest.mark.parametrize("store_name", ["redis", "memcached"])
def test_gauges_merge_by_mode_and_a_killed_instance_leaves_them_but_not_its_counts(
    store_name: str,
    redis_server: RedisServer,
    memcached_server: MemcachedServer,
    namespace: str,
) -> None:
    server = redis_server if store_name == "redis" else memcached_server
    values = [5.0, -2.0, 11.5, 3.0]
    procs = start_gauge_workers(store_name, server.url, namespace, values)
    store = metricache.open_store(store_name, url=server.url)
    try:
        view = metricache.merged_snapshot(store, namespace=namespace)
        got = gauge_values(view)
        assert got["sum"] == {("a",): sum(values)}
        assert got["max"] == {("a",): max(values)}
        assert got["min"] == {("a",): min(values)}
        assert got["last"] == {("a",): values[-1]}
        assert got["per_instance"] == {("a", f"g-{n}"): v for n, v in enumerate(values)}
        assert view["visits"].samples[0].value == 1 + 2 + 3 + 4  # type: ignore[union-attr]

        # SIGKILL the worker holding the max: no final sync, no goodbye.
        procs[2].send_signal(signal.SIGKILL)
        procs[2].wait(10)
        survivors = [v for n, v in enumerate(values) if n != 2]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            got = gauge_values(metricache.merged_snapshot(store, namespace=namespace))
            if got["max"] == {("a",): max(survivors)}:
                break
            time.sleep(0.2)
        assert got["sum"] == {("a",): sum(survivors)}
        assert got["max"] == {("a",): max(survivors)}
        assert got["min"] == {("a",): min(survivors)}
        assert got["last"] == {("a",): values[-1]}
        assert ("a", "g-2") not in got["per_instance"]
        # Its counts stay in the shared totals.
        view = metricache.merged_snapshot(store, namespace=namespace)
        assert view["visits"].samples[0].value == 1 + 2 + 3 + 4  # type: ignore[union-attr]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            proc.wait(30)
        store.close()


def test_a_forked_child_is_a_new_instance_and_sends_only_its_own_increments(
    redis_server: RedisServer, namespace: str
) -> None:
    registry = metricache.Registry()
    counter = metricache.Counter("forks", "Counted around a fork", registry=registry)
    store = metricache.open_store("redis", url=redis_server.url)
    syncer = metricache.Syncer(registry, store, interval=0.2, namespace=namespace)
    syncer.start()
    counter.inc(10)  # some of it may not be synced yet when we fork: still the parent's
    parent_id = syncer.instance.id
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read_end)
        status = 1
        try:
            counter.inc(5)
            report = syncer.stop(timeout=20)
            message = json.dumps({"id": syncer.instance.id, "ok": report is not None and report.ok})
            os.write(write_end, message.encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    counter.inc(1)
    _, status = os.waitpid(pid, 0)
    with os.fdopen(read_end) as pipe:
        child = json.loads(pipe.read())
    assert os.waitstatus_to_exitcode(status) == 0
    assert child["ok"]
    assert child["id"] != parent_id
    final = syncer.stop(timeout=20)
    assert final is not None
    assert final.ok
    view = metricache.merged_snapshot(store, namespace=namespace)
    # 10 + 1 from the parent, 5 from the child: the inherited 10 counted once.
    assert view["forks"].samples[0].value == 16  # type: ignore[union-attr]
