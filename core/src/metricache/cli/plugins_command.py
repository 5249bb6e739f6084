"""``metricache plugins``: which plugins are installed, and what each offers."""

from __future__ import annotations

import argparse
import json

import attrs

from metricache.cli.common import load
from metricache.plugins import plugin_infos

__all__ = ["register"]


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]
) -> None:
    """Add the ``plugins`` subcommand."""
    parser = sub.add_parser(
        "plugins",
        parents=parents,
        help="list installed plugins",
        description="List every loaded plugin (entry-point group 'metricache') with its "
        "distribution, version, kinds (store, format, exporter, ...) and the hooks it "
        "implements. METRICACHE_PLUGINS=a,b restricts which plugins load.",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print the plugin table (or JSON)."""
    load(args)  # an invalid configuration fails here as in every other command
    infos = plugin_infos()
    if args.json:
        print(json.dumps([attrs.asdict(i) for i in infos], indent=2))
        return 0
    if not infos:
        print("no plugins loaded")
        return 0
    rows = [("name", "distribution", "version", "kinds", "hooks")]
    rows += [
        (i.name, i.distribution, i.version, ",".join(i.kinds), ",".join(i.hooks)) for i in infos
    ]
    widths = [max(len(row[col]) for row in rows) for col in range(4)]
    for row in rows:
        cells = [row[col].ljust(widths[col]) for col in range(4)]
        print("  ".join([*cells, row[4]]).rstrip())
    return 0
