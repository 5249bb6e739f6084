"""An app built before a fork serves, in each worker, that worker's own view."""

from __future__ import annotations

import json
import os

import metricache
from metricache.http.endpoint import Request, make_endpoint


def test_an_endpoint_built_in_a_pre_fork_master_serves_the_workers_instance(
    namespace: str,
) -> None:
    registry = metricache.Registry()
    counter = metricache.Counter("served", "Served", registry=registry)
    store = metricache.open_store("memory")  # local_only: each instance's own view
    syncer = metricache.Syncer(registry, store, namespace=namespace)
    endpoint = make_endpoint(store=store, syncer=syncer)
    counter.inc(2)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            counter.inc(5)
            response = endpoint.handle(Request("GET", "/metrics", "format=json"))
            document = json.loads(response.body)
            os.write(write_end, json.dumps([syncer.instance.id, document]).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    _, status = os.waitpid(pid, 0)
    with os.fdopen(read_end) as pipe:
        child_id, document = json.loads(pipe.read())
    assert os.waitstatus_to_exitcode(status) == 0
    assert child_id != syncer.instance.id
    assert document["instance"] == child_id
    served = next(f for f in document["families"] if f["name"] == "served")
    assert served["samples"][0]["value"] == 7  # what the worker has: 2 inherited + 5
