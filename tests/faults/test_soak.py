"""A minute of 2 s retention windows: weeks of production, compressed, with faults on the way.

Four worker processes (``tests.faults.soak_worker``) record with a running syncer
(interval 0.4 s, retention 2 s) for 60 s: a counter each incremented once and then left
alone, a shared counter, a counter of billionths, a histogram whose lowest bucket is
hit once, a gauge set to 1 (merged by sum). One worker forks with its syncer running:
the child counts on its own, and what the parent recorded before the fork, its gauge
included, must be counted once. In the middle the store is killed and restarted empty,
and one worker is frozen by SIGSTOP for longer than the retention. The test samples the
merged view all along: every series it shows never goes down (from one restart of the store to the
next), the quiet counters of the live workers never leave it, and the merged gauge is
one per worker whenever every worker is live (never one more for the child). At the end the
workers stop (each with a final sync) and the merged view must equal their tallies:
exactly on Redis; on memcached, which is at least once, never less, and at most what
one sync in progress when the store restarted can have carried more.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import metricache
import pytest
from metricache.errors import StoreError
from metricache.snapshot import HistogramSample, MetricType, Sample
from metricache.sync.keyspace import join_fixed, split_fixed

from tests.faults.fleet import ROOT
from tests.faults.records import FaultRecord
from tests.faults.soak_worker import STEP
from tests.support.servers import MemcachedServer, RedisServer

RETENTION = 2.0
INTERVAL = 0.4
DURATION = 60.0
RESTART_AT = 20.0
FREEZE_AT = 35.0
FREEZE_FOR = 2.5 * RETENTION
WORKERS = 4
FORK_AT_STEP = 300
"""The step at which worker 0 forks (about 6 s in, before the store restarts)."""


def _series(view: metricache.Snapshot) -> dict[str, tuple[float, ...]]:
    """Every counter and histogram series of the view, the numbers that never go down."""
    found: dict[str, tuple[float, ...]] = {}
    for family in view.families:
        if family.name.startswith("metricache_") or family.type is MetricType.GAUGE:
            continue
        for sample in family.samples:
            key = f"{family.name}|{','.join(sample.labels)}"
            if isinstance(sample, HistogramSample):
                found[key] = (*sample.buckets, sample.count, sample.sum)
            elif isinstance(sample, Sample):
                found[key] = (sample.value,)
    return found


def _level(view: metricache.Snapshot) -> float | None:
    """The merged ``level`` gauge (one per live worker), or None when it is absent."""
    for family in view.families:
        if family.name == "level":
            for sample in family.samples:
                if isinstance(sample, Sample):
                    return sample.value
    return None


def _exact_sum(values: list[float]) -> float:
    """What the store holds for these cumulative values: the sum of their fixed points."""
    whole = sum(split_fixed(v)[0] for v in values)
    nanos = sum(split_fixed(v)[1] for v in values)
    return join_fixed(whole, nanos)


@pytest.mark.slow
@pytest.mark.parametrize("store_name", ["redis", "memcached"])
def test_a_fleet_soaked_through_thirty_retention_windows_ends_exact(
    store_name: str,
    fresh_redis: RedisServer,
    fresh_memcached: MemcachedServer,
    namespace: str,
    tmp_path: Path,
    fault: FaultRecord,
) -> None:
    server: RedisServer | MemcachedServer = (
        fresh_redis if store_name == "redis" else fresh_memcached
    )
    procs: list[subprocess.Popen[str]] = []
    outs = [tmp_path / f"w{n}.json" for n in range(WORKERS)]
    for n in range(WORKERS):
        args = {
            "instance": f"soak-{n}",
            "store": store_name,
            "url": server.url,
            "namespace": namespace,
            "interval": INTERVAL,
            "retention": RETENTION,
            "out": str(outs[n]),
            "fork_at": FORK_AT_STEP if n == 0 else 0,
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "tests.faults.soak_worker", json.dumps(args)],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert "ready" in proc.stdout.readline(), proc.stderr
        reader = metricache.open_store(store_name, url=server.url)
        started = time.monotonic()
        last: dict[str, tuple[float, ...]] = {}
        samples = regressions = 0
        quiet_gone: list[str] = []
        restart_took = 0.0

        def recovering_now() -> bool:
            """Whether the store's restart is still being recovered from."""
            return restarted and time.monotonic() - started < RESTART_AT + 2 * INTERVAL + 1

        restarted = frozen = thawed = False
        frozen_quiet_left = frozen_quiet_back = False
        levels_wrong: list[str] = []
        levels_checked = 0
        while (elapsed := time.monotonic() - started) < DURATION:
            if not restarted and elapsed >= RESTART_AT:
                before = time.monotonic()
                server.restart()  # killed, and back empty on the same port
                restart_took = time.monotonic() - before
                restarted = True
                last.clear()  # what the store lost may come back lower: a new baseline
            if not frozen and elapsed >= FREEZE_AT:
                procs[1].send_signal(signal.SIGSTOP)
                frozen = True
                frozen_since = time.monotonic()
            if frozen and not thawed and time.monotonic() - frozen_since >= FREEZE_FOR:
                procs[1].send_signal(signal.SIGCONT)
                thawed = True
            try:
                sampled = metricache.merged_snapshot(
                    reader, namespace=namespace, retention=RETENTION
                )
            except StoreError:
                time.sleep(0.1)  # the store is restarting
                continue
            found = _series(sampled)
            samples += 1
            for key, numbers in found.items():
                before_numbers = last.get(key)
                if before_numbers is not None and any(
                    a < b for a, b in zip(numbers, before_numbers)
                ):
                    regressions += 1
            last.update(found)
            # The merged gauge: one per worker while every worker is live and synced
            # (not while one is frozen, nor just after it woke or the store restarted).
            settled = not frozen or (
                thawed and time.monotonic() - frozen_since > FREEZE_FOR + 2 * INTERVAL + 1
            )
            if elapsed > 2 * INTERVAL + 1 and settled and not recovering_now():
                level = _level(sampled)
                levels_checked += 1
                if level != WORKERS:
                    levels_wrong.append(f"level {level} at {elapsed:.1f} s")
            # The quiet counter of every live, running worker is always there (once its
            # first sync is done and outside the restart's own recovery).
            recovering = recovering_now()
            for n in range(WORKERS):
                key = f"quiet|soak-{n}"
                if n == 1 and frozen:
                    if key not in found and not thawed:
                        frozen_quiet_left = True
                    if thawed and key in found and frozen_quiet_left:
                        frozen_quiet_back = True
                    continue
                if elapsed > 2 * INTERVAL and not recovering and key not in found:
                    quiet_gone.append(f"{key} at {elapsed:.1f} s")
            time.sleep(0.25)
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(60)
            assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
                proc.wait(10)

    results = [json.loads(out.read_text()) for out in outs]
    results.append(json.loads(Path(str(outs[0]) + ".child").read_text()))
    assert all(r["final_sync_ok"] for r in results)
    final = _series(metricache.merged_snapshot(reader, namespace=namespace, retention=RETENTION))
    truth: dict[str, list[Any]] = {}
    for result in results:
        for key, value in result["values"].items():
            truth.setdefault(key, []).append(value)

    # What one sync in progress when the store restarted can carry, per worker, at most:
    # the changes since its last confirmed sync (the restart's downtime, two intervals).
    window = restart_took + 2 * INTERVAL * 1.1 + 0.5
    in_doubt_work = WORKERS * window / STEP
    in_doubt_observations = WORKERS * window / (5 * STEP)

    assert regressions == 0, f"{regressions} series went down between two samples"
    assert quiet_gone == [], quiet_gone
    assert levels_checked > 0
    assert levels_wrong == [], levels_wrong
    assert "work|child" in truth  # the child counted, and its counts are compared below
    assert frozen_quiet_left  # the frozen worker's own series left once nobody held it
    assert frozen_quiet_back  # and came back whole when it woke up
    sent = counted = 0.0
    excess: dict[str, float] = {}
    for key, values in truth.items():
        got = final.get(key)
        assert got is not None, f"{key} is missing"
        if isinstance(values[0], dict):
            buckets = [
                sum(v["buckets"][k] for v in values) for k in range(len(values[0]["buckets"]))
            ]
            total = _exact_sum([v["sum"] for v in values])
            expected: tuple[float, ...] = (*buckets, buckets[-1], total)
            sent += buckets[-1]
            counted += got[-2]
            excess[key] = got[-2] - buckets[-1]
            if store_name == "redis":
                assert got == expected, (key, got, expected)
            else:
                assert got[0] == buckets[0]  # the rare bucket, hit before any restart
                assert 0 <= excess[key] <= in_doubt_observations, (key, got, expected)
        else:
            expected_value = _exact_sum(values)
            sent += expected_value
            counted += got[0]
            excess[key] = got[0] - expected_value
            if store_name == "redis":
                assert got == (expected_value,), (key, got, expected_value)
            else:
                bound = in_doubt_work if key.startswith("work|") else 0.01 * in_doubt_observations
                if key.startswith("quiet|"):
                    bound = 0  # sent in the first sync, long before the restart
                assert 0 <= excess[key] <= bound + 1e-9, (key, got, expected_value, bound)

    work_sent = sum(truth["work|shared"])
    fault.fault = (
        f"soak: {DURATION:g} s of {RETENTION:g} s retention windows, {WORKERS} processes "
        f"syncing every {INTERVAL:g} s, one of them forking a child that counts too; the "
        f"store killed and restarted empty at {RESTART_AT:g} s; a worker frozen by SIGSTOP "
        f"for {FREEZE_FOR:g} s at {FREEZE_AT:g} s"
    )
    fault.store = store_name
    fault.strategy = "distributed_atomic" if store_name == "redis" else "distributed_basic"
    fault.happened = (
        f"{samples} merged views sampled, none went down; quiet counters never left the "
        "view while their process lived; the merged gauge stayed one per live worker (the "
        "forked child added none); the frozen worker's own counter left after the "
        "retention and came back whole when it woke; the restarted store was refilled "
        "by every instance re-sending what it lost"
    )
    fault.sent = int(work_sent)
    fault.counted = int(final["work|shared"][0])
    fault.compared = (
        f"{int(work_sent):,} increments of the shared counter, plus quiet counters, "
        "billionths and a histogram with a rare bucket, per series"
    )
    fault.lost = int(sum(-e for e in excess.values() if e < 0))
    fault.doubled = int(max(0.0, excess.get("work|shared", 0.0)))
    fault.allowed = (
        "nothing lost, nothing doubled"
        if store_name == "redis"
        else f"nothing lost; at most one sync's changes doubled by the restart "
        f"({int(in_doubt_work):,} increments)"
    )
    fault.seen_in = ["metricache_store_resets_total", "log: store ... has lost its data"]
