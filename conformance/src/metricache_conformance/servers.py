"""``--servers``: a redis-server and a memcached on free local ports, for one run.

Only for the command line's convenience (``metricache conformance --all --servers``):
a store package's tests start their own servers. The ``redis`` store has a row per
deployment too: ``redis/cluster`` (a Redis Cluster of 3 masters and 3 replicas) and
``redis/sentinel`` (1 master, 1 replica, 3 sentinels), see
:mod:`metricache_conformance.topologies`.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from metricache_conformance.topologies import ClusterTopology, SentinelTopology

__all__ = ["VARIANTS", "LocalServer", "free_port", "server_for"]

VARIANTS = ("redis/cluster", "redis/sentinel")
"""The deployments of built-in stores that ``--servers`` starts, each with its own row."""


def free_port() -> int:
    """Return a TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LocalServer:
    """One server process on 127.0.0.1, stopped by :meth:`stop`."""

    def __init__(self, binary: str, url: str, command: list[str]) -> None:
        self.binary = binary
        self.url = url
        self.command = command
        self.workdir = Path(tempfile.mkdtemp(prefix=f"metricache-conformance-{binary}-"))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, port: int) -> LocalServer:
        """Start the server and wait (at most 10 s) until it accepts connections."""
        self.proc = subprocess.Popen(
            self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.workdir
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return self
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.binary} did not start on port {port}")

    def stop(self) -> None:
        """Stop the server and remove its working directory."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        shutil.rmtree(self.workdir, ignore_errors=True)


def server_for(store: str) -> LocalServer | ClusterTopology | SentinelTopology | None:
    """Start the server the built-in store ``store`` needs; None for other stores.

    ``store`` may name a deployment (``redis/cluster``, ``redis/sentinel``). The
    object returned has ``url`` and ``stop()``. Raises RuntimeError naming the
    missing binary.
    """
    if store in VARIANTS:
        server = shutil.which("redis-server")
        cli = shutil.which("redis-cli")
        if server is None or cli is None:
            raise RuntimeError(f"--servers: redis-server and redis-cli are needed for {store}")
        if store == "redis/cluster":
            return ClusterTopology(server, cli).start()
        return SentinelTopology(server).start()
    binaries = {"redis": "redis-server", "memcached": "memcached"}
    binary = binaries.get(store)
    if binary is None:
        return None
    path = shutil.which(binary)
    if path is None:
        raise RuntimeError(f"--servers: {binary} is not installed (needed for the {store} store)")
    port = free_port()
    if store == "redis":
        command = [path, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
        command += ["no", "--daemonize", "no"]
        url = f"redis://127.0.0.1:{port}/0"
    else:
        command = [path, "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-m", "64"]
        if os.geteuid() == 0:
            command += ["-u", "root"]
        url = f"memcached://127.0.0.1:{port}"
    return LocalServer(binary, url, command).start(port)
