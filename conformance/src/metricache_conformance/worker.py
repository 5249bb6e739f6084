"""A worker process of the suite (the child's side of :mod:`metricache_conformance.workers`).

Run as ``python -m metricache_conformance.worker``. Protocol on the standard streams,
one JSON line each way: the request in; ``{"ready": true}`` out once the store is
open; ``go`` in; ``{"result": ...}`` (or ``{"error": "..."}``) out.
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Callable
from typing import Any

from metricache.store import Store

from metricache_conformance.checks import atomic, cas, contract, distributed, locking
from metricache_conformance.target import StoreTarget

__all__ = ["TASKS", "main"]

TASKS: dict[str, Callable[[Store, dict[str, Any]], dict[str, Any]]] = {
    "atomic.hammer": atomic.hammer,
    "cas.swap_increments": cas.swap_increments,
    "contract.sync_instance": contract.sync_instance,
    "distributed.exchange": distributed.exchange,
    "locking.contend": locking.contend,
}
"""The tasks a worker can run, each ``task(store, arguments) -> result``."""


def _answer(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


def main() -> int:
    """Serve one request; return the exit status."""
    try:
        request = json.loads(sys.stdin.readline())
        task = TASKS[request["task"]]
        store = StoreTarget.from_json(request["target"]).open()
    except Exception as exc:
        traceback.print_exc()
        _answer({"error": f"could not start: {type(exc).__name__}: {exc}"})
        return 1
    try:
        _answer({"ready": True})
        if sys.stdin.readline().strip() != "go":
            return 1
        try:
            result = task(store, request["args"])
        except Exception as exc:
            traceback.print_exc()
            _answer({"error": f"{type(exc).__name__}: {exc}"})
            return 1
        _answer({"result": result})
        return 0
    finally:
        store.close()


if __name__ == "__main__":
    sys.exit(main())
