"""``metricache sync``: sync this process's metrics (and plugin collectors) once or on."""

from __future__ import annotations

import argparse
import signal
import threading
from types import FrameType

from metricache.cli.common import load, store_parent
from metricache.collectors import install_collectors
from metricache.registry import Registry
from metricache.runtime import syncer_from_config
from metricache.sync.report import SyncReport

__all__ = ["register"]


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: list[argparse.ArgumentParser],
) -> None:
    """Add the ``sync`` subcommand."""
    parser = sub.add_parser(
        "sync",
        parents=[*parents, store_parent()],
        help="sync once (or keep syncing) and report",
        description="Run one sync from this process to the configured store and report "
        "what happened: strategy, series sent, duration, and the error if it failed. "
        "What this process syncs is metricache's own metrics plus whatever the installed "
        "collector plugins report, so '--watch' turns it into a sidecar for collector "
        "plugins. Exits 1 when the sync fails.",
        epilog="example: metricache sync --store redis --option url=redis://127.0.0.1:6379/0",
    )
    parser.add_argument(
        "--watch", action="store_true", help="keep syncing every sync.interval until stopped"
    )
    parser.set_defaults(run=run)


def _line(report: SyncReport) -> str:
    state = "ok" if report.ok else f"FAILED: {report.error}"
    extra = " (store had lost its data: totals re-sent)" if report.resent_totals else ""
    return (
        f"sync {state}: {report.series} series to {report.store} "
        f"({report.strategy}) in {report.duration * 1000:.1f} ms{extra}"
    )


def run(args: argparse.Namespace) -> int:
    """Sync, print one line per sync, return 0 if the last sync succeeded."""
    config = load(args)
    registry = Registry()
    install_collectors(registry)
    syncer = syncer_from_config(config, registry)
    print(f"instance {syncer.instance.id}, strategy {syncer.strategy.value}")
    if not args.watch:
        report = syncer.flush()
        print(_line(report))
        syncer.store.close()
        return 0 if report.ok else 1
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    report = syncer.flush()
    print(_line(report), flush=True)
    while not stop.wait(config.sync.interval):
        report = syncer.flush()
        print(_line(report), flush=True)
    report = syncer.flush()
    print(_line(report), flush=True)
    syncer.store.close()
    return 0 if report.ok else 1
