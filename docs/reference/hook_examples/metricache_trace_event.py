"""metricache_trace_event: hand events routed to the traces backend to a tracer."""

import metricache
from metricache.events import EventMapping, EventRouter
from metricache.plugins import get_plugin_manager

spans = []


class ListTracer:
    @metricache.hookimpl
    def metricache_trace_event(self, event, mapping):
        # Runs in the router's traces worker thread, never the publisher's.
        spans.append((event.name, mapping.priority.value, dict(event.payload)))


get_plugin_manager().register(ListTracer(), name="list-tracer")
try:
    router = EventRouter(
        metricache.Registry(), [EventMapping(event="step.*", backends=["traces"], priority="high")]
    )
    router.publish("step.started", {"step": "charge"})
    router.flush()  # wait until the traces queue is drained
    router.close()
    print(spans)  # [('step.started', 'high', {'step': 'charge'})]
    assert spans == [("step.started", "high", {"step": "charge"})]
finally:
    get_plugin_manager().unregister(name="list-tracer")
