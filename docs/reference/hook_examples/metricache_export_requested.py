"""metricache_export_requested: note each export before it is rendered."""

import metricache
from metricache.exporters import open_exporter
from metricache.exporting import export_snapshot
from metricache.plugins import get_plugin_manager

requested = []


class ExportAudit:
    @metricache.hookimpl
    def metricache_export_requested(self, request):
        requested.append((request.format, request.exporter, request.view.value))


get_plugin_manager().register(ExportAudit(), name="export-audit")
try:
    registry = metricache.Registry()
    metricache.Counter("jobs", "Jobs done", registry=registry).inc()
    export_snapshot(registry.snapshot(), "json", [open_exporter("stdout")])
    print(requested)  # [('json', 'stdout', 'instance')]
    assert requested == [("json", "stdout", "instance")]
finally:
    get_plugin_manager().unregister(name="export-audit")
