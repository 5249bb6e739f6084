"""Worker processes driven from a test, and the comparison of their tallies with the store.

:class:`Fleet` starts several ``tests.faults.worker`` processes (one metricache
instance each), sends them commands and collects their answers. :func:`compare`
checks the merged view of the store against the workers' own tallies and returns
what was lost and what was counted twice.
"""

from __future__ import annotations

import json
import math
import selectors
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import attrs
import metricache
from metricache.snapshot import HistogramSample, Sample

from tests.faults.worker import AMOUNT, BUCKETS

__all__ = ["Comparison", "Fleet", "compare"]

ROOT = Path(__file__).resolve().parents[2]


class Fleet:
    """Worker processes, each one instance; answers are read line by line with a timeout."""

    def __init__(self, count: int, **args: Any) -> None:
        self.procs: list[subprocess.Popen[str]] = []
        for n in range(count):
            worker_args = {**args, "instance": f"{args.get('instance', 'worker')}-{n}"}
            self.procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "tests.faults.worker", json.dumps(worker_args)],
                    cwd=ROOT,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        self.stderr: list[str] = []
        for proc in self.procs:
            ready = self._answer(proc, timeout=60)
            assert ready.get("ready"), ready

    def _answer(self, proc: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
        assert proc.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            if not selector.select(timeout):
                raise AssertionError(f"worker {proc.pid} did not answer within {timeout} s")
        line = proc.stdout.readline()
        if not line:
            proc.wait(10)
            assert proc.stderr is not None
            raise AssertionError(f"worker {proc.pid} exited: {proc.stderr.read()}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def command(
        self, command: str, timeout: float = 60.0, only: list[int] | None = None
    ) -> list[dict[str, Any]]:
        """Send ``command`` to every worker (or those numbered in ``only``); collect answers."""
        procs = self.procs if only is None else [self.procs[n] for n in only]
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(command + "\n")
            proc.stdin.flush()
        return [self._answer(proc, timeout) for proc in procs]

    def kill(self, n: int) -> None:
        """SIGKILL worker ``n``: no final sync, no goodbye."""
        self.procs[n].kill()
        self.procs[n].wait(10)

    def close(self) -> None:
        """Ask every worker to exit and keep what they logged (``stderr``)."""
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    assert proc.stdin is not None
                    proc.stdin.write("exit\n")
                    proc.stdin.flush()
                except OSError:
                    pass
        for proc in self.procs:
            try:
                _, err = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate(timeout=10)
            self.stderr.append(err)

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@attrs.frozen
class Comparison:
    """The merged view against the tallies: counter increments and histogram observations.

    ``sent``/``counted``: increments of the ``work_done`` counter, summed over its
    series. ``lost``/``doubled``: shortfall and excess summed per series, over the
    counter, the histogram buckets and counts; ``exact`` also covers the histogram sums
    and the fractional ``work_amount`` counter.
    """

    sent: int
    counted: int
    observations: int
    lost: int
    doubled: int
    exact: bool
    mismatches: tuple[str, ...]


def _sample(view: metricache.Snapshot, name: str, labels: tuple[str, ...]) -> Any:
    family = view.get(name)
    if family is None:
        return None
    for sample in family.samples:
        if sample.labels == labels:
            return sample
    return None


def compare(view: metricache.Snapshot, finals: list[dict[str, Any]]) -> Comparison:
    """Compare the merged ``view`` with the workers' final answers (their ``stop`` replies)."""
    tally: Counter[str] = Counter()
    observed: Counter[str] = Counter()
    for final in finals:
        tally.update(final["tally"])
        observed.update(final["observed"])
    lost = doubled = 0
    mismatches: list[str] = []

    def check(what: str, expected: int, got: int) -> None:
        nonlocal lost, doubled
        if got < expected:
            lost += expected - got
        elif got > expected:
            doubled += got - expected
        if got != expected:
            mismatches.append(f"{what}: expected {expected}, got {got}")

    counted = 0
    for kind, expected in sorted(tally.items()):
        sample = _sample(view, "work_done", (kind,))
        got = int(sample.value) if isinstance(sample, Sample) else 0
        counted += got
        check(f"work_done{{{kind}}}", expected, got)
    per_kind: dict[str, Counter[float]] = {}
    for key, n in observed.items():
        kind, _, value = key.partition("|")
        per_kind.setdefault(kind, Counter())[float(value)] += n
    exact_sums = True
    for kind, values in sorted(per_kind.items()):
        sample = _sample(view, "work_size", (kind,))
        if not isinstance(sample, HistogramSample):
            sample = HistogramSample((kind,), (0,) * (len(BUCKETS) + 1), 0.0, 0)
        check(f"work_size{{{kind}}} count", sum(values.values()), sample.count)
        for k, bound in enumerate((*BUCKETS, math.inf)):
            want = sum(n for v, n in values.items() if v <= bound)
            check(f"work_size{{{kind}}} bucket {k}", want, sample.buckets[k])
        expected_sum = sum(v * n for v, n in values.items())
        if sample.sum != expected_sum:
            mismatches.append(f"work_size{{{kind}}} sum: expected {expected_sum}, got {sample.sum}")
            exact_sums = False
    exact = not mismatches and exact_sums
    amount = _sample(view, "work_amount", ())
    expected_amount = AMOUNT * sum(tally.values())
    got_amount = amount.value if isinstance(amount, Sample) else 0.0
    if got_amount != expected_amount:
        mismatches.append(f"work_amount: expected {expected_amount}, got {got_amount}")
        exact = False
    return Comparison(
        sent=sum(tally.values()),
        counted=counted,
        observations=sum(observed.values()),
        lost=lost,
        doubled=doubled,
        exact=exact,
        mismatches=tuple(mismatches),
    )


def wait_until(predicate: Any, timeout: float, step: float = 0.05) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())
