"""The one plugin manager: loads the ``metricache`` entry points once, lazily.

Built-in plugins (the memory store, the Prometheus format, the file and stdout
exporters ...) are found through the very same entry points as third-party ones.
``METRICACHE_PLUGINS`` restricts loading to a comma-separated list of entry-point or
distribution names (an empty value loads none). Set ``METRICACHE_TRACE_HOOKS=1`` to
log every hook call.

A faulty plugin never stops the host. One that fails to import, fails pluggy's
validation (a function named ``metricache_*`` that matches no hook is taken as a
misspelled hook, with or without the ``@hookimpl`` marker), or raises in a
registration hook (``metricache_store_classes``, ``metricache_formats``,
``metricache_exporters``) is left out, with one warning (logger
``metricache.plugins``) naming its distribution and the reason. When two plugins
offer one name, only that name is refused, when asked for, with an error naming both
distributions. ``metricache plugins`` shows every plugin's status;
:func:`broken_plugins` lists the faulty ones.
"""

from __future__ import annotations

import inspect
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from importlib import metadata
from typing import TYPE_CHECKING, Any

import attrs
import pluggy

from metricache import hookspecs
from metricache.errors import PluginError

if TYPE_CHECKING:
    from metricache.exporters import Exporter
    from metricache.formats import Format
    from metricache.store import Store

__all__ = [
    "DISTRIBUTION_OF",
    "ENTRY_POINT_GROUP",
    "KIND_BY_HOOK",
    "REGISTRATION_HOOKS",
    "PluginInfo",
    "broken_plugins",
    "call_each",
    "exporter_classes",
    "format_objects",
    "get_plugin_manager",
    "missing",
    "plugin_infos",
    "plugin_of",
    "refusal",
    "reset_plugin_manager",
    "store_classes",
]

ENTRY_POINT_GROUP = "metricache"
log = logging.getLogger("metricache.plugins")

_manager: pluggy.PluginManager | None = None
_lock = threading.Lock()
_dists: dict[str, tuple[str, str]] = {}  # plugin name -> (distribution, version)
_broken: dict[str, PluginInfo] = {}  # plugins left out when the manager was built
_warned: set[str] = set()


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

REGISTRATION_HOOKS = {
    "metricache_store_classes": "store",
    "metricache_formats": "format",
    "metricache_exporters": "exporter",
}
"""The hooks that offer named things, and what each thing is called."""

DISTRIBUTION_OF = {
    ("store", "memory"): "metricache-memory",
    ("store", "file"): "metricache-file",
    ("store", "redis"): "metricache-redis",
    ("store", "memcached"): "metricache-memcached",
    ("format", "prometheus"): "metricache-prometheus",
    ("format", "openmetrics"): "metricache-prometheus",
    ("format", "json"): "metricache-json",
    ("format", "csv"): "metricache-csv",
    ("exporter", "file"): "metricache",
    ("exporter", "stdout"): "metricache",
    ("exporter", "http"): "metricache",
}
"""The distribution that offers each of metricache's own stores, formats and exporters."""


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
    """What ``metricache plugins`` shows for one plugin.

    ``status`` is ``ok`` or ``broken: <reason>``. ``offers`` maps ``stores``,
    ``formats``, ``exporters`` and ``handlers`` (the other hooks it implements,
    without their ``metricache_`` prefix) to names; a plugin left out offers nothing.
    """

    name: str
    distribution: str
    version: str
    kinds: tuple[str, ...]
    hooks: tuple[str, ...]
    status: str = "ok"
    offers: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict, hash=False)

    @property
    def ok(self) -> bool:
        """Whether the plugin works entirely."""
        return self.status == "ok"

    def to_json(self) -> dict[str, Any]:
        """Return the plugin as plain JSON data (``metricache plugins --json``)."""
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "status": self.status,
            "kinds": list(self.kinds),
            "hooks": list(self.hooks),
            "offers": {kind: list(names) for kind, names in self.offers.items()},
        }


def _allow_list() -> set[str] | None:
    raw = os.environ.get("METRICACHE_PLUGINS")
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


