"""Coordination across real processes on a real redis: once per period, takeover, no expiry."""

from __future__ import annotations

import collections
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import metricache
import metricache_json
import pytest
import redis
from metricache.export import ExportCoordinator, TickAction, TickResult, Timing
from metricache.sync.reader import merged_snapshot

from tests.export.cli import ROOT, clean_env
from tests.export_coordination.support import FlakyExporter
from tests.formats.snapshots import exact
from tests.support.servers import RedisServer

SAMPLE_FAMILIES = ("latency_seconds", "orders", "workers_busy")


def comparable(snapshot: metricache.Snapshot) -> tuple[Any, ...]:
    """The sample families of ``snapshot``, exactly: ``(counters and histograms, gauges)``."""
    shared = [f for f in snapshot.families if f.name in SAMPLE_FAMILIES[:2] and f.samples]
    gauges = [f for f in snapshot.families if f.name == SAMPLE_FAMILIES[2]]
    return tuple(
        exact(metricache.Snapshot(families=chosen, timestamp=0, view=metricache.ViewKind.MERGED))[4]
        for chosen in (shared, gauges)
    )


def sync_sample_metrics(url: str, namespace: str, retention: float) -> metricache.Registry:
    """Sync a counter, a histogram and a gauge of a fresh registry once."""
    registry = metricache.Registry()
    orders = metricache.Counter("orders", "Orders placed", ["region"], registry=registry)
    orders.labels("eu").inc(3)
    orders.labels('us "east"').inc(4.5)
    latency = metricache.Histogram(
        "latency_seconds", "Latency", ["route"], buckets=(0.1, 1.0), registry=registry
    )
    latency.labels("/").observe(0.05)
    latency.labels("/").observe(0.5)
    metricache.Gauge("workers_busy", "Busy workers", registry=registry).set(2)
    store = metricache.open_store("redis", url=url)
    syncer = metricache.Syncer(registry, store, namespace=namespace, retention=retention)
    assert syncer.flush().ok
    return registry


class Workers:
    """Worker processes of one test, and their reports."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, instance: str, **args: Any) -> subprocess.Popen[bytes]:
        report = self.tmp_path / f"{instance}.jsonl"
        report.touch()
        payload = {"instance": instance, "report": str(report), **args}
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.export_coordination.worker", json.dumps(payload)],
            cwd=ROOT,
            env=clean_env(),
            stdout=subprocess.DEVNULL,
            stderr=(self.tmp_path / f"{instance}.err").open("wb"),
        )
        self.procs[instance] = proc
        return proc

    def report(self, instance: str) -> list[dict[str, Any]]:
        text = (self.tmp_path / f"{instance}.jsonl").read_text()
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def stderr(self, instance: str) -> str:
        return (self.tmp_path / f"{instance}.err").read_text()

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    found = Workers(tmp_path)
    yield found
    found.stop_all()


def lease_value(client: redis.Redis, key: str) -> bytes:
    """The token in the lease key (b"" when free)."""
    value = client.get(key)
    return value if isinstance(value, bytes) else b""


def wait_for(condition: Any, what: str, timeout: float = 60.0) -> None:
    """Poll ``condition`` until it is true; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.slow
