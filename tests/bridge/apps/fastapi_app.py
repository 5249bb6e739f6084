"""A FastAPI app instrumented with prometheus-fastapi-instrumentator.

Its only line of metricache is the documented call at the bottom, which also makes
the app's own ``/metrics`` (the instrumentator's) serve the merged view. The tests
run it under uvicorn with several workers.
"""

from __future__ import annotations

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import PlainTextResponse
from prometheus_fastapi_instrumentator import Instrumentator

app = FastAPI()
# http_requests_total{method,status,handler}, http_request_size_bytes and
# http_response_size_bytes{handler} (summaries), http_request_duration_seconds
# {method,handler} and http_request_duration_highr_seconds (histograms),
# http_requests_inprogress{method,handler} (a gauge, multiprocess_mode "livesum").
Instrumentator(
    should_group_status_codes=False,
    should_instrument_requests_inprogress=True,
    inprogress_labels=True,
    excluded_handlers=["/metrics"],
).instrument(app).expose(app)


@app.get("/")
async def index() -> PlainTextResponse:
    return PlainTextResponse("hello")


@app.post("/items")
async def create(request: Request) -> PlainTextResponse:
    body = await request.body()
    return PlainTextResponse("x" * len(body), status_code=201)


@app.get("/missing")
async def missing() -> None:
    raise HTTPException(status_code=404)


import metricache_prometheus_client  # noqa: E402  (the one documented call)

metricache_prometheus_client.start(expose_merged_view=True)