def _entry_points() -> list[metadata.EntryPoint]:
    found = metadata.entry_points(group=ENTRY_POINT_GROUP)
    # The same distribution can be seen twice (e.g. an editable install shadowing
    # another); keep the first, as importlib does for imports. Two *different*
    # distributions using one entry-point name both stay, so that the second is
    # reported as broken, naming both, instead of one of them silently vanishing.
    unique: dict[tuple[str, str], metadata.EntryPoint] = {}
    for ep in found:
        dist = getattr(ep, "dist", None)
        dist_name = dist.metadata["Name"] if dist is not None else ""
        unique.setdefault((ep.name, _normalise(dist_name)), ep)
    return sorted(unique.values(), key=lambda ep: ep.name)


def _normalise(dist_name: str) -> str:
    return dist_name.lower().replace("_", "-").replace(".", "-")


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning("%s", message)


def _leave_out(name: str, dist_name: str, version: str, reason: str) -> None:
    _broken[name] = PluginInfo(name, dist_name, version, (), (), f"broken: {reason}")
    _warn_once(
        f"broken:{name}:{dist_name}",
        f"metricache plugin {name!r} (distribution {dist_name} {version}) is left out: {reason}",
    )


def _build() -> pluggy.PluginManager:
    pm = _Manager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    _dists.clear()  # a failed earlier build may have left some behind
    _broken.clear()
    allowed = _allow_list()
    for ep in _entry_points():
        dist = getattr(ep, "dist", None)
        dist_name = dist.metadata["Name"] if dist is not None else "?"
        version = dist.version if dist is not None else "?"
        if allowed is not None and ep.name not in allowed and dist_name not in allowed:
            continue
        reason = _register(pm, ep, dist_name)
        if reason is not None:
            _leave_out(ep.name, dist_name, version, reason)
            continue
        _dists[ep.name] = (dist_name, version)
    if os.environ.get("METRICACHE_TRACE_HOOKS"):
        pm.trace.root.setwriter(lambda text: log.info("hook: %s", text.rstrip()))
        pm.enable_tracing()
    return pm


def _register(pm: pluggy.PluginManager, ep: metadata.EntryPoint, dist_name: str) -> str | None:
    """Load and register one entry point; return why it is left out, or None."""
    try:
        plugin = ep.load()
    except Exception as exc:
        return f"failed to import {ep.value!r}: {type(exc).__name__}: {exc}"
    if ep.name in _dists:
        return f"the distribution {_dists[ep.name][0]} registers a plugin named {ep.name!r} too"
    try:
        pm.register(plugin, name=ep.name)
    except (pluggy.PluginValidationError, ValueError) as exc:
        _unregister(pm, ep.name)
        return f"invalid: {_one_line(exc)}"
    reason = _misspelled(pm, ep.name) or _registration_error(pm, ep.name)
    if reason is not None:
        _unregister(pm, ep.name)
    return reason


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return "; ".join(lines) or type(exc).__name__


def _unregister(pm: pluggy.PluginManager, name: str) -> None:
    if pm.get_plugin(name) is not None:
        pm.unregister(name=name)


def _known_hooks() -> list[str]:
    return sorted(name for name in dir(hookspecs) if name.startswith("metricache_"))


def _misspelled(pm: pluggy.PluginManager, name: str) -> str | None:
    """Name a ``metricache_*`` function of plugin ``name`` that matches no hook."""
    plugin = pm.get_plugin(name)
    for caller in pm.get_hookcallers(plugin) or ():
        if caller.spec is not None:
            continue
        if all(impl.optionalhook for impl in caller.get_hookimpls() if impl.plugin_name == name):
            continue
        return (
            f"implements {caller.name!r}, which is not a metricache hook (misspelled?). "
            f"Known hooks: {', '.join(_known_hooks())}"
        )
    return None


def _registration_error(pm: pluggy.PluginManager, name: str) -> str | None:
    """Call plugin ``name``'s registration hooks once; say what went wrong, if anything."""
    for hook_name, what in REGISTRATION_HOOKS.items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            if impl.plugin_name != name:
                continue
            try:
                _answer_items(impl, what)
            except Exception as exc:
                return f"{hook_name} raised {type(exc).__name__}: {exc}"
    return None


