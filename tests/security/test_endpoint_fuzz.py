"""A few thousand hostile requests to ``metricache serve``: no 500, no traceback, still up.

A seeded random generator builds requests from the pieces an attacker varies:
methods (known, unknown, binary), request targets (paths with escapes, dot segments,
NULs, unicode, absolute forms, very long ones), query strings (formats that exist or
not, broken percent escapes, repeated keys), HTTP versions, and headers (``Accept``
and ``Accept-Encoding`` with odd q-values, ``Authorization`` right, wrong, empty, of
another scheme or huge, bodies with lying ``Content-Length``, chunked bodies,
non-ASCII bytes, lines without a colon). They go over real sockets, four connections
at a time, to a protected ``metricache serve`` reading a real Redis. Every answer
must be an HTTP response other than 500 whose body holds no traceback; a request
whose syntax is broken may instead be dropped. Afterwards the server still answers,
its log holds no traceback, and it stops cleanly.
"""

from __future__ import annotations

import random
import socket
import threading
from collections import Counter
from pathlib import Path

import attrs
import metricache

from tests.http.serving import fetch, serve, sync_sample
from tests.support.servers import RedisServer

TOKEN = "fuzz-Token.0123456789"
REQUESTS = 4000
CONNECTIONS = 4


@attrs.frozen
class Probe:
    """One request as bytes; ``malformed`` when its syntax is broken on purpose."""

    data: bytes
    method: str
    malformed: bool


METHODS = ["GET"] * 12 + ["HEAD"] * 3 + ["POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE"]
PATHS = [
    "/metrics",
    "/metrics",
    "/",
    "/healthz",
    "/metrics/",
    "//metrics",
    "/METRICS",
    "/metrics/../metrics",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/metrics%00",
    "/metrics;jsessionid=1",
    "/%ff%fe",
    "/ünïcødé",
    "/metrics#fragment",
    "*",
    "http://127.0.0.1/metrics",
    "/healthz/..",
]
FORMATS = ["prometheus", "openmetrics", "json", "csv", "", "yaml", "JSON", "%00", "ünï", "../x"]
MEDIA = [
    "text/plain",
    "application/openmetrics-text; version=1.0.0",
    "application/openmetrics-text;version=0.0.1",
    "application/json",
    "text/csv",
    "*/*",
    "text/*",
    "image/png",
    "",
    ";;;",
    "text/plain;q=",
    "text/plain;q=abc",
    "text/plain;q=1e999",
    "text/plain;q=nan",
    "text/plain;q=-1",
    "application/json;q=0, */*;q=0",
    "a/b;c=d;e=f;g",
    "text/plain; version=9.9.9",
    ",,,",
]
ENCODINGS = ["gzip", "gzip;q=0", "*", "*;q=0", "identity", "br, gzip;q=nan", "x-gzip", "", "gzip;q"]


def _text(rng: random.Random, size: int) -> str:
    alphabet = "abcXYZ019-._~%&=+;,/?#[]@!$'()* \t\"\\<>{}|^`\x7fé日🎉"
    return "".join(rng.choice(alphabet) for _ in range(rng.randrange(size)))


