"""Checks every store must pass: get/set/delete, TTLs, batch forms, maps, backdoor."""

from __future__ import annotations

import time

from metricache_conformance.catalogue import Check
from metricache_conformance.checking import (
    WAIT_LIMIT,
    CheckFailed,
    Inconclusive,
    expect,
    retry_inconclusive,
    short,
    wait_until,
)
from metricache_conformance.context import Context

__all__ = ["CHECKS"]


def get_set_delete(ctx: Context) -> None:
    """get, set (overwrite) and delete behave as a dictionary with expiry does."""
    store = ctx.store
    key = ctx.key("gsd")
    got = store.get(key)
    expect(got is None, f"get of a key never written returned {short(got)}, expected None")
    store.set(key, b"first", 60)
    got = store.get(key)
    expect(got == b"first", f"get after set(key, b'first') returned {short(got)}")
    store.set(key, b"second", 60)
    got = store.get(key)
    expect(got == b"second", f"get after an overwrite with b'second' returned {short(got)}")
    expect(bool(store.delete(key)), "delete of a present key returned False")
    got = store.get(key)
    expect(got is None, f"get after delete returned {short(got)}, expected None")
    expect(not store.delete(key), "delete of an absent key returned True")
    other = ctx.key("gsd-other")
    store.set(other, b"x", 60)
    store.delete(key)
    expect(store.get(other) == b"x", "delete of one key removed another")
    store.delete(other)


def ttl_expiry(ctx: Context) -> None:
    """A key written with a TTL of 1 s expires, and then counts as absent everywhere."""
    store = ctx.store

    def attempt() -> None:
        key = ctx.fresh_key("expiring")
        started = time.monotonic()
        store.set(key, b"short-lived", 1)
        if store.get(key) is None:
            if time.monotonic() - started > 0.5:
                raise Inconclusive("the machine stalled past the TTL before the first read")
            raise CheckFailed("a key set with a TTL of 1 s was absent right after the set")
        gone = wait_until(lambda: store.get(key) is None)
        expect(gone, f"a key set with a TTL of 1 s was still there after {WAIT_LIMIT:.0f} s")
        expect(key not in store.get_many([key]), "get_many returned a key that had expired")
        expect(not store.touch(key, 60), "touch of an expired key returned True")
        expect(store.get(key) is None, "touch brought an expired key back")
        expect(not store.delete(key), "delete of an expired key returned True")

    retry_inconclusive(attempt)


def ttl_refresh(ctx: Context) -> None:
    """Touch (and touch_many) give a key a new TTL without rewriting it."""
    store = ctx.store

    def attempt() -> None:
        single = ctx.fresh_key("refreshed")
        many = ctx.fresh_key("refreshed-many")
        absent = ctx.fresh_key("never-written")
        started = time.monotonic()
        store.set(single, b"kept by touch", 1)
        store.set(many, b"kept by touch_many", 1)
        touched = store.touch(single, 60)
        touched_many = store.touch_many([many, absent], 60)
        # Written after the two above, so it expires no earlier than they would have.
        marker = ctx.fresh_key("marker")
        store.set(marker, b"m", 1)
        if time.monotonic() - started > 0.5:
            raise Inconclusive("the machine stalled past the TTL while setting up")
        expect(bool(touched), "touch of a present key returned False")
        expect(
            touched_many == {many},
            f"touch_many([present, absent]) returned {sorted(touched_many)!r}, "
            "expected only the present key",
        )
        expect(not store.touch(absent, 60), "touch of an absent key returned True")
        expect(store.get(absent) is None, "touch of an absent key created it")
        gone = wait_until(lambda: store.get(marker) is None)
        expect(gone, f"a key set with a TTL of 1 s was still there after {WAIT_LIMIT:.0f} s")
        got = store.get(single)
        expect(
            got == b"kept by touch",
            f"a key refreshed with touch(key, 60) expired with its first TTL of 1 s "
            f"(get returned {short(got)})",
        )
        got = store.get(many)
        expect(
            got == b"kept by touch_many",
            "a key refreshed with touch_many(keys, 60) expired with its first TTL of 1 s "
            f"(get returned {short(got)})",
        )
        store.delete(single)
        store.delete(many)

    retry_inconclusive(attempt)


