"""The memcached store against real memcached processes: primitives, TTLs, hostile keys,
large values, signed integers, compare-and-swap, failures, several servers, and exact
aggregation from several syncing processes."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import threading
import time
from collections import Counter as Tally
from typing import Any

import metricache
import pytest
from metricache.errors import (
    ConfigError,
    CorruptValue,
    OutcomeUnknown,
    StoreUnavailable,
    UnsupportedOperation,
)
from metricache.snapshot import HistogramSample, Sample
from metricache.store import Capability
from metricache.sync.keyspace import Keyspace, series_id
from metricache.sync.strategy import Strategy, probe_capabilities, select_strategy
from metricache_memcached import MemcachedOptions, MemcachedStore
from metricache_memcached.connection import parse_url
from metricache_memcached.items import MAX_ABSOLUTE_EXPTIME, MAX_RELATIVE_EXPTIME, exptime
from metricache_memcached.keys import is_plain, safe_key
from pymemcache.client.base import Client  # type: ignore[import-untyped]

from tests.stores.workers import HOSTILE_LABELS, OBSERVED, amount, run_workers
from tests.support.servers import MemcachedServer, free_port

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)


class RecordingStore(MemcachedStore):
    """The memcached store, keeping what it reports through ``on_corrupt``."""

    def __init__(self, options: MemcachedOptions | None = None) -> None:
        super().__init__(options)
        self.reported: list[str] = []

    def on_corrupt(self, error: CorruptValue) -> None:
        self.reported.append(str(error))


def open_store(server: MemcachedServer, **options: Any) -> RecordingStore:
    return RecordingStore(MemcachedOptions(url=server.url, **options))


def raw_client(server: MemcachedServer) -> Any:
    """A plain pymemcache client: the backdoor that shows what really is in memcached."""
    return Client(("127.0.0.1", server.port), default_noreply=False)


def wait_until(condition: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never became true"
        time.sleep(0.1)


# -- declaration and options -----------------------------------------------------------


def test_declares_distributed_atomic_cas_and_gets_distributed_basic(
    memcached_server: MemcachedServer,
) -> None:
    store = metricache.open_store("memcached", url=memcached_server.url)
    assert isinstance(store, MemcachedStore)
    assert store.capabilities == {Capability.DISTRIBUTED, Capability.ATOMIC, Capability.CAS}
    assert select_strategy(store).strategy is Strategy.DISTRIBUTED_BASIC
    with pytest.raises(UnsupportedOperation):
        store.compare_and_delete(b"k", b"v")
    with pytest.raises(UnsupportedOperation):
        store.compare_and_touch(b"k", b"v", 5)
    # The live probe agrees with the declaration (locking is not a memcached promise).
    twin = metricache.open_store("memcached", url=memcached_server.url)
    assert probe_capabilities(store, twin=twin) == store.capabilities


def test_url_lists_servers_and_describe_shows_them_without_secrets() -> None:
    assert parse_url("memcached://cache") == [("cache", 11211)]
    assert parse_url("memcached://10.0.0.1:11212, 10.0.0.2/") == [
        ("10.0.0.1", 11212),
        ("10.0.0.2", 11211),
    ]
    assert parse_url("memcached://[::1]:11213,[fe80::2]") == [("::1", 11213), ("fe80::2", 11211)]
    store = metricache.open_store("memcached", url="memcached://a:1,[::1]:2", timeout="0.5")
    assert store.describe() == "memcached a:1,[::1]:2"
    for bad in ("redis://h", "memcached://", "memcached://h:x", "memcached://h:1,h:1", "h:1"):
        with pytest.raises(ConfigError, match=r"^store\.options\.url: "):
            metricache.open_store("memcached", url=bad)
    with pytest.raises(ConfigError) as info:
        metricache.open_store("memcached", url="memcached://user:hunter2@h:1")
    assert "hunter2" not in str(info.value)
    assert "no authentication" in str(info.value)
    with pytest.raises(ConfigError, match=r"^store\.options\.item_size_limit: .* >= 4096"):
        metricache.open_store("memcached", item_size_limit="100")


def test_exptime_rounds_up_adds_a_tick_and_becomes_a_capped_timestamp_past_30_days() -> None:
    assert exptime(0.001) == 2
    assert exptime(1) == 2
    assert exptime(1.2) == 3
    assert exptime(MAX_RELATIVE_EXPTIME - 1) == MAX_RELATIVE_EXPTIME
    assert exptime(MAX_RELATIVE_EXPTIME, now=1000.5) == 1000 + MAX_RELATIVE_EXPTIME + 1
    assert exptime(1e12, now=1000.0) == MAX_ABSOLUTE_EXPTIME
    for bad in (0, -1, math.inf, math.nan):
        with pytest.raises(ValueError, match="TTL"):
            exptime(bad)


# -- primitives -------------------------------------------------------------------------


def test_get_set_add_delete_touch_and_batches(
    memcached_server: MemcachedServer, namespace: str
) -> None:
    store = open_store(memcached_server)
    a, b, c, d, missing = (f"{namespace}:{x}".encode() for x in "abcdm")
    assert store.get(a) is None
    store.set(a, b"first", 30)
    store.set(a, b"second", 30)
    assert store.get(a) == b"second"
    assert store.add(a, b"no", 30) is False
    assert store.add(b, b"yes", 30) is True
    store.set_many({c: b"", d: b"007"}, 30)
    assert store.get_many([a, b, c, d, missing]) == {a: b"second", b: b"yes", c: b"", d: b"007"}
    assert store.touch(a, 30) is True
    assert store.touch(missing, 30) is False
    assert store.touch_many([a, b, missing], 30) == {a, b}
    assert store.delete(a) is True
    assert store.delete(a) is False
    assert store.get(a) is None
    # A value that is an integer's canonical text is kept as a number; get and incr agree.
    store.set(a, b"-12", 30)
    assert store.get(a) == b"-12"
    assert store.incr(a, 5, 30) == -7
    assert store.get(a) == b"-7"
    store.ping()
    assert store.reported == []


def test_ttls_expire_and_every_refresh_extends_them(
    memcached_server: MemcachedServer, namespace: str
) -> None:
    store = open_store(memcached_server)
    key = {n: f"{namespace}:{n}".encode() for n in ("gone", "kept", "n", "big", "bigone", "map")}
    big = os.urandom(2_500_000)
    store.set(key["gone"], b"v", 1)
    store.set(key["kept"], b"v", 1)
    store.touch(key["kept"], 60)
    store.incr(key["n"], 5, 1)
    store.incr(key["n"], 1, 60)  # incr refreshes the TTL
    store.set(key["big"], big, 1)
    store.touch(key["big"], 60)  # a large value: its chunks are refreshed too
    store.set(key["bigone"], big, 1)
    store.merge_map(key["map"], {"a": "1"}, 1)
    store.merge_map(key["map"], {"a": "1"}, 60)  # an unchanged map is touched
    wait_until(lambda: store.get(key["gone"]) is None)
    wait_until(lambda: store.get(key["bigone"]) is None)
    time.sleep(2.0)  # anything still on its 1 s TTL has expired by now
    assert store.get(key["kept"]) == b"v"
    assert store.read_counters([key["n"]]) == {key["n"]: 6}
    assert store.get(key["big"]) == big
    assert store.get_map(key["map"]) == {"a": "1"}
    # Past 30 days memcached wants a timestamp: the value is there, not expired at once.
    store.set(key["gone"], b"long", 40 * 24 * 3600)
    assert store.get(key["gone"]) == b"long"
    assert store.delete(key["big"])


# -- hostile keys and values ------------------------------------------------------------

HOSTILE_KEYS = [
    b"\r\nflush_all\r\n",
    b"with space",
    b"tab\there",
    b"nul\x00byte",
    b"del\x7f",
    b"x" * 300,
    b"y" * 251,
    b"z" * 250,  # the longest key used as it is
    "ключ ✓".encode(),
    bytes(range(256)),
    b"",
    b"~h:" + hashlib.blake2b(b"with space", digest_size=32).hexdigest().encode(),
    b"~c:0123:0",
]


def test_hostile_keys_and_values_round_trip_and_no_other_key_changes(
    memcached_server: MemcachedServer, namespace: str
) -> None:
    store = open_store(memcached_server)
    raw = raw_client(memcached_server)
    canary = f"{namespace}:canary".encode()
    store.set(canary, b"alive", 60)
    raw.set(f"{namespace}:raw-canary", b"alive", 60)
    values = {
        key: b"value %d \r\nEND\r\nVALUE x 0 1\r\n" % n + key for n, key in enumerate(HOSTILE_KEYS)
    }
    for key, value in values.items():
        store.set(key, value, 60)
    for key, value in values.items():
        assert store.get(key) == value, key
    assert store.get_many(values) == values
    # Every memcached key is plain printable ASCII, and none collides with another.
    mkeys = [safe_key(k) for k in HOSTILE_KEYS]
    assert all(is_plain(k) or k.startswith(b"~") for k in mkeys)
    assert all(0 < len(k) <= 250 and b" " not in k for k in mkeys)
    assert len(set(mkeys)) == len(mkeys)
    # A key spelling out another key's memcached name holds its own value, not that one.
    assert HOSTILE_KEYS[11] == mkeys[1]
    assert store.get(HOSTILE_KEYS[11]) != store.get(HOSTILE_KEYS[1])
    command = b"\r\nincr x 1\r\n"
    assert store.incr(command, -3, 60) == -3
    store.merge_map(b"\r\ndelete canary\r\n", {"a b\r\n": "c\r\nd"}, 60)
    assert store.get_map(b"\r\ndelete canary\r\n") == {"a b\r\n": "c\r\nd"}
    assert store.compare_and_swap(b"\r\nset y 0 0 1\r\n", None, b"\r\n", 60)
    assert store.get(b"\r\nset y 0 0 1\r\n") == b"\r\n"
    for key in values:
        assert store.delete(key)
        assert store.get(key) is None
    assert store.get(canary) == b"alive"
    assert raw.get(f"{namespace}:raw-canary") == b"alive"
    assert store.reported == []


def test_hostile_label_values_round_trip_through_a_syncer(
    memcached_server: MemcachedServer, namespace: str
) -> None:
    store = open_store(memcached_server)
    canary = f"{namespace}-canary".encode()
    store.set(canary, b"alive", 60)
    registry = metricache.Registry()
    counter = metricache.Counter("logins", "Logins", ["user"], registry=registry)
    for n, label in enumerate(HOSTILE_LABELS):
        counter.labels(label).inc(n + 1)
    syncer = metricache.Syncer(registry, store, namespace=namespace)
    assert syncer.flush().ok
    view = metricache.merged_snapshot(store, namespace=namespace)
    got = {s.labels[0]: s.value for s in view["logins"].samples if isinstance(s, Sample)}
    assert got == {label: float(n + 1) for n, label in enumerate(HOSTILE_LABELS)}
    assert store.get(canary) == b"alive"


# -- large values -----------------------------------------------------------------------


def test_values_over_the_item_limit_round_trip_in_chunks(
    memcached_server: MemcachedServer, namespace: str
) -> None:
    store = open_store(memcached_server)
    k, small, fresh = (f"{namespace}:{x}".encode() for x in ("big", "small", "fresh"))
    big = os.urandom(3 * 1024 * 1024 + 17)
    other = os.urandom(1024 * 1024 + 1)
    store.set(k, big, 60)
    store.set(small, b"s", 60)
    assert store.get(k) == big
    assert store.get_many([k, small]) == {k: big, small: b"s"}
    assert not store.compare_and_swap(k, other, b"x", 60)
    assert store.compare_and_swap(k, big, other, 60)
    assert store.get(k) == other
    assert store.add(fresh, big, 60)
    assert not store.add(fresh, other, 60)
    assert store.get(fresh) == big
    # A map of many series grows past 1 MB and still merges.
    entries = {f"series-{i:06d}": "x" * 40 for i in range(30_000)}
    mkey = f"{namespace}:map".encode()
    store.merge_map(mkey, entries, 60)
    store.merge_map(mkey, {"one-more": "1"}, 60, only_new=True)
    assert len(store.get(mkey) or b"") > 1024 * 1024
    assert store.get_map(mkey) == {**entries, "one-more": "1"}
    assert store.reported == []
    for done in (k, fresh, mkey):  # give the shared server its memory back
        assert store.delete(done)


def head_generation(raw: Any, key: bytes) -> bytes:
    data = raw.get(key)
    assert data is not None
    assert data.startswith(b"MCCHUNKS1 ")
    return bytes(data.split(b" ")[1])


def test_chunks_are_replaced_as_a_whole_and_evicted_chunks_mean_absent(
    memcached_server: MemcachedServer, namespace: str
) -> None:
    store = open_store(memcached_server, item_size_limit=4096)  # 3 KiB chunks
    raw = raw_client(memcached_server)
    key = f"{namespace}:value".encode()
    first, second = os.urandom(100_000), os.urandom(50_000)
    store.set(key, first, 60)
    old = head_generation(raw, key)
    assert raw.get(b"~c:%s:0" % old) is not None
    assert store.compare_and_swap(key, first, second, 60)
    assert store.get(key) == second
    new = head_generation(raw, key)
    assert new != old
    assert raw.get(b"~c:%s:0" % old) is None  # the replaced value's chunks are deleted
    # A chunk evicted behind the store's back: the value is absent, never half of it.
    raw.delete(b"~c:%s:7" % new)
    assert store.get(key) is None
    assert store.compare_and_swap(key, None, b"rewritten", 60)
    assert store.get(key) == b"rewritten"
    # A chunk overwritten with other bytes: reported and absent.
    store.set(key, first, 60)
    raw.set(b"~c:%s:3" % head_generation(raw, key), b"garbage", 60, flags=3)
    assert store.get(key) is None
    assert any("do not match" in r for r in store.reported)
    # Deleting a large value deletes its chunks too.
    store.set(key, first, 60)
    generation = head_generation(raw, key)
    assert store.delete(key)
    assert raw.get_many([b"~c:%s:%d" % (generation, i) for i in range(33)]) == {}


# -- integers -----------------------------------------------------------------------------


def test_incr_is_signed_64_bit_and_an_overflow_is_not_added(
    memcached_server: MemcachedServer, namespace: str
) -> None:
    store = open_store(memcached_server)
    k, m, z = (f"{namespace}:{x}".encode() for x in "kmz")
    assert store.incr(k, -5, 60) == -5
    assert store.incr(k, 3, 60) == -2
    assert store.incr(k, 0, 60) == -2
    assert store.get(k) == b"-2"
    assert store.incr(z, 0, 60) == 0
    assert store.read_counters([z, k]) == {z: 0, k: -2}
    assert store.incr(m, INT64_MAX, 60) == INT64_MAX
    assert store.incr(m, 1, 60) == INT64_MAX  # not added: reported instead
    assert store.incr(m, -INT64_MAX, 60) == 0
    assert store.incr(m, -INT64_MAX, 60) == -INT64_MAX
    assert store.incr(m, -1, 60) == INT64_MIN
    assert store.incr(m, -1, 60) == INT64_MIN  # not added
    assert store.read_counters([m]) == {m: INT64_MIN}
    assert len(store.reported) == 2
    assert all("would overflow" in r for r in store.reported)
    with pytest.raises(ValueError, match="signed 64-bit"):
        store.incr(k, 2**63, 60)


def test_incr_replaces_what_is_not_an_integer_and_says_so(
    memcached_server: MemcachedServer, namespace: str
) -> None:
    store = open_store(memcached_server)
    key = f"{namespace}:text".encode()
    store.set(key, b"hello", 60)
    assert store.incr(key, 4, 60) == 4
    assert store.read_counters([key]) == {key: 4}
    assert len(store.reported) == 1
    assert "not an integer" in store.reported[0]


def test_read_counters_decodes_integers_and_reports_the_rest(
    memcached_server: MemcachedServer, namespace: str
) -> None:
    store = open_store(memcached_server)
    n, s, t, missing = (f"{namespace}:{x}".encode() for x in ("n", "s", "t", "m"))
    store.incr(n, -41, 60)
    store.set(s, b"42", 60)
    store.set(t, b"forty-two", 60)
    assert store.read_counters([n, s, t, missing]) == {n: -41, s: 42}
    assert len(store.reported) == 1
    assert "forty-two" in store.reported[0]


def test_large_magnitudes_add_up_exactly_under_concurrency(
    memcached_server: MemcachedServer, namespace: str
) -> None:
    # Stored numbers of 2**63 and more are where memcached's incr can refuse to parse;
    # neighbours full of minus signs make that likely. The totals must stay exact.
    raw = raw_client(memcached_server)
    keys = [f"{namespace}:big{i}".encode() for i in range(4)]
    starts = [2**62, 2**62 + 12345, INT64_MAX - 10**6, INT64_MIN + 10**6]
    setup = open_store(memcached_server)
    for key, start in zip(keys, starts):
        setup.incr(key, start, 60)
        raw.set(key + b"-neighbour", b"-" * 200, 60)

    def work(thread: int) -> None:
        store = open_store(memcached_server)
        for i in range(150):
            store.incr(keys[i % 4], 1 if (i + thread) % 3 else -1, 60)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    expected = [
        start + sum(1 if (i + t) % 3 else -1 for t in range(4) for i in range(k, 150, 4))
        for k, start in enumerate(starts)
    ]
    assert setup.read_counters(keys) == dict(zip(keys, expected))


def test_concurrent_incr_from_four_processes_with_threads_is_exact(
    memcached_server: MemcachedServer, namespace: str
) -> None:
    args = {"url": memcached_server.url, "namespace": namespace, "threads": 4, "rounds": 400}
    reports = run_workers("incr", [{**args, "keys": 8} for _ in range(4)])
    expected = [sum(r["sent"][k] for r in reports) for k in range(8)]
    # The workers' own tallies agree with the formula they used.
    per_process = [0] * 8
    for t in range(4):
        for i in range(400):
            per_process[(i + t) % 8] += amount(t, i)
    assert expected == [4 * v for v in per_process]
    store = open_store(memcached_server)
    keys = [f"{namespace}:n:{k}".encode() for k in range(8)]
    assert store.read_counters(keys) == dict(zip(keys, expected))


# -- compare and swap, maps ---------------------------------------------------------------


def test_compare_and_swap_compares_values_and_none_means_absent(
    memcached_server: MemcachedServer, namespace: str
) -> None:
    store = open_store(memcached_server)
    key = f"{namespace}:cas".encode()
    assert not store.compare_and_swap(key, b"x", b"y", 60)
    assert store.get(key) is None
    assert store.compare_and_swap(key, None, b"1", 60)
    assert not store.compare_and_swap(key, None, b"2", 60)
    assert not store.compare_and_swap(key, b"9", b"2", 60)
    assert store.compare_and_swap(key, b"1", b"two", 60)
    assert store.get(key) == b"two"

    counter = f"{namespace}:cas-counter".encode()

    def bump(times: int) -> None:
        own = open_store(memcached_server)
        for _ in range(times):
            while True:
                current = own.get(counter)
                value = int(current or b"0") + 1
                if own.compare_and_swap(counter, current, str(value).encode(), 60):
                    break

    threads = [threading.Thread(target=bump, args=(50,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.get(counter) == b"200"


def test_merge_map_from_several_processes_loses_nothing(
    memcached_server: MemcachedServer, namespace: str
) -> None:
    key = f"{namespace}:map"
    args = {"store": "memcached", "options": {"url": memcached_server.url}, "key": key}
    run_workers("merge", [{**args, "me": f"p{n}", "entries": 40} for n in range(4)])
    store = open_store(memcached_server)
    assert store.get_map(key.encode()) == {f"p{n}-{i}": str(i) for n in range(4) for i in range(40)}


# -- failures -----------------------------------------------------------------------------


def test_a_server_nobody_listens_on_is_unavailable_and_nothing_reaches_the_app() -> None:
    store = metricache.open_store("memcached", url=f"memcached://127.0.0.1:{free_port()}")
    with pytest.raises(StoreUnavailable):
        store.get(b"k")
    with pytest.raises(StoreUnavailable):  # refused before anything was sent
        store.incr(b"k", 1, 60)
    with pytest.raises(StoreUnavailable):
        store.ping()
    registry = metricache.Registry()
    counter = metricache.Counter("calls", "Calls", registry=registry)
    syncer = metricache.Syncer(registry, store)
    counter.inc()
    report = syncer.flush()
    assert not report.ok
    assert "StoreUnavailable" in (report.error or "")
    counter.inc()
    assert registry.snapshot()["calls"].samples[0].value == 2  # type: ignore[union-attr]


def test_a_lost_answer_makes_a_write_unknown_and_a_read_unavailable(
    fresh_memcached: MemcachedServer, namespace: str
) -> None:
    store = open_store(fresh_memcached, timeout=0.5)
    key = f"{namespace}:n".encode()
    store.set(key + b"x", b"v", 60)
    store.incr(key, 1, 60)
    fresh_memcached.pause()
    try:
        with pytest.raises(StoreUnavailable):
            store.get(key + b"x")
        with pytest.raises(OutcomeUnknown):
            store.incr(key, 1, 60)
    finally:
        fresh_memcached.resume()
    # The request had reached the server: "unknown" really means "maybe applied".
    wait_until(lambda: store.read_counters([key]) == {key: 2})


def test_a_restarted_server_is_used_again_without_an_error(
    fresh_memcached: MemcachedServer, namespace: str
) -> None:
    store = open_store(fresh_memcached)
    key = f"{namespace}:k".encode()
    store.set(key, b"v", 60)
    fresh_memcached.restart()  # the store's connection is now closed by the other end
    assert store.get(key) is None
    assert store.incr(key, 2, 60) == 2


def test_a_forked_child_opens_its_own_connection(
    memcached_server: MemcachedServer, namespace: str
) -> None:
    store = open_store(memcached_server)
    key = f"{namespace}:fork".encode()
    store.incr(key, 1, 60)
    parent_port = store._servers[0].client.sock.getsockname()[1]
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            os.close(read_end)
            store.incr(key, 10, 60)
            port = store._servers[0].client.sock.getsockname()[1]
            os.write(write_end, json.dumps({"port": port}).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    _, status = os.waitpid(pid, 0)
    with os.fdopen(read_end) as pipe:
        child = json.loads(pipe.read())
    assert os.waitstatus_to_exitcode(status) == 0
    assert child["port"] != parent_port
    assert store._servers[0].client.sock.getsockname()[1] == parent_port
    assert store.incr(key, 100, 60) == 111


def test_several_servers_share_the_keys_and_a_down_server_is_never_bypassed(
    memcached_server: MemcachedServer, fresh_memcached: MemcachedServer, namespace: str
) -> None:
    url = f"{memcached_server.url},127.0.0.1:{fresh_memcached.port}"
    store = metricache.open_store("memcached", url=url)
    keys = [f"{namespace}:{i}".encode() for i in range(200)]
    store.set_many({k: k[::-1] for k in keys}, 60)
    assert store.get_many(keys) == {k: k[::-1] for k in keys}
    on_first = set(raw_client(memcached_server).get_many(keys))
    on_second = set(raw_client(fresh_memcached).get_many(keys))
    assert on_first
    assert on_second
    assert on_first | on_second == set(keys)
    assert not on_first & on_second
    for k in keys[:20]:
        store.incr(k + b":n", 3, 60)
    assert store.read_counters([k + b":n" for k in keys[:20]]) == {k + b":n": 3 for k in keys[:20]}
    fresh_memcached.kill()
    lost = next(k for k in keys if k in on_second)
    kept = next(k for k in keys if k in on_first)
    with pytest.raises(StoreUnavailable):
        store.set(lost, b"new", 60)
    with pytest.raises(StoreUnavailable):
        store.incr(lost, 1, 60)
    assert store.get(kept) == kept[::-1]
    assert raw_client(memcached_server).get(lost) is None  # not rerouted


# -- syncing ------------------------------------------------------------------------------


def memcached_commands(server: MemcachedServer) -> Tally[str]:
    stats = raw_client(server).stats()
    names = ("cmd_get", "cmd_set", "cmd_touch", "incr_hits", "incr_misses", "cas_hits")
    return Tally({n: int(stats[n.encode()]) for n in names})


def test_a_sync_costs_about_one_incr_per_changed_integer(
    fresh_memcached: MemcachedServer, namespace: str
) -> None:
    store = open_store(fresh_memcached)
    registry = metricache.Registry()
    counter = metricache.Counter("hits", "Hits", ["page"], registry=registry)
    syncer = metricache.Syncer(registry, store, namespace=namespace)
    for p in range(500):
        counter.labels(str(p)).inc()
    assert syncer.flush().ok  # registers the series
    for p in range(500):
        counter.labels(str(p)).inc()
    before = memcached_commands(fresh_memcached)
    assert syncer.flush().ok
    used = memcached_commands(fresh_memcached) - before
    incrs = used["incr_hits"] + used["incr_misses"]
    # One incr per changed integer, plus the syncer's own few self-metrics.
    assert 500 <= incrs <= 520
    # One read of each changed series' life and of each shard's marker (in the same
    # multi-get per server), then everything else: the epoch, the instance header and
    # gauge page, TTL refreshes (sent without waiting).
    keyspace = Keyspace(namespace)
    shards = len({keyspace.shard(series_id("hits", (str(p),))) for p in range(500)})
    markers = shards + 10  # and those of the syncer's own few self-metrics
    assert used["cmd_get"] - 500 - markers + used["cmd_set"] + used["cas_hits"] <= 30
    assert used["cmd_touch"] <= incrs + markers
    view = metricache.merged_snapshot(store, namespace=namespace)
    assert {s.value for s in view["hits"].samples if isinstance(s, Sample)} == {2.0}


def test_several_syncing_processes_add_up_exactly_over_hostile_labels(
    memcached_server: MemcachedServer, namespace: str
) -> None:
    canary = f"{namespace}-canary".encode()
    store = open_store(memcached_server)
    store.set(canary, b"alive", 120)
    processes, threads, increments = 4, 2, 3000
    args = {
        "store": "memcached",
        "options": {"url": memcached_server.url},
        "namespace": namespace,
        "interval": 0.2,
        "threads": threads,
        "increments": increments,
        "every": 200,
        "pause": 0.1,
    }
    reports = run_workers("aggregate", [{**args, "instance": f"w{n}"} for n in range(processes)])
    assert all(r["final_ok"] for r in reports), reports
    assert min(r["syncs"] for r in reports) >= 5  # the totals were built over many syncs
    scale = processes * threads
    counts: Tally[str] = Tally()
    observed: dict[str, list[float]] = {}
    for i in range(increments):
        source = HOSTILE_LABELS[i % len(HOSTILE_LABELS)]
        counts[source] += scale
        if i % 3 == 0:
            observed.setdefault(source, []).extend([OBSERVED[i % len(OBSERVED)]] * scale)
    view = metricache.merged_snapshot(store, namespace=namespace)
    got = {s.labels[0]: s.value for s in view["events"].samples if isinstance(s, Sample)}
    assert got == {k: float(v) for k, v in counts.items()}
    sizes = view["event_size"].by_labels()
    assert set(sizes) == {(k,) for k in observed}
    for source, values in observed.items():
        sample = sizes[(source,)]
        assert isinstance(sample, HistogramSample)
        assert list(sample.buckets) == [
            sum(1 for v in values if v <= bound) for bound in (0.5, 1.0, 2.0, math.inf)
        ]
        assert sample.count == len(values)
        assert sample.sum == sum(values)
    assert store.get(canary) == b"alive"


def test_a_fleet_server_restarted_empty_has_only_its_shards_checked_and_resent(
    namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="metricache")
    with MemcachedServer() as one, MemcachedServer() as two, MemcachedServer() as three:
        url = "memcached://" + ",".join(f"127.0.0.1:{s.port}" for s in (one, two, three))
        store = MemcachedStore(MemcachedOptions(url=url))
        keyspace = Keyspace(namespace)
        epoch_port = store.route(safe_key(keyspace.epoch())).address[1]
        victim = next(s for s in (one, two, three) if s.port != epoch_port)
        registry = metricache.Registry()
        counter = metricache.Counter("hits", "Hits", ["page"], registry=registry)
        pages = [str(p) for p in range(600)]
        for page in pages:
            counter.labels(page).inc(3)
        syncer = metricache.Syncer(registry, store, interval=3600, namespace=namespace)
        assert syncer.flush().ok
        on_victim = [
            p
            for p in pages
            if store.route(safe_key(keyspace.series(series_id("hits", (p,))))).address[1]
            == victim.port
        ]
        assert 0 < len(on_victim) < len(pages)
        victim.restart()
        for page in pages[::2]:  # half change; the others are only held
            counter.labels(page).inc(1)
        first = syncer.flush()
        second = syncer.flush()
        assert first.ok, first.error
        assert second.ok, second.error
        assert first.resent_totals
        view = metricache.merged_snapshot(store, namespace=namespace)
        assert {s.labels[0]: s.value for s in view["hits"].samples if isinstance(s, Sample)} == {
            p: counter.labels(p).get() for p in pages
        }
        assert "lost the series of" in caplog.text
        assert "has lost its data" not in caplog.text
        # What lived on the restarted server went again, and not the rest of the store.
        assert first.series + second.series < len(on_victim) + len(pages) // 2 + 50
        syncer.stop()


def test_a_part_gone_under_a_live_series_breaks_it_and_its_writers_resend_whole(
    fresh_memcached: MemcachedServer, namespace: str
) -> None:
    store = open_store(fresh_memcached)
    keyspace = Keyspace(namespace)
    registries = [metricache.Registry() for _ in range(2)]
    counters = [metricache.Counter("hits", "Hits", registry=r) for r in registries]
    syncers = [
        metricache.Syncer(
            r, store, interval=3600, retention=3.0, namespace=namespace, instance_id=f"i{n}"
        )
        for n, r in enumerate(registries)
    ]
    counters[0].inc(5)
    counters[1].inc(7)
    assert all(s.flush().ok for s in syncers)
    # The whole-units part is evicted on its own (here: deleted behind the store's back).
    raw_client(fresh_memcached).delete(safe_key(keyspace.part(series_id("hits", ()), "i")))
    counters[0].inc(1)
    assert syncers[0].flush().ok  # its write finds the part gone: the series is removed
    assert syncers[0].flush().ok  # and it sends its whole contribution into a new life
    view = metricache.merged_snapshot(store, namespace=namespace, retention=3.0)
    assert tuple(view["hits"].samples) == (Sample((), 6.0),)
    # The other holder finds out at its next refresh (a third of the retention window)
    # and sends its whole contribution too.
    time.sleep(1.2)
    assert all(s.flush().ok for s in syncers)
    assert all(s.flush().ok for s in syncers)
    view = metricache.merged_snapshot(store, namespace=namespace, retention=3.0)
    assert tuple(view["hits"].samples) == (Sample((), 6.0 + 7.0),)
    for syncer in syncers:
        syncer.stop()
