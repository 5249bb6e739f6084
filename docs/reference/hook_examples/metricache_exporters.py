"""metricache_exporters: an exporter that keeps what it is given in a list."""

import metricache
from metricache.exporters import Exporter, open_exporter
from metricache.exporting import export_snapshot
from metricache.plugins import get_plugin_manager

delivered = []


class ListExporter(Exporter):
    name = "list"

    def deliver(self, payload, request):
        delivered.append((request.format, payload))
        return f"a list ({len(delivered)} items)"  # where it went, shown to users


class ListPlugin:
    @metricache.hookimpl
    def metricache_exporters(self):
        return [ListExporter]


get_plugin_manager().register(ListPlugin(), name="list-exporter")
try:
    registry = metricache.Registry()
    metricache.Counter("jobs", "Jobs done", registry=registry).inc(2)
    outcome = export_snapshot(registry.snapshot(), "prometheus", [open_exporter("list")])
    assert outcome.ok
    assert b"jobs_total 2.0" in delivered[0][1]
finally:
    get_plugin_manager().unregister(name="list-exporter")
