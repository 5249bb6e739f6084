"""``metricache conformance``: check that a store plugin keeps the promises it declares.

The suite itself is the separate distribution ``metricache-conformance``; this module
only defines the command line and hands over to it, so the core does not depend on
the suite (nor on pytest, which the suite's pytest entry needs).
"""

from __future__ import annotations

import argparse

from metricache.cli.common import CommandError

__all__ = ["register"]


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: list[argparse.ArgumentParser],
) -> None:
    """Add the ``conformance`` subcommand."""
    parser = sub.add_parser(
        "conformance",
        parents=parents,
        help="check a store plugin against the capabilities it declares (formats and "
        "exporters: --formats, --exporters)",
        description="Run the conformance suite against a store plugin: basics (get/set/"
        "delete, TTLs, batch forms, maps), hostile keys and values, then each capability "
        "the store declares (distributed, atomic, cas, locking, exactly_once), and the "
        "end-to-end contract (two syncing processes give the view the strategy promises). "
        "Prints one line per check (a check that needs backdoor helpers, which only a "
        "StoreConformance class gives, is a named skip; a long check says first what it "
        "does) and ends with the store's row of the compatibility matrix; a run of some "
        "checks (--check) reports no strategy and no basics it did not check. A "
        "capability the store does not declare is a named skip, or an "
        "'unexpected success' when its checks pass anyway. Exits 1 when a declared "
        "promise is broken. With --formats or --exporters it runs the author's kits instead "
        "(or as well, with a STORE or --all): every hostile snapshot renders to "
        "deterministic bytes of the declared content type; an exporter delivers byte for "
        "byte, fails naming a destination that is down without showing secrets, and "
        "honours its timeout. Needs the metricache-conformance package.",
        epilog="examples: metricache conformance memory | metricache conformance redis "
        "--option url=redis://127.0.0.1:6379/0 | metricache conformance "
        "my_package.store:MyStore -o path=/tmp/x | metricache conformance --all --servers "
        "--format markdown | metricache conformance --formats | metricache conformance "
        "--exporters file http | metricache conformance --exporters "
        "my_package.tests:TestMyExporter",
    )
    parser.add_argument(
        "store",
        nargs="?",
        metavar="STORE",
        help="entry-point name (redis) or import path (package.module:Class), or NAME/DEPLOYMENT "
        "for a row of the store on another deployment (redis/cluster, redis/sentinel); "
        "default: the configured [store]",
    )
    parser.add_argument(
        "--all", action="store_true", help="check every installed store plugin, one after another"
    )
    parser.add_argument(
        "--option",
        "-o",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="a store option (repeatable); with --all, prefix it with the store's name: "
        "--option redis.url=redis://127.0.0.1:6379/0; options prefixed NAME/DEPLOYMENT add "
        "a row for that deployment: --option redis/cluster.url=redis+cluster://HOST:PORT",
    )
    parser.add_argument(
        "--servers",
        action="store_true",
        help="start a redis-server and a memcached on free local ports for the redis and "
        "memcached stores that have no url option, and with --all a Redis Cluster (3 masters, "
        "3 replicas) and a Sentinel setup (1 master, 1 replica, 3 sentinels) for the "
        "redis/cluster and redis/sentinel rows (needs redis-server, redis-cli, memcached)",
    )
    parser.add_argument(
        "--format",
        choices=["text", "markdown", "json"],
        default="text",
        help="how to print the result (markdown: the compatibility matrix; progress lines "
        "then go to stderr)",
    )
    parser.add_argument(
        "--write",
        metavar="PATH",
        help="with --format markdown: replace the generated region of PATH (between "
        "<!-- conformance-matrix:start --> and <!-- conformance-matrix:end -->)",
    )
    parser.add_argument(
        "--check",
        metavar="NAME",
        action="append",
        default=[],
        help="run only this check, or the checks of this area (atomic); repeatable",
    )
    parser.add_argument(
        "--formats",
        nargs="*",
        metavar="NAME",
        help="run the format kit on these formats (a name, or package.module:Class of a "
        "Format or of a FormatConformance class); none named: every installed format",
    )
    parser.add_argument(
        "--exporters",
        nargs="*",
        metavar="NAME",
        help="run the exporter kit on these exporters: file, stdout and http (the kit has "
        "their destinations), or package.module:Class of an ExporterConformance class; "
        "none named: every installed exporter",
    )
    parser.add_argument("--list-checks", action="store_true", help="list the checks and exit")
    parser.add_argument(
        "--processes",
        type=_positive,
        default=4,
        help="processes of the atomic check (4); processes x threads must be at least 2, "
        "or no two increments could race",
    )
    parser.add_argument(
        "--threads", type=_positive, default=4, help="threads per process in checks (4)"
    )
    parser.add_argument(
        "--increments",
        type=_positive,
        default=5000,
        help="increments per thread in the atomic check (5000)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Hand over to the suite; say how to install it when it is missing."""
    try:
        from metricache_conformance.cli import run_command
    except ImportError as exc:
        if exc.name is None or not exc.name.startswith("metricache_conformance"):
            raise
        raise CommandError(
            "the conformance suite is not installed: install metricache-conformance "
            "(pip install metricache-conformance)"
        ) from None
    status: int = run_command(args)
    return status
