"""metricache_store_classes: offer a store class under a name of its own."""

import metricache
from metricache.plugins import get_plugin_manager
from metricache_memory import MemoryStore


class ScratchStore(MemoryStore):
    """The memory store under another name (a real store implements the Store methods)."""

    name = "scratch"


class ScratchPlugin:
    @metricache.hookimpl
    def metricache_store_classes(self):
        return [ScratchStore]


get_plugin_manager().register(ScratchPlugin(), name="scratch")
try:
    store = metricache.open_store("scratch")
    store.set(b"key", b"value", 60)
    print(store.get(b"key"))  # b'value'
    assert isinstance(store, ScratchStore)
finally:
    get_plugin_manager().unregister(name="scratch")
