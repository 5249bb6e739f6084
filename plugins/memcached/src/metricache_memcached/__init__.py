"""The memcached store for metricache (strategy ``distributed_basic``).

``open_store("memcached", url="memcached://127.0.0.1:11211")``, or several servers:
``url="memcached://10.0.0.1:11211,10.0.0.2:11211"``. Counters add up across every
process with memcached's atomic ``incr``; maps are updated with ``gets``/``cas``.
Batches are applied increment by increment, so an increment whose answer was lost
is sent again (at least once); see ``docs/stores.md``.
"""

from __future__ import annotations

from collections.abc import Iterable

from metricache import hookimpl
from metricache.store import Store

from metricache_memcached.store import MemcachedOptions, MemcachedStore

__all__ = ["MemcachedOptions", "MemcachedStore"]


@hookimpl
def metricache_store_classes() -> Iterable[type[Store]]:
    """Offer the memcached store."""
    return [MemcachedStore]
