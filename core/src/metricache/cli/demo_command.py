"""``metricache demo``: a simulated workflow engine, end to end, with its own proof.

Workers run tasks of several steps with random durations and failures and publish
their lifecycle through an :class:`~metricache.events.router.EventRouter` (the
default mappings); event handlers turn the events into counters and histograms; a
syncer folds them into the store; ``/metrics`` serves the merged view. At the end
the demo reads the merged view back and compares its totals with what the workers
counted themselves, and exits 0 only when every total matches.

On a ``local_only`` store (memory, the default) the workers are threads of this
process; on a shared store (redis, memcached) each worker is its own process with
its own registry and syncer, so the check proves that the processes add up.
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import IO, Any, TextIO

import attrs

from metricache.cli.common import CommandError, load, open_configured_store, store_parent
from metricache.config import Config, Seconds
from metricache.errors import StoreError
from metricache.events.backends import EVENT_LOGGER
from metricache.events.router import EventRouter
from metricache.events.rules import STATUSES
from metricache.events.simulation import SimulatedWorker, Tally, expected_totals
from metricache.http.endpoint import MetricsEndpoint, make_endpoint
from metricache.http.server import MetricsServer
from metricache.registry import Registry
from metricache.runtime import read_view, syncer_from_config
from metricache.snapshot import HistogramSample, Sample, Snapshot
from metricache.store import Store
from metricache.sync.reader import merged_snapshot
from metricache.sync.strategy import Strategy, select_strategy
from metricache.sync.syncer import Syncer

__all__ = ["CheckRow", "check_totals", "register"]

EPILOG = """\
examples:
  metricache demo --duration 10
      4 worker threads on the memory store, /metrics on port 9464 (or a free one)
  metricache demo --store redis --option url=redis://127.0.0.1:6379/0 --workers 4
      4 worker processes syncing to one redis; the check proves they add up

Each run writes under its own key namespace (<sync.namespace>-demo-<random>), so
runs never mix. The store, sync settings and [serve] host/port come from the
configuration; the events follow the default mappings. Exit status: 0 when the
merged totals equal the workers' ground truth, 1 when they do not.
"""

_REFRESH = 0.5  # seconds between screen updates on a terminal
_PLAIN_EVERY = 2.0  # seconds between progress lines otherwise
_ENTITIES = ("task", "step")


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: list[argparse.ArgumentParser],
) -> None:
    """Add the ``demo`` subcommand."""
    parser = sub.add_parser(
        "demo",
        parents=[*parents, store_parent()],
        help="run a simulated workflow engine and check its merged metrics",
        description="Run a simulated workflow engine whose workers publish task and step "
        "lifecycle events through the event router; sync the resulting metrics, serve "
        "them at /metrics, show a live summary, and at the end check the merged totals "
        "against the workers' own counts.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--duration", type=float, default=10.0, metavar="SECONDS", help="how long (default 10)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=4,
        metavar="N",
        help="workers: threads on a local_only store, processes on a shared one (default 4)",
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="sync interval of the demo (default 1; sync.interval is for real programs)",
    )
    parser.add_argument("--host", metavar="HOST", help="address of /metrics ([serve] host)")
    parser.add_argument(
        "--port",
        type=int,
        metavar="PORT",
        help="port of /metrics ([serve] port, 9464; a free one if taken; 0: any free one)",
    )
    parser.add_argument(
        "--failure-rate",
        type=float,
        default=0.15,
        metavar="P",
        help="chance that a step attempt fails (default 0.15; retried once)",
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=0.01,
        metavar="X",
        help="real seconds per simulated second of work (default 0.01)",
    )
    parser.add_argument("--seed", type=int, help="random seed (default: a random one)")
    parser.set_defaults(run=run)


# -- the check ------------------------------------------------------------------------------


@attrs.frozen
class CheckRow:
    """One total of the check: the series name shown, the expected and merged counts."""

    name: str
    expected: int
    merged: float

    @property
    def ok(self) -> bool:
        """Whether the merged total equals the expected one."""
        return self.merged == self.expected


def check_totals(tally: Tally, view: Snapshot) -> list[CheckRow]:
    """Compare the merged ``view`` with the workers' summed ``tally``.

    Every outcome counter of tasks and steps (zero when none happened) and the
    observation count of both duration histograms.
    """
    expected = {f"{e}_{s}": 0 for e in _ENTITIES for s in STATUSES}
    expected.update({f"{e}_duration_seconds": 0 for e in _ENTITIES})
    expected.update(expected_totals(tally))
    rows = []
    for family_name, count in expected.items():
        family = view.get(family_name)
        merged = 0.0
        histogram = family_name.endswith("_seconds")
        shown = f"{family_name}_count" if histogram else f"{family_name}_total"
        if family is not None:
            for sample in family.samples:
                if isinstance(sample, HistogramSample):
                    merged += sample.count
                elif isinstance(sample, Sample):
                    merged += sample.value
        rows.append(CheckRow(shown, count, merged))
    return rows


# -- the live summary -------------------------------------------------------------------------


class LiveSummary:
    """A summary redrawn in place on a terminal, printed as plain lines otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.interactive = stream.isatty()
        self._drawn = 0
        self._last_plain = 0.0

    def show(self, lines: list[str], plain: str) -> None:
        """Redraw ``lines`` (terminal), or print ``plain`` every few seconds."""
        if self.interactive:
            if self._drawn:
                # Up to the first line of the previous drawing, then clear below it.
                self.stream.write(f"\x1b[{self._drawn}F\x1b[J")
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()
            self._drawn = len(lines)
            return
        now = time.monotonic()
        if now - self._last_plain >= _PLAIN_EVERY:
            self._last_plain = now
            print(plain, file=self.stream, flush=True)


