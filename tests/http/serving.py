"""Running ``metricache serve`` as a subprocess, and plain HTTP requests to it."""

from __future__ import annotations

import http.client
import re
import selectors
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import attrs
import metricache

from tests.export.cli import clean_env

__all__ = ["Reply", "Served", "fetch", "serve", "sync_sample"]

_URL = re.compile(r"metricache: serving (http://\S+)")


@attrs.frozen
class Reply:
    """A response as it came over the socket (the body is not decompressed)."""

    status: int
    headers: dict[str, str]
    body: bytes


def fetch(
    url: str,
    path: str = "",
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    connection: http.client.HTTPConnection | None = None,
) -> Reply:
    """Send one request to ``url`` (with ``path`` replacing its path, if given)."""
    parts = urllib.parse.urlsplit(url)
    target = path or parts.path + (f"?{parts.query}" if parts.query else "")
    conn = connection or http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        conn.request(method, target, body=body, headers=dict(headers or {}))
        response = conn.getresponse()
        data = response.read()
        found = {name.lower(): value for name, value in response.getheaders()}
        return Reply(response.status, found, data)
    finally:
        if connection is None:
            conn.close()


class Served:
    """A running ``metricache serve`` and what it printed."""

    def __init__(self, proc: subprocess.Popen[bytes], url: str) -> None:
        self.proc = proc
        self.url = url
        self.stdout = b""
        self.stderr = b""

    @property
    def base(self) -> str:
        """The URL without its path: ``http://127.0.0.1:PORT``."""
        return self.url.rsplit("/", 1)[0]


def _read_url(proc: subprocess.Popen[bytes], timeout: float) -> tuple[str, bytes]:
    assert proc.stdout is not None
    seen = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if not selector.select(timeout=0.1):
                continue
            line = proc.stdout.readline()
            if not line:
                break
            seen += line
            found = _URL.search(line.decode())
            if found:
                return found.group(1), seen
    proc.kill()
    _, err = proc.communicate(timeout=10)
    raise AssertionError(f"metricache serve printed no URL: {seen!r} {err!r}")


@contextmanager
def serve(
    *args: str,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    stop: int = signal.SIGTERM,
    verbose: bool = False,
) -> Iterator[Served]:
    """Run ``metricache serve --port 0 ARGS``; stop it with ``stop`` and check it exits 0.

    ``verbose`` turns debug logging on (``metricache -vv serve``).
    """
    environment = clean_env()
    environment.update(env or {})
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "metricache.cli.main",
            *(["-vv"] if verbose else []),
            "serve",
            "--port",
            "0",
            *args,
        ],
        cwd=cwd,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        url, printed = _read_url(proc, timeout=60)
        served = Served(proc, url)
        yield served
        proc.send_signal(stop)
        out, err = proc.communicate(timeout=30)
        served.stdout, served.stderr = printed + out, err
        assert proc.returncode == 0, err.decode()
        assert served.stdout.endswith(b"metricache: stopped\n")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)


HOSTILE = 'quote " backslash \\ newline \n and {braces}, commas'


def sync_sample(store: metricache.Store, namespace: str) -> None:
    """Sync a counter with hostile labels, a histogram and gauges into ``store``."""
    registry = metricache.Registry()
    orders = metricache.Counter(
        "orders", 'Orders "placed",\nwith a \\ in the help', ["region"], registry=registry
    )
    orders.labels("eu").inc(3)
    orders.labels(HOSTILE).inc(4.25)
    orders.labels("ünïcödé ✓").inc()
    latency = metricache.Histogram(
        "request_latency_seconds",
        "Latency",
        ["route"],
        buckets=(0.1, 0.5, 2.5),
        registry=registry,
    )
    latency.labels("/").observe(0.05)
    latency.labels("/").observe(0.7)
    latency.labels(HOSTILE).observe(9)
    metricache.Gauge("workers_busy", "Busy workers", registry=registry, merge="sum").set(2)
    queue = metricache.Gauge(
        "queue_depth", "Queued jobs", ["queue"], registry=registry, merge="max"
    )
    queue.labels("mail").set(-1.5)
    syncer = metricache.Syncer(registry, store, namespace=namespace, instance_id="web-1")
    assert syncer.flush().ok
