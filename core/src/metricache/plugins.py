"""The one plugin manager: loads the ``metricache`` entry points once, lazily.

Built-in plugins (the memory store, the Prometheus format, the file and stdout
exporters ...) are found through the very same entry points as third-party ones.
``METRICACHE_PLUGINS`` restricts loading to a comma-separated list of entry-point or
distribution names (an empty value loads none). Set ``METRICACHE_TRACE_HOOKS=1`` to
log every hook call.

A function named ``metricache_*`` in a plugin is a hook implementation even without
the ``@hookimpl`` marker, so a misspelled hook name can never be silently ignored:
:func:`get_plugin_manager` raises :class:`~metricache.errors.PluginError` naming it.
"""

from __future__ import annotations

import inspect
import logging
import os
import threading
from collections.abc import Iterable
from importlib import metadata
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import pluggy

from metricache import hookspecs
from metricache.errors import PluginError

if TYPE_CHECKING:
    from metricache.exporters import Exporter
    from metricache.formats import Format
    from metricache.registry import Registry
    from metricache.store import Store

__all__ = [
    "ENTRY_POINT_GROUP",
    "PluginInfo",
    "exporter_classes",
    "format_objects",
    "get_plugin_manager",
    "install_collectors",
    "plugin_infos",
    "reset_plugin_manager",
    "store_classes",
]

ENTRY_POINT_GROUP = "metricache"
log = logging.getLogger("metricache.plugins")

_manager: pluggy.PluginManager | None = None
_lock = threading.Lock()
_dists: dict[str, tuple[str, str]] = {}  # plugin name -> (distribution, version)
_installed_registries: set[int] = set()

T = TypeVar("T")

KIND_BY_HOOK = {
    "metricache_store_classes": "store",
    "metricache_detect_capabilities": "detector",
    "metricache_formats": "format",
    "metricache_exporters": "exporter",
    "metricache_collectors": "collector",
    "metricache_handle_event": "event-handler",
    "metricache_event_recorder": "event-handler",
    "metricache_trace_event": "event-tracer",
    "metricache_cache_synced": "lifecycle",
    "metricache_export_requested": "lifecycle",
    "metricache_export_completed": "lifecycle",
    "metricache_export_failed": "lifecycle",
}


class _Manager(pluggy.PluginManager):
    """A plugin manager that treats every ``metricache_*`` function as a hook."""

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> Any:
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is None and name.startswith("metricache_"):
            method = getattr(plugin, name, None)
            if inspect.isroutine(method):
                opts = {
                    "wrapper": False,
                    "hookwrapper": False,
                    "optionalhook": False,
                    "tryfirst": False,
                    "trylast": False,
                    "specname": None,
                }
        return opts


@attrs.frozen
class PluginInfo:
    """What ``metricache plugins`` shows for one loaded plugin."""

    name: str
    distribution: str
    version: str
    kinds: tuple[str, ...]
    hooks: tuple[str, ...]


def _allow_list() -> set[str] | None:
    raw = os.environ.get("METRICACHE_PLUGINS")
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


def _entry_points() -> list[metadata.EntryPoint]:
    found = metadata.entry_points(group=ENTRY_POINT_GROUP)
    # The same distribution can be seen twice (e.g. an editable install shadowing
    # another); keep the first, as importlib does for imports. Two *different*
    # distributions using one entry-point name both stay, so registering the second
    # fails naming it instead of one of them silently vanishing.
    unique: dict[tuple[str, str], metadata.EntryPoint] = {}
    for ep in found:
        dist = getattr(ep, "dist", None)
        dist_name = dist.metadata["Name"] if dist is not None else ""
        unique.setdefault((ep.name, _normalise(dist_name)), ep)
    return sorted(unique.values(), key=lambda ep: ep.name)


def _normalise(dist_name: str) -> str:
    return dist_name.lower().replace("_", "-").replace(".", "-")


def _build() -> pluggy.PluginManager:
    pm = _Manager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    _dists.clear()  # a failed earlier build may have left some behind
    allowed = _allow_list()
    for ep in _entry_points():
        dist = getattr(ep, "dist", None)
        dist_name = dist.metadata["Name"] if dist is not None else "?"
        version = dist.version if dist is not None else "?"
        if allowed is not None and ep.name not in allowed and dist_name not in allowed:
            continue
        try:
            plugin = ep.load()
        except Exception as exc:
            raise PluginError(
                f"plugin {ep.name!r} (distribution {dist_name}) failed to import "
                f"{ep.value!r}: {type(exc).__name__}: {exc}"
            ) from exc
        try:
            pm.register(plugin, name=ep.name)
        except pluggy.PluginValidationError as exc:
            raise PluginError(
                f"plugin {ep.name!r} (distribution {dist_name}) is invalid: {exc}"
            ) from exc
        except ValueError as exc:
            if ep.name in _dists:
                raise PluginError(
                    f"two distributions register a plugin named {ep.name!r}: "
                    f"{_dists[ep.name][0]} and {dist_name}"
                ) from exc
            raise PluginError(f"plugin {ep.name!r} (distribution {dist_name}): {exc}") from exc
        _dists[ep.name] = (dist_name, version)
    _check_pending(pm)
    if os.environ.get("METRICACHE_TRACE_HOOKS"):
        pm.trace.root.setwriter(lambda text: log.info("hook: %s", text.rstrip()))
        pm.enable_tracing()
    return pm


