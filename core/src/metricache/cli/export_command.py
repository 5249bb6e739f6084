"""``metricache export``: read the store's view once, render it, deliver it."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Sequence
from types import FrameType
from typing import Any

import attrs

from metricache.cli.common import (
    CommandError,
    load,
    open_configured_store,
    print_error,
    store_parent,
)
from metricache.collectors import install_collectors
from metricache.config import Config
from metricache.errors import ConfigError, FormatNotFound, StoreError
from metricache.exporters import Exporter, open_exporter
from metricache.exporting import export_snapshot
from metricache.formats import get_format
from metricache.registry import REGISTRY
from metricache.runtime import read_view

__all__ = ["register"]

EPILOG = """\
examples:
  metricache export --format json
      print the merged view of the configured store as JSON
  metricache export --store redis --option url=redis://127.0.0.1:6379/0 --format csv \\
      --output exports/metrics-{timestamp}.{ext}
      write a CSV file named after the snapshot's time (UTC)
  metricache export --exporter file --exporter-option path=/var/lib/m/metrics.prom \\
      --exporter-option keep=24 --exporter stdout
      deliver one rendering twice: to a file (keeping the 24 newest) and to stdout
  metricache export --format json --exporter http \\
      --exporter-option url=https://collector.example/ingest \\
      --exporter-option bearer_token_env=COLLECTOR_TOKEN
      POST the JSON document with a bearer token read from $COLLECTOR_TOKEN
  metricache export --schedule --format openmetrics --output /var/lib/m/{timestamp}.om
      keep exporting before the store's data expires, one instance per period
  metricache export --instance web-1
      export one instance's view from a local_only store (file, memory) that holds
      the views of several

Each --exporter-option applies to the --exporter before it; a key given twice for
one exporter collects its values one per line (http's headers). Without --exporter
or --output the [export] table of the configuration decides (default: stdout).
Exit status: 0 when every exporter delivered, 1 when one failed or the store could
not be read, 2 on bad input.
"""

_EXPORTERS = "exporters"
_ORPHANS = "exporter_option_orphans"


def _exporters(namespace: argparse.Namespace) -> list[tuple[str, list[str]]]:
    """Return (creating it) the list of ``(exporter, its options)`` the actions build."""
    exporters: list[tuple[str, list[str]]] | None = getattr(namespace, _EXPORTERS, None)
    if exporters is None:
        exporters = []
        setattr(namespace, _EXPORTERS, exporters)
    return exporters


class _ExporterAction(argparse.Action):
    """``--exporter NAME``: start a new exporter that later options configure."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        _exporters(namespace).append((str(values), []))


class _OutputAction(argparse.Action):
    """``--output PATH``: shorthand for ``--exporter file --exporter-option path=PATH``."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        _exporters(namespace).append(("file", [f"path={values}"]))


class _ExporterOptionAction(argparse.Action):
    """``--exporter-option KEY=VALUE``: an option of the exporter named just before."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        exporters = _exporters(namespace)
        if exporters:
            exporters[-1][1].append(str(values))
            return
        orphans: list[str] = getattr(namespace, _ORPHANS, None) or []
        orphans.append(str(values))
        setattr(namespace, _ORPHANS, orphans)


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]
) -> None:
    """Add the ``export`` subcommand."""
    parser = sub.add_parser(
        "export",
        parents=[*parents, store_parent()],
        help="export the store's view once (file, stdout, http, ...)",
        description="Read the store's view once (merged for distributed stores, one "
        "instance's for local_only ones), render it in one format and deliver the bytes "
        "to one or more exporters. One failing exporter never stops the others.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--format",
        "-f",
        metavar="NAME",
        help="format of any installed format plugin: prometheus, openmetrics, json, csv ... "
        "(default: [export] format in the config, else prometheus when installed, else the "
        "first installed format by name)",
    )
    parser.add_argument(
        "--output",
        metavar="PATH",
        action=_OutputAction,
        help="write to PATH: shorthand for --exporter file --exporter-option path=PATH; PATH "
        "may hold {timestamp}, {unix}, {ext}, {format}, {view}, {instance} and strftime "
        "fields (UTC)",
    )
    parser.add_argument(
        "--exporter",
        "-e",
        metavar="NAME",
        action=_ExporterAction,
        help="deliver with this exporter plugin: file, stdout, http ... (repeatable)",
    )
    parser.add_argument(
        "--exporter-option",
        "-O",
        metavar="KEY=VALUE",
        action=_ExporterOptionAction,
        help="an option of the --exporter before it, e.g. path=out.json, keep=10, "
        "url=https://..., timeout=5, bearer_token_file=/run/secrets/token (repeatable)",
    )
    parser.add_argument(
        "--instance",
        metavar="ID",
        help="the instance whose view to export, for local_only stores that hold several",
    )
    parser.add_argument(
        "--schedule",
        action="store_true",
        help="keep exporting on the coordinator's schedule (every export.interval, before "
        "what is exported expires; one instance per period on stores with locking) "
        "until SIGINT or SIGTERM; see docs/export-coordination.md",
    )
    parser.set_defaults(run=run)


