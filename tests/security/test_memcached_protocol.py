"""No label value or key can put protocol bytes into a memcached command.

Memcached's text protocol ends a command at CR LF and splits it at spaces: a key
holding ``"\\r\\nflush_all\\r\\n"`` would be two commands. After syncing label values
and writing store keys made of such bytes, the server's own list of keys (``lru_crawler
metadump all``, read over a raw socket) holds only printable ASCII keys of at most 250
bytes, every one of them where metricache put it, and nothing else happened: an item
written beforehand is intact, ``stats`` counts no flush.
"""

from __future__ import annotations

import re
import socket
import urllib.parse

import metricache

from tests.support.servers import MemcachedServer

HOSTILE = [
    "\r\nflush_all\r\n",
    "a b c",
    "\x00\x01\x7f",
    "delete canary\r\n",
    "ünïcødé 🎉",
    "x" * 300,
    "set x 0 0 1\r\nA\r\n",
    "",
]
HOSTILE_KEYS = [v.encode("utf-8") for v in HOSTILE if v] + [b"~c:forged:0", b"\xff\xfe"]
KEY = re.compile(rb"[!-~]{1,250}")


def command(port: int, line: bytes, end: bytes) -> bytes:
    """Send one command over a raw socket and read until ``end``."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(line)
        data = b""
        while not data.endswith(end):
            chunk = sock.recv(65536)
            assert chunk, data
            data += chunk
    return data


def dumped_keys(port: int) -> list[bytes]:
    """Every key the server holds, as bytes (metadump URL-encodes them)."""
    data = command(port, b"lru_crawler metadump all\r\n", b"END\r\n")
    keys = []
    for line in data.splitlines():
        if line.startswith(b"key="):
            keys.append(urllib.parse.unquote_to_bytes(line.split(b" ")[0][4:].decode("ascii")))
    return keys


def stat(port: int, name: bytes) -> int:
    data = command(port, b"stats\r\n", b"END\r\n")
    found = re.search(rb"STAT " + name + rb" (\d+)", data)
    assert found
    return int(found.group(1))


def test_hostile_labels_and_keys_become_plain_keys_and_no_command(
    fresh_memcached: MemcachedServer,
) -> None:
    port = fresh_memcached.port
    assert command(port, b"set canary 0 0 4\r\nsafe\r\n", b"\r\n") == b"STORED\r\n"
    store = metricache.open_store("memcached", url=fresh_memcached.url)
    registry = metricache.Registry()
    counter = metricache.Counter("odd", "Odd labels", ["value"], registry=registry)
    gauge = metricache.Gauge("odd_level", "Odd labels", ["value"], registry=registry)
    for n, value in enumerate(HOSTILE):
        counter.labels(value).inc(n + 1)
        gauge.labels(value).set(n)
    syncer = metricache.Syncer(registry, store, interval=3600, namespace="sec")
    assert syncer.flush().ok
    for key in HOSTILE_KEYS:
        store.set(key, b"value " + key, 60)
        store.merge_map(key + b" map", {"k": key.decode("utf-8", "replace")}, 60)
    assert store.incr(b"\r\nincr canary 5\r\n", 3, 60) == 3

    keys = dumped_keys(port)
    assert keys
    assert [k for k in keys if not KEY.fullmatch(k)] == []
    assert b"canary" in keys
    # metricache's own keys: the namespace, bare or in a hash tag ({sec}, {sec/SH},
    # {sec:g:...}); hashed and chunk keys.
    ours = (b"sec:", b"{sec}", b"{sec/", b"{sec:", b"~h:", b"~c:")
    assert all(k == b"canary" or k.startswith(ours) for k in keys)
    # The forged chunk-like key was hashed: it can never stand for a real chunk.
    assert b"~c:forged:0" not in keys
    assert command(port, b"get canary\r\n", b"END\r\n") == b"VALUE canary 0 4\r\nsafe\r\nEND\r\n"
    assert stat(port, b"cmd_flush") == 0
    assert stat(port, b"curr_items") == len(keys)
    # And every value reads back as written.
    for key in HOSTILE_KEYS:
        assert store.get(key) == b"value " + key
    view = metricache.merged_snapshot(store, namespace="sec")
    assert {s.labels[0] for s in view["odd"].samples} == set(HOSTILE)
    syncer.stop()
