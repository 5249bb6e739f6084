"""Scale-out benchmarks: memcached against Redis, Redis Cluster against one Redis.

Everything runs on loopback ports started here: one redis-server, one memcached, a
Redis Cluster of 3 masters with 1 replica each (``redis-server --cluster-enabled yes``
and ``redis-cli --cluster create``), and a fleet of 3 memcached servers. Reports, each
measured side by side in alternating rounds (best round kept, median printed too):

* one sync of 100,000 changed counter series: memcached (one server, and a fleet of
  3) against one redis-server;
* the same sync to the cluster against one redis-server;
* a merged read of 100,000 counter series from the cluster against one redis-server.

Run: ``uv run python bench/scale.py`` (needs redis-server, redis-cli and memcached).
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

import metricache
from metricache.sync.syncer import Syncer
from metricache_conformance.topologies import ClusterTopology, free_port, wait_for_port

SERIES = 100_000


@contextmanager
def process(command: list[str], port: int) -> Iterator[None]:
    workdir = tempfile.mkdtemp(prefix="metricache-bench-")
    proc = subprocess.Popen(command, cwd=workdir, stdout=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        yield
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


def binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise SystemExit(f"{name} is not installed")
    return path


@contextmanager
def redis_server() -> Iterator[str]:
    port = free_port()
    command = [binary("redis-server"), "--port", str(port), "--bind", "127.0.0.1"]
    with process([*command, "--save", "", "--appendonly", "no"], port):
        yield f"redis://127.0.0.1:{port}/0"


@contextmanager
def memcached(count: int) -> Iterator[str]:
    with ExitStack() as stack:
        ports = []
        for _ in range(count):
            port = free_port()
            command = [binary("memcached"), "-l", "127.0.0.1", "-p", str(port), "-m", "512"]
            if os.geteuid() == 0:
                command += ["-u", "root"]
            stack.enter_context(process(command, port))
            ports.append(port)
        yield "memcached://" + ",".join(f"127.0.0.1:{p}" for p in ports)


@contextmanager
def redis_cluster() -> Iterator[str]:
    topology = ClusterTopology(binary("redis-server"), binary("redis-cli")).start()
    try:
        yield topology.url
    finally:
        topology.stop()


class Target:
    """One store with 100,000 counter series synced once (registered)."""

    def __init__(self, name: str, store: str, url: str, namespace: str) -> None:
        self.name = name
        self.namespace = namespace
        self.registry = metricache.Registry(cardinality_limit=SERIES + 1000)
        counter = metricache.Counter("jobs", "Jobs", ["queue", "id"], registry=self.registry)
        self.children = [counter.labels(str(i % 100), str(i)) for i in range(SERIES)]
        for child in self.children:
            child.inc()
        self.store = metricache.open_store(store, url=url)
        self.syncer = Syncer(self.registry, self.store, interval=3600, namespace=namespace)
        for _ in range(2):  # registers the series, then metricache's own metrics
            report = self.syncer.flush()
            assert report.ok, report.error
        self.syncs: list[float] = []
        self.reads: list[float] = []

    def sync_all_changed(self) -> None:
        for child in self.children:
            child.inc()
        gc.collect()
        start = time.perf_counter()
        report = self.syncer.flush()
        self.syncs.append(time.perf_counter() - start)
        assert report.ok, report.error
        assert report.series >= SERIES, report.series

    def read(self) -> None:
        gc.collect()
        start = time.perf_counter()
        view = metricache.merged_snapshot(self.store, namespace=self.namespace)
        self.reads.append(time.perf_counter() - start)
        assert len(view["jobs"].samples) == SERIES

    def close(self) -> None:
        self.syncer.stop()
        self.store.close()


def alternate(targets: list[Target], action: Callable[[Target], None], rounds: int) -> None:
    """Run ``action`` on every target, ``rounds`` times, changing who goes first."""
    for n in range(rounds):
        order = targets[n % len(targets) :] + targets[: n % len(targets)]
        for target in order:
            action(target)


def line(label: str, values: list[float]) -> str:
    best, median = min(values) * 1000, statistics.median(values) * 1000
    return f"{label}: best {best:,.0f} ms, median {median:,.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds per measure (best kept)")
    args = parser.parse_args()
    with (
        redis_server() as redis_url,
        memcached(1) as one,
        memcached(3) as fleet,
        redis_cluster() as cluster_url,
    ):
        targets = [
            Target("redis", "redis", redis_url, "bench-scale"),
            Target("memcached", "memcached", one, "bench-scale"),
            Target("memcached x3", "memcached", fleet, "bench-scale"),
            Target("redis cluster", "redis", cluster_url, "bench-scale"),
        ]
        alternate(targets, Target.sync_all_changed, args.rounds)
        read_targets = [targets[0], targets[3]]
        alternate(read_targets, Target.read, args.rounds)
        for target in targets:
            print(line(f"sync of {SERIES:,} changed series, {target.name}", target.syncs))
        for target in read_targets:
            print(line(f"merged read of {SERIES:,} series, {target.name}", target.reads))
        redis, one_mc, three_mc, clustered = (min(t.syncs) for t in targets)
        print(f"memcached / redis: {one_mc / redis:.2f}x (target <= 3x; memcached <= 1.5 s)")
        print(f"memcached x3 / redis: {three_mc / redis:.2f}x")
        print(f"cluster / redis, sync: {clustered / redis:.2f}x (target <= 1.5x)")
        read_ratio = min(targets[3].reads) / min(targets[0].reads)
        print(f"cluster / redis, merged read: {read_ratio:.2f}x (target <= 1.5x)")
        for target in targets:
            target.close()


if __name__ == "__main__":
    main()
