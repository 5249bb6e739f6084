"""Record a few metrics, sync them to the embedded memory store, print the exposition.

Run with ``uv run python examples/quickstart.py``. The same code works with a shared
store: pass ``--store redis --option url=redis://127.0.0.1:6379/0`` and every process
that syncs there adds up.
"""

from __future__ import annotations

import argparse
import random
import sys

import metricache
from metricache.cli.common import parse_key_values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", default="memory", help="store plugin (default: memory)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--format", default="prometheus", help="prometheus or openmetrics")
    parser.add_argument("--requests", type=int, default=1000, help="requests to simulate")
    args = parser.parse_args(argv)

    registry = metricache.Registry()
    requests = metricache.Counter(
        "http_requests", "HTTP requests served", ["method", "status"], registry=registry
    )
    latency = metricache.Histogram(
        "http_request_duration_seconds", "Time to serve a request", ["method"], registry=registry
    )
    in_flight = metricache.Gauge(
        "http_requests_in_flight", "Requests being served", registry=registry, merge="sum"
    )

    rng = random.Random(42)
    for _ in range(args.requests):
        method = rng.choice(["GET", "GET", "GET", "POST"])
        with in_flight.track_inprogress():
            latency.labels(method).observe(rng.expovariate(20))
        requests.labels(method, rng.choice(["200", "200", "200", "404", "500"])).inc()

    store = metricache.open_store(args.store, **parse_key_values(args.option))
    with metricache.Syncer(registry, store, interval=5.0) as syncer:
        report = syncer.flush()
    if not report.ok:
        print(f"sync failed: {report.error}", file=sys.stderr)
        return 1
    view = metricache.merged_snapshot(store, strategy=syncer.strategy)
    sys.stdout.write(metricache.render(view, args.format).decode("utf-8"))
    print(
        f"# synced {report.series} series to {store.describe()} "
        f"({syncer.strategy.value}) in {report.duration * 1000:.1f} ms",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
