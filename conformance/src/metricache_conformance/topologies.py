"""Redis Cluster and Redis Sentinel topologies on loopback ports, for one run.

``metricache conformance --servers`` starts them for the ``redis/cluster`` and
``redis/sentinel`` rows; the repository's tests start them to break them (a master
SIGKILLed, a slot migrated). Every process listens on 127.0.0.1 only, keeps nothing on
disk but its configuration, and is stopped by :meth:`stop`.

* :class:`ClusterTopology`: ``masters`` masters with ``replicas`` replicas each,
  made into a cluster with ``redis-cli --cluster create``; a master that stops
  answering is failed over within about four seconds (``cluster-node-timeout`` 2000).
* :class:`SentinelTopology`: one master, ``replicas`` replicas and ``sentinels``
  sentinels (quorum: a majority) watching it as ``mymaster``; a master that stops
  answering is failed over within about four seconds (``down-after-milliseconds``
  2500).

The timeouts are short for tests, yet long enough that a node starved of CPU for a
second on a busy machine is not failed over by mistake (which could promote a
replica still empty from a restart).
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["ClusterTopology", "RedisNode", "SentinelTopology", "free_port", "wait_for_port"]

_COMMON = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"]


def free_port() -> int:
    """Return a TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    """Wait until something accepts connections on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on port {port} after {timeout} s") from None
            time.sleep(0.02)


def _command(port: int, *args: str, timeout: float = 5.0) -> str:
    """Send one command (inline protocol) to 127.0.0.1:``port``; return the reply as text.

    Enough for the few commands a topology needs (``PING``, ``INFO``, ``CLUSTER ...``,
    ``SENTINEL ...``): a bulk reply is returned whole, an array flattened one item
    per line, an error raised as RuntimeError.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(" ".join(args).encode() + b"\r\n")
        reader = sock.makefile("rb")
        return _read_reply(reader)


def _read_reply(reader: object) -> str:
    line: bytes = reader.readline()  # type: ignore[attr-defined]
    if not line:
        raise RuntimeError("connection closed")
    kind, rest = line[:1], line[1:-2]
    if kind == b"-":
        raise RuntimeError(rest.decode())
    if kind in (b"+", b":"):
        return rest.decode()
    if kind == b"$":
        size = int(rest)
        if size < 0:
            return ""
        data: bytes = reader.read(size + 2)  # type: ignore[attr-defined]
        return data[:-2].decode()
    if kind == b"*":
        count = int(rest)
        return "\n".join(_read_reply(reader) for _ in range(max(count, 0)))
    raise RuntimeError(f"unexpected reply {line!r}")


class RedisNode:
    """One redis-server process (a cluster node, a replica, or a sentinel)."""

    def __init__(self, binary: str, workdir: Path, extra: list[str], *, sentinel: bool = False):
        self.binary = binary
        self.port = free_port()
        # A cluster node's bus port (Redis 7's cluster-port; by default the port + 10000).
        self.bus_port = free_port() if "--cluster-enabled" in extra else 0
        self.workdir = workdir / str(self.port)
        self.workdir.mkdir(parents=True)
        self.extra = extra
        self.sentinel = sentinel
        self.proc: subprocess.Popen[bytes] | None = None

    def command_line(self) -> list[str]:
        """The command that starts this node."""
        if self.sentinel:
            return [self.binary, str(self.workdir / "sentinel.conf"), "--sentinel"]
        bus = ["--cluster-port", str(self.bus_port)] if self.bus_port else []
        return [self.binary, "--port", str(self.port), *_COMMON, *bus, *self.extra]

    def start(self) -> RedisNode:
        """Start the process (in its own directory) and wait until it accepts connections."""
        self.proc = subprocess.Popen(
            self.command_line(),
            cwd=self.workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port(self.port)
        except RuntimeError:
            self.stop()
            raise
        return self

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def call(self, *args: str) -> str:
        """Send one command to this node; return its reply as text."""
        return _command(self.port, *args)

    def kill(self) -> None:
        """SIGKILL the process: it loses everything it held in memory."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGCONT)
                self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def pause(self) -> None:
        """Freeze the process with SIGSTOP."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Thaw a process frozen by :meth:`pause`."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL)."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.proc = None


