"""Redis dies or freezes while worker processes keep counting: the totals stay exact.

Three worker processes (two application threads each) count into a counter, a
histogram and a fractional counter while their syncers sync every 50 ms. Redis is
SIGKILLed and restarted empty five times, or frozen with SIGSTOP for five socket
timeouts three times. At the end every worker syncs what is left and the merged view
is compared, series by series, with the tallies the workers kept in plain integers.
"""

from __future__ import annotations

import random
import time
from typing import Any

import metricache

from tests.faults.fleet import Fleet, compare
from tests.faults.records import FaultRecord
from tests.support.servers import RedisServer

HOT_PATH_BOUND = 0.5
"""Seconds: a single metric call slower than this would mean it blocked on the store."""

WORKERS = 3
SOCKET_TIMEOUT = 0.3


def _fleet(server: RedisServer, namespace: str) -> Fleet:
    return Fleet(
        WORKERS,
        store="redis",
        options={
            "url": server.url,
            "socket_timeout": SOCKET_TIMEOUT,
            "connect_timeout": SOCKET_TIMEOUT,
        },
        namespace=namespace,
        instance="counter",
        interval=0.05,
        threads=2,
        labels=5,
    )


def _self_total(finals: list[dict[str, Any]], prefix: str) -> float:
    return float(sum(v for f in finals for k, v in f["self"].items() if k.startswith(prefix)))


def test_redis_sigkilled_and_restarted_empty_five_times_loses_and_doubles_nothing(
    fresh_redis: RedisServer, namespace: str, fault: FaultRecord
) -> None:
    rng = random.Random(7)
    with _fleet(fresh_redis, namespace) as fleet:
        time.sleep(0.5)
        for _ in range(5):
            time.sleep(rng.uniform(0.2, 0.5))
            fresh_redis.kill()
            time.sleep(rng.uniform(0.1, 0.4))  # syncs fail meanwhile: nothing listens
            fresh_redis.start()
        time.sleep(0.5)
        finals = fleet.command("stop")
    reader = metricache.open_store("redis", url=fresh_redis.url)
    result = compare(metricache.merged_snapshot(reader, namespace=namespace), finals)

    assert all(f["final_ok"] for f in finals), [f["final_error"] for f in finals]
    assert not [e for f in finals for e in f["errors"]]
    assert all(f["local"] == f["tally"] for f in finals)
    assert result.exact, result.mismatches
    assert (result.lost, result.doubled) == (0, 0)
    worst = max(f["worst_call"] for f in finals)
    assert worst < HOT_PATH_BOUND
    resets = _self_total(finals, "metricache_store_resets")
    failed_syncs = _self_total(finals, "metricache_syncs{failed}")
    # Each worker saw the store come back empty at least once, and said so.
    assert all(f["self"].get("metricache_store_resets", 0) >= 1 for f in finals)
    assert failed_syncs > 0
    logs = "".join(fleet.stderr)
    assert "has lost its data" in logs
    assert "works again after" in logs

    fault.fault = "Redis SIGKILLed and restarted empty, 5 times, while 3 processes count"
    fault.store = "redis"
    fault.strategy = "distributed_atomic"
    fault.happened = (
        f"{int(failed_syncs)} syncs failed; every worker noticed the empty store "
        f"({int(resets)} resets in all) and re-sent its cumulative totals"
    )
    fault.compare_fleet(result, worst, "nothing lost, nothing doubled")
    fault.seen_in = [
        "metricache_store_resets_total",
        "metricache_syncs_total{result=failed}",
        "metricache_sync_errors_total",
        "log: store ... has lost its data",
    ]


