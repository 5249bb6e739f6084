"""``metricache conformance``: the suite on the command line.

The core defines the arguments (``metricache.cli.conformance_command``) and calls
:func:`run_command`. One store, or every installed one with ``--all``; one progress
line per check (name, result, duration, and what went wrong), then the matrix. With
``--formats`` or ``--exporters``, the author's kits (:mod:`metricache_conformance.kit_cli`),
instead of a store unless one is named too.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

import attrs
from metricache.cli.common import CommandError, load, parse_key_values
from metricache.config import load_config
from metricache.errors import ConfigError, MetricacheError
from metricache.store_plugins import available_stores

from metricache_conformance.catalogue import Check, all_checks
from metricache_conformance.context import Scale
from metricache_conformance.kit_cli import (
    kit_check_lines,
    kit_json,
    run_exporter_kits,
    run_format_kits,
)
from metricache_conformance.render import (
    json_document,
    markdown_matrix,
    progress_line,
    replace_region,
    summary_line,
    text_matrix,
)
from metricache_conformance.results import Report
from metricache_conformance.runner import Conformance
from metricache_conformance.servers import VARIANTS, server_for
from metricache_conformance.target import StoreTarget

__all__ = ["run_command"]


def _can_encode(stream: TextIO, text: str) -> bool:
    try:
        text.encode(stream.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def _select(names: Sequence[str]) -> list[Check]:
    checks = all_checks()
    if not names:
        return checks
    chosen = [c for c in checks if any(c.name == n or c.name.startswith(n + ".") for n in names)]
    if not chosen:
        known = ", ".join(c.name for c in checks)
        raise CommandError(f"--check {', '.join(names)} matches no check; the checks: {known}")
    return chosen


def _required_path(plugin: str) -> bool:
    """Whether the store's options require a ``path`` (file-backed stores)."""
    try:
        cls = StoreTarget(plugin).store_class()
    except ConfigError:
        return False
    options = cls.options_class
    if not attrs.has(options):
        return False
    return any(f.name == "path" and f.default is attrs.NOTHING for f in attrs.fields(options))


def _prefixed_options(items: Sequence[str], stores: Sequence[str]) -> dict[str, dict[str, object]]:
    """Return the options by target, from ``STORE.KEY=VALUE`` items.

    ``STORE/VARIANT.KEY=VALUE`` gives the options of a row of the store on another
    deployment (``redis/cluster.url=redis+cluster://...``).
    """
    per_store: dict[str, dict[str, object]] = {name: {} for name in stores}
    for key, value in parse_key_values(items).items():
        store, dot, option = key.partition(".")
        if not dot or not option:
            raise CommandError(
                f"with --all, give options as STORE.KEY=VALUE (e.g. redis.url=...), got {key!r}"
            )
        base = store.partition("/")[0]
        if base not in stores:
            raise CommandError(f"--option {key}: no installed store is called {base!r}")
        per_store.setdefault(store, {})[option] = value
    return per_store


def _targets(args: argparse.Namespace, stack: contextlib.ExitStack) -> list[StoreTarget]:
    if args.all:
        if args.store:
            raise CommandError("give a STORE or --all, not both")
        load_config(getattr(args, "config", None))  # an invalid file fails as elsewhere
        installed = sorted(available_stores())
        per_store = _prefixed_options(args.option, installed)
        if args.servers:  # the deployments --servers can start get their rows too
            for name in VARIANTS:
                if name.partition("/")[0] in installed:
                    per_store.setdefault(name, {})
        names = sorted(per_store)
    else:
        store = args.store or ""
        base, slash, variant = store.partition("/") if ":" not in store else (store, "", "")
        if slash:
            args.store = base
        config = load(args)  # STORE and --option on top of the configured [store]
        name = f"{config.store.name}/{variant}" if slash else config.store.name
        names = [name]
        per_store = {name: dict[str, object](config.store.options)}
    workdir: Path | None = None
    targets = []
    for name in names:
        options: dict[str, object] = dict(per_store[name])
        if args.servers and "url" not in options:
            try:
                server = server_for(name)
            except RuntimeError as exc:
                raise CommandError(str(exc)) from None
            if server is not None:
                stack.callback(server.stop)
                options["url"] = server.url
        if "path" not in options and _required_path(name):
            if workdir is None:
                workdir = Path(tempfile.mkdtemp(prefix="metricache-conformance-"))
                stack.callback(shutil.rmtree, workdir, True)
            options["path"] = str(workdir / name)
        targets.append(StoreTarget.named(name, options))
    return targets


