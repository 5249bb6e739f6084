"""metricache_handle_event: count cache misses by cache name."""

import metricache
from metricache.events import EventMapping, EventRouter
from metricache.plugins import get_plugin_manager


class CacheMisses:
    @metricache.hookimpl
    def metricache_handle_event(self, event, registry):
        if event.name == "cache.miss":
            misses = metricache.Counter("cache_misses", "Misses", ["cache"], registry=registry)
            misses.labels(str(event.payload.get("cache", ""))).inc()


get_plugin_manager().register(CacheMisses(), name="cache-misses")
try:
    registry = metricache.Registry()
    router = EventRouter(registry, [EventMapping(event="cache.*", backends=["metrics"])])
    router.publish("cache.miss", {"cache": "sessions"})
    router.publish("cache.miss", {"cache": "sessions"})
    router.close()
    assert registry.snapshot()["cache_misses"].sample("sessions").value == 2.0
finally:
    get_plugin_manager().unregister(name="cache-misses")
