"""Real web servers running the test apps, a client, and the merged view they add up to.

A *container* here is a group of server processes that share nothing but the store:
one gunicorn or uvicorn with several workers, or single-process servers with an
instance id of their own (a second container on another host).
"""

from __future__ import annotations

import http.client
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import attrs
from prometheus_client.parser import text_string_to_metric_families

from tests.docs.markdown import ROOT
from tests.export.cli import clean_env
from tests.http.serving import Served, fetch
from tests.support.servers import free_port, wait_for_port

__all__ = [
    "Request",
    "Samples",
    "Server",
    "app_env",
    "gunicorn",
    "labels",
    "merged_samples",
    "parse",
    "send",
    "uvicorn",
    "wait_for",
]

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
"""Exposition samples: ``(sample name, sorted label pairs) -> value``."""


@attrs.frozen
class Request:
    """One request a client sends: method, path (with its query) and body."""

    method: str
    path: str
    body: bytes = b""


@attrs.define
class Server:
    """A server process (and its workers) listening on ``port``."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    def stop(self) -> None:
        """Stop gracefully (SIGTERM): workers exit and make their final sync."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                raise AssertionError(f"the server did not stop: {self.log.read_text()}") from None


def app_env(store: Mapping[str, str], **extra: str) -> dict[str, str]:
    """The environment of an app process: the store, a short interval, what is given."""
    env = clean_env()
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.pop("prometheus_multiproc_dir", None)
    env.update(store)
    env["METRICACHE_SYNC_INTERVAL"] = "0.5"
    env.update(extra)
    return env


@contextmanager
def _running(argv: Sequence[str], env: Mapping[str, str], port: int, log: Path) -> Iterator[Server]:
    with log.open("wb") as output:
        proc = subprocess.Popen(
            list(argv), cwd=ROOT, env=dict(env), stdout=output, stderr=subprocess.STDOUT
        )
    server = Server(proc, port, log)
    try:
        try:
            wait_for_port(port, timeout=60)
        except RuntimeError:
            raise AssertionError(f"{argv[2]} did not start: {log.read_text()}") from None
        yield server
    finally:
        server.stop()


def gunicorn(
    app: str,
    env: Mapping[str, str],
    log: Path,
    *,
    workers: int,
    preload: bool,
) -> AbstractContextManager[Server]:
    """Run ``app`` under gunicorn with ``workers`` sync workers."""
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "--workers",
        str(workers),
        "--worker-class",
        "sync",
        "--bind",
        f"127.0.0.1:{port}",
        "--graceful-timeout",
        "20",
        *(["--preload"] if preload else []),
        app,
    ]
    return _running(argv, env, port, log)


def uvicorn(
    app: str, env: Mapping[str, str], log: Path, *, workers: int
) -> AbstractContextManager[Server]:
    """Run ``app`` under uvicorn with ``workers`` worker processes (1: no supervisor)."""
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        *(["--workers", str(workers)] if workers > 1 else []),
        app,
    ]
    return _running(argv, env, port, log)


def send(port: int, requests: Sequence[Request], clients: int = 8) -> list[int]:
    """Send ``requests`` from ``clients`` threads, one connection each; return the statuses.

    Every request has its own connection, so a pre-fork server spreads them over
    its workers.
    """

    def one(request: Request) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            headers = {"Connection": "close"}
            if request.body:
                headers["Content-Type"] = "application/octet-stream"
            conn.request(request.method, request.path, body=request.body or None, headers=headers)
            response = conn.getresponse()
            response.read()
            return response.status
        finally:
            conn.close()

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(one, requests))


def parse(text: str) -> Samples:
    """Samples of an exposition; a sample reported twice fails."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            assert key not in found, f"{key} is reported twice"
            found[key] = sample.value
    return found


def merged_samples(served: Served) -> Samples:
    """What ``metricache serve`` shows now."""
    reply = fetch(served.url)
    assert reply.status == 200, reply.body
    return parse(reply.body.decode())


def wait_for(
    read: Callable[[], Samples], expected: Mapping[tuple[str, tuple[tuple[str, str], ...]], float]
) -> Samples:
    """Read until every expected sample has its value (at most 60 s); return the last read."""
    deadline = time.monotonic() + 60
    while True:
        found = read()
        wrong = {k: (found.get(k), v) for k, v in expected.items() if found.get(k) != v}
        if not wrong:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"(found, expected) after 60 s: {wrong}")
        time.sleep(0.3)


def labels(**pairs: str) -> tuple[tuple[str, str], ...]:
    """Sorted label pairs, as :data:`Samples` keys hold them."""
    return tuple(sorted(pairs.items()))