def test_four_processes_export_each_of_ten_periods_exactly_once(
    redis_server: RedisServer, namespace: str, workers: Workers, tmp_path: Path
) -> None:
    sync_sample_metrics(redis_server.url, namespace, retention=60)
    out_dir = tmp_path / "exports"
    out_dir.mkdir()
    go = tmp_path / "go"
    common = {
        "url": redis_server.url,
        "namespace": namespace,
        "go": str(go),
        "stop_at": 10.0,
        "interval": 1.0,
        "retention": 60.0,
        "margin": 5.0,
        "timeout": 5.0,
        "lease_ttl": 2.0,
        "out_dir": str(out_dir),
    }
    names = [f"worker-{n}" for n in range(4)]
    for name in names:
        workers.start(name, **common)
    wait_for(lambda: all(workers.report(n) for n in names), "the workers to be ready", timeout=120)
    # Whole seconds: period k is the Unix second t0 + k, which names the export files.
    (tmp_path / "go.tmp").write_text(str(float(int(time.time()) + 2)))
    (tmp_path / "go.tmp").rename(go)  # whole, or not at all
    for name in names:
        assert workers.procs[name].wait(60) == 0, workers.stderr(name)

    exported: collections.Counter[int] = collections.Counter()
    destinations = []
    settled_elsewhere = 0
    for name in names:
        lines = workers.report(name)
        assert lines[-1]["action"] == "stopped", workers.stderr(name)
        for line in lines:
            if line["action"] == "exported":
                exported[line["period"]] += 1
                destinations.extend(line["destinations"])
            settled_elsewhere += line["action"] == "done_elsewhere"
            assert line["action"] in (
                "ready",
                "exported",
                "done_elsewhere",
                "busy",
                "stopped",
            ), line
    assert {p: exported[p] for p in range(10)} == dict.fromkeys(range(10), 1)
    assert set(exported) <= set(range(11))  # period 10 began as the workers stopped
    assert max(exported.values()) == 1
    assert settled_elsewhere > 0  # the others did look, and found each period done
    # Every export is a file of its own holding the merged view.
    assert sorted(destinations) == sorted(str(p) for p in out_dir.iterdir())
    for path in out_dir.iterdir():
        text = path.read_text()
        assert 'orders_total{region="eu"} 3.0' in text
        assert "workers_busy 2.0" in text


@pytest.mark.slow
def test_a_holder_killed_mid_export_is_replaced_once_its_lease_expires(
    redis_server: RedisServer, namespace: str, workers: Workers, tmp_path: Path
) -> None:
    sync_sample_metrics(redis_server.url, namespace, retention=120)
    out_dir = tmp_path / "exports"
    out_dir.mkdir()
    lease_ttl = 1.5
    common = {
        "url": redis_server.url,
        "namespace": namespace,
        "t0": time.time(),  # period 0 lasts the whole test
        "stop_at": None,
        "interval": 100.0,
        "retention": 120.0,
        "margin": 5.0,
        "timeout": 10.0,  # the holder is killed long before its attempt would time out
        "lease_ttl": lease_ttl,
        "out_dir": str(out_dir),
    }
    marker = tmp_path / "holder-exporting"
    holder = workers.start("holder", block=str(marker), **common)
    wait_for(marker.exists, "the holder to start exporting")
    client = redis.Redis.from_url(redis_server.url)
    lease_key = f"{namespace}:export:default:lease"
    assert lease_value(client, lease_key).startswith(b"holder/")

    workers.start("standby", **common)
    # Within the export timeout, the holder renews its lease while its export hangs:
    # the standby keeps finding it busy for several lease lifetimes and exports nothing.
    wait_for(
        lambda: sum(r["action"] == "busy" for r in workers.report("standby")) >= 8,
        "the standby to find the lease busy",
    )
    assert [r["action"] for r in workers.report("standby")] == ["busy"] * len(
        workers.report("standby")
    )
    assert lease_value(client, lease_key).startswith(b"holder/")

    holder.send_signal(signal.SIGKILL)
    holder.wait(10)
    # The dead holder's lease outlives it by at most lease_ttl.
    remaining = client.pttl(lease_key)
    assert remaining <= lease_ttl * 1000

    def standby_exported() -> bool:
        return any(r["action"] == "exported" for r in workers.report("standby"))

    wait_for(standby_exported, "the standby to take the export over")
    results = [r for r in workers.report("standby") if r["action"] != "busy"]
    assert [(r["action"], r["period"], r["attempt"]) for r in results] == [
        ("exported", 0, 1)  # the very period the holder never finished
    ]
    (written,) = out_dir.iterdir()
    assert 'orders_total{region="eu"} 3.0' in written.read_text()
    assert client.get(lease_key) is None  # released by its new owner
    assert client.get(f"{namespace}:export:default:done:0") is not None


