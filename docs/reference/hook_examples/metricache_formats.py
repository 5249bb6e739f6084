"""metricache_formats: a format that lists family names, one per line."""

import metricache
from metricache.formats import Format
from metricache.plugins import get_plugin_manager


class NamesFormat(Format):
    name = "names"
    content_type = "text/plain; charset=utf-8"
    media_types = ("text/x-metric-names",)
    extension = "txt"

    def render(self, snapshot):
        return "".join(f"{family.name}\n" for family in snapshot).encode("utf-8")


class NamesPlugin:
    @metricache.hookimpl
    def metricache_formats(self):
        return [NamesFormat()]


get_plugin_manager().register(NamesPlugin(), name="names")
try:
    registry = metricache.Registry()
    metricache.Counter("jobs", "Jobs done", registry=registry)
    metricache.Gauge("queue_depth", "Jobs waiting", registry=registry)
    print(metricache.render(registry.snapshot(), "names"))  # b'jobs\nqueue_depth\n'
    assert metricache.render(registry.snapshot(), "names") == b"jobs\nqueue_depth\n"
finally:
    get_plugin_manager().unregister(name="names")
