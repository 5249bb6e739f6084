"""The configuration of event routing: ``[[events]]`` and ``[event_routing]``.

``[[events]]`` tables are :class:`~metricache.events.mapping.EventMapping` objects;
``[event_routing]`` is :class:`EventRoutingConfig`, which holds the metric rules
(``[[event_routing.rules]]``, :class:`~metricache.events.rules.MetricRule`). The
configuration module structures both with :func:`register_config_hooks`, so an
invalid entry is reported by its path:
``events[2].sampling_rate: expected a number from 0 to 1, got 1.5``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NewType

import attrs
import cattrs

from metricache.events.mapping import (
    Backend,
    EventPattern,
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
    parse_gauge_merge,
    parse_label_name,
    parse_metric_name,
    parse_metric_type,
)
from metricache.snapshot import GaugeMerge, MetricType

__all__ = ["Capacity", "EventRoutingConfig", "Wait", "register_config_hooks"]

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