@pytest.mark.slow
def test_a_hung_export_is_abandoned_after_the_timeout_and_another_instance_takes_the_period(
    redis_server: RedisServer, namespace: str, workers: Workers, tmp_path: Path
) -> None:
    sync_sample_metrics(redis_server.url, namespace, retention=120)
    out_dir = tmp_path / "exports"
    out_dir.mkdir()
    common = {
        "url": redis_server.url,
        "namespace": namespace,
        "t0": time.time(),  # period 0 lasts the whole test
        "stop_at": None,
        "interval": 100.0,
        "retention": 120.0,
        "margin": 5.0,
        "timeout": 1.0,
        "lease_ttl": 1.5,
        "out_dir": str(out_dir),
    }
    marker = tmp_path / "holder-exporting"
    workers.start("holder", block=str(marker), **common)
    wait_for(marker.exists, "the holder to start exporting")
    client = redis.Redis.from_url(redis_server.url)
    lease_key = f"{namespace}:export:default:lease"
    assert lease_value(client, lease_key).startswith(b"holder/")
    workers.start("standby", **common)

    def standby_exported() -> bool:
        return any(r["action"] == "exported" for r in workers.report("standby"))

    # The holder's exporter never answers, and the holder is alive and well: it gives
    # its attempt up after the export timeout and does not renew the lease for it.
    wait_for(standby_exported, "the standby to take the period over", timeout=20)
    holder = [r for r in workers.report("holder") if r["action"] not in ("ready", "busy")]
    assert [(r["action"], r["period"], r["attempt"]) for r in holder][:1] == [("timed_out", 0, 1)]
    exported = [r for r in workers.report("standby") if r["action"] == "exported"]
    assert [(r["period"], r["attempt"]) for r in exported] == [(0, 1)]
    (written,) = out_dir.iterdir()
    assert 'orders_total{region="eu"} 3.0' in written.read_text()
    assert client.get(f"{namespace}:export:default:done:0") is not None
    warning = "exporter 'hanging': no answer within the export timeout of 1 s"
    wait_for(lambda: warning in workers.stderr("holder"), "the holder's warning")
    assert workers.stderr("holder").count(warning) == 1


@pytest.mark.slow
def test_nothing_a_retried_export_covers_expires_while_it_is_retried(
    redis_server: RedisServer, namespace: str
) -> None:
    retention = 2.0
    registry = sync_sample_metrics(redis_server.url, namespace, retention)
    # A second namespace synced alike, that no export protects: it must be gone by
    # the time the export succeeds, or this test would prove nothing.
    sync_sample_metrics(redis_server.url, namespace + "-control", retention)
    synced = time.monotonic()
    client = redis.Redis.from_url(redis_server.url)
    value_keys = sorted(client.scan_iter(match=f"{{{namespace}/*}}:s:*"))  # one hash per series
    assert value_keys

    ttls_after_failures: list[int] = []

    def observe(result: TickResult) -> None:
        if result.action is TickAction.RETRYING:
            ttls_after_failures.append(max(client.pttl(k) for k in value_keys))

    exporter = FlakyExporter(failures=3)
    timing = Timing(
        retention=retention,
        safety_margin=0.2,
        export_timeout=0.3,
        interval=1.5,
        backoff_base=0.8,
        backoff_cap=10.0,
        retries=3,
        lease_ttl=2.0,
    )
    self_metrics = metricache.Registry()
    coordinator = ExportCoordinator(
        metricache.open_store("redis", url=redis_server.url),
        [exporter],
        format="json",
        namespace=namespace,
        timing=timing,
        registry=self_metrics,
        on_result=observe,
    )
    with coordinator:
        wait_for(lambda: bool(exporter.payloads), "the export to succeed")
    elapsed = time.monotonic() - synced
    assert elapsed > retention  # backoff 0.8 + 1.6 + 3.2 s: everything would have expired
    assert exporter.delivered_on[0] == 4  # three failures, then the retry that succeeded

    exported = metricache_json.parse(exporter.payloads[0])
    assert comparable(exported) == comparable(registry.snapshot())
    # Each failure set the TTLs to retention + backoff delay + margin (never rewrote them).
    assert len(ttls_after_failures) == 3
    assert all(0 < ttl <= (retention + 3.2 + 0.2) * 1000 for ttl in ttls_after_failures)
    extensions = self_metrics.snapshot()["metricache_export_ttl_extensions"]
    assert extensions.samples == (metricache.Sample(("failed",), 3.0),)
    control = merged_snapshot(
        metricache.open_store("redis", url=redis_server.url),
        namespace=namespace + "-control",
        retention=retention,
    )
    assert comparable(control)[0] == ()  # counters and histograms: gone