def batch_forms(ctx: Context) -> None:
    """get_many, set_many and touch_many give what their single forms give."""
    store = ctx.store
    keys = [ctx.key(f"batch-{i}") for i in range(40)]
    absent = [ctx.key(f"batch-absent-{i}") for i in range(5)]
    values = {k: b"value-%d" % i for i, k in enumerate(keys)}
    store.set_many({k: values[k] for k in keys[:20]}, 60)
    for k in keys[20:]:
        store.set(k, values[k], 60)
    wanted = keys + absent
    singles = {k: store.get(k) for k in wanted}
    for k in keys:
        expect(
            singles[k] == values[k],
            f"get({k!r}) returned {short(singles[k])} after set_many/set of {values[k]!r}",
        )
    many = store.get_many(wanted)
    expected = {k: v for k, v in singles.items() if v is not None}
    if many != expected:
        wrong = sorted(set(many.items()) ^ set(expected.items()))[:3]
        raise CheckFailed(
            f"get_many differs from get key by key ({len(many)} vs {len(expected)} keys; "
            f"first differences {wrong!r})"
        )
    expect(store.get_many([]) == {}, "get_many([]) did not return {}")
    twice = store.get_many([keys[0], keys[0]])
    expect(twice == {keys[0]: values[keys[0]]}, f"get_many of a repeated key gave {twice!r}")
    touched = store.touch_many(keys[:10] + absent, 60)
    expect(
        touched == set(keys[:10]),
        f"touch_many returned {len(touched)} keys, expected the 10 present ones "
        f"(extra: {sorted(touched - set(keys[:10]))[:3]!r})",
    )
    singles_touch = {k: bool(store.touch(k, 60)) for k in keys[10:12] + absent[:2]}
    expect(
        singles_touch == {keys[10]: True, keys[11]: True, absent[0]: False, absent[1]: False},
        f"touch answered {singles_touch!r}",
    )
    for k in keys[:5]:
        store.delete(k)
    left = store.get_many(keys)
    expect(
        set(left) == set(keys[5:]),
        f"get_many after deleting 5 of 40 keys returned {len(left)} keys, expected 35",
    )
    for k in keys[5:]:
        store.delete(k)


def maps(ctx: Context) -> None:
    """get_map, merge_map (only_new too), replace_map and get_maps keep string maps."""
    store = ctx.store
    key = ctx.key("map")
    other = ctx.key("map-other")
    absent = ctx.key("map-absent")
    got = store.get_map(key)
    expect(got == {}, f"get_map of an absent key returned {got!r}, expected {{}}")
    store.merge_map(key, {"a": "1", "b": "2"}, 60)
    got = store.get_map(key)
    expect(got == {"a": "1", "b": "2"}, f"after merge_map of a and b, get_map returned {got!r}")
    store.merge_map(key, {"b": "changed", "c": "3"}, 60, only_new=True)
    got = store.get_map(key)
    expect(
        got == {"a": "1", "b": "2", "c": "3"},
        f"merge_map(only_new=True) must keep b=2 and add c=3; get_map returned {got!r}",
    )
    store.merge_map(key, {"b": "changed"}, 60)
    got = store.get_map(key)
    expect(got.get("b") == "changed", f"merge_map did not replace b; get_map returned {got!r}")
    hostile = {
        "\r\nflush_all\r\n": "x\x00y",
        'quote" back\\slash': "new\nline",
        "ünï 雪 🚀": "",
        "": "empty field name",
    }
    store.merge_map(other, hostile, 60)
    got = store.get_map(other)
    expect(got == hostile, f"a map with hostile field names came back as {got!r}")
    store.replace_map(key, {"z": "26"}, 60)
    got = store.get_map(key)
    expect(got == {"z": "26"}, f"replace_map did not replace the whole map: {got!r}")
    found = store.get_maps([key, other, absent])
    expect(
        found == {key: {"z": "26"}, other: hostile},
        f"get_maps differs from get_map key by key: {found!r}",
    )
    expect(store.get_maps([]) == {}, "get_maps([]) did not return {}")
    expect(bool(store.touch(key, 60)), "touch of a map key returned False")
    for k in (key, other):
        store.delete(k)
    expect(store.get_map(key) == {}, "get_map after delete did not return {}")


def backdoor(ctx: Context) -> None:
    """What the store writes lands in the backend, and what lands there it reads."""
    assert ctx.backdoor is not None  # the runner gives this check a backdoor
    store = ctx.store
    key = ctx.key("through-the-store")
    store.set(key, b"written through the store", 60)
    landed = ctx.backdoor.get(store, key)
    expect(
        landed == b"written through the store",
        f"set(key, b'written through the store') left {short(landed)} in the backend",
    )
    behind = ctx.key("behind-its-back")
    ctx.backdoor.set(store, behind, b"written behind its back", 60)
    got = store.get(behind)
    expect(
        got == b"written behind its back",
        f"a value written to the backend directly read back as {short(got)}",
    )
    store.delete(key)
    expect(ctx.backdoor.get(store, key) is None, "delete left the value in the backend")
    store.delete(behind)


CHECKS = [
    Check("basics.get_set_delete", None, get_set_delete),
    Check("basics.ttl_expiry", None, ttl_expiry),
    Check("basics.ttl_refresh", None, ttl_refresh),
    Check("basics.batch_forms", None, batch_forms),
    Check("basics.maps", None, maps),
    Check("basics.backdoor", None, backdoor, needs_backdoor=True),
]
