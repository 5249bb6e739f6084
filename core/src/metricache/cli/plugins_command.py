"""``metricache plugins``: which plugins are installed, whether each works, what it offers."""

from __future__ import annotations

import argparse
import json

from metricache.cli.common import load
from metricache.plugins import PluginInfo, plugin_infos

__all__ = ["offers_cell", "register"]


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]
) -> None:
    """Add the ``plugins`` subcommand."""
    parser = sub.add_parser(
        "plugins",
        parents=parents,
        help="list installed plugins and whether each works",
        description="List every plugin of the entry-point group 'metricache' with its "
        "distribution, version, what it offers (stores, formats, exporters by name; "
        "handlers: the other hooks it implements) and its status: ok, or broken with the "
        "reason (it failed to import, implements a misspelled hook, raised in a "
        "registration hook, or offers a name another plugin offers too). A broken plugin "
        "is left out (a clashing name is refused); everything else keeps working. "
        "METRICACHE_PLUGINS=a,b restricts which plugins load.",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 when any plugin is broken (for a plugin's CI)",
    )
    parser.set_defaults(run=run)


def offers_cell(info: PluginInfo) -> str:
    """What a plugin offers, as one table cell: ``format:csv,handler:cache_synced``."""
    parts = [
        f"{kind.removesuffix('s')}:{name}" for kind, names in info.offers.items() for name in names
    ]
    return ",".join(parts) or "-"


def run(args: argparse.Namespace) -> int:
    """Print the plugin table (or JSON); with ``--check``, fail when a plugin is broken."""
    load(args)  # an invalid configuration fails here as in every other command
    infos = plugin_infos()
    broken = [info for info in infos if not info.ok]
    status = 1 if args.check and broken else 0
    if args.json:
        print(json.dumps([info.to_json() for info in infos], indent=2))
        return status
    if not infos:
        print("no plugins loaded")
        return status
    rows = [("name", "distribution", "version", "offers", "status")]
    rows += [(i.name, i.distribution, i.version, offers_cell(i), i.status) for i in infos]
    widths = [max(len(row[col]) for row in rows) for col in range(4)]
    for row in rows:
        cells = [row[col].ljust(widths[col]) for col in range(4)]
        print("  ".join([*cells, row[4]]).rstrip())
    return status