def _path(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.5:
        path = "/metrics"  # most probes reach the negotiation and rendering code
    elif roll < 0.8:
        path = rng.choice(PATHS)
    elif roll < 0.92:
        path = "/" + "/".join(_text(rng, 12) for _ in range(rng.randrange(1, 4)))
    else:
        path = "/" + "a" * rng.choice([100, 4000, 9000])
    if rng.random() < 0.6:
        pairs = []
        for _ in range(rng.randrange(1, 4)):
            key = rng.choice(["format", "format", "FORMAT", "x", "", "format[]", _text(rng, 6)])
            value = rng.choice([*FORMATS, _text(rng, 10), "%zz", "%", "a=b=c"])
            pairs.append(f"{key}={value}" if rng.random() < 0.9 else key)
        path += "?" + rng.choice(["&", "&&", ";"]).join(pairs)
    return path


def probe(rng: random.Random) -> Probe:
    """Build one random request."""
    malformed = False
    method = rng.choice(METHODS)
    if rng.random() < 0.03:
        method, malformed = rng.choice(["", "G E T", "\x00GET", "get", "GET\x01"]), True
    version = "HTTP/1.1" if rng.random() < 0.85 else "HTTP/1.0"
    if rng.random() < 0.04:
        # HTTP/2 is not spoken in HTTP/1 syntax: the server refuses it like the others.
        version = rng.choice(["HTTP/2.0", "HTTP/9.9", "HTTP/1.1.1", "FTP/1.0", ""])
        malformed = True
    target = _path(rng).encode("utf-8", "surrogateescape")
    if b" " in target or b"\t" in target:
        malformed = True  # a space splits the request line
    headers: list[bytes] = [b"Host: 127.0.0.1"]
    roll = rng.random()
    if roll < 0.4:
        headers.append(f"Authorization: Bearer {TOKEN}".encode())
    elif roll < 0.5:
        headers.append(f"Authorization: bearer   {TOKEN}  ".encode())
    elif roll < 0.7:
        wrong = rng.choice(
            ["Bearer", "Bearer ", f"Bearer {TOKEN}x", "Basic Zm9vOmJhcg==", "Bearer " + "A" * 5000,
             f"Bearer {TOKEN[:-1]}", "Bearer \xe9", "Token abc", _text(rng, 20)]
        )  # fmt: skip
        headers.append(b"Authorization: " + wrong.encode("utf-8"))
    if rng.random() < 0.6:
        accept = ", ".join(rng.choice(MEDIA) for _ in range(rng.randrange(1, 4)))
        headers.append(b"Accept: " + accept.encode())
    if rng.random() < 0.4:
        headers.append(b"Accept-Encoding: " + rng.choice(ENCODINGS).encode())
    body = b""
    roll = rng.random()
    if roll < 0.05:
        body = b"x" * rng.randrange(0, 200)
        headers.append(b"Content-Length: %d" % len(body))
    elif roll < 0.08:
        headers.append(
            rng.choice([b"Content-Length: -5", b"Content-Length: abc", b"Content-Length: 99999999"])
        )
    elif roll < 0.1:
        headers.append(b"Transfer-Encoding: chunked")
        body = b"5\r\nhello\r\n0\r\n\r\n"
    if rng.random() < 0.05:
        headers.append(b"X-Odd: " + bytes(rng.randrange(128, 256) for _ in range(8)))
    if rng.random() < 0.03:
        headers.append(b"No colon on this line")
        malformed = True
    if rng.random() < 0.03:
        headers += [b"Accept: text/plain"] * rng.randrange(2, 50)
    headers.append(b"Connection: close")
    head = method.encode("utf-8", "surrogateescape") + b" " + target
    if version:
        head += b" " + version.encode()
    data = head + b"\r\n" + b"\r\n".join(headers) + b"\r\n\r\n" + body
    return Probe(data, method, malformed)


@attrs.define
class Tally:
    statuses: Counter[int] = attrs.field(factory=Counter)
    dropped: int = 0
    failures: list[str] = attrs.field(factory=list)
    lock: threading.Lock = attrs.field(factory=threading.Lock)


def send(port: int, p: Probe, tally: Tally) -> None:
    """Send one probe on its own connection, read the whole answer and judge it."""
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        try:
            sock.sendall(p.data)
            # Nothing more comes: the server closes once it has answered.
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # it may answer (400, 414 ...) and close before reading it all
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0]
    with tally.lock:
        if b"Traceback" in answer or b'File "' in answer:
            tally.failures.append(f"a traceback in {answer[:300]!r} for {p.data[:200]!r}")
        if status_line.startswith(b"HTTP/1.") and status_line[9:12].isdigit():
            status = int(status_line[9:12])
            tally.statuses[status] += 1
            if status == 500:
                tally.failures.append(f"500 {body[:300]!r} for {p.data[:200]!r}")
        elif p.malformed:
            # The standard library answers some broken requests the HTTP/0.9 way (an
            # error page without a status line), or closes the connection.
            tally.dropped += 1
        else:
            tally.failures.append(f"no HTTP answer {answer[:200]!r} to {p.data[:200]!r}")


def test_thousands_of_hostile_requests_get_no_500_and_no_traceback(
    redis_server: RedisServer, tmp_path: Path, namespace: str
) -> None:
    sync_sample(metricache.open_store("redis", url=redis_server.url), namespace)
    rng = random.Random(20260601)
    probes = [probe(rng) for _ in range(REQUESTS)]
    tally = Tally()
    with serve(
        "--store",
        "redis",
        "--option",
        f"url={redis_server.url}",
        cwd=tmp_path,
        env={"METRICACHE_SERVE_TOKEN": TOKEN, "METRICACHE_SYNC_NAMESPACE": namespace},
    ) as served:
        port = int(served.base.rsplit(":", 1)[1])

        def worker(share: list[Probe]) -> None:
            for p in share:
                send(port, p, tally)

        threads = [
            threading.Thread(target=worker, args=(probes[n::CONNECTIONS],))
            for n in range(CONNECTIONS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        still = fetch(served.url, headers={"Authorization": f"Bearer {TOKEN}"})
    assert tally.failures == []
    assert sum(tally.statuses.values()) + tally.dropped == REQUESTS
    # The generator reached every kind of answer the endpoint gives.
    assert {200, 400, 401, 403, 404, 405, 406} <= set(tally.statuses)
    assert 500 not in tally.statuses
    assert still.status == 200
    assert b"orders_total" in still.body
    assert b"Traceback" not in served.stderr
