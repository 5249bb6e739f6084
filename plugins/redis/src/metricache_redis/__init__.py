"""The Redis store for metricache: ``distributed_atomic``, batches applied exactly once.

``open_store("redis", url="redis://127.0.0.1:6379/0")``; ``rediss://`` for TLS;
``redis+sentinel://host:port[,host:port...]/SERVICE`` for the master a set of
sentinels names; ``redis+cluster://host:port[,host:port...]`` for a Redis Cluster. A
password in the URL is never printed. A series is one hash (its parts, its life, and
the traces of the incarnations that wrote it), so it expires whole. A sync batch is
one Lua script call on one server, one per slot it touches on a cluster; every write
leaves a trace, so a batch re-sent after a lost reply is recognised series by series,
however late. ``min_replicas`` makes a batch count only once replicas acknowledged it.
"""

from __future__ import annotations

from collections.abc import Iterable

from metricache import hookimpl
from metricache.store import Store

from metricache_redis.store import RedisOptions, RedisStore

__all__ = ["RedisOptions", "RedisStore"]


@hookimpl
def metricache_store_classes() -> Iterable[type[Store]]:
    """Offer the Redis store."""
    return [RedisStore]