def _check_pending(pm: pluggy.PluginManager) -> None:
    known = sorted(name for name in dir(hookspecs) if name.startswith("metricache_"))
    for name in dir(pm.hook):
        if not name.startswith("metricache_"):
            continue
        caller = getattr(pm.hook, name)
        if caller.spec is not None:
            continue
        for impl in caller.get_hookimpls():
            if impl.optionalhook:
                continue
            raise PluginError(
                f"plugin {impl.plugin_name!r} implements {name!r}, which is not a metricache "
                f"hook (misspelled?). Known hooks: {', '.join(known)}"
            )
    pm.check_pending()


def get_plugin_manager() -> pluggy.PluginManager:
    """Return the plugin manager, loading every allowed entry point on first use."""
    global _manager
    manager = _manager
    if manager is None:
        with _lock:
            if _manager is None:
                _manager = _build()
            manager = _manager
    return manager


def reset_plugin_manager() -> None:
    """Forget the loaded plugins; the next call loads them again (for tests)."""
    global _manager
    with _lock:
        _manager = None
        _dists.clear()
        _installed_registries.clear()
        _named_cache.clear()


def plugin_infos() -> list[PluginInfo]:
    """Describe every loaded plugin: distribution, version, kinds and hooks."""
    pm = get_plugin_manager()
    infos = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: str(item[0])):
        if plugin is None or name is None:
            continue
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or ())
        kinds = sorted({KIND_BY_HOOK.get(h, "other") for h in hooks})
        dist, version = _dists.get(name, ("?", "?"))
        infos.append(PluginInfo(name, dist, version, tuple(kinds), tuple(hooks)))
    return infos


_named_cache: dict[str, tuple[tuple[int, ...], dict[str, tuple[Any, str]]]] = {}


def _collect_named(hook_name: str, what: str) -> dict[str, tuple[Any, str]]:
    """Call a registration hook and index its answers by ``name``, rejecting duplicates.

    The answer is cached until the set of implementations changes (the endpoint asks
    for the formats on every request).
    """
    pm = get_plugin_manager()
    caller = getattr(pm.hook, hook_name)
    identity = (id(pm), *(id(impl.function) for impl in caller.get_hookimpls()))
    cached = _named_cache.get(hook_name)
    if cached is not None and cached[0] == identity:
        return dict(cached[1])
    found = _call_named(caller, what)
    _named_cache[hook_name] = (identity, found)
    return dict(found)


def _call_named(caller: Any, what: str) -> dict[str, tuple[Any, str]]:
    found: dict[str, tuple[Any, str]] = {}
    for impl in reversed(caller.get_hookimpls()):
        answer = impl.function()
        if answer is None:
            continue
        for item in answer:
            name = getattr(item, "name", "")
            if not isinstance(name, str) or not name:
                raise PluginError(f"plugin {impl.plugin_name!r} offers a {what} without a name")
            if name in found:
                raise PluginError(
                    f"two plugins offer a {what} named {name!r}: "
                    f"{found[name][1]!r} and {impl.plugin_name!r}"
                )
            found[name] = (item, impl.plugin_name)
    return found


def store_classes() -> dict[str, type[Store]]:
    """Return every store class the plugins offer, by name."""
    return {
        name: item
        for name, (item, _) in _collect_named("metricache_store_classes", "store").items()
    }


def format_objects() -> dict[str, Format]:
    """Return every format the plugins offer, by name."""
    return {
        name: item for name, (item, _) in _collect_named("metricache_formats", "format").items()
    }


def exporter_classes() -> dict[str, type[Exporter]]:
    """Return every exporter class the plugins offer, by name."""
    return {
        name: item for name, (item, _) in _collect_named("metricache_exporters", "exporter").items()
    }


def plugin_of(hook_name: str, name: str) -> str | None:
    """Return the plugin that offers ``name`` through a registration hook."""
    found = _collect_named(hook_name, "item")
    entry = found.get(name)
    return entry[1] if entry else None


def install_collectors(registry: Registry) -> None:
    """Add the plugins' collectors to ``registry`` (once per registry)."""
    key = id(registry)
    with _lock:
        if key in _installed_registries:
            return
        _installed_registries.add(key)
    for answer in get_plugin_manager().hook.metricache_collectors(registry=registry):
        for collector in _as_list(answer):
            registry.register_collector(collector)


def _as_list(answer: Iterable[T] | None) -> list[T]:
    return list(answer) if answer is not None else []
