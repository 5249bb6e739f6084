"""Entry point of the ``metricache`` command."""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence
from types import ModuleType

import metricache
import metricache.cli
from metricache.cli.common import CommandError, config_parent, print_error
from metricache.errors import ConfigError, MetricacheError

__all__ = ["build_parser", "command_modules", "main"]


def command_modules() -> list[ModuleType]:
    """Return the subcommand modules: every ``metricache.cli.*_command`` module.

    Each defines ``register(subparsers, parents)``, which adds its parser and sets
    ``run`` (a function of the parsed arguments returning the exit status).
    """
    names = sorted(
        info.name
        for info in pkgutil.iter_modules(metricache.cli.__path__)
        if info.name.endswith("_command")
    )
    return [importlib.import_module(f"metricache.cli.{name}") for name in names]


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the whole command."""
    parser = argparse.ArgumentParser(
        prog="metricache",
        description="Application metrics that add up across processes and containers. "
        "Every command reads ./metricache.toml (or [tool.metricache] in ./pyproject.toml, "
        "or the file given with --config) and METRICACHE_* environment variables.",
        epilog="Run 'metricache COMMAND --help' for the options of a command.",
    )
    parser.add_argument(
        "--version", action="version", version=f"metricache {metricache.__version__}"
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="log more (repeat for debug)"
    )
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="configuration file for every command (also accepted after the command)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    parents = [config_parent()]
    for module in command_modules():
        module.register(sub, parents)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        status: int = args.run(args)
    except ConfigError as exc:
        print_error(f"invalid configuration: {exc}")
        return 2
    except CommandError as exc:
        print_error(str(exc))
        return 2
    except MetricacheError as exc:
        print_error(str(exc))
        return 1
    except KeyboardInterrupt:
        return 130
    return status


def run() -> None:
    """Console-script entry: exit with :func:`main`'s status."""
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    run()