def _wait(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if predicate():  # type: ignore[operator]
                return
        except (OSError, RuntimeError) as exc:
            last = exc
        time.sleep(0.1)
    raise RuntimeError(f"timed out after {timeout} s waiting for {what} ({last})")


class _Topology:
    def __init__(self, redis_server: str) -> None:
        self.redis_server = redis_server
        self.workdir = Path(tempfile.mkdtemp(prefix="metricache-topology-"))
        self.nodes: list[RedisNode] = []

    def node(self, port: int) -> RedisNode:
        """Return the node listening on ``port``."""
        for node in self.nodes:
            if node.port == port:
                return node
        raise KeyError(port)

    def stop(self) -> None:
        """Stop every process and remove the working directory."""
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


class ClusterTopology(_Topology):
    """A Redis Cluster of ``masters`` masters, each with ``replicas`` replicas.

    ``redis_server`` and ``redis_cli`` are the binaries' paths. The nodes keep their
    cluster configuration in their working directories, so a node killed and
    restarted rejoins the cluster (empty: there is no persistence), as a replica of
    whichever node took over its slots.
    """

    def __init__(
        self, redis_server: str, redis_cli: str, *, masters: int = 3, replicas: int = 1
    ) -> None:
        super().__init__(redis_server)
        self.redis_cli = redis_cli
        self.masters_count = masters
        self.replicas = replicas

    def start(self) -> ClusterTopology:
        """Start the nodes, create the cluster, and wait until every slot is served."""
        extra = [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            "2000",
        ]
        try:
            for _ in range(self.masters_count * (1 + self.replicas)):
                self.nodes.append(RedisNode(self.redis_server, self.workdir, extra).start())
            subprocess.run(
                [
                    self.redis_cli,
                    "--cluster",
                    "create",
                    *(f"127.0.0.1:{n.port}" for n in self.nodes),
                    "--cluster-replicas",
                    str(self.replicas),
                    "--cluster-yes",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=60,
            )
            self.wait_healthy()
            self.wait_replicas_synced()
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def url(self) -> str:
        """``redis+cluster://`` with every node as a startup node."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def cluster_nodes(self, via: RedisNode | None = None) -> list[dict[str, str]]:
        """Parse ``CLUSTER NODES`` (as a running node sees it): id, port, role, master, slots."""
        source = via or next(n for n in self.nodes if n.running)
        found = []
        for line in source.call("CLUSTER", "NODES").splitlines():
            fields = line.split()
            if len(fields) < 8:
                continue
            flags = fields[2].split(",")
            found.append(
                {
                    "id": fields[0],
                    "port": fields[1].split("@")[0].rpartition(":")[2],
                    "role": "master" if "master" in flags else "replica",
                    "failed": "yes" if "fail" in flags or "fail?" in flags else "",
                    "master": fields[3],
                    "slots": " ".join(fields[8:]),
                }
            )
        return found

    def masters(self) -> list[RedisNode]:
        """The running nodes that serve slots, as the cluster sees them now."""
        ports = {
            int(n["port"])
            for n in self.cluster_nodes()
            if n["role"] == "master" and n["slots"] and not n["failed"]
        }
        return [n for n in self.nodes if n.port in ports and n.running]

    def node_id(self, node: RedisNode) -> str:
        """Return the cluster id of ``node``."""
        return node.call("CLUSTER", "MYID")

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Wait until every running node says the cluster is ok and agrees on the masters."""

        def healthy() -> bool:
            running = [n for n in self.nodes if n.running]
            for node in running:
                info = node.call("CLUSTER", "INFO")
                if "cluster_state:ok" not in info or "cluster_slots_ok:16384" not in info:
                    return False
            views = []
            for node in running:
                nodes = self.cluster_nodes(node)
                if any(n["failed"] and int(n["port"]) in {r.port for r in running} for n in nodes):
                    return False
                views.append(
                    sorted(n["port"] for n in nodes if n["role"] == "master" and n["slots"])
                )
            return all(v == views[0] for v in views)

        _wait(healthy, timeout, "a healthy cluster")

    def wait_replicas_synced(self, timeout: float = 30.0) -> None:
        """Wait until every master's replicas are online and caught up."""

        def synced() -> bool:
            for master in self.masters():
                info = master.call("INFO", "replication")
                lines = [x for x in info.splitlines() if x.startswith("slave")]
                if len(lines) < self.replicas or not all("state=online" in x for x in lines):
                    return False
            return True

        _wait(synced, timeout, "replicas in sync")

    def fail_over(self, master: RedisNode, timeout: float = 30.0) -> RedisNode:
        """SIGKILL ``master`` and wait until a replica serves its slots; return that one."""
        master_id = self.node_id(master)
        replica_ports = {
            int(n["port"]) for n in self.cluster_nodes(master) if n["master"] == master_id
        }
        master.kill()
        promoted: list[RedisNode] = []

        def took_over() -> bool:
            for node in self.masters():
                if node.port in replica_ports:
                    promoted.append(node)
                    return True
            return False

        _wait(took_over, timeout, f"a replica of {master.port} to take over")
        return promoted[0]

    def restart(self, node: RedisNode, timeout: float = 30.0) -> None:
        """Start a killed node again (empty); it rejoins the cluster as a replica."""
        node.start()
        self.wait_healthy(timeout)

    def reshard(self, source: RedisNode, target: RedisNode, slots: int) -> None:
        """Move ``slots`` slots (and their keys) from ``source`` to ``target``."""
        subprocess.run(
            [
                self.redis_cli,
                "--cluster",
                "reshard",
                f"127.0.0.1:{source.port}",
                "--cluster-from",
                self.node_id(source),
                "--cluster-to",
                self.node_id(target),
                "--cluster-slots",
                str(slots),
                "--cluster-yes",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=120,
        )


class SentinelTopology(_Topology):
    """One master, ``replicas`` replicas and ``sentinels`` sentinels watching it.

    The master is known to the sentinels as :attr:`service`. A master killed and
    started again (:meth:`restart`) comes back empty, as a replica of the one they
    promoted.
    """

    service = "mymaster"

    def __init__(self, redis_server: str, *, replicas: int = 1, sentinels: int = 3) -> None:
        super().__init__(redis_server)
        self.replica_count = replicas
        self.sentinel_count = sentinels
        self.sentinels: list[RedisNode] = []

    def start(self) -> SentinelTopology:
        """Start the master, its replicas and the sentinels; wait until they see each other."""
        try:
            master = RedisNode(self.redis_server, self.workdir, []).start()
            self.nodes.append(master)
            for _ in range(self.replica_count):
                replica = RedisNode(
                    self.redis_server, self.workdir, ["--replicaof", "127.0.0.1", str(master.port)]
                )
                self.nodes.append(replica.start())
            quorum = self.sentinel_count // 2 + 1
            for _ in range(self.sentinel_count):
                sentinel = RedisNode(self.redis_server, self.workdir, [], sentinel=True)
                (sentinel.workdir / "sentinel.conf").write_text(
                    f"port {sentinel.port}\n"
                    "bind 127.0.0.1\n"
                    f"sentinel monitor {self.service} 127.0.0.1 {master.port} {quorum}\n"
                    f"sentinel down-after-milliseconds {self.service} 2500\n"
                    f"sentinel failover-timeout {self.service} 5000\n"
                    f"sentinel parallel-syncs {self.service} 1\n",
                    encoding="utf-8",
                )
                self.sentinels.append(sentinel.start())
            self.nodes.extend(self.sentinels)
            self.wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def url(self) -> str:
        """``redis+sentinel://`` naming every sentinel and the service."""
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{self.service}"

    def agreed_master(self) -> RedisNode | None:
        """The master every running sentinel names, if they all name the same one."""
        ports = set()
        for sentinel in self.sentinels:
            if sentinel.running:
                reply = sentinel.call("SENTINEL", "get-master-addr-by-name", self.service)
                ports.add(int(reply.splitlines()[1]))
        return self.node(ports.pop()) if len(ports) == 1 else None

    def master(self) -> RedisNode:
        """The node the sentinels currently name as the master."""
        for sentinel in self.sentinels:
            if not sentinel.running:
                continue
            reply = sentinel.call("SENTINEL", "get-master-addr-by-name", self.service)
            port = int(reply.splitlines()[1])
            return self.node(port)
        raise RuntimeError("no sentinel is running")

    def replicas(self) -> list[RedisNode]:
        """The data nodes that are not the master."""
        master = self.master()
        return [n for n in self.nodes if n not in self.sentinels and n is not master]

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Wait until every sentinel knows the others and the replicas, and agrees on the master."""
        data_nodes = [n for n in self.nodes if n not in self.sentinels]

        def healthy() -> bool:
            masters = set()
            for sentinel in self.sentinels:
                info = sentinel.call("SENTINEL", "master", self.service)
                fields = info.splitlines()
                pairs = dict(zip(fields[0::2], fields[1::2]))
                if "s_down" in pairs.get("flags", "") or "o_down" in pairs.get("flags", ""):
                    return False
                if int(pairs.get("num-other-sentinels", "0")) < self.sentinel_count - 1:
                    return False
                if int(pairs.get("num-slaves", "0")) < self.replica_count:
                    return False
                masters.add(int(pairs["port"]))
            if len(masters) != 1:
                return False
            master = self.node(masters.pop())
            info = master.call("INFO", "replication")
            online = [x for x in info.splitlines() if x.startswith("slave") and "online" in x]
            return "role:master" in info and len(online) >= len(data_nodes) - 1

        _wait(healthy, timeout, "sentinels to agree on a master with its replicas online")

    def fail_over(self, timeout: float = 30.0) -> RedisNode:
        """SIGKILL the master and wait until the sentinels promote a replica; return it."""
        old = self.master()
        old.kill()
        return self.wait_promoted(old, timeout)

    def wait_promoted(self, old: RedisNode, timeout: float = 30.0) -> RedisNode:
        """Wait until every sentinel names a master other than ``old``; return it.

        Every sentinel, not only one: a sentinel that still believed in ``old`` when
        it comes back would make the promoted master its replica (and empty it).
        """

        def promoted() -> bool:
            current = self.agreed_master()
            return (
                current is not None
                and current is not old
                and "role:master" in current.call("INFO", "replication")
            )

        _wait(promoted, timeout, "the sentinels to promote a replica")
        return self.master()

    def restart(self, node: RedisNode, timeout: float = 30.0) -> None:
        """Start a killed data node again, empty, as a replica of the current master.

        (The sentinels would make it one too, at their next look at it, within ten
        seconds; an operator or an orchestrator usually restarts it so right away.)
        """
        master = self.wait_promoted(node, timeout)  # every sentinel knows the new master
        node.extra = ["--replicaof", "127.0.0.1", str(master.port)]
        node.start()
        self.wait_healthy(timeout)
