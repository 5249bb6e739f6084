"""Hostile keys and values: protocol bytes, whitespace, non-ASCII, long and binary.

Keys and values are opaque bytes to metricache. A store that splices them into a
text protocol (memcached's command lines, a SQL string) lets a key run a command of
its own: ``flush_all`` would empty the server, ``delete`` would remove another key.
A canary key written first must be unchanged at the end.
"""

from __future__ import annotations

import random

from metricache_conformance.catalogue import Check
from metricache_conformance.checking import CheckFailed, expect, short
from metricache_conformance.context import Context

__all__ = ["CHECKS", "hostile_key_suffixes", "hostile_values"]

_CANARY_VALUE = b"the canary is alive"


def hostile_key_suffixes(canary: bytes) -> list[bytes]:
    """Return the hostile key parts (each is appended to a key of the run)."""
    long_key = b"L" * 1500
    return [
        b"\r\nflush_all\r\n",
        b"x\r\ndelete " + canary + b"\r\n",
        b"y\r\nset " + canary + b" 0 0 5\r\npwned\r\n",
        b"'; DELETE FROM kv; --",
        b"nul\x00byte",
        b"with space",
        b"\ttab\tand\x0bvertical\x0cfeed",
        b" leading and trailing ",
        b"\xff\xfe\x80 not utf-8",
        "ünïcødé ключ 雪 🚀".encode(),
        b"glob*?[a-z]{1,2}%s%d",
        b"\"quoted\" 'single' `back` \\slash",
        b"~h:0123456789abcdef",
        long_key,
        long_key + b"!",  # differs from the one above in its last byte only
        b"".join(bytes([b]) for b in range(1, 32)),
    ]


def hostile_values() -> list[bytes]:
    """Return values that must come back byte for byte."""
    rng = random.Random(20240601)
    return [
        bytes(range(256)),
        b"",
        b"\r\nEND\r\n",
        b"VALUE key 0 5\r\nfalse\r\nEND\r\n",
        b"\x00" * 64,
        b"007",
        b"-0",
        b"+5",
        b" 5",
        b"5 ",
        b"1e3",
        b"0x10",
        b"9" * 30,
        b"-9223372036854775809",
        b"18446744073709551616",
        "snow ☃ 雪 🚀".encode(),
        b'{"json": [1, 2]}',
        rng.randbytes(100_000),
        rng.randbytes(2_500_000),  # larger than a memcached item (1 MiB by default)
    ]


def hostile_keys(ctx: Context) -> None:
    """Keys with protocol bytes, whitespace, non-ASCII and 1,500 bytes round-trip apart."""
    store = ctx.store
    canary = ctx.key("canary")
    store.set(canary, _CANARY_VALUE, 120)
    keys = [ctx.key("hostile:") + suffix for suffix in hostile_key_suffixes(canary)]
    values = {k: b"value %d of a hostile key" % i for i, k in enumerate(keys)}
    for k in keys:
        store.set(k, values[k], 60)
    for k in keys:
        got = store.get(k)
        expect(
            got == values[k], f"key {short(k)}: get returned {short(got)}, expected {values[k]!r}"
        )
    many = store.get_many(keys)
    expect(many == values, f"get_many of the hostile keys returned {len(many)} of {len(keys)}")
    touched = store.touch_many(keys, 60)
    expect(touched == set(keys), f"touch_many found {len(touched)} of {len(keys)} hostile keys")
    victim = keys[0]
    expect(bool(store.delete(victim)), f"delete of {short(victim)} returned False")
    others = store.get_many(keys[1:])
    expect(
        others == {k: values[k] for k in keys[1:]},
        f"deleting {short(victim)} removed or changed other keys "
        f"({len(others)} of {len(keys) - 1} left)",
    )
    got = store.get(canary)
    if got != _CANARY_VALUE:
        raise CheckFailed(
            f"the canary key changed from {_CANARY_VALUE!r} to {short(got)}: "
            "a key's bytes reached the store's protocol as a command"
        )
    if ctx.backdoor is not None:
        for k in keys[1:]:
            landed = ctx.backdoor.get(store, k)
            expect(landed == values[k], f"key {short(k)} left {short(landed)} in the backend")
    for k in [canary, *keys[1:]]:
        store.delete(k)


def binary_values(ctx: Context) -> None:
    """Binary, empty, protocol-like, number-like and 2.5 MB values round-trip exactly."""
    store = ctx.store
    canary = ctx.key("canary-values")
    store.set(canary, _CANARY_VALUE, 120)
    values = {ctx.key(f"value-{i}"): v for i, v in enumerate(hostile_values())}
    for k, v in values.items():
        store.set(k, v, 60)
    for k, v in values.items():
        got = store.get(k)
        expect(got == v, f"the value {short(v)} read back as {short(got)}")
    many = store.get_many(list(values))
    for k, v in values.items():
        expect(many.get(k) == v, f"get_many returned {short(many.get(k))} for {short(v)}")
    half = dict(list(values.items())[::2])
    store.set_many(half, 60)
    again = store.get_many(list(half))
    expect(again == half, "values written with set_many did not read back byte for byte")
    got = store.get(canary)
    expect(
        got == _CANARY_VALUE,
        f"the canary key changed to {short(got)}: a value's bytes reached the protocol",
    )
    for k in [canary, *values]:
        store.delete(k)


CHECKS = [
    Check("hostile.keys", None, hostile_keys),
    Check("hostile.values", None, binary_values),
]