def test_redis_frozen_by_sigstop_beyond_socket_timeouts_never_blocks_the_application(
    fresh_redis: RedisServer, namespace: str, fault: FaultRecord
) -> None:
    pause = 5 * SOCKET_TIMEOUT
    with _fleet(fresh_redis, namespace) as fleet:
        time.sleep(0.5)
        for _ in range(3):
            fresh_redis.pause()
            time.sleep(pause)
            fresh_redis.resume()
            time.sleep(0.4)
        finals = fleet.command("stop")
    reader = metricache.open_store("redis", url=fresh_redis.url)
    result = compare(metricache.merged_snapshot(reader, namespace=namespace), finals)

    assert all(f["final_ok"] for f in finals), [f["final_error"] for f in finals]
    assert not [e for f in finals for e in f["errors"]]
    assert result.exact, result.mismatches
    assert (result.lost, result.doubled) == (0, 0)
    worst = max(f["worst_call"] for f in finals)
    assert worst < HOT_PATH_BOUND
    timeouts = _self_total(finals, "metricache_sync_errors{OutcomeUnknown}")
    retries = _self_total(finals, "metricache_sync_batch_retries")
    # A batch that timed out may have been applied by the frozen server once it thawed:
    # it was re-sent as a retry, and the traces in its series showed what it applied.
    assert timeouts > 0
    assert retries > 0
    assert "failed: OutcomeUnknown" in "".join(fleet.stderr)

    fault.fault = (
        f"Redis frozen (SIGSTOP) 3 times for {pause:.1f} s, 5x the socket timeout, "
        "while 3 processes count"
    )
    fault.store = "redis"
    fault.strategy = "distributed_atomic"
    fault.happened = (
        f"{int(timeouts)} syncs timed out with an unknown outcome; their batches were "
        f"re-sent unchanged as retries ({int(retries)} re-sends) and, recognised by the "
        "traces in their series, applied once"
    )
    fault.compare_fleet(result, worst, "nothing lost, nothing doubled")
    fault.seen_in = [
        "metricache_sync_errors_total{error=OutcomeUnknown}",
        "metricache_sync_batch_retries_total",
        "log: sync to redis ... failed",
    ]


def test_a_worker_sigkilled_between_syncs_loses_exactly_what_it_had_not_synced(
    redis_server: RedisServer, namespace: str, fault: FaultRecord
) -> None:
    burst = 1234
    with Fleet(
        WORKERS,
        store="redis",
        options={"url": redis_server.url},
        namespace=namespace,
        instance="killed",
        interval=None,  # the test says when each worker syncs
        threads=2,
        labels=5,
    ) as fleet:
        for _ in range(3):
            time.sleep(0.2)
            assert all(a["ok"] for a in fleet.command("sync"))
        (synced,) = fleet.command("stop", only=[0])  # its last sync: all it counted so far
        assert synced["final_ok"]
        assert fleet.command(f"burst {burst}", only=[0]) == [{"burst": burst}]
        fleet.kill(0)  # no final sync: the burst is in its memory only
        finals = fleet.command("stop", only=[1, 2])
    reader = metricache.open_store("redis", url=redis_server.url)
    result = compare(metricache.merged_snapshot(reader, namespace=namespace), [synced, *finals])

    assert all(f["final_ok"] for f in finals)
    assert result.exact, result.mismatches  # the survivors and what the dead one synced
    assert (result.lost, result.doubled) == (0, 0)
    sent = result.sent + burst
    assert sent - result.counted == burst  # lost: exactly the burst, nothing else

    fault.fault = "a worker process SIGKILLed between two syncs (3 processes count)"
    fault.store = "redis"
    fault.strategy = "distributed_atomic"
    fault.happened = (
        f"the killed process had counted {burst:,} increments since its last sync; the "
        "totals kept everything it had synced and everything the others counted"
    )
    fault.sent = sent
    fault.counted = result.counted
    fault.compared = (
        f"{sent:,} counter increments ({burst:,} of them never synced), "
        f"{result.observations + burst:,} histogram observations and a fractional sum"
    )
    fault.lost = sent - result.counted
    fault.doubled = result.doubled
    fault.allowed = f"what the killed process had not synced ({burst:,})"
    fault.seen_in = ["its gauges leave the merged view after the liveness TTL"]
