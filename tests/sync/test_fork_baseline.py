"""What a forked child inherited is never sent by the child, not even as a re-sent total.

A child starts from its parent's values as a baseline. Two paths once re-sent the
baseline with the child's own counts: a child whose parent had not synced yet meeting
a store epoch installed by a sibling, and any child after the store lost its data.
"""

from __future__ import annotations

import os

import metricache
import redis

from tests.support.servers import RedisServer


def _in_child(syncer: metricache.Syncer, counter: metricache.Counter, *, wipe: str = "") -> int:
    """Fork; in the child count 5 (and maybe wipe the namespace), sync, exit. Return the pid."""
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            counter.inc(5)
            first = syncer.flush()
            if wipe:
                url, _, prefix = wipe.partition("#")
                client = redis.Redis.from_url(url)
                # Every key of the namespace: its hash tags start with {NS} or {NS/ or {NS:
                for key in client.scan_iter(match="{" + prefix + "[}/:]*"):
                    client.delete(key)
                syncer.flush()  # finds the store empty: sends its total again
            final = syncer.stop(timeout=20)
            status = 0 if first.ok and final is not None and final.ok else 1
        finally:
            os._exit(status)
    return pid


def _exit_code(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_a_child_meeting_a_siblings_epoch_sends_only_its_own_counts(
    redis_server: RedisServer, namespace: str
) -> None:
    registry = metricache.Registry()
    counter = metricache.Counter("requests", "Requests", registry=registry)
    store = metricache.open_store("redis", url=redis_server.url)
    syncer = metricache.Syncer(registry, store, namespace=namespace)  # never synced
    counter.inc(10)
    assert _exit_code(_in_child(syncer, counter)) == 0  # installs the store's epoch
    assert _exit_code(_in_child(syncer, counter)) == 0  # meets an epoch it never saw
    syncer.stop(timeout=20)
    view = metricache.merged_snapshot(store, namespace=namespace)
    assert view["requests"].samples[0].value == 10 + 5 + 5  # type: ignore[union-attr]


def test_after_the_store_lost_its_data_a_child_resends_only_its_own_total(
    redis_server: RedisServer, namespace: str
) -> None:
    registry = metricache.Registry()
    counter = metricache.Counter("requests", "Requests", registry=registry)
    store = metricache.open_store("redis", url=redis_server.url)
    syncer = metricache.Syncer(registry, store, namespace=namespace)
    counter.inc(10)
    assert syncer.flush().ok
    child = _in_child(syncer, counter, wipe=f"{redis_server.url}#{namespace}")
    assert _exit_code(child) == 0
    report = syncer.flush()  # the parent finds the store empty too: re-sends its 10
    assert report.ok
    assert report.resent_totals
    view = metricache.merged_snapshot(store, namespace=namespace)
    assert view["requests"].samples[0].value == 10 + 5  # type: ignore[union-attr]
    syncer.stop(timeout=20)