def test_a_ttl_extension_is_a_real_ttl_refresh_in_redis(
    redis_server: RedisServer, namespace: str
) -> None:
    sync_sample_metrics(redis_server.url, namespace, retention=30)
    client = redis.Redis.from_url(redis_server.url)
    values = {k: client.hgetall(k) for k in client.scan_iter(match=f"{{{namespace}/*}}:s:*")}
    assert values
    exporter = FlakyExporter(failures=1)
    coordinator = ExportCoordinator(
        metricache.open_store("redis", url=redis_server.url),
        [exporter],
        namespace=namespace,
        timing=Timing(retention=30, safety_margin=5, export_timeout=5, interval=20),
        registry=metricache.Registry(),
    )
    result = coordinator.tick()
    assert (result.action, result.retry_in, result.extended_by) == (TickAction.RETRYING, 30, 35)
    for key, value in values.items():
        assert client.hgetall(key) == value  # not rewritten
        assert 30_000 < client.pttl(key) <= 65_000  # retention + 30 s delay + 5 s margin
    coordinator.stop()
    assert client.get(f"{namespace}:export:default:lease") is None  # stop() let the lease go


def test_two_coordinators_in_one_process_never_share_a_lease(
    redis_server: RedisServer, namespace: str
) -> None:
    sync_sample_metrics(redis_server.url, namespace, retention=60)
    store = metricache.open_store("redis", url=redis_server.url)
    timing = Timing(retention=60, safety_margin=5, export_timeout=5, interval=10, backoff_base=2)
    first_exporter, second_exporter = FlakyExporter(failures=1), FlakyExporter()
    now = 1000.0
    first, second = (
        ExportCoordinator(
            store,
            [exporter],
            namespace=namespace,
            timing=timing,
            instance_id="same-id",
            clock=lambda: now,
            registry=metricache.Registry(),
        )
        for exporter in (first_exporter, second_exporter)
    )
    assert first.tick().action is TickAction.RETRYING  # holds the lease while it waits
    assert second.tick().action is TickAction.BUSY
    now = 1002.0
    assert first.tick().action is TickAction.EXPORTED
    assert second.tick().action is TickAction.DONE_ELSEWHERE
    assert (len(first_exporter.payloads), len(second_exporter.payloads)) == (1, 0)


def test_coordinators_of_different_names_export_independently(
    redis_server: RedisServer, namespace: str
) -> None:
    sync_sample_metrics(redis_server.url, namespace, retention=60)
    store = metricache.open_store("redis", url=redis_server.url)
    timing = Timing(retention=60, safety_margin=5, export_timeout=5, interval=10)
    results = []
    for name, format_name in (("json-archive", "json"), ("csv-archive", "csv")):
        for instance in ("web-1", "web-2"):
            coordinator = ExportCoordinator(
                store,
                [FlakyExporter()],
                format=format_name,
                namespace=namespace,
                name=name,
                timing=timing,
                instance_id=instance,
                clock=lambda: 1000.0,
                registry=metricache.Registry(),
            )
            results.append((name, instance, coordinator.tick().action))
    assert results == [
        ("json-archive", "web-1", TickAction.EXPORTED),
        ("json-archive", "web-2", TickAction.DONE_ELSEWHERE),
        ("csv-archive", "web-1", TickAction.EXPORTED),
        ("csv-archive", "web-2", TickAction.DONE_ELSEWHERE),
    ]
    with pytest.raises(ValueError, match="a coordinator name holds only"):
        ExportCoordinator(store, [FlakyExporter()], name="has space")
