"""Options and helpers every subcommand shares: --config, --store/--option, errors."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import attrs

from metricache.config import Config, OptionValue, StoreConfig, load_config
from metricache.store import Store
from metricache.store_plugins import open_store_from_config

__all__ = [
    "CommandError",
    "config_parent",
    "load",
    "open_configured_store",
    "parse_key_values",
    "print_error",
    "store_parent",
]


class CommandError(Exception):
    """A problem with what the user asked for; printed as one line, exit status 2."""


def config_parent() -> argparse.ArgumentParser:
    """Return the parent parser that gives a command ``--config PATH``."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--config",
        metavar="PATH",
        # SUPPRESS: an absent --config after the command keeps the one given before it.
        default=argparse.SUPPRESS,
        help="configuration file (default: ./metricache.toml, else [tool.metricache] "
        "in ./pyproject.toml)",
    )
    return parent


def store_parent() -> argparse.ArgumentParser:
    """Return the parent parser that gives a command ``--store`` and ``--option``."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--store",
        metavar="NAME",
        help="store plugin to use (default: [store] name in the config, else memory)",
    )
    parent.add_argument(
        "--option",
        "-o",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="a store option, e.g. --option url=redis://127.0.0.1:6379/0 (repeatable)",
    )
    return parent


def parse_key_values(items: Sequence[str], what: str = "--option") -> dict[str, str]:
    """Turn ``["a=1", "b=x"]`` into ``{"a": "1", "b": "x"}``, rejecting malformed items."""
    parsed: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CommandError(f"{what} expects KEY=VALUE, got {item!r}")
        parsed[key.strip()] = value
    return parsed


def load(args: argparse.Namespace) -> Config:
    """Load the configuration named by ``--config`` (or found), then apply ``--store``.

    ``--option`` values add to the configured store's options, or replace them when
    ``--store`` names another store than the file does.
    """
    config = load_config(getattr(args, "config", None))
    store_name = getattr(args, "store", None)
    options = parse_key_values(getattr(args, "option", None) or [])
    if store_name or options:
        same_store = not store_name or store_name == config.store.name
        merged: dict[str, OptionValue] = dict(config.store.options) if same_store else {}
        merged.update({key: OptionValue(value) for key, value in options.items()})
        store = StoreConfig(name=store_name or config.store.name, options=merged)
        config = attrs.evolve(config, store=store)
    return config


def open_configured_store(config: Config) -> Store:
    """Open the store of ``config``; configuration problems raise ConfigError."""
    return open_store_from_config(config.store)


def print_error(message: str) -> None:
    """Print ``metricache: error: message`` to standard error."""
    print(f"metricache: error: {message}", file=sys.stderr)