def _answer_items(impl: Any, what: str) -> list[Any]:
    """Call a registration hook implementation; return its items, each with a name."""
    answer = impl.function()
    if answer is None:
        return []
    items = list(answer)
    for item in items:
        name = getattr(item, "name", "")
        if not isinstance(name, str) or not name:
            raise PluginError(f"it offers a {what} without a name: {item!r}")
    return items


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
        _broken.clear()
        _warned.clear()
        _named_cache.clear()


@attrs.frozen
class _Named:
    """The answers of one registration hook: usable items, and names offered twice."""

    items: dict[str, tuple[Any, str]]  # name -> (item, plugin name)
    clashes: dict[str, tuple[str, ...]]  # name -> the plugins that offer it


_named_cache: dict[str, tuple[tuple[int, ...], _Named]] = {}


def _collect_named(hook_name: str) -> _Named:
    """Call a registration hook and index its answers by ``name``.

    A name two plugins offer is not among the items: it is in ``clashes``. The answer
    is cached until the set of implementations changes (the endpoint asks for the
    formats on every request).
    """
    pm = get_plugin_manager()
    caller = getattr(pm.hook, hook_name)
    identity = (id(pm), *(id(impl.function) for impl in caller.get_hookimpls()))
    cached = _named_cache.get(hook_name)
    if cached is not None and cached[0] == identity:
        return cached[1]
    found = _call_named(caller, REGISTRATION_HOOKS[hook_name])
    _named_cache[hook_name] = (identity, found)
    return found


def _call_named(caller: Any, what: str) -> _Named:
    offered: dict[str, list[tuple[Any, str]]] = {}
    for impl in reversed(caller.get_hookimpls()):
        try:
            items = _answer_items(impl, what)
        except Exception as exc:
            # Registered in process (not through an entry point), so not checked at load.
            _warn_once(
                f"raised:{impl.plugin_name}:{caller.name}",
                f"metricache plugin {impl.plugin_name!r}: {caller.name} raised "
                f"{type(exc).__name__}: {exc}; what it offers is left out",
            )
            continue
        for item in items:
            offered.setdefault(item.name, []).append((item, impl.plugin_name))
    items_by_name = {name: found[0] for name, found in offered.items() if len(found) == 1}
    clashes = {
        name: tuple(plugin for _, plugin in found)
        for name, found in offered.items()
        if len(found) > 1
    }
    for name, plugins in clashes.items():
        _warn_once(f"clash:{what}:{name}", _clash_message(what, name, plugins))
    return _Named(items_by_name, clashes)


def _describe_plugin(name: str) -> str:
    dist = _dists.get(name)
    return f"{name!r} (distribution {dist[0]})" if dist else repr(name)


def _clash_message(what: str, name: str, plugins: tuple[str, ...]) -> str:
    both = " and ".join(_describe_plugin(p) for p in plugins)
    return (
        f"two plugins offer a {what} named {name!r}: {both}; the name {name!r} is refused "
        "(uninstall one of them, or leave one out with METRICACHE_PLUGINS)"
    )


def refusal(hook_name: str, name: str) -> str | None:
    """Return why ``name`` is refused (two plugins offer it), or None if it is not."""
    plugins = _collect_named(hook_name).clashes.get(name)
    if plugins is None:
        return None
    return _clash_message(REGISTRATION_HOOKS[hook_name], name, plugins)


def missing(hook_name: str, name: str) -> str:
    """Explain that no plugin offers ``name`` (or that it is refused), naming what to install."""
    refused = refusal(hook_name, name)
    if refused is not None:
        return refused
    what = REGISTRATION_HOOKS[hook_name]
    installed = ", ".join(sorted(_collect_named(hook_name).items)) or "none"
    message = f"unknown {what} {name!r}; installed {what}s: {installed}"
    distribution = DISTRIBUTION_OF.get((what, name))
    if distribution is not None:
        message += f"; install the distribution {distribution} (pip install {distribution})"
    else:
        message += f"; is the plugin that offers the {what} {name!r} installed?"
    if _broken:
        message += f" ({len(_broken)} broken plugin(s) left out: metricache plugins)"
    return message


