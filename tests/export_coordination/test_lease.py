"""The lease on a real redis: owner-only renew and release, expiry, keep-alive, lost replies."""

from __future__ import annotations

import time

import metricache
import pytest
import redis
from metricache.export import Lease

from tests.support.proxy import ReplyLossProxy
from tests.support.servers import RedisServer


def wait_until(condition: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def store(redis_server: RedisServer) -> metricache.Store:
    return metricache.open_store("redis", url=redis_server.url)


@pytest.fixture
def client(redis_server: RedisServer) -> redis.Redis:
    return redis.Redis.from_url(redis_server.url)


def test_one_holder_at_a_time_and_only_the_holder_renews_or_releases(
    store: metricache.Store, client: redis.Redis, namespace: str
) -> None:
    key = f"{namespace}:lease".encode()
    first = Lease(store, key, 10, owner="web-1")
    second = Lease(store, key, 10, owner="web-2")
    assert first.acquire()
    assert not second.acquire()
    assert (first.held, second.held) == (True, False)
    assert first.holder() == first.token
    assert first.token.startswith(b"web-1/")
    assert first.token != Lease(store, key, 10, owner="web-1").token

    client.pexpire(key, 500)
    assert not second.renew()
    assert client.pttl(key) <= 500  # the intruder's renewal changed nothing
    assert first.renew()
    assert 9_000 < client.pttl(key) <= 10_000

    assert not second.release()  # never held: nothing to do
    second._held = True  # even believing it holds the lease, it cannot free it
    assert not second.release()
    assert client.get(key) == first.token
    assert first.release()
    assert client.get(key) is None
    assert second.acquire()


def test_a_dead_holders_lease_expires_and_it_can_no_longer_touch_the_next_one(
    store: metricache.Store, client: redis.Redis, namespace: str
) -> None:
    key = f"{namespace}:lease".encode()
    dead = Lease(store, key, 0.3, owner="dead")
    assert dead.acquire()
    wait_until(lambda: client.get(key) is None, "the lease to expire")
    heir = Lease(store, key, 10, owner="heir")
    assert heir.acquire()
    # The old holder wakes up: its renewal and release fail and leave the heir's lease be.
    assert not dead.renew()
    assert not dead.release()
    assert client.get(key) == heir.token


def test_kept_alive_outlives_the_ttl_and_reports_a_lost_lease(
    store: metricache.Store, client: redis.Redis, namespace: str
) -> None:
    key = f"{namespace}:lease".encode()
    lease = Lease(store, key, 0.3, owner="busy")
    assert lease.acquire()
    with lease.kept_alive() as lost:
        time.sleep(1.2)  # four lifetimes of the lease
        assert client.get(key) == lease.token
        assert not lost.is_set()
    with lease.kept_alive() as lost:
        client.set(key, b"somebody-else")  # it expired and another instance took it
        wait_until(lost.is_set, "the loss to be noticed")
    assert not lease.held
    assert client.get(key) == b"somebody-else"


def test_an_acquisition_whose_reply_is_lost_is_checked_by_reading_the_token(
    redis_server: RedisServer, client: redis.Redis, namespace: str
) -> None:
    proxy = ReplyLossProxy(redis_server.port)
    try:
        store = metricache.open_store("redis", url=f"redis://127.0.0.1:{proxy.port}/0")
        key = f"{namespace}:lease".encode()
        lease = Lease(store, key, 10, owner="unlucky")
        proxy.lose_next_reply_to(key)
        assert lease.acquire()  # the SET NX happened; the reply did not come back
        assert proxy.replies_lost == 1
        assert client.get(key) == lease.token
        other = Lease(store, key, 10, owner="other")
        proxy.lose_next_reply_to(key)
        assert not other.acquire()  # the SET NX was refused; reading tells so
        assert client.get(key) == lease.token
    finally:
        proxy.close()


def test_a_lease_needs_a_positive_ttl(store: metricache.Store) -> None:
    with pytest.raises(ValueError, match="> 0"):
        Lease(store, b"k", 0)
