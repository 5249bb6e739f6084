"""The default event -> metric handler: a registry's :class:`RuleSet` applied to events.

The built-in plugin :mod:`metricache.events.builtin` calls :func:`handle_event`
from the ``metricache_handle_event`` hook, so the core's own event metrics go
through the same hook as a third party's. Each registry has one rule set (the
conventions with the default labels until :func:`configure_rules` says otherwise;
an :class:`~metricache.events.router.EventRouter` given rules configures its
registry's). Metrics are declared in the registry on first use.
"""

from __future__ import annotations

import logging
import operator
import os
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import Any

from metricache.events.event import Event
from metricache.events.rules import (
    DURATION_FIELDS,
    MetricRule,
    RuleSet,
    convention_names,
    number_field,
)
from metricache.metrics import Counter, Gauge, Histogram, MetricBase
from metricache.registry import Registry
from metricache.snapshot import MetricType

__all__ = ["EventMetrics", "configure_rules", "handle_event", "rules_for"]

log = logging.getLogger("metricache.events")

_lock = threading.Lock()
_by_registry: weakref.WeakKeyDictionary[Registry, EventMetrics] = weakref.WeakKeyDictionary()


_last: EventMetrics | None = None


def _problems_counter(registry: Registry) -> Counter:
    return Counter(
        "metricache_event_field_problems",
        "Events whose payload lacked, or had an unusable, field a metric rule reads",
        ["metric", "field", "problem"],
        registry=registry,
    )


class _Conventional:
    """The conventional metrics of one event name: its counter and duration histogram."""

    __slots__ = ("counter", "entity", "histogram", "histogram_name")

    def __init__(self, counter: Counter, histogram_name: str, entity: str) -> None:
        self.counter = counter
        self.histogram_name = histogram_name
        self.entity = entity
        self.histogram: Histogram | None = None


_Plan = tuple[tuple[MetricRule, ...], "_Conventional | None"]


