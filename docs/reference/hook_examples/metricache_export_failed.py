"""metricache_export_failed: alert when a delivery fails."""

import metricache
from metricache.exporters import Exporter
from metricache.exporting import export_snapshot
from metricache.plugins import get_plugin_manager

alerts = []


class Unreachable(Exporter):
    name = "unreachable"

    def deliver(self, payload, request):
        raise ConnectionRefusedError("the collector is down")


class FailureAlert:
    @metricache.hookimpl
    def metricache_export_failed(self, request, error, attempt, will_retry):
        alerts.append(f"{request.exporter} attempt {attempt}: {error} (retry: {will_retry})")


get_plugin_manager().register(FailureAlert(), name="failure-alert")
try:
    registry = metricache.Registry()
    metricache.Counter("jobs", "Jobs done", registry=registry).inc()
    outcome = export_snapshot(registry.snapshot(), "prometheus", [Unreachable()], registry=registry)
    print(alerts)  # ['unreachable attempt 1: the collector is down (retry: False)']
    assert not outcome.ok
    assert alerts == ["unreachable attempt 1: the collector is down (retry: False)"]
finally:
    get_plugin_manager().unregister(name="failure-alert")
