"""metricache_collectors: a family computed at snapshot time (here: open file descriptors)."""

import os

import metricache
from metricache.collectors import install_collectors
from metricache.plugins import get_plugin_manager
from metricache.snapshot import Family, MetricType, Sample


def open_files() -> list[Family]:
    count = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 0
    sample = Sample(labels=(), value=count)
    return [Family("process_open_fds", MetricType.GAUGE, "Open file descriptors", (), [sample])]


class OpenFiles:
    @metricache.hookimpl
    def metricache_collectors(self, registry):
        return [open_files]


get_plugin_manager().register(OpenFiles(), name="open-files")
try:
    registry = metricache.Registry()
    install_collectors(registry)  # metricache.start(), a syncer, the commands do this
    print(metricache.render(registry.snapshot()).decode())
    assert registry.snapshot().get("process_open_fds") is not None
finally:
    get_plugin_manager().unregister(name="open-files")
