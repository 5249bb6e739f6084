"""Sending many calls to a Redis Cluster: one pipeline per master, redirections followed.

:class:`Dispatch` groups :class:`Call` objects (each within one slot) by the master
that serves their slot, writes every master's pipeline before reading any answer (the
masters work in parallel), and follows what the cluster answers:

* ``MOVED`` (the slot has another master: a resharding or a failover finished): the
  slot map is read again and the call sent to the new master;
* ``ASK`` (the slot is being migrated and its keys are no longer here): the call is
  sent to the importing master after ``ASKING``;
* ``TRYAGAIN`` (a migration split the call's keys), ``CLUSTERDOWN``, ``MASTERDOWN``,
  ``READONLY`` (a master demoted by a failover), a master that refuses connections:
  the call is sent again after a short pause, until ``patience`` seconds have passed;
* ``NOSCRIPT`` (a promoted replica has no script cache): the script is loaded there.

None of these ran the call, so sending it again cannot apply it twice. A connection
that breaks after a call went out leaves the call *in doubt*. With ``replicas`` > 0
every pipeline ends with ``WAIT replicas timeout``: a call is *confirmed* only when
that many replicas acknowledged it.
"""

from __future__ import annotations

import contextlib
import enum
import time
from collections.abc import Sequence
from typing import Any, cast

import attrs
import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.crc import key_slot

__all__ = ["Call", "Dispatch", "State", "pack"]

_RETRY_PAUSE = 0.05
_NODE: Any = ClusterNode  # untyped in redis-py


class State(enum.Enum):
    """Where a call stands."""

    PENDING = "pending"
    DONE = "done"  # answered (and acknowledged by the replicas asked for)
    NOT_SENT = "not sent"  # never ran: the cluster was unreachable or kept redirecting
    IN_DOUBT = "in doubt"  # went out, and its answer was lost
    UNCONFIRMED = "unconfirmed"  # ran, but fewer replicas than asked acknowledged it
    REFUSED = "refused"  # Redis answered an error


@attrs.define(eq=False)
class Call:
    """One command for the master of ``slot``; ``script`` is loaded on ``NOSCRIPT``."""

    slot: int
    args: tuple[Any, ...]
    script: str | None = None
    state: State = State.PENDING
    reply: Any = None
    error: BaseException | None = None
    ask: ClusterNode | None = None


