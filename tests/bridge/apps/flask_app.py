"""A Flask app instrumented with prometheus-flask-exporter and prometheus_client.

Its only line of metricache is the documented call at the bottom. The tests run it
under gunicorn, with and without ``--preload``, and in prometheus_client's
multiprocess mode.
"""

from __future__ import annotations

from flask import Flask, abort, request
from prometheus_client import Gauge
from prometheus_flask_exporter import PrometheusMetrics  # type: ignore[import-untyped]

app = Flask(__name__)
# flask_http_request_total{method,status}, flask_http_request_duration_seconds{method,
# path,status} (a histogram), flask_exporter_info (a gauge, multiprocess_mode "max").
metrics = PrometheusMetrics(app)
served = Gauge("app_worker_requests", "Requests this worker served")  # mode "all"
largest = Gauge("app_largest_payload", "Largest payload seen", multiprocess_mode="max")
biggest = 0


@app.before_request
def count() -> None:
    served.inc()


@app.route("/")
def index() -> str:
    return "hello"


@app.route("/work")
def work() -> str:
    global biggest
    size = int(request.args.get("size", "0"))
    biggest = max(biggest, size)
    largest.set(biggest)
    return "x" * size


@app.route("/missing")
def missing() -> str:
    abort(404)


@app.route("/boom")
def boom() -> str:
    abort(500)


import metricache  # noqa: E402  (the one documented call, where the app is loaded)

metricache.start()
