"""The configuration of event routing: ``[[events]]`` and ``[event_routing]``.

The configuration file keeps both tables as read (:class:`metricache.config.Config`
never loads this package); :func:`event_settings` turns them into
:class:`EventSettings` when a router is built from them: ``[[events]]`` tables
become :class:`~metricache.events.mapping.EventMapping` objects and
``[event_routing]`` an :class:`EventRoutingConfig`, which holds the metric rules
(``[[event_routing.rules]]``, :class:`~metricache.events.rules.MetricRule`).

Every problem is reported at once by its path in the file, as a
:class:`~metricache.errors.ConfigError`: an invalid value
(``events[2].sampling_rate: expected a number from 0 to 1, got 1.5``), and a
configuration that contradicts itself — a rule for events that no mapping routes to
the metrics backend, or a mapping to the metrics backend while no installed plugin
handles metrics events.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NewType

import attrs
import cattrs

from metricache.config import make_converter, structure
from metricache.errors import ConfigError
from metricache.events.defaults import DEFAULT_MAPPINGS
from metricache.events.globs import globs_overlap
from metricache.events.mapping import (
    Backend,
    EventMapping,
    EventPattern,
    MappingTable,
    MetadataValue,
    Priority,
    SamplingRate,
    parse_backends,
    parse_metadata_value,
    parse_pattern,
    parse_priority,
    parse_rate,
)
from metricache.events.rules import (
    DEFAULT_LABELS,
    LabelName,
    MetricName,
    MetricRule,
    RuleSet,
    parse_gauge_merge,
    parse_label_name,
    parse_metric_name,
    parse_metric_type,
)
from metricache.snapshot import GaugeMerge, MetricType

if TYPE_CHECKING:
    from metricache.config import Config

__all__ = [
    "Capacity",
    "EventRoutingConfig",
    "EventSettings",
    "Wait",
    "event_settings",
    "register_config_hooks",
]

Capacity = NewType("Capacity", int)
"""A number of items, >= 1."""
Wait = NewType("Wait", float)
"""A number of seconds, >= 0."""


@attrs.frozen(kw_only=True)
class EventRoutingConfig:
    """``[event_routing]``: how the event router starts, and the metric rules.

    ``default_mappings``: start from the built-in task/step/workflow mappings
    (``[[events]]`` add to them, or replace them when false). ``conventions``:
    apply the ``<entity>.<status>`` metric conventions. ``labels``: the payload
    keys of the conventional metrics' labels. ``queue_size``: the capacity of each
    slow backend's queue (traces, logs). ``critical_wait``: how long a critical
    event may wait for room in a queue full of critical events. ``trace_capacity``:
    how many trace events the in-memory recorder keeps. ``rules``: explicit metric
    rules.
    """

    default_mappings: bool = True
    conventions: bool = True
    labels: tuple[LabelName, ...] = DEFAULT_LABELS
    queue_size: Capacity = Capacity(10_000)
    critical_wait: Wait = Wait(0.1)
    trace_capacity: Capacity = Capacity(10_000)
    rules: list[MetricRule] = attrs.field(factory=list)


def _checked(parse: Callable[[object], Any]) -> Callable[[object, object], Any]:
    def hook(value: object, _: object) -> Any:
        return parse(value)

    return hook


def _capacity(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"expected a whole number >= 1, got {value!r}")
    return value


def _wait(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"expected a number of seconds >= 0, got {value!r}")
    if math.isnan(value) or math.isinf(value) or value < 0:
        raise ValueError(f"expected a number of seconds >= 0, got {value!r}")
    return float(value)


def register_config_hooks(converter: cattrs.Converter) -> None:
    """Teach ``converter`` the types of ``[[events]]`` and ``[event_routing]``."""
    converter.register_structure_hook(EventPattern, _checked(parse_pattern))
    converter.register_structure_hook(SamplingRate, _checked(parse_rate))
    converter.register_structure_hook(MetadataValue, _checked(parse_metadata_value))
    converter.register_structure_hook(Priority, _checked(parse_priority))
    converter.register_structure_hook_func(
        lambda typ: typ == tuple[Backend, ...], _checked(parse_backends)
    )
    converter.register_structure_hook(LabelName, _checked(parse_label_name))
    converter.register_structure_hook(MetricName, _checked(parse_metric_name))
    converter.register_structure_hook(MetricType, _checked(parse_metric_type))
    converter.register_structure_hook(GaugeMerge, _checked(parse_gauge_merge))
    converter.register_structure_hook(Capacity, _checked(_capacity))
    converter.register_structure_hook(Wait, _checked(_wait))


_CONVERTER = make_converter()
register_config_hooks(_CONVERTER)


@attrs.frozen
class EventSettings:
    """The event routing a configuration describes, validated.

    ``configured``: the ``[[events]]`` mappings, in file order. ``routing``: the
    ``[event_routing]`` table. ``mappings`` are what a router starts with: the
    defaults (unless ``default_mappings = false``) followed by ``configured``.
    """

    configured: tuple[EventMapping, ...] = ()
    routing: EventRoutingConfig = attrs.field(factory=EventRoutingConfig)

    @property
    def mappings(self) -> tuple[EventMapping, ...]:
        """The defaults (unless turned off), then the configured mappings."""
        defaults = DEFAULT_MAPPINGS if self.routing.default_mappings else ()
        return (*defaults, *self.configured)

    def rule_set(self) -> RuleSet:
        """The metric rules: ``[[event_routing.rules]]``, conventions and labels."""
        routing = self.routing
        return RuleSet(routing.rules, conventions=routing.conventions, labels=routing.labels)


def event_settings(config: Config, *, check_handlers: bool = True) -> EventSettings:
    """Validate the ``[[events]]`` and ``[event_routing]`` tables of ``config``.

    Raise :class:`~metricache.errors.ConfigError` listing every problem by its path.
    With ``check_handlers`` (the default), a configured mapping to the metrics
    backend, or a metric rule, while no installed plugin implements
    ``metricache_handle_event`` is a problem too (nothing would record its metrics).
    """
    problems: list[str] = []
    configured: list[EventMapping] = []
    for index, table in enumerate(config.events):
        try:
            configured.append(
                structure(table, EventMapping, root=f"events[{index}]", converter=_CONVERTER)
            )
        except ConfigError as exc:
            problems.extend(exc.problems)
    routing = EventRoutingConfig()
    try:
        routing = structure(
            config.event_routing, EventRoutingConfig, root="event_routing", converter=_CONVERTER
        )
    except ConfigError as exc:
        problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems, config.source)
    settings = EventSettings(tuple(configured), routing)
    problems = _contradictions(settings)
    if check_handlers:
        problems += _unhandled(settings)
    if problems:
        raise ConfigError(problems, config.source)
    return settings


def _origin(settings: EventSettings, mapping: EventMapping) -> str:
    for index, configured in enumerate(settings.configured):
        if configured is mapping:
            return f"events[{index}] ({mapping.event!r})"
    return f"the default mapping {mapping.event!r}"


def _contradictions(settings: EventSettings) -> list[str]:
    """Rules whose events no mapping can route to the metrics backend."""
    table = MappingTable(settings.mappings)
    to_metrics = [m.event for m in table.mappings if m.routes_to(Backend.METRICS)]
    problems = []
    for index, rule in enumerate(settings.routing.rules):
        where = f"event_routing.rules[{index}].event"
        if rule.event == rule.event.translate(_NO_GLOB):  # one name: ask the table
            applies = table.lookup(rule.event)
            if applies is not None and applies.routes_to(Backend.METRICS):
                continue
            if applies is None:
                why = "no mapping matches it"
            else:
                sends = ", ".join(b.value for b in applies.backends) or "no backend"
                state = "" if applies.active else " and is inactive"
                why = f"{_origin(settings, applies)} applies to it: it sends it to {sends}{state}"
            problems.append(
                f"{where}: no mapping routes {rule.event!r} to metrics ({why}); the rule for "
                f"metric {rule.metric!r} would never apply. Add an [[events]] entry for it with "
                '"metrics" among its backends'
            )
        elif not any(globs_overlap(rule.event, pattern) for pattern in to_metrics):
            problems.append(
                f"{where}: no mapping routes any event matching {rule.event!r} to metrics; "
                f"the rule for metric {rule.metric!r} would never apply. Add an [[events]] "
                'entry for them with "metrics" among its backends'
            )
    return problems


_NO_GLOB = str.maketrans("", "", "*?[")


def _unhandled(settings: EventSettings) -> list[str]:
    """Configured metrics routes and rules when no plugin handles metrics events."""
    if not _needs_handlers(settings):
        return []
    from metricache.plugins import get_plugin_manager

    if get_plugin_manager().hook.metricache_handle_event.get_hookimpls():
        return []
    reason = (
        "no installed plugin handles metrics events (none implements "
        "metricache_handle_event; METRICACHE_PLUGINS may leave out the built-in 'events' "
        "plugin of the metricache distribution)"
    )
    problems = [
        f"events[{index}].backends: 'metrics' is served by no plugin: {reason}"
        for index, mapping in enumerate(settings.configured)
        if mapping.routes_to(Backend.METRICS)
    ]
    problems += [
        f"event_routing.rules[{index}]: metric {rule.metric!r} would never be recorded: {reason}"
        for index, rule in enumerate(settings.routing.rules)
    ]
    return problems


def _needs_handlers(settings: EventSettings) -> bool:
    return bool(settings.routing.rules) or any(
        m.routes_to(Backend.METRICS) for m in settings.configured
    )
