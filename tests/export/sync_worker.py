"""A process that records metrics, syncs them to redis once and exits.

Run as ``python -m tests.export.sync_worker '{"url": ..., "namespace": ..., ...}'``.
"""

from __future__ import annotations

import json
import sys

import metricache


def main(arguments: dict[str, object]) -> None:
    """Record what ``arguments`` say, sync once, print the sync report's outcome."""
    registry = metricache.Registry()
    orders = metricache.Counter("orders", "Orders placed", ["region"], registry=registry)
    values = metricache.Histogram(
        "order_value", "Order value", buckets=(10.0, 100.0), unit="euros", registry=registry
    )
    busy = metricache.Gauge("workers_busy", "Busy workers", registry=registry, merge="sum")
    for region, count in dict(arguments["orders"]).items():  # type: ignore[call-overload]
        orders.labels(region).inc(count)
    for value in list(arguments["values"]):  # type: ignore[call-overload]
        values.observe(value)
    busy.set(float(arguments["busy"]))  # type: ignore[arg-type]
    store = metricache.open_store("redis", url=str(arguments["url"]))
    syncer = metricache.Syncer(
        registry,
        store,
        interval=60,
        namespace=str(arguments["namespace"]),
        instance_id=str(arguments["instance"]),
    )
    report = syncer.flush()
    print(json.dumps({"ok": report.ok}))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