def pack(commands: Sequence[tuple[Any, ...]]) -> bytes:
    """Return ``commands`` in the Redis protocol (arguments: bytes, text or integers).

    redis-py encodes argument by argument through its encoder; a batch call carries
    thousands of keys, and this plain loop costs a fraction of that.
    """
    out: list[bytes] = []
    for command in commands:
        out.append(b"*%d\r\n" % len(command))
        for arg in command:
            if isinstance(arg, str):
                data = arg.encode("utf-8")
            elif isinstance(arg, bytes):
                data = arg
            elif isinstance(arg, int):
                data = b"%d" % arg
            else:
                raise TypeError(f"cannot send {type(arg).__name__} to Redis")
            out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class Dispatch:
    """Runs calls on a :class:`~redis.cluster.RedisCluster`; see the module docstring."""

    def __init__(self, client: RedisCluster, *, patience: float) -> None:
        self.client = client
        self.patience = patience

    def slot(self, key: bytes) -> int:
        """Return the slot of ``key``."""
        return key_slot(key)

    def refresh(self) -> None:
        """Read the slot map again (after a redirection, a failover, a refused connection)."""
        # Every node unreachable for now: the calls wait, or fail in time.
        with contextlib.suppress(redis.RedisError, redis.exceptions.RedisClusterException, OSError):
            self.client.nodes_manager.initialize()

    def _node_of(self, call: Call) -> ClusterNode | None:
        if call.ask is not None:
            return call.ask
        try:
            node: Any = self.client.nodes_manager.get_node_from_slot(call.slot)
        except redis.exceptions.SlotNotCoveredError:
            return None
        return cast(ClusterNode, node)

    def _redirected(self, error: redis.exceptions.AskError) -> ClusterNode:
        node: Any = self.client.nodes_manager.get_node(error.host, error.port)
        if node is None:
            node = _NODE(error.host, error.port)
        return cast(ClusterNode, node)

    def run(
        self,
        calls: Sequence[Call],
        *,
        replicas: int = 0,
        replica_timeout_ms: int = 0,
    ) -> None:
        """Run ``calls``; each ends ``DONE`` or in one of the failed states."""
        pending = [c for c in calls if c.state is State.PENDING]
        deadline = time.monotonic() + self.patience
        refresh = False
        while pending:
            if refresh:
                self.refresh()
                refresh = False
            by_node: dict[str, tuple[ClusterNode, list[Call]]] = {}
            waiting: list[Call] = []
            for call in pending:
                node = self._node_of(call)
                if node is None:
                    waiting.append(call)
                    refresh = True
                    continue
                by_node.setdefault(node.name, (node, []))[1].append(call)
            sent = [
                (node, group, self._send(node, group, replicas, replica_timeout_ms))
                for node, group in by_node.values()
            ]
            again = waiting
            for node, group, connection in sent:
                again += self._read(node, group, connection, replicas)
            if not again:
                return
            if any(c.ask is None for c in again):
                refresh = True
            if time.monotonic() + _RETRY_PAUSE > deadline:
                for call in again:
                    call.state = State.NOT_SENT
                return
            if any(c.ask is None for c in again):
                time.sleep(_RETRY_PAUSE)
            pending = again

    def _send(self, node: ClusterNode, group: list[Call], replicas: int, timeout: int) -> Any:
        """Write the pipeline of ``group`` to ``node``; return the connection, or None."""
        try:
            pool = self.client.get_redis_connection(node).connection_pool
            connection: Any = pool.get_connection()
        except (redis.RedisError, OSError) as exc:
            for call in group:
                call.error = exc
            return None
        try:
            connection.connect()
        except (redis.RedisError, OSError) as exc:
            # Nothing went out: the master is down (a failover may be under way).
            pool.release(connection)
            for call in group:
                call.error = exc
            return None
        commands: list[tuple[Any, ...]] = []
        for call in group:
            if call.ask is not None:
                commands.append(("ASKING",))
            commands.append(call.args)
        if replicas:
            commands.append(("WAIT", replicas, timeout))
        try:
            connection.send_packed_command([pack(commands)], check_health=False)
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            connection.disconnect()
            pool.release(connection)
            for call in group:
                call.state, call.error = State.IN_DOUBT, exc
            return None
        return (pool, connection)

    def _read(self, node: ClusterNode, group: list[Call], sent: Any, replicas: int) -> list[Call]:
        """Read the answers of ``group``; return the calls to send again."""
        if sent is None:
            return [c for c in group if c.state is State.PENDING]
        pool, connection = sent
        again: list[Call] = []
        ran: list[Call] = []
        try:
            for call in group:
                if call.ask is not None:
                    self._reply(connection)  # +OK to ASKING
                try:
                    call.reply = self._reply(connection)
                except redis.ResponseError as exc:
                    if self._handle(node, call, exc):
                        again.append(call)
                    continue
                ran.append(call)
            if replicas:
                acknowledged = int(self._reply(connection))
                if acknowledged < replicas:
                    for call in ran:
                        call.state = State.UNCONFIRMED
                        call.error = redis.ResponseError(
                            f"{acknowledged} of {replicas} replicas acknowledged the write"
                        )
                    ran = []
            for call in ran:
                call.state = State.DONE
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            connection.disconnect()
            for call in group:
                if call.state is State.PENDING and call not in again:
                    call.state, call.error = State.IN_DOUBT, exc
        finally:
            pool.release(connection)
        return again

    @staticmethod
    def _reply(connection: Any) -> Any:
        return connection.read_response()

    def _handle(self, node: ClusterNode, call: Call, error: redis.ResponseError) -> bool:
        """Decide what an error answer means; return True to send the call again."""
        call.error = error
        if isinstance(error, redis.exceptions.MovedError):
            call.ask = None
            return True
        if isinstance(error, redis.exceptions.AskError):
            call.ask = self._redirected(error)
            return True
        call.ask = None
        if isinstance(
            error,
            (
                redis.exceptions.TryAgainError,
                redis.exceptions.ClusterDownError,
                redis.exceptions.ReadOnlyError,
            ),
        ):
            return True
        if isinstance(error, redis.exceptions.NoScriptError) and call.script is not None:
            # If loading fails, the call is refused again until the node answers.
            with contextlib.suppress(redis.RedisError, OSError):
                self.client.get_redis_connection(node).script_load(call.script)
            return True
        call.state = State.REFUSED
        return False