def _exporter_specs(
    args: argparse.Namespace, config: Config
) -> list[tuple[str, dict[str, object]]]:
    orphans: list[str] = getattr(args, _ORPHANS, None) or []
    if orphans:
        raise CommandError(
            f"--exporter-option {orphans[0]!r} must follow the --exporter it configures"
        )
    given: list[tuple[str, list[str]]] = getattr(args, _EXPORTERS, None) or []
    if not given:
        return [(config.export.exporter, dict(config.export.options))]
    specs: list[tuple[str, dict[str, object]]] = []
    for name, items in given:
        options: dict[str, object] = {}
        for item in items:
            key, sep, value = item.partition("=")
            key = key.strip()
            if not sep or not key:
                raise CommandError(f"--exporter-option expects KEY=VALUE, got {item!r}")
            options[key] = f"{options[key]}\n{value}" if key in options else value
        specs.append((name, options))
    return specs


def _open_exporters(
    specs: list[tuple[str, dict[str, object]]], from_config: bool
) -> list[Exporter]:
    exporters = []
    for name, options in specs:
        where = "export.options" if from_config else f"--exporter {name}"
        try:
            exporters.append(open_exporter(name, options, where=where))
        except ConfigError as exc:
            if from_config:
                raise
            raise CommandError("; ".join(exc.problems)) from None
    return exporters


def _schedule(config: Config, format_name: str, exporters: list[Exporter]) -> int:
    """Run the export coordinator in the foreground until SIGINT or SIGTERM."""
    from metricache.export.coordinator import ExportCoordinator, TickResult

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    def show(result: TickResult) -> None:
        parts = [f"period {result.period}: {result.action.value}"]
        if result.attempt > 1:
            parts.append(f"attempt {result.attempt}")
        if result.late_by:
            parts.append(f"{result.late_by:.1f} s late")
        if result.extended_by:
            parts.append(f"TTL extended by {result.extended_by:.1f} s")
        if result.retry_in is not None:
            parts.append(f"retry in {result.retry_in:g} s")
        if result.error:
            parts.append(result.error)
        print("export " + ", ".join(parts), flush=True)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    coordinator = ExportCoordinator.from_config(
        attrs.evolve(config, export=attrs.evolve(config.export, format=format_name)),
        exporters=exporters,
        on_result=show,
    )
    print(
        f"exporting {format_name} every {coordinator.timing.period:g} s "
        f"({coordinator.strategy.value}); stop with Ctrl-C",
        flush=True,
    )
    with coordinator:
        stop.wait()
    coordinator.store.close()
    return 0


def run(args: argparse.Namespace) -> int:
    """Export once (or on a schedule); return 0 when every exporter delivered."""
    config = load(args)
    format_name = args.format or config.export.format
    try:
        fmt = get_format(format_name)
    except FormatNotFound as exc:
        raise CommandError(str(exc)) from None
    from_config = not getattr(args, _EXPORTERS, None)
    exporters = _open_exporters(_exporter_specs(args, config), from_config)
    install_collectors(REGISTRY)
    if args.schedule:
        return _schedule(config, fmt.name, exporters)

    store = open_configured_store(config)
    try:
        snapshot = read_view(config, store, args.instance)
    except StoreError as exc:
        print_error(f"cannot read the store: {exc}")
        return 1
    finally:
        store.close()

    export_log = logging.getLogger("metricache.export")
    level = export_log.level
    if export_log.getEffectiveLevel() >= logging.WARNING:
        # The error lines below say it once; the log would say it twice.
        export_log.setLevel(logging.ERROR)
    try:
        outcome = export_snapshot(snapshot, fmt.name, exporters)
    finally:
        export_log.setLevel(level)
    for failure in outcome.failed:
        error = failure.error
        print_error(f"exporter {failure.request.exporter} failed: {type(error).__name__}: {error}")
    return 0 if outcome.ok else 1
