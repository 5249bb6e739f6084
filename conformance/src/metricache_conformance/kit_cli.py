"""``metricache conformance --formats`` and ``--exporters``: the author's kits on the command line.

A name is an installed format or exporter, or ``package.module:Class``: a
``FormatConformance`` or ``ExporterConformance`` class (its parse-back hook and
destination are used), a ``Format`` or an ``Exporter``. An exporter needs a
destination: the kit has those of ``file``, ``stdout`` and ``http``; any other
exporter named alone is reported as not run, saying how to give one.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from metricache.errors import MetricacheError
from metricache.exporters import available_exporters
from metricache.formats import available_formats

from metricache_conformance.destinations import Destination, builtin_destination
from metricache_conformance.exporter_conformance import ExporterConformance
from metricache_conformance.exporter_suite import EXPORTER_CHECKS, ExporterSuite
from metricache_conformance.format_conformance import FormatConformance
from metricache_conformance.format_suite import FORMAT_CHECKS, FormatSuite
from metricache_conformance.kit import KitReport
from metricache_conformance.render import progress_line, result_json
from metricache_conformance.results import Result

__all__ = ["kit_check_lines", "kit_json", "run_exporter_kits", "run_format_kits"]


def kit_check_lines() -> list[str]:
    """The kits' checks, as ``--list-checks`` shows them."""
    lines = []
    for kind, checks in (("format", FORMAT_CHECKS), ("exporter", EXPORTER_CHECKS)):
        for check in checks:
            lines.append(f"{check.name:<32} {kind + ' kit':<14} {check.summary}")
    return lines


def _loaded(name: str) -> object | None:
    if ":" not in name:
        return None
    module_name, _, attribute = name.partition(":")
    try:
        found: object = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError):
        return None  # the suite names the problem when it loads the name itself
    return found


def _is_subclass(found: object, base: type) -> bool:
    return isinstance(found, type) and issubclass(found, base)


def _format_suite(name: str) -> FormatSuite:
    found = _loaded(name)
    if _is_subclass(found, FormatConformance):
        instance: FormatConformance = found()  # type: ignore[operator]
        return instance.suite()
    return FormatSuite(name)


def _exporter_target(name: str) -> tuple[str, Destination | None]:
    found = _loaded(name)
    if _is_subclass(found, ExporterConformance):
        instance: ExporterConformance = found()  # type: ignore[operator]
        return instance.exporter, instance.make_destination()
    return name, builtin_destination(name)


def _run(kind: str, name: str, progress: TextIO, start: Callable[[], Any]) -> KitReport:
    print(f"metricache conformance: {kind} {name}", file=progress, flush=True)
    try:
        suite = start()
    except (MetricacheError, NotImplementedError) as exc:
        report = KitReport(kind, name, (), str(exc))
    else:

        def show(result: Result) -> None:
            print(progress_line(result), file=progress, flush=True)

        report = suite.run_all(show)
    print(report.summary(), file=progress)
    print(file=progress, flush=True)
    return report


def run_format_kits(names: Sequence[str], progress: TextIO) -> list[KitReport]:
    """Run the format kit on each named format (none named: every installed one)."""
    chosen = list(names) or sorted(available_formats())
    return [_run("format", n, progress, functools.partial(_format_suite, n)) for n in chosen]


def run_exporter_kits(names: Sequence[str], progress: TextIO) -> list[KitReport]:
    """Run the exporter kit on each named exporter (none named: every installed one)."""
    reports = []
    for name in list(names) or sorted(available_exporters()):
        try:
            exporter, destination = _exporter_target(name)
        except (MetricacheError, NotImplementedError) as exc:
            reports.append(_run("exporter", name, progress, _raiser(exc)))
            continue
        if destination is None:
            reason = (
                "the kit knows no destination of this exporter: run it from its "
                "ExporterConformance class (--exporters package.module:Class)"
            )
            print(f"exporter {name}: skipped: {reason}\n", file=progress, flush=True)
            reports.append(KitReport("exporter", name, (), skipped=reason))
            continue
        with destination:
            start = functools.partial(ExporterSuite, exporter, destination)
            reports.append(_run("exporter", exporter, progress, start))
    return reports


def _raiser(exc: Exception) -> Callable[[], Any]:
    def start() -> Any:
        raise exc

    return start


def kit_json(report: KitReport) -> dict[str, Any]:
    """One kit report as JSON data."""
    return {
        "name": report.name,
        "ok": report.ok,
        "problem": report.problem,
        "skipped": report.skipped,
        "results": [result_json(r) for r in report.results],
    }
