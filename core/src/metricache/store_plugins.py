"""Finding store plugins by name and opening them with options."""

from __future__ import annotations

from collections.abc import Mapping

from metricache.config import StoreConfig, parse_options
from metricache.errors import ConfigError
from metricache.plugins import missing, store_classes
from metricache.store import Store

__all__ = ["available_stores", "open_store", "open_store_from_config"]


def available_stores() -> dict[str, type[Store]]:
    """Return every store class the installed plugins offer, by name."""
    return store_classes()


def open_store(name: str, /, **options: object) -> Store:
    """Open the store plugin called ``name`` with ``options``.

    ``open_store("memory")``, ``open_store("redis", url="redis://127.0.0.1:6379/0")``.
    Option values may be text (as from ``--option key=value``); they are converted to
    the types the store declares. Unknown or invalid options raise ConfigError, as
    does a store no plugin offers (naming the distribution to install, for
    metricache's own stores) or two plugins offer (naming both).
    """
    cls = available_stores().get(name)
    if cls is None:
        raise ConfigError([f"store.name: {missing('metricache_store_classes', name)}"])
    parsed: object = parse_options(cls.options_class, options, where="store.options")
    return cls(parsed)


def open_store_from_config(
    config: StoreConfig, overrides: Mapping[str, object] | None = None
) -> Store:
    """Open the store a ``[store]`` table names, with ``overrides`` on top of its options."""
    options: dict[str, object] = dict(config.options)
    options.update(overrides or {})
    return open_store(config.name, **options)