def _label_picker(keys: tuple[str, ...]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """Return a function taking the label values from a payload (KeyError when one lacks)."""
    if len(keys) == 1:
        key = keys[0]
        return lambda payload: (payload[key],)
    if not keys:
        return lambda payload: ()
    return operator.itemgetter(*keys)


class EventMetrics:
    """Applies ``rules`` to events, recording in ``registry``."""

    def __init__(self, registry: Registry, rules: RuleSet) -> None:
        self.registry = registry
        self.rules = rules
        self._metrics: dict[str, MetricBase[Any]] = {}
        self._lock = threading.Lock()
        self._problems: Counter = registry.self_metric("event_field_problems", _problems_counter)
        self._reported: set[tuple[str, str]] = set()
        self._plans: dict[str, _Plan] = {}
        self._pick = _label_picker(tuple(rules.labels))
        self.replaced = False
        """Set when :func:`configure_rules` gives the registry new rules."""

    def handle(self, event: Event) -> None:
        """Record the metrics of ``event``; raise the first error after trying every rule."""
        self.record(event.name, event.payload)

    def record(self, event_name: str, payload: Mapping[str, Any]) -> None:
        """Record the metrics of an event; raise the first error after trying every rule."""
        plan = self._plans.get(event_name)
        if plan is None:
            plan = self._plan(event_name)
        rules, conventional = plan
        first_error: Exception | None = None
        for rule in rules:
            try:
                self._apply(rule, payload)
            except Exception as exc:
                first_error = first_error or exc
        if conventional is not None:
            try:
                self._apply_conventions(conventional, payload)
            except Exception as exc:
                first_error = first_error or exc
        if first_error is not None:
            raise first_error

    def recorder(self, event_name: str) -> Callable[[Mapping[str, Any]], None]:
        """Return a function recording the metrics of events named ``event_name``.

        It follows these rules while they are the registry's; after
        :func:`configure_rules` replaced them, it hands over to the new ones.
        """
        rules, conventional = self._plans.get(event_name) or self._plan(event_name)
        registry = self.registry

        if rules or conventional is None:

            def record_all(payload: Mapping[str, Any]) -> None:
                handler = rules_for(registry) if self.replaced else self
                handler.record(event_name, payload)

            return record_all
        pick, names, counter = self._pick, self.rules.labels, conventional.counter
        observe = self._observe

        def record_conventional(payload: Mapping[str, Any]) -> None:
            # _apply_conventions, unrolled: this runs for every kept event.
            if self.replaced:
                rules_for(registry).record(event_name, payload)
                return
            try:
                labels = pick(payload)
            except KeyError:  # a missing key is an empty label
                labels = tuple(payload.get(key) for key in names)
            if None in labels:  # labels() turns other values into text itself
                labels = tuple(_label_value(value) for value in labels)
            (counter.labels(*labels) if labels else counter).inc()
            if "duration" in payload or "execution_duration" in payload:
                observe(conventional, payload, labels)

        return record_conventional

    # -- explicit rules ---------------------------------------------------------------

    def _apply(self, rule: MetricRule, payload: Mapping[str, Any]) -> None:
        labels = [_label_value(payload.get(key)) for key in rule.labels]
        if rule.type is MetricType.COUNTER:
            amount = 1.0
            if rule.value:
                found = self._number(rule, payload, rule.value)
                if found is None:
                    return
                amount = found
            counter = self._counter(rule.metric, rule.help, rule.labels)
            (counter.labels(*labels) if labels else counter).inc(amount)
            return
        value = self._number(rule, payload, rule.value)
        if value is None:
            return
        if rule.type is MetricType.HISTOGRAM:
            histogram = self._histogram(rule.metric, rule.help, rule.labels, rule.buckets or None)
            (histogram.labels(*labels) if labels else histogram).observe(value)
        else:
            gauge = self._gauge(rule)
            (gauge.labels(*labels) if labels else gauge).set(value)

    def _number(self, rule: MetricRule, payload: Any, key: str) -> float | None:
        if key not in payload:
            self._problem(rule.metric, key, "missing")
            return None
        value = number_field(payload, key)
        if value is None:
            self._problem(rule.metric, key, "not_a_number")
        return value

    def _problem(self, metric: str, key: str, problem: str) -> None:
        self._problems.labels(metric, key, problem).inc()
        if (metric, key) not in self._reported:
            self._reported.add((metric, key))
            log.warning(
                "event rule for metric %r: payload field %r is %s (counted in "
                "metricache_event_field_problems_total; reported once)",
                metric,
                key,
                problem.replace("_", " "),
            )

    # -- conventions ------------------------------------------------------------------

    def _apply_conventions(self, plan: _Conventional, payload: Mapping[str, Any]) -> None:
        try:
            labels = self._pick(payload)
        except KeyError:  # a missing key is an empty label
            labels = tuple(payload.get(key) for key in self.rules.labels)
        if None in labels:  # labels() turns other values into text itself
            labels = tuple(_label_value(value) for value in labels)
        counter = plan.counter
        (counter.labels(*labels) if labels else counter).inc()
        self._observe(plan, payload, labels)

    def _observe(
        self, plan: _Conventional, payload: Mapping[str, Any], labels: tuple[Any, ...]
    ) -> None:
        """Observe the payload's duration (if it has one) in the plan's histogram."""
        for key in DURATION_FIELDS:
            if key in payload:
                duration = number_field(payload, key)
                if duration is None:
                    self._problem(plan.histogram_name, key, "not_a_number")
                    return
                histogram = plan.histogram
                if histogram is None:
                    histogram = plan.histogram = self._histogram(
                        plan.histogram_name,
                        f"Duration of {plan.entity} runs in seconds",
                        self.rules.labels,
                        None,
                    )
                (histogram.labels(*labels) if labels else histogram).observe(duration)
                return

    def _plan(self, event_name: str) -> _Plan:
        """Work out (and remember, for up to 4096 names) what the rules do with a name."""
        conventional = None
        names = convention_names(event_name) if self.rules.conventions else None
        if names is not None:
            counter_name, histogram_name = names
            entity, _, status = event_name.rpartition(".")
            counter = self._counter(counter_name, f"Events {entity}.{status}", self.rules.labels)
            conventional = _Conventional(counter, histogram_name, entity)
        plan = (self.rules.matching(event_name), conventional)
        if len(self._plans) < 4096:
            self._plans[event_name] = plan
        return plan

    # -- declarations -----------------------------------------------------------------

    def _declared(self, name: str) -> MetricBase[Any] | None:
        return self._metrics.get(name)

    def _keep(self, name: str, metric: MetricBase[Any]) -> None:
        with self._lock:
            self._metrics.setdefault(name, metric)

    def _counter(self, name: str, help: str, labels: tuple[str, ...]) -> Counter:
        found = self._declared(name)
        if not isinstance(found, Counter):
            found = Counter(
                name, help or f"Events counted as {name}", labels, registry=self.registry
            )
            self._keep(name, found)
        return found

    def _histogram(
        self, name: str, help: str, labels: tuple[str, ...], buckets: tuple[float, ...] | None
    ) -> Histogram:
        found = self._declared(name)
        if not isinstance(found, Histogram):
            found = Histogram(
                name,
                help or f"Event values observed as {name}",
                labels,
                registry=self.registry,
                buckets=buckets or self.rules.buckets,
            )
            self._keep(name, found)
        return found

    def _gauge(self, rule: MetricRule) -> Gauge:
        found = self._declared(rule.metric)
        if not isinstance(found, Gauge):
            found = Gauge(
                rule.metric,
                rule.help or f"Event values set as {rule.metric}",
                rule.labels,
                registry=self.registry,
                merge=rule.merge,
            )
            self._keep(rule.metric, found)
        return found


def _label_value(value: object) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def configure_rules(registry: Registry, rules: RuleSet) -> EventMetrics:
    """Make ``rules`` the rules of ``registry``'s events (replacing earlier ones)."""
    handler = EventMetrics(registry, rules)
    with _lock:
        previous = _by_registry.get(registry)
        _by_registry[registry] = handler
        _remember(handler)
    if previous is not None:
        previous.replaced = True
    return handler


def rules_for(registry: Registry) -> EventMetrics:
    """Return the handler of ``registry`` (the conventions, unless configured)."""
    last = _last
    if last is not None and last.registry is registry:
        return last
    handler = _by_registry.get(registry)
    if handler is None:
        with _lock:
            handler = _by_registry.get(registry)
            if handler is None:
                handler = EventMetrics(registry, RuleSet())
                _by_registry[registry] = handler
    _remember(handler)
    return handler


def _remember(handler: EventMetrics) -> None:
    # One registry gets nearly every event; its handler is found without a weak lookup.
    global _last
    _last = handler


def handle_event(event: Event, registry: Registry) -> None:
    """Record the metrics ``event`` stands for in ``registry`` (the built-in handler)."""
    rules_for(registry).handle(event)


def _after_fork_in_child() -> None:
    # Locks held by a parent thread at fork time would stay held in the child.
    global _lock
    _lock = threading.Lock()
    for handler in list(_by_registry.values()):
        handler._lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
