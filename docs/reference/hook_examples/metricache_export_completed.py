"""metricache_export_completed: record where each delivery went and its size."""

import tempfile

import metricache
from metricache.exporters import open_exporter
from metricache.exporting import export_snapshot
from metricache.plugins import get_plugin_manager

completed = []


class DeliveryLog:
    @metricache.hookimpl
    def metricache_export_completed(self, request, report):
        completed.append((request.exporter, report.destination, report.size))


get_plugin_manager().register(DeliveryLog(), name="delivery-log")
try:
    registry = metricache.Registry()
    metricache.Counter("jobs", "Jobs done", registry=registry).inc()
    with tempfile.TemporaryDirectory() as directory:
        exporter = open_exporter("file", {"path": f"{directory}/metrics.prom"})
        export_snapshot(registry.snapshot(), "prometheus", [exporter])
    exporter_name, destination, size = completed[0]
    print(exporter_name, destination.endswith("metrics.prom"), size)  # file True 69
    assert exporter_name == "file"
    assert size > 0
finally:
    get_plugin_manager().unregister(name="delivery-log")
