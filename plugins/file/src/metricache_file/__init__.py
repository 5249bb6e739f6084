"""The file store for metricache (strategy ``local_only``; survives restarts).

``open_store("file", path="/var/lib/metricache")``: one directory (mode 0700), one
file per key (mode 0600), every write atomic. It is not shared between hosts, so it
declares no capabilities: each instance saves its own view there, and an instance
restarted with the same id (``METRICACHE_INSTANCE_ID``) resumes its counters from it.
"""

from __future__ import annotations

from collections.abc import Iterable

from metricache import hookimpl
from metricache.store import Store

from metricache_file.store import FileOptions, FileStore

__all__ = ["FileOptions", "FileStore"]


@hookimpl
def metricache_store_classes() -> Iterable[type[Store]]:
    """Offer the file store."""
    return [FileStore]
