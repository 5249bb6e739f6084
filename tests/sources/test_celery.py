"""A real Celery worker (prefork, 3 processes) on a real redis: every count adds up.

The test writes a Celery app that calls ``metricache.start()`` and
``metricache_celery.connect(...)``, starts ``celery worker --pool prefork
--concurrency 3`` with broker and result backend on a redis-server of its own, sends a
known mix of succeeding, failing, retried and revoked tasks from another process, stops
the worker (warm shutdown: the pool processes end with ``os._exit``), and scrapes
``metricache serve`` on the same redis. The configuration samples ``task.started`` at
0.1 (keyed by task id, so the test knows exactly which tasks are kept) and drops
``task.enqueued``.
"""

from __future__ import annotations

import json
import re
import signal
from collections import Counter
from pathlib import Path

from metricache.events import key_fraction

from tests.sources.running import config_toml, process, scrape
from tests.support.servers import RedisServer

APP = """
import time

import metricache
import metricache_celery
from celery import Celery

app = Celery("jobs", broker="{broker}", backend="{broker}")
app.conf.update(
    task_default_queue="work",
    broker_connection_retry_on_startup=True,
    worker_prefetch_multiplier=1,
    worker_hijack_root_logger=False,
)
metricache_celery.connect(metricache.start())


@app.task(name="jobs.add")
def add(x, y):
    time.sleep(0.01)
    return x + y


@app.task(name="jobs.boom")
def boom():
    raise ValueError("boom")


@app.task(name="jobs.flaky", bind=True)
def flaky(self, failures, limit):
    if self.request.retries < failures:
        raise self.retry(countdown=0, max_retries=limit, exc=RuntimeError("flaky"))
    return self.request.retries
"""

SEND = """
import json
import sys
import time

from jobs import add, app, boom, flaky

plan = json.loads(sys.argv[1])
deadline = time.monotonic() + 60
while not app.control.ping(timeout=0.5):  # the worker listens: a revoke reaches it
    assert time.monotonic() < deadline, "no worker answered"
results = []
for kind, task_id in plan:
    if kind == "add":
        results.append(add.apply_async((1, 2), task_id=task_id))
    elif kind == "boom":
        results.append(boom.apply_async(task_id=task_id))
    elif kind == "flaky_ok":
        results.append(flaky.apply_async((2, 3), task_id=task_id))
    elif kind == "flaky_bad":
        results.append(flaky.apply_async((5, 2), task_id=task_id))
    elif kind == "revoked":
        results.append(add.apply_async((0, 0), task_id=task_id, countdown=3))
        app.control.revoke(task_id)
for result in results:
    result.get(timeout=120, propagate=False)
print(json.dumps({r.id: r.state for r in results}))
"""

# kind: (task name, runs, {status: outcomes}) -- what one task of that kind does.
KINDS = {
    "add": ("jobs.add", 1, {"success": 1}),
    "boom": ("jobs.boom", 1, {"failure": 1}),
    "flaky_ok": ("jobs.flaky", 3, {"retry": 2, "success": 1}),
    "flaky_bad": ("jobs.flaky", 3, {"retry": 2, "failure": 1}),
    "revoked": ("jobs.add", 0, {"revoked": 1}),
}
MIX = {"add": 12, "boom": 5, "flaky_ok": 4, "flaky_bad": 2, "revoked": 1}
EVENT_OF = {"success": "completed", "failure": "failed", "retry": "retried", "revoked": "revoked"}


def task_ids() -> list[tuple[str, str]]:
    """The plan: (kind, task id); every fourth id is one sampling at 0.1 keeps."""
    plan = []
    candidate = 0
    for kind, count in MIX.items():
        for n in range(count):
            keep = n % 4 == 0
            while (key_fraction(f"celery-{candidate}") < 0.1) != keep:
                candidate += 1
            plan.append((kind, f"celery-{candidate}"))
            candidate += 1
    return plan


def test_a_prefork_worker_adds_up_exactly(fresh_redis: RedisServer, tmp_path: Path) -> None:
    base = f"redis://127.0.0.1:{fresh_redis.port}"
    (tmp_path / "jobs.py").write_text(APP.format(broker=f"{base}/1"))
    (tmp_path / "send.py").write_text(SEND)
    (tmp_path / "metricache.toml").write_text(
        # No sync happens during the test: every count reaches the store through the
        # final syncs of processes that end (the pool processes end with os._exit).
        config_toml(f"{base}/0", "celerytest", interval=600)
        + '\n[[events]]\nevent = "task.started"\nbackends = ["metrics"]\nsampling_rate = 0.1\n'
        + '\n[[events]]\nevent = "task.enqueued"\nenabled = false\n'
    )
    plan = task_ids()
    worker_log = tmp_path / "worker.log"
    worker_args = ["-m", "celery", "-A", "jobs", "worker", "--pool", "prefork"]
    worker_args += ["--concurrency", "3", "--without-gossip", "--without-mingle"]
    worker_args += ["--loglevel", "INFO", "--hostname", "w1@test"]
    with process(worker_args, tmp_path, worker_log) as worker:
        with process(["send.py", json.dumps(plan)], tmp_path, tmp_path / "send.log") as sender:
            assert sender.wait(240) == 0, (tmp_path / "send.log").read_text()
        states = json.loads((tmp_path / "send.log").read_text().splitlines()[-1])
        worker.send_signal(signal.SIGTERM)  # warm shutdown: the pool processes exit
        assert worker.wait(120) == 0, worker_log.read_text()
    assert Counter(states.values()) == {"SUCCESS": 16, "FAILURE": 7, "REVOKED": 1}
    log = worker_log.read_text()
    # Tasks ran in several pool processes (each its own instance, synced at its exit).
    assert len(set(re.findall(r"ForkPoolWorker-\d+", log))) >= 2, log

    expected: Counter[tuple[str, str, str]] = Counter()  # (event, task, status)
    durations: Counter[tuple[str, str]] = Counter()  # (task, status)
    for kind, task_id in plan:
        task, runs, outcomes = KINDS[kind]
        for status, count in outcomes.items():
            expected[EVENT_OF[status], task, status] += count
            if status != "revoked":
                durations[task, status] += count
        if key_fraction(task_id) < 0.1:
            expected["started", task, "started"] += runs

    view = scrape(tmp_path)
    counted = {
        (name[len("task_") : -len("_total")], labels["task"], labels["status"]): value
        for (name, pairs), value in view.items()
        if name.startswith("task_") and name.endswith("_total")
        for labels in [dict(pairs)]
    }
    assert counted == {key: float(count) for key, count in expected.items()}
    assert all(dict(pairs)["queue"] == "work" for (name, pairs) in view if name.startswith("task_"))
    observed = {
        (labels["task"], labels["status"]): value
        for (name, pairs), value in view.items()
        if name == "task_duration_seconds_count"
        for labels in [dict(pairs)]
    }
    assert observed == {key: float(count) for key, count in durations.items()}
    assert not any(name.startswith("task_enqueued") for name, _ in view)  # dropped
    kept = sum(1 for _, task_id in plan if key_fraction(task_id) < 0.1)
    assert 0 < kept < len(plan)
