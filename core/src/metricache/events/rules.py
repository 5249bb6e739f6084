"""Event -> metric rules: which metric an event updates, with which value and labels.

Two kinds of rule apply to every event the router sends to the metrics backend:

* the **conventions** of the engine this design comes from: an event
  ``<entity>.started|completed|failed|cancelled`` (and the task-queue statuses
  ``enqueued``, ``retried``, ``revoked``) increments the counter
  ``<entity>_<status>_total``, and a ``duration`` (else ``execution_duration``)
  in its payload is observed by the histogram ``<entity>_duration_seconds``.
  Dots in the entity become underscores (``workflow.step.failed`` ->
  ``workflow_step_failed_total``);
* explicit :class:`MetricRule` objects (``[[event_routing.rules]]`` in the
  configuration): an event pattern, a metric name and type, the payload field of
  the value and the payload fields of the labels.

Labels come from payload keys; a missing key becomes the empty string. The engine
this replaces read a payload key its events never carried, so its duration metric
stayed empty without anyone noticing: :meth:`RuleSet.fields_read` says which keys
the rules read from an event, so a test can hold publishers and rules together, and
a value field missing at run time is counted in
``metricache_event_field_problems_total``.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, NewType

import attrs

from metricache.events.event import Event
from metricache.events.mapping import EventPattern, parse_pattern, pattern_matches
from metricache.metrics import DEFAULT_BUCKETS
from metricache.names import INSTANCE_LABEL, LABEL_NAME_RULE, METRIC_NAME_RULE
from metricache.snapshot import GaugeMerge, MetricType

__all__ = [
    "DEFAULT_LABELS",
    "DURATION_FIELDS",
    "QUEUE_STATUSES",
    "STATUSES",
    "LabelName",
    "MetricName",
    "MetricRule",
    "RuleSet",
    "convention_names",
    "number_field",
    "parse_gauge_merge",
    "parse_label_name",
    "parse_metric_name",
    "parse_metric_type",
]

LabelName = NewType("LabelName", str)
"""A Prometheus label name that is also the payload key its value comes from."""
MetricName = NewType("MetricName", str)
"""A Prometheus metric name."""

STATUSES = ("started", "completed", "failed", "cancelled")
"""The outcome statuses of the workflow engine's lifecycle events."""
QUEUE_STATUSES = ("enqueued", "retried", "revoked")
"""The statuses task queues add (Celery, Dramatiq): conventional counters too."""
_CONVENTIONAL = frozenset(STATUSES + QUEUE_STATUSES)
"""The last name segments the conventions turn into ``<entity>_<status>_total``."""
DURATION_FIELDS = ("duration", "execution_duration")
"""Payload keys of a duration in seconds, in order of preference."""
DEFAULT_LABELS: tuple[LabelName, ...] = (
    LabelName("namespace"),
    LabelName("status"),
    LabelName("handler"),
)
"""The payload keys the conventional metrics take their labels from."""

_METRIC_NAME = re.compile(METRIC_NAME_RULE)
_LABEL_NAME = re.compile(LABEL_NAME_RULE)
_NOT_NAME_CHAR = re.compile(r"[^a-zA-Z0-9_]")


def parse_metric_name(value: object) -> str:
    """Return ``value`` if it is a valid metric name, else raise ``ValueError``."""
    if not isinstance(value, str) or not _METRIC_NAME.fullmatch(value):
        raise ValueError(f"expected a metric name matching {METRIC_NAME_RULE}, got {value!r}")
    return value


def parse_label_name(value: object) -> str:
    """Return ``value`` if it is a valid label name, else raise ``ValueError``."""
    if not isinstance(value, str) or not _LABEL_NAME.fullmatch(value) or value.startswith("__"):
        raise ValueError(
            f"expected a label name matching {LABEL_NAME_RULE} (not starting with __), "
            f"got {value!r}"
        )
    return value


def parse_metric_type(value: object) -> MetricType:
    """Return the metric type named ``value`` (counter, gauge, histogram)."""
    if isinstance(value, MetricType):
        return value
    if isinstance(value, str):
        try:
            return MetricType(value)
        except ValueError:
            pass
    kinds = ", ".join(repr(t.value) for t in MetricType)
    raise ValueError(f"unknown metric type {value!r}; expected one of {kinds}")


def parse_gauge_merge(value: object) -> GaugeMerge:
    """Return the gauge merge mode named ``value`` (sum, max, min, last, per_instance)."""
    if isinstance(value, GaugeMerge):
        return value
    if isinstance(value, str):
        try:
            return GaugeMerge(value)
        except ValueError:
            pass
    modes = ", ".join(repr(m.value) for m in GaugeMerge)
    raise ValueError(f"unknown gauge merge mode {value!r}; expected one of {modes}")


def _labels(value: Iterable[object]) -> tuple[LabelName, ...]:
    if isinstance(value, str):
        raise ValueError(f"labels: expected a list of payload keys, got {value!r}")
    return tuple(LabelName(parse_label_name(v)) for v in value)