def _offers(
    pm: pluggy.PluginManager, name: str, hooks: Iterable[str]
) -> dict[str, tuple[str, ...]]:
    offers: dict[str, tuple[str, ...]] = {}
    for hook_name, what in REGISTRATION_HOOKS.items():
        named = _collect_named(hook_name)
        mine = [n for n, (_, plugin) in named.items.items() if plugin == name]
        mine += [n for n, plugins in named.clashes.items() if name in plugins]
        if mine:
            offers[f"{what}s"] = tuple(sorted(mine))
    handlers = sorted(h.removeprefix("metricache_") for h in hooks if h not in REGISTRATION_HOOKS)
    if handlers:
        offers["handlers"] = tuple(handlers)
    return offers


def _clash_status(name: str) -> str:
    reasons = []
    for hook_name, what in REGISTRATION_HOOKS.items():
        for offered, plugins in sorted(_collect_named(hook_name).clashes.items()):
            if name in plugins:
                others = ", ".join(_describe_plugin(p) for p in plugins if p != name)
                reasons.append(f"{others} offers the {what} {offered!r} too (the name is refused)")
    return f"broken: {'; '.join(reasons)}" if reasons else "ok"


def plugin_infos() -> list[PluginInfo]:
    """Describe every plugin, loaded or left out: distribution, status, what it offers."""
    pm = get_plugin_manager()
    infos = list(_broken.values())
    for name, plugin in pm.list_name_plugin():
        if plugin is None or name is None:
            continue
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or ())
        kinds = sorted({KIND_BY_HOOK.get(h, "other") for h in hooks})
        dist, version = _dists.get(name, ("?", "?"))
        infos.append(
            PluginInfo(
                name,
                dist,
                version,
                tuple(kinds),
                tuple(hooks),
                _clash_status(name),
                _offers(pm, name, hooks),
            )
        )
    return sorted(infos, key=lambda info: info.name)


def broken_plugins() -> list[PluginInfo]:
    """The plugins that are left out or offer a refused name."""
    return [info for info in plugin_infos() if not info.ok]


def _usable(hook_name: str) -> dict[str, Any]:
    return {name: item for name, (item, _) in _collect_named(hook_name).items.items()}


def store_classes() -> dict[str, type[Store]]:
    """Return every store class the plugins offer, by name (refused names left out)."""
    return _usable("metricache_store_classes")


def format_objects() -> dict[str, Format]:
    """Return every format the plugins offer, by name (refused names left out)."""
    return _usable("metricache_formats")


def exporter_classes() -> dict[str, type[Exporter]]:
    """Return every exporter class the plugins offer, by name (refused names left out)."""
    return _usable("metricache_exporters")


def plugin_of(hook_name: str, name: str) -> str | None:
    """Return the plugin that offers ``name`` through a registration hook."""
    entry = _collect_named(hook_name).items.get(name)
    return entry[1] if entry else None


ErrorCallback = Callable[[str, BaseException], None]


def call_each(
    hook_name: str, kwargs: Mapping[str, Any], on_error: ErrorCallback
) -> list[tuple[str, Any]]:
    """Call every implementation of ``hook_name`` on its own; return the clean answers.

    pluggy stops at the first implementation that raises; observers must not, so
    each is called separately (in pluggy's order, the last registered first) and
    its error is reported to ``on_error`` with the plugin's name. Hook wrappers are
    skipped. Each answer comes with the name of the plugin that gave it.
    """
    caller = getattr(get_plugin_manager().hook, hook_name)
    answers = []
    for impl in reversed(caller.get_hookimpls()):
        if impl.wrapper or impl.hookwrapper:
            continue
        try:
            answers.append((impl.plugin_name, impl.function(*[kwargs[n] for n in impl.argnames])))
        except Exception as exc:
            on_error(impl.plugin_name, exc)
    return answers
