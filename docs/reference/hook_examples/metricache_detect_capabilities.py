"""metricache_detect_capabilities: say what a store that declares nothing can do."""

import metricache
from metricache.plugins import get_plugin_manager
from metricache.sync.strategy import select_strategy
from metricache_memory import MemoryStore


class VendorStore(MemoryStore):
    name = "vendor"
    capabilities = None  # declares nothing: detectors are asked, then a live probe runs


class VendorDetector:
    @metricache.hookimpl
    def metricache_detect_capabilities(self, store):
        if isinstance(store, VendorStore):
            return []  # one process only: no capabilities
        return None  # not ours: let the next detector (or the probe) decide


get_plugin_manager().register(VendorDetector(), name="vendor-detector")
try:
    choice = select_strategy(VendorStore())
    print(choice.strategy.value, choice.source)  # local_only detector:vendor-detector
    assert choice.source == "detector:vendor-detector"
finally:
    get_plugin_manager().unregister(name="vendor-detector")
