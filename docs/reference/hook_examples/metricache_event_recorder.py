"""metricache_event_recorder: count cache misses by cache name, one function per event name."""

import metricache
from metricache.events import EventMapping, EventRouter
from metricache.plugins import get_plugin_manager


class CacheMisses:
    @metricache.hookimpl
    def metricache_event_recorder(self, event_name, registry):
        if event_name != "cache.miss":
            return None  # other events: this plugin's metricache_handle_event, if any
        misses = metricache.Counter("cache_misses", "Misses", ["cache"], registry=registry)

        def record(payload):
            misses.labels(str(payload.get("cache", ""))).inc()

        return record


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