@attrs.define
class _Progress:
    started: float
    duration: float
    url: str
    events: int = 0
    tasks: int = 0
    series: int | None = None
    last_sync: float | None = None
    sync_ok: bool | None = None
    rate: float = 0.0
    _previous: tuple[float, int] | None = None

    def observe(self, events: int, tasks: int) -> None:
        now = time.monotonic()
        if self._previous is not None and now > self._previous[0]:
            self.rate = (events - self._previous[1]) / (now - self._previous[0])
        self._previous = (now, events)
        self.events, self.tasks = events, tasks

    def _sync_text(self) -> str:
        if self.last_sync is None:
            return "not yet"
        text = f"{max(time.time() - self.last_sync, 0.0):.1f} s ago"
        return text if self.sync_ok is not False else f"{text} (last attempt failed)"

    def lines(self) -> list[str]:
        elapsed = min(time.monotonic() - self.started, self.duration)
        series = "?" if self.series is None else str(self.series)
        return [
            f"  elapsed     {elapsed:5.1f} / {self.duration:g} s",
            f"  events      {self.events} published, {self.rate:.0f}/s",
            f"  tasks       {self.tasks} run",
            f"  series      {series} in the store's view",
            f"  last sync   {self._sync_text()}",
            f"  metrics     {self.url}",
        ]

    def plain(self) -> str:
        elapsed = min(time.monotonic() - self.started, self.duration)
        series = "?" if self.series is None else str(self.series)
        return (
            f"demo: {elapsed:.1f}/{self.duration:g} s, {self.events} events "
            f"({self.rate:.0f}/s), {self.tasks} tasks, {series} series, "
            f"last sync {self._sync_text()}, {self.url}"
        )


# -- serving ------------------------------------------------------------------------------------


def _serve(endpoint: MetricsEndpoint, host: str, port: int) -> MetricsServer | None:
    try:
        return MetricsServer(endpoint, host, port).start()
    except OSError as exc:
        if port == 0:
            print(f"metricache: warning: cannot serve /metrics on {host}: {exc}", file=sys.stderr)
            return None
    try:
        server = MetricsServer(endpoint, host, 0).start()
    except OSError as exc:
        print(f"metricache: warning: cannot serve /metrics on {host}: {exc}", file=sys.stderr)
        return None
    print(f"metricache: port {port} is taken; serving on {server.port} instead")
    return server


