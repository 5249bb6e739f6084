"""Event -> metric rules: the conventions, configured rules, and what they read."""

from __future__ import annotations

import pytest
from metricache.events import Event, EventMapping, MetricRule, RuleSet
from metricache.events.rules import convention_names
from metricache.registry import Registry
from metricache.snapshot import GaugeMerge, HistogramSample, MetricType, Sample

from tests.events.conftest import RouterFactory


def values(registry: Registry, family: str) -> dict[tuple[str, ...], float]:
    found = registry.snapshot()[family]
    return {s.labels: s.value for s in found.samples if isinstance(s, Sample)}


def histograms(registry: Registry, family: str) -> dict[tuple[str, ...], HistogramSample]:
    found = registry.snapshot()[family]
    return {s.labels: s for s in found.samples if isinstance(s, HistogramSample)}


def test_conventional_names() -> None:
    assert convention_names("task.completed") == ("task_completed", "task_duration_seconds")
    assert convention_names("workflow.step.failed") == (
        "workflow_step_failed",
        "workflow_step_duration_seconds",
    )
    assert convention_names("3d-render.cancelled") == (
        "_3d_render_cancelled",
        "_3d_render_duration_seconds",
    )
    assert convention_names("task.retry_requested") is None
    assert convention_names("completed") is None
    assert convention_names(".started") is None


def test_status_events_count_and_durations_observe_with_payload_labels(
    make_router: RouterFactory, registry: Registry
) -> None:
    router = make_router()
    labels = {"namespace": "billing", "status": "ok", "handler": "InvoiceTask"}
    router.publish("task.started", {**labels, "status": "running"})
    router.publish("task.completed", {**labels, "duration": 1.5, "task_id": "t1"})
    router.publish("task.completed", {**labels, "execution_duration": 0.25})
    router.publish("task.failed", {"namespace": "billing"})  # missing keys become ""
    router.publish("task.cancelled", {**labels, "status": None})

    assert values(registry, "task_started") == {("billing", "running", "InvoiceTask"): 1}
    assert values(registry, "task_completed") == {("billing", "ok", "InvoiceTask"): 2}
    assert values(registry, "task_failed") == {("billing", "", ""): 1}
    assert values(registry, "task_cancelled") == {("billing", "", "InvoiceTask"): 1}
    observed = histograms(registry, "task_duration_seconds")
    assert list(observed) == [("billing", "ok", "InvoiceTask")]
    assert (
        observed["billing", "ok", "InvoiceTask"].count,
        observed["billing", "ok", "InvoiceTask"].sum,
    ) == (2, 1.75)
    family = registry.snapshot()["task_completed"]
    assert family.type is MetricType.COUNTER
    assert family.labelnames == ("namespace", "status", "handler")


def test_a_duration_that_is_not_a_number_is_counted_not_observed(
    make_router: RouterFactory, registry: Registry
) -> None:
    router = make_router()
    router.publish("step.completed", {"duration": "fast"})
    router.publish("step.completed", {"duration": True})
    assert values(registry, "step_completed") == {("", "", ""): 2}
    assert registry.snapshot().get("step_duration_seconds") is None
    assert values(registry, "metricache_event_field_problems") == {
        ("step_duration_seconds", "duration", "not_a_number"): 2
    }


def test_configured_rules_with_value_fields_and_their_types(
    make_router: RouterFactory, registry: Registry
) -> None:
    rules = RuleSet(
        [
            MetricRule(event="payment.*", metric="payments_total", labels=["currency"]),
            MetricRule(
                event="payment.captured",
                metric="payment_amount",
                type="histogram",
                value="amount",
                labels=["currency"],
                buckets=[10, 100, 1000],
            ),
            MetricRule(
                event="queue.depth", metric="queue_depth", type="gauge", value="depth", merge="max"
            ),
            MetricRule(event="bytes.sent", metric="sent_bytes", value="size"),
        ],
        conventions=False,
    )
    router = make_router(
        mappings=[EventMapping(event=p) for p in ("payment.*", "queue.depth", "bytes.sent")],
        rules=rules,
    )
    router.publish("payment.captured", {"currency": "EUR", "amount": 50})
    router.publish("payment.captured", {"currency": "EUR", "amount": 500})
    router.publish("payment.refunded", {"currency": "USD"})
    router.publish("queue.depth", {"depth": 7})
    router.publish("bytes.sent", {"size": 1024})
    router.publish("bytes.sent", {"size": 24})
    router.publish("payment.completed", {"currency": "EUR"})  # no conventions here

    assert values(registry, "payments") == {("EUR",): 3, ("USD",): 1}
    amounts = histograms(registry, "payment_amount")[("EUR",)]
    assert (amounts.buckets, amounts.sum, amounts.count) == ((0, 1, 2, 2), 550.0, 2)
    assert values(registry, "queue_depth") == {(): 7}
    assert registry.get("queue_depth").merge is GaugeMerge.MAX  # type: ignore[union-attr]
    assert values(registry, "sent_bytes") == {(): 1048}
    assert registry.snapshot().get("payment_completed") is None


def test_a_value_field_the_events_never_carry_is_counted_and_logged_once(
    make_router: RouterFactory, registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    rules = RuleSet(
        [MetricRule(event="task.completed", metric="task_seconds", type="histogram", value="dur")]
    )
    router = make_router(rules=rules)
    for _ in range(3):
        router.publish("task.completed", {"duration": 1.0})
    assert values(registry, "metricache_event_field_problems") == {
        ("task_seconds", "dur", "missing"): 3
    }
    warnings = [r for r in caplog.records if "payload field 'dur' is missing" in r.getMessage()]
    assert len(warnings) == 1
    # The conventions still ran for these events.
    assert values(registry, "task_completed") == {("", "", ""): 3}


def test_fields_read_names_exactly_the_keys_the_rules_read() -> None:
    rules = RuleSet([MetricRule(event="task.*", metric="by_queue", labels=["queue"])])
    payload = {"namespace": "n", "status": "ok", "handler": "h", "duration": 1.0, "x": 1}
    assert rules.fields_read(Event("task.completed", payload)) == {
        "queue",
        "namespace",
        "status",
        "handler",
        "duration",
    }
    assert rules.fields_read(Event("task.completed", {"execution_duration": 2})) == {
        "queue",
        "namespace",
        "status",
        "handler",
        "execution_duration",
    }
    assert rules.fields_read(Event("step.started", {})) == {"namespace", "status", "handler"}
    assert rules.fields_read(Event("audit.logged", {})) == frozenset()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"event": "x", "metric": "9x"}, "expected a metric name"),
        ({"event": "x", "metric": "m", "type": "summary"}, "unknown metric type 'summary'"),
        ({"event": "x", "metric": "m", "type": "histogram"}, "value: a histogram rule needs"),
        ({"event": "x", "metric": "m", "labels": ["bad-name"]}, "expected a label name"),
        ({"event": "x", "metric": "m", "labels": "queue"}, "labels: expected a list"),
        (
            {"event": "x", "metric": "m", "type": "histogram", "value": "v", "labels": ["le"]},
            "'le' is reserved",
        ),
        ({"event": "x", "metric": "m", "buckets": [2, 1]}, "buckets: expected increasing"),
    ],
)
def test_an_invalid_rule_says_why(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MetricRule(**fields)  # type: ignore[arg-type]
