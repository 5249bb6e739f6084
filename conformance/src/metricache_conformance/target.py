"""The store under test: a plugin name or an import path, and the options to open it with.

The suite opens the store several times (a second client for the ``distributed``
checks, one more in every worker process), so it holds a recipe, not a store object.
A recipe crosses into a worker process as JSON: option values are text, numbers or
booleans, as in ``metricache.toml``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import attrs
from metricache.config import parse_options
from metricache.errors import ConfigError
from metricache.plugins import missing
from metricache.store import Store
from metricache.store_plugins import available_stores, open_store

__all__ = ["StoreTarget", "label_of", "load_store_class"]


def load_store_class(plugin: str) -> type[Store]:
    """Return the store class named by an entry-point name or ``package.module:Class``."""
    if ":" not in plugin:
        found = available_stores().get(plugin)
        if found is None:
            problem = missing("metricache_store_classes", plugin)
            raise ConfigError([f"{problem} (or give an import path, package.module:Class)"])
        return found
    module_name, _, attribute = plugin.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError([f"cannot import {module_name!r} (from {plugin!r}): {exc}"]) from exc
    cls: Any = module
    for part in attribute.split("."):
        cls = getattr(cls, part, None)
        if cls is None:
            raise ConfigError([f"{module_name!r} has no attribute {attribute!r}"])
    if not (isinstance(cls, type) and issubclass(cls, Store)):
        raise ConfigError([f"{plugin!r} is not a subclass of metricache.store.Store"])
    return cls


def _options(value: Mapping[str, object]) -> dict[str, object]:
    return dict(value)


@attrs.frozen
class StoreTarget:
    """How to open the store under test.

    ``plugin`` is an entry-point name (``redis``) or an import path
    (``my_package.store:MyStore``); ``options`` are the store's options, as
    ``open_store`` takes them (text values are converted to the declared types).
    ``variant`` names the deployment the options point at when one store has a row
    per deployment (``cluster``, ``sentinel`` for ``redis``); it only changes the label.
    """

    plugin: str
    options: Mapping[str, object] = attrs.field(factory=dict, converter=_options)
    variant: str = ""

    @classmethod
    def named(cls, name: str, options: Mapping[str, object] | None = None) -> StoreTarget:
        """Return the target ``name`` names: ``PLUGIN`` or ``PLUGIN/VARIANT``."""
        plugin, _, variant = name.partition("/") if ":" not in name else (name, "", "")
        return cls(plugin, dict(options or {}), variant)

    def store_class(self) -> type[Store]:
        """Return the class of the store under test."""
        return load_store_class(self.plugin)

    @property
    def label(self) -> str:
        """The name shown in reports, with the variant in parentheses.

        That is the store's own ``name``, else the plugin string.
        """
        try:
            name = self.store_class().name or self.plugin
        except ConfigError:
            name = self.plugin
        return label_of(name, self.variant)

    def open(self) -> Store:
        """Open a new client of the store (each call is an independent client)."""
        if ":" not in self.plugin:
            return open_store(self.plugin, **self.options)
        cls = self.store_class()
        parsed: object = parse_options(cls.options_class, self.options, where="store.options")
        return cls(parsed)

    def to_json(self) -> dict[str, Any]:
        """Return the recipe as plain JSON data (for a worker process)."""
        return {"plugin": self.plugin, "options": dict(self.options), "variant": self.variant}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StoreTarget:
        """Rebuild a recipe written by :meth:`to_json`."""
        return cls(
            str(data["plugin"]), dict(data.get("options") or {}), str(data.get("variant", ""))
        )


def label_of(name: str, variant: str) -> str:
    """Return a store's label in reports: ``redis``, or ``redis (cluster)``."""
    return f"{name} ({variant})" if variant else name