def _last_sync(view: Snapshot) -> float | None:
    family = view.get("metricache_last_sync_timestamp_seconds")
    if family is None:
        return None
    # An instance that has not synced yet reports 0.
    values = [s.value for s in family.samples if isinstance(s, Sample) and s.value > 0]
    return max(values) if values else None


# -- the two ways to run workers ----------------------------------------------------------------


@attrs.define
class _Outcome:
    tally: Tally
    view: Snapshot
    instances: int
    problems: list[str]
    dropped: int


def _run_threads(
    args: argparse.Namespace,
    config: Config,
    store: Store,
    progress: _Progress,
    summary: LiveSummary,
    serve: Callable[[MetricsEndpoint], MetricsServer | None],
) -> _Outcome:
    registry = Registry()
    syncer = syncer_from_config(config, registry, store=store).start()
    router = EventRouter(registry)
    seed = args.seed if args.seed is not None else secrets.randbits(32)
    workers = [
        SimulatedWorker(
            router,
            f"w{i + 1}",
            seed=seed + i,
            failure_rate=args.failure_rate,
            time_scale=args.time_scale,
        )
        for i in range(args.workers)
    ]
    stop = threading.Event()
    until = time.monotonic() + args.duration
    threads = [
        threading.Thread(target=w.run, args=(until, stop), name=f"demo-{w.name}", daemon=True)
        for w in workers
    ]
    server = serve(make_endpoint(syncer=syncer, flush=False))
    if server is not None:
        progress.url = server.url
    try:
        for thread in threads:
            thread.start()
        try:
            while any(t.is_alive() for t in threads):
                _refresh_local(progress, workers, syncer)
                summary.show(progress.lines(), progress.plain())
                time.sleep(_REFRESH)
        except KeyboardInterrupt:
            stop.set()
            print("metricache: interrupted; finishing the tasks in progress", file=sys.stderr)
        for thread in threads:
            thread.join()
        router.close()
        report = syncer.stop()
        problems = []
        if report is None or not report.ok:
            problems.append(f"the final sync failed: {report.error if report else 'timed out'}")
        _refresh_local(progress, workers, syncer)
        summary.show(progress.lines(), progress.plain())
        view = merged_snapshot(
            store,
            namespace=syncer.keyspace.namespace,
            retention=syncer.keyspace.retention,
            strategy=syncer.strategy,
            instance_id=syncer.instance.id,
        )
        total = Tally()
        for worker in workers:
            total.add(worker.tally)
        stats = router.stats()
        dropped = sum(b.dropped for b in stats.backends.values())
        return _Outcome(total, view, 1, problems, dropped)
    finally:
        if server is not None:
            server.stop()


def _refresh_local(progress: _Progress, workers: Iterable[SimulatedWorker], syncer: Syncer) -> None:
    workers = list(workers)
    progress.observe(sum(w.tally.events for w in workers), sum(w.tally.tasks for w in workers))
    report = syncer.last_report
    if report is not None:
        progress.last_sync = report.started if report.ok else progress.last_sync
        progress.sync_ok = report.ok
    try:
        view = merged_snapshot(
            syncer.store,
            namespace=syncer.keyspace.namespace,
            retention=syncer.keyspace.retention,
            strategy=syncer.strategy,
            instance_id=syncer.instance.id,
        )
    except StoreError:
        progress.series = None
    else:
        progress.series = view.series_count()


