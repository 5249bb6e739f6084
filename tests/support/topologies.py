"""Redis Cluster and Sentinel topologies for tests, started on loopback ports.

The topologies themselves are :mod:`metricache_conformance.topologies` (``metricache
conformance --servers`` starts them too); this adds the test suite's rule: a missing
binary skips the test, or fails it under ``CI=true``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from metricache_conformance.topologies import ClusterTopology, SentinelTopology

from tests.support.servers import require_binary

__all__ = ["cluster", "sentinel"]


@contextmanager
def cluster(masters: int = 3, replicas: int = 1) -> Iterator[ClusterTopology]:
    """A Redis Cluster of ``masters`` masters with ``replicas`` replicas each."""
    topology = ClusterTopology(
        require_binary("redis-server"),
        require_binary("redis-cli"),
        masters=masters,
        replicas=replicas,
    ).start()
    try:
        yield topology
    finally:
        topology.stop()


@contextmanager
def sentinel(replicas: int = 1, sentinels: int = 3) -> Iterator[SentinelTopology]:
    """One master with ``replicas`` replicas, watched by ``sentinels`` sentinels."""
    topology = SentinelTopology(
        require_binary("redis-server"), replicas=replicas, sentinels=sentinels
    ).start()
    try:
        yield topology
    finally:
        topology.stop()
