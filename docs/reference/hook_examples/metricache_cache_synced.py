"""metricache_cache_synced: observe every sync attempt."""

import metricache
from metricache.plugins import get_plugin_manager

reports = []


class SyncLog:
    @metricache.hookimpl
    def metricache_cache_synced(self, report):
        reports.append(report)
        print(f"{report.instance} -> {report.store}: ok={report.ok} series={report.series}")


get_plugin_manager().register(SyncLog(), name="sync-log")
try:
    registry = metricache.Registry()
    metricache.Counter("jobs", "Jobs done", registry=registry).inc()
    syncer = metricache.Syncer(registry, metricache.open_store("memory"), instance_id="worker-1")
    syncer.flush()
    assert reports[-1].ok
    assert reports[-1].instance == "worker-1"
finally:
    get_plugin_manager().unregister(name="sync-log")