class _WorkerProcess:
    """One ``python -m metricache.events.simulation`` process and what it said."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.name = spec["worker"]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "metricache.events.simulation"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        self.events = 0
        self.tasks = 0
        self.result: dict[str, Any] | None = None
        self.errors: collections.deque[str] = collections.deque(maxlen=20)
        stdin = self._stdin()
        # The spec (store options may hold a password) goes through a pipe, not argv.
        stdin.write(json.dumps(spec) + "\n")
        stdin.flush()
        self._threads = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _stdin(self) -> IO[str]:
        assert self.process.stdin is not None
        return self.process.stdin

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                self.errors.append(line.rstrip())
                continue
            if "progress" in message:
                self.events = int(message["progress"]["events"])
                self.tasks = int(message["progress"]["tasks"])
            elif "done" in message:
                self.result = message

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.errors.append(line.rstrip())

    def stop(self) -> None:
        """Ask the worker to finish its task in progress and report."""
        try:
            stdin = self._stdin()
            stdin.write("stop\n")
            stdin.close()
        except (OSError, ValueError):
            pass  # already gone

    def wait(self, timeout: float) -> None:
        """Wait for the process and its output, killing it after ``timeout`` seconds."""
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for thread in self._threads:
            thread.join(5.0)

    @property
    def alive(self) -> bool:
        """Whether the process still runs."""
        return self.process.poll() is None


def _run_processes(
    args: argparse.Namespace,
    config: Config,
    store: Store,
    progress: _Progress,
    summary: LiveSummary,
    serve: Callable[[MetricsEndpoint], MetricsServer | None],
) -> _Outcome:
    seed = args.seed if args.seed is not None else secrets.randbits(32)
    run_id = config.sync.namespace.rpartition("-")[2]
    server = serve(make_endpoint(config, store, token_file=None))
    if server is not None:
        progress.url = server.url
    workers: list[_WorkerProcess] = []
    try:
        for i in range(args.workers):
            spec = {
                "config": config.source or None,
                "store": {"name": config.store.name, "options": dict(config.store.options)},
                "namespace": config.sync.namespace,
                "interval": config.sync.interval,
                "instance_id": f"demo-{run_id}-w{i + 1}",
                "worker": f"w{i + 1}",
                "duration": args.duration,
                "seed": seed + i,
                "failure_rate": args.failure_rate,
                "time_scale": args.time_scale,
            }
            workers.append(_WorkerProcess(spec))
        progress.started = time.monotonic()
        try:
            while any(w.alive for w in workers):
                _refresh_shared(progress, workers, config, store)
                summary.show(progress.lines(), progress.plain())
                time.sleep(_REFRESH)
        except KeyboardInterrupt:
            print("metricache: interrupted; finishing the tasks in progress", file=sys.stderr)
        for worker in workers:
            worker.stop()
        for worker in workers:
            worker.wait(timeout=60.0)
        _refresh_shared(progress, workers, config, store)
        summary.show(progress.lines(), progress.plain())
    finally:
        for worker in workers:
            if worker.alive:
                worker.process.kill()
                worker.process.wait()
        if server is not None:
            server.stop()
    total = Tally()
    problems = []
    dropped = 0
    for worker in workers:
        if worker.result is None:
            detail = "; ".join(worker.errors) or f"exit status {worker.process.returncode}"
            problems.append(f"worker {worker.name} did not report: {detail}")
            continue
        total.add(Tally.from_json(worker.result["done"]))
        dropped += int(worker.result.get("dropped", 0))
        if not worker.result.get("sync_ok"):
            problems.append(
                f"worker {worker.name}: the final sync failed: {worker.result.get('sync_error')}"
            )
    view = merged_snapshot(store, namespace=config.sync.namespace, retention=config.sync.retention)
    return _Outcome(total, view, len(workers), problems, dropped)


def _refresh_shared(
    progress: _Progress, workers: list[_WorkerProcess], config: Config, store: Store
) -> None:
    progress.observe(sum(w.events for w in workers), sum(w.tasks for w in workers))
    try:
        view = read_view(config, store)
    except StoreError:
        progress.series = None
        progress.sync_ok = False
        return
    progress.series = view.series_count()
    progress.last_sync = _last_sync(view)
    progress.sync_ok = True if progress.last_sync is not None else None


# -- the command ------------------------------------------------------------------------------


def _check_arguments(args: argparse.Namespace) -> None:
    if not args.duration > 0:
        raise CommandError(f"--duration must be > 0 seconds, got {args.duration:g}")
    if args.workers < 1:
        raise CommandError(f"--workers must be at least 1, got {args.workers}")
    if not args.interval > 0:
        raise CommandError(f"--interval must be > 0 seconds, got {args.interval:g}")
    if not 0 <= args.failure_rate < 1:
        raise CommandError(f"--failure-rate must be from 0 to below 1, got {args.failure_rate:g}")
    if not args.time_scale >= 0:
        raise CommandError(f"--time-scale must be >= 0, got {args.time_scale:g}")
    if args.port is not None and not 0 <= args.port <= 65535:
        raise CommandError(f"--port must be from 0 to 65535, got {args.port}")


def _print_check(rows: list[CheckRow], outcome: _Outcome, tally: Tally) -> bool:
    print()
    width = max(len(r.name) for r in rows)
    print(f"ground truth check: {tally.tasks} tasks, {tally.events} events, ", end="")
    print(f"{outcome.instances} instance(s), {outcome.dropped} trace/log events shed")
    print(f"  {'series':<{width}}  {'expected':>9}  {'merged':>9}")
    for row in rows:
        mark = "ok" if row.ok else "MISMATCH"
        print(f"  {row.name:<{width}}  {row.expected:>9}  {row.merged:>9g}  {mark}")
    for problem in outcome.problems:
        print(f"  problem: {problem}")
    passed = all(r.ok for r in rows) and not outcome.problems and tally.tasks > 0
    if passed:
        print("PASS: the merged view adds up to the workers' own counts")
    elif tally.tasks == 0:
        print("FAIL: no task ran")
    else:
        print("FAIL: the merged view does not add up to the workers' own counts")
    return passed


def run(args: argparse.Namespace) -> int:
    """Run the demo; return 0 when the ground-truth check passes, else 1."""
    _check_arguments(args)
    config = load(args)
    run_id = secrets.token_hex(3)
    config = attrs.evolve(
        config,
        sync=attrs.evolve(
            config.sync,
            namespace=f"{config.sync.namespace}-demo-{run_id}",
            interval=Seconds(args.interval),
        ),
    )
    if not logging.getLogger().isEnabledFor(logging.INFO):
        # The logs backend writes failed tasks at warning level; on the demo's screen
        # they would scroll the summary away. -v shows them.
        logging.getLogger(EVENT_LOGGER).setLevel(logging.ERROR)
    store = open_configured_store(config)
    try:
        try:
            store.ping()
        except StoreError as exc:
            raise CommandError(f"the store {store.describe()} is unreachable: {exc}") from None
        strategy = select_strategy(store).strategy
        local = strategy is Strategy.LOCAL_ONLY
        host = args.host or config.serve.host
        port = args.port if args.port is not None else config.serve.port
        mode = (
            f"{args.workers} worker thread(s), store {store.describe()}, {strategy.value}"
            if local
            else f"{args.workers} worker process(es), store {store.describe()}, {strategy.value}"
        )
        progress = _Progress(time.monotonic(), args.duration, "(not served)")
        print(f"metricache demo: {mode}")
        print(f"  namespace {config.sync.namespace}, sync every {args.interval:g} s")

        def serve(endpoint: MetricsEndpoint) -> MetricsServer | None:
            server = _serve(endpoint, host, port)
            if server is not None:
                print(f"  serving {server.url}", flush=True)
            return server

        summary = LiveSummary(sys.stdout)
        runner = _run_threads if local else _run_processes
        outcome = runner(args, config, store, progress, summary, serve)
        rows = check_totals(outcome.tally, outcome.view)
        return 0 if _print_check(rows, outcome, outcome.tally) else 1
    finally:
        store.close()