def _buckets(value: Iterable[object]) -> tuple[float, ...]:
    bounds = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, (int, float)) or math.isnan(item):
            raise ValueError(f"buckets: expected numbers, got {item!r}")
        bounds.append(float(item))
    if any(b <= a for a, b in itertools.pairwise(bounds)):
        raise ValueError(f"buckets: expected increasing numbers, got {bounds!r}")
    return tuple(bounds)


def _check_rule(rule: MetricRule, attribute: object, value: object) -> None:
    if rule.type is not MetricType.COUNTER and not rule.value:
        raise ValueError(
            f'value: a {rule.type.value} rule needs the payload field of its value (value = "...")'
        )
    if rule.type is MetricType.HISTOGRAM and "le" in rule.labels:
        raise ValueError("labels: 'le' is reserved for histogram buckets")
    if rule.type is MetricType.GAUGE and INSTANCE_LABEL in rule.labels:
        raise ValueError(f"labels: {INSTANCE_LABEL!r} is reserved for gauges merged per instance")


@attrs.frozen(kw_only=True)
class MetricRule:
    """``[[event_routing.rules]]``: events matching ``event`` update ``metric``.

    ``type``: ``counter`` (incremented by the number in the ``value`` field, or by 1
    without one), ``histogram`` (observes ``value``) or ``gauge`` (set to ``value``,
    merged across instances by ``merge``). ``labels``: payload keys that are also
    the label names. ``help``: the metric's description. ``buckets``: a
    histogram's upper bounds (default: Prometheus's).
    """

    event: EventPattern = attrs.field(converter=parse_pattern)
    metric: MetricName = attrs.field(converter=parse_metric_name)
    type: MetricType = attrs.field(default=MetricType.COUNTER, converter=parse_metric_type)
    value: str = attrs.field(default="", validator=_check_rule)
    labels: tuple[LabelName, ...] = attrs.field(default=(), converter=_labels)
    help: str = ""
    buckets: tuple[float, ...] = attrs.field(default=(), converter=_buckets)
    merge: GaugeMerge = attrs.field(default=GaugeMerge.SUM, converter=parse_gauge_merge)

    def fields(self) -> tuple[str, ...]:
        """The payload keys this rule reads: its labels, then its value field if any."""
        return (*self.labels, self.value) if self.value else tuple(self.labels)


def convention_names(event_name: str) -> tuple[str, str] | None:
    """Return ``(counter family, histogram family)`` for a conventional event name.

    ``task.completed`` -> ``("task_completed", "task_duration_seconds")``; the
    counter is exposed as ``task_completed_total``. None when the name does not
    end in one of :data:`STATUSES` or :data:`QUEUE_STATUSES` after an entity.
    """
    entity, dot, status = event_name.rpartition(".")
    if not dot or not entity or status not in _CONVENTIONAL:
        return None
    base = _NOT_NAME_CHAR.sub("_", entity)
    if base[0].isdigit():
        base = f"_{base}"
    return f"{base}_{status}", f"{base}_duration_seconds"


def number_field(payload: Mapping[str, Any], key: str) -> float | None:
    """Return ``payload[key]`` as a finite float, or None when it is absent or not one."""
    value = payload.get(key)
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


class RuleSet:
    """The rules one registry's events follow: explicit rules, then the conventions.

    ``conventions``: whether the ``<entity>.<status>`` conventions apply.
    ``labels``: the payload keys of the conventional metrics' labels.
    ``buckets``: the conventional duration histograms' buckets.
    """

    def __init__(
        self,
        rules: Iterable[MetricRule] = (),
        *,
        conventions: bool = True,
        labels: Iterable[str] = DEFAULT_LABELS,
        buckets: Iterable[float] = DEFAULT_BUCKETS,
    ) -> None:
        self.rules = tuple(rules)
        self.conventions = conventions
        self.labels = _labels(labels)
        if "le" in self.labels:
            raise ValueError("labels: 'le' is reserved for histogram buckets")
        self.buckets = tuple(buckets)
        self._cache: dict[str, tuple[MetricRule, ...]] = {}

    def matching(self, event_name: str) -> tuple[MetricRule, ...]:
        """Return the explicit rules whose pattern matches ``event_name``, in order."""
        found = self._cache.get(event_name)
        if found is None:
            found = tuple(r for r in self.rules if pattern_matches(r.event, event_name))
            if len(self._cache) < 4096:
                self._cache[event_name] = found
        return found

    def fields_read(self, event: Event) -> frozenset[str]:
        """Return the payload keys the rules read from ``event``.

        Explicit rules read their labels and value field; the conventions read the
        label keys and the first duration key the payload has (a duration is
        optional, so none when it has neither).
        """
        keys: set[str] = set()
        for rule in self.matching(event.name):
            keys.update(rule.fields())
        if self.conventions and convention_names(event.name) is not None:
            keys.update(self.labels)
            for key in DURATION_FIELDS:
                if key in event.payload:
                    keys.add(key)
                    break
        return frozenset(keys)
