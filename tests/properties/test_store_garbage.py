"""Arbitrary bytes under any key the reader reads never crash it, in any store.

An instance syncs counters, gauges and a histogram; then hypothesis writes arbitrary
bytes under keys the reader consults (the epoch, the families, index and instance
maps, instance headers and gauge pages, series keys and their parts, saved views),
through the store's own ``set`` and behind its back: raw items with any flags in
memcached, hashes, lists and sets with arbitrary fields in Redis, arbitrary file
contents in the file store. Reading the view must return a Snapshot (skipping what it
cannot read); syncing must still work and the view must still be readable afterwards.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import metricache
import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st
from metricache.snapshot import Snapshot
from metricache.store import encode_map
from metricache.sync.keyspace import Keyspace, series_id
from metricache.sync.strategy import Strategy
from metricache_file.store import file_name
from pymemcache.client.base import Client  # type: ignore[import-untyped]

from tests.properties.conftest import STORE_NAMES
from tests.properties.strategies import STORES

# (key kind, bytes, how to write them)
garbage = st.lists(
    st.tuples(
        st.sampled_from(
            ["epoch", "fam", "idx", "inst", "header", "page", "series", "local", "instances"]
        ),
        st.one_of(
            st.binary(max_size=64),
            st.sampled_from(
                [b"", b"{}", b"[]", b"null", b'{"a":1}', b'{"x":"{}"}', b"9" * 30, b"-1", b"\xff"]
            ),
            st.dictionaries(st.text(max_size=8), st.text(max_size=12), max_size=3).map(encode_map),
        ),
        st.sampled_from(["set", "raw"]),
    ),
    min_size=1,
    max_size=4,
)


def _keys(keyspace: Keyspace, kind: str, ikey: str, layout: str) -> list[bytes]:
    gen = keyspace.generation()
    sid = series_id("orders", ("eu",))
    return {
        "epoch": [keyspace.epoch()],
        "fam": [keyspace.families(gen)],
        "idx": [keyspace.index("orders", gen), keyspace.index("latency", gen)],
        "inst": [keyspace.instances(gen)],
        "header": [keyspace.instance(ikey)],
        "page": [keyspace.gauge_page(ikey, layout, 0)],
        "series": [keyspace.series(sid), keyspace.part(sid, "i"), keyspace.part(sid, "f")],
        "local": [keyspace.local(ikey)],
        "instances": [keyspace.local_instances()],
    }[kind]


def _write_raw(store: metricache.Store, key: bytes, data: bytes, n: int) -> None:
    """Write ``data`` under ``key`` behind the store's back, in the store's own terms."""
    name = store.name
    if name == "redis":
        client = redis.Redis.from_url(store.options.url)
        client.delete(key)
        kind = n % 4
        if kind == 0:
            client.set(key, data)
        elif kind == 1:
            client.hset(key, mapping={data or b"f": data, b"@": data[::-1]})
        elif kind == 2:
            client.rpush(key, data)
        else:
            client.sadd(key, data)
        client.close()
    elif name == "memcached":
        host, port = store.options.url.removeprefix("memcached://").split(":")
        client = Client((host, int(port)))
        client.set(key, data, expire=60, noreply=False, flags=n % 5)
        client.close()
    elif name == "file":
        (Path(store.options.path) / file_name(key)).write_bytes(data)
    else:
        store.set(key, data, 60)


@pytest.mark.parametrize("store", STORE_NAMES, indirect=True)
@STORES
@given(writes=garbage)
def test_arbitrary_bytes_under_the_keys_never_crash_the_reader(
    store: metricache.Store, writes: list[tuple[str, bytes, str]]
) -> None:
    namespace = "g" + secrets.token_hex(6)
    registry = metricache.Registry()
    orders = metricache.Counter("orders", "Orders", ["region"], registry=registry)
    latency = metricache.Histogram("latency", "Latency", ["route"], registry=registry)
    level = metricache.Gauge("level", "Level", registry=registry, merge="max")
    orders.labels("eu").inc(2.5)
    latency.labels("/").observe(0.3)
    level.set(4)
    syncer = metricache.Syncer(registry, store, interval=3600, namespace=namespace)
    assert syncer.flush().ok
    keyspace = syncer.keyspace
    layout = syncer._shared.gauges.layout if syncer._shared is not None else "none.1"
    for n, (kind, data, how) in enumerate(writes):
        for key in _keys(keyspace, kind, syncer.instance.key, layout):
            if how == "set":
                store.set(key, data, 60)
            else:
                _write_raw(store, key, data, n)

    def read() -> Snapshot:
        return metricache.merged_snapshot(
            store, namespace=namespace, instance_id=syncer.instance.id
        )

    assert isinstance(read(), Snapshot)
    if syncer.strategy is not Strategy.LOCAL_ONLY:
        # The other view a store can be read as: one instance's saved view.
        view = metricache.merged_snapshot(
            store, namespace=namespace, strategy="local_only", instance_id="someone"
        )
        assert isinstance(view, Snapshot)
    orders.labels("eu").inc()
    level.set(5)
    report = syncer.flush()
    assert report.ok, report.error
    assert isinstance(read(), Snapshot)