def _run_one(
    target: StoreTarget, scale: Scale, checks: list[Check], progress: TextIO, *, all_stores: bool
) -> Report:
    def running(check: str, line: str) -> None:
        print(f"  {check:<32} {line}", file=progress, flush=True)

    runner = Conformance(target, scale=scale, checks=checks, on_progress=running)
    try:
        runner.open()
    except MetricacheError as exc:
        if not all_stores:
            raise
        print(f"{target.label}: not run: {exc}", file=progress, flush=True)
        return Report(
            target.label, target.plugin, target.plugin, frozenset(), "", (), None, str(exc)
        )
    with contextlib.closing(runner):
        declared = ", ".join(sorted(c.value for c in runner.declared)) or "nothing"
        print(f"metricache conformance: {runner.description}", file=progress)
        print(f"declares: {declared} ({runner.declaration_source})", file=progress, flush=True)
        report = runner.run_all(lambda r: print(progress_line(r), file=progress, flush=True))
        print(summary_line(report), file=progress)
        print(file=progress, flush=True)
        return report


def run_command(args: argparse.Namespace) -> int:
    """Run the suite as ``args`` ask; return the exit status (1 if a promise is broken)."""
    formats = getattr(args, "formats", None)
    exporters = getattr(args, "exporters", None)
    kits = formats is not None or exporters is not None
    stores = not kits or bool(args.store) or args.all
    checks = _select(args.check) if stores else []
    if args.list_checks:
        for check in checks:
            capability = check.capability.value if check.capability else "every store"
            summary = check.summary
            if check.needs_backdoor:
                summary += " (needs backdoor helpers: from a StoreConformance class only)"
            print(f"{check.name:<32} {capability:<14} {summary}")
        for line in kit_check_lines() if kits else []:
            print(line)
        return 0
    if args.write and args.format != "markdown":
        raise CommandError("--write needs --format markdown")
    if kits and args.format == "markdown":
        raise CommandError("--format markdown is the store matrix; the kits print text or json")
    try:
        scale = Scale(processes=args.processes, threads=args.threads, increments=args.increments)
    except ValueError as exc:
        raise CommandError(
            f"--processes {args.processes} --threads {args.threads}: {exc}"
        ) from None
    progress = sys.stdout if args.format == "text" else sys.stderr
    reports: list[Report] = []
    if stores:
        with contextlib.ExitStack() as stack:
            targets = _targets(args, stack)
            reports = [_run_one(t, scale, checks, progress, all_stores=args.all) for t in targets]
    format_reports = run_format_kits(formats, progress) if formats is not None else []
    exporter_reports = run_exporter_kits(exporters, progress) if exporters is not None else []
    kits_ok = all(r.ok for r in [*format_reports, *exporter_reports])
    if args.format == "json":
        more = {}
        if formats is not None:
            more["formats"] = [kit_json(r) for r in format_reports]
        if exporters is not None:
            more["exporters"] = [kit_json(r) for r in exporter_reports]
        print(json_document(reports, **more))
    elif args.format == "markdown":
        table = markdown_matrix(reports)
        if args.write:
            path = Path(args.write)
            try:
                text = replace_region(path.read_text(encoding="utf-8"), table)
                path.write_text(text, encoding="utf-8")
            except (OSError, ValueError) as exc:
                raise CommandError(f"--write {path}: {exc}") from None
            print(f"wrote the matrix into {path}", file=sys.stderr)
        else:
            print(table)
    elif stores:
        print(text_matrix(reports, ascii_only=not _can_encode(sys.stdout, "✓✗")))
    return 0 if all(r.ok for r in reports) and kits_ok else 1
