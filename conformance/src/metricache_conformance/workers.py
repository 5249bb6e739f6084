"""Running parts of a check in other processes (the parent's side).

A worker is ``python -m metricache_conformance.worker``: it reads one JSON request
(task, store recipe, arguments) from its standard input, opens its own client of the
store, says it is ready, waits for ``go`` (so that every worker starts its work at
the same moment), runs the task and prints one JSON line with the result. Workers see
the parent's ``sys.path``, so a store given by import path opens in them too.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from typing import IO, Any

from metricache_conformance.checking import CheckFailed
from metricache_conformance.target import StoreTarget

__all__ = ["WORKER_TIMEOUT", "WorkerFailed", "run_workers"]

WORKER_TIMEOUT = 300.0
"""Seconds a worker may take before the check fails (a hung store, not a slow one)."""


class WorkerFailed(CheckFailed):
    """A worker process crashed, timed out or answered something unreadable."""


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    paths = [p or os.getcwd() for p in sys.path]
    paths = [p for p in dict.fromkeys(paths) if os.path.isdir(p)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _read_line(proc: subprocess.Popen[str], deadline: float) -> str:
    """Read one line of ``proc``'s output, giving up at ``deadline`` (monotonic)."""
    stdout = proc.stdout
    assert stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(stdout, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return ""
            if selector.select(remaining):
                return stdout.readline()


def _tail(stream: IO[str]) -> str:
    stream.seek(0)
    lines = [line.rstrip() for line in stream.read().splitlines() if line.strip()]
    return " | ".join(lines[-6:]) or "(nothing on stderr)"


def run_workers(
    target: StoreTarget,
    task: str,
    arguments: Sequence[Mapping[str, Any]],
    *,
    timeout: float = WORKER_TIMEOUT,
) -> list[dict[str, Any]]:
    """Run ``task`` in one worker process per item of ``arguments``, all at once.

    Returns each worker's result, in order. Raises :class:`WorkerFailed` naming the
    worker and the end of its standard error when one fails.
    """
    env = _environment()
    deadline = time.monotonic() + timeout
    procs: list[tuple[subprocess.Popen[str], IO[str]]] = []
    with contextlib.ExitStack() as stack:
        stack.callback(_reap, procs)
        for args in arguments:
            err: IO[str] = stack.enter_context(
                tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")
            )
            proc = subprocess.Popen(
                [sys.executable, "-m", "metricache_conformance.worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                env=env,
                text=True,
                encoding="utf-8",
            )
            procs.append((proc, err))
            request = {"task": task, "target": target.to_json(), "args": dict(args)}
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(request) + "\n")
            proc.stdin.flush()
        for n, (proc, err) in enumerate(procs):
            line = _read_line(proc, deadline)
            if not line.startswith('{"ready"'):
                raise WorkerFailed(
                    f"worker {n} of task {task!r} did not start: {line.strip() or _tail(err)}"
                )
        for proc, _ in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.close()
        results = []
        for n, (proc, err) in enumerate(procs):
            line = _read_line(proc, deadline)
            if not line:
                state = "timed out" if proc.poll() is None else f"exited with {proc.poll()}"
                raise WorkerFailed(f"worker {n} of task {task!r} {state}: {_tail(err)}")
            answer = json.loads(line)
            if "error" in answer:
                raise WorkerFailed(f"worker {n} of task {task!r} failed: {answer['error']}")
            results.append(answer["result"])
        for proc, _ in procs:
            proc.wait(max(1.0, deadline - time.monotonic()))
        return results


def _reap(procs: list[tuple[subprocess.Popen[str], IO[str]]]) -> None:
    """Kill the workers still running (after a failure) and close their pipes."""
    for proc, _ in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stdin):
            if stream is not None and not stream.closed:
                stream.close()
