"""``distributed``: clients opened with the same options share one store."""

from __future__ import annotations

from typing import Any

from metricache.store import Capability, Store

from metricache_conformance.catalogue import Check
from metricache_conformance.checking import expect, short
from metricache_conformance.context import Context

__all__ = ["CHECKS", "exchange"]


def two_clients(ctx: Context) -> None:
    """Two clients of this process, opened with the same options, see each other's writes."""
    a = ctx.store
    b = ctx.client()
    key = ctx.key("shared")
    a.set(key, b"from client A", 60)
    got = b.get(key)
    expect(
        got == b"from client A",
        f"client B did not see a write of client A (both opened with the same options): "
        f"B read {short(got)}",
    )
    b.set(key, b"from client B", 60)
    got = a.get(key)
    expect(got == b"from client B", f"client A did not see an overwrite by client B: {short(got)}")
    expect(bool(b.delete(key)), "client B could not delete a key client A wrote")
    got = a.get(key)
    expect(got is None, f"client A still read {short(got)} after client B deleted the key")
    map_key = ctx.key("shared-map")
    a.merge_map(map_key, {"from": "A"}, 60)
    b.merge_map(map_key, {"also": "B"}, 60)
    got_map = a.get_map(map_key)
    expect(
        got_map == {"from": "A", "also": "B"},
        f"maps merged by two clients read back as {got_map!r}",
    )
    a.delete(map_key)
    if ctx.declares(Capability.ATOMIC):
        counter = ctx.key("shared-counter")
        a.incr(counter, 2, 60)
        b.incr(counter, 3, 60)
        counters = a.read_counters([counter])
        expect(
            counters == {counter: 5},
            f"increments of 2 (client A) and 3 (client B) read back as {counters!r}",
        )
        a.delete(counter)


def exchange(store: Store, args: dict[str, Any]) -> dict[str, Any]:
    """Read the parent's key and write one of our own (a worker task)."""
    theirs = args["read"].encode("latin-1")
    ours = args["write"].encode("latin-1")
    got = store.get(theirs)
    store.set(ours, args["value"].encode("utf-8"), 60)
    return {"read": got.decode("utf-8", "replace") if got is not None else None}


def across_processes(ctx: Context) -> None:
    """A client in another process sees this one's writes, and this one sees its."""
    store = ctx.store
    parent_key, child_key = ctx.key("from-parent"), ctx.key("from-child")
    store.set(parent_key, b"written by the parent process", 60)
    args = {
        "read": parent_key.decode("latin-1"),
        "write": child_key.decode("latin-1"),
        "value": "written by the child process",
    }
    (answer,) = ctx.workers("distributed.exchange", [args])
    expect(
        answer["read"] == "written by the parent process",
        f"a client in another process did not see this process's write: it read {answer['read']!r}",
    )
    got = store.get(child_key)
    expect(
        got == b"written by the child process",
        f"this process did not see a write of a client in another process: {short(got)}",
    )
    store.delete(parent_key)
    store.delete(child_key)


CHECKS = [
    Check("distributed.two_clients", Capability.DISTRIBUTED, two_clients),
    Check("distributed.across_processes", Capability.DISTRIBUTED, across_processes),
]
