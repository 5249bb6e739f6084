"""Counting what the store holds that metricache did not write.

Readers and stores skip such values instead of failing; each one is logged and
counted in ``metricache_store_corrupt_values_total{kind}`` of the default registry.
"""

from __future__ import annotations

import logging

from metricache.metrics import Counter
from metricache.registry import REGISTRY, Registry

__all__ = ["count_corrupt"]

log = logging.getLogger("metricache.store")


def _corrupt_counter(registry: Registry) -> Counter:
    return Counter(
        "metricache_store_corrupt_values",
        "Values read from the store that were not what metricache wrote (skipped)",
        ["kind"],
        registry=registry,
    )


def count_corrupt(kind: str, detail: str) -> None:
    """Log a corrupt value of ``kind`` and count it."""
    log.warning("skipping a corrupt %s in the store: %s", kind, detail)
    REGISTRY.self_metric("corrupt", _corrupt_counter).labels(kind).inc()
