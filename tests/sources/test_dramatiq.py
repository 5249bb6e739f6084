"""A real Dramatiq worker (3 processes) on a real redis: every count adds up.

The test writes a broker module that calls ``metricache.start()`` and
``metricache_dramatiq.install(...)``, starts ``dramatiq --processes 3`` with the broker
and the result backend on a redis-server of its own, sends a known mix of succeeding,
failing, retried and skipped (too old) messages from another process, stops the worker
(its processes end with ``os._exit``), and scrapes ``metricache serve`` on the same
redis. The configuration samples ``task.enqueued`` at 0.1 (keyed by message id, so the
test knows exactly which messages are kept, retries included) and drops
``task.started``.
"""

from __future__ import annotations

import json
import signal
from collections import Counter
from pathlib import Path

from metricache.events import key_fraction

from tests.sources.running import config_toml, process, scrape
from tests.support.servers import RedisServer

APP = """
import time

import dramatiq
import metricache
import metricache_dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend

broker = RedisBroker(url="{broker}")
broker.add_middleware(Results(backend=RedisBackend(url="{broker}")))
metricache_dramatiq.install(broker, metricache.start())
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name="work", store_results=True)
def add(x, y):
    time.sleep(0.01)
    return x + y


@dramatiq.actor(queue_name="work", store_results=True, max_retries=0)
def boom():
    raise ValueError("boom")


@dramatiq.actor(
    queue_name="work", store_results=True, max_retries=2, min_backoff=10, max_backoff=20
)
def flaky(failures, key):
    tries = broker.client.incr("tries:" + key)
    if tries <= failures:
        raise RuntimeError("flaky")
    return tries
"""

SEND = """
import json
import sys
import time

from dramatiq.results import ResultFailure

from jobs import add, boom, broker, flaky

plan = json.loads(sys.argv[1])
messages = []
for kind, message_id in plan:
    if kind == "add":
        message = add.message(1, 2)
    elif kind == "boom":
        message = boom.message()
    elif kind == "flaky_ok":
        message = flaky.message(2, message_id)
    elif kind == "flaky_bad":
        message = flaky.message(5, message_id)
    else:  # "skipped": sent a minute ago with a max_age of one second
        message = add.message_with_options(args=(0, 0), max_age=1000)
        message = message.copy(message_timestamp=int(time.time() * 1000) - 60_000)
    messages.append(broker.enqueue(message.copy(message_id=message_id)))
states = {}
for message in messages:
    try:
        message.get_result(block=True, timeout=120_000)
        states[message.message_id] = "ok"
    except ResultFailure as exc:
        states[message.message_id] = type(exc).__name__ + ":" + str(exc.orig_exc_type)
print(json.dumps(states))
"""

# kind: (actor, {status: outcomes}) -- what one message of that kind does.
KINDS = {
    "add": ("add", {"success": 1}),
    "boom": ("boom", {"failure": 1}),
    "flaky_ok": ("flaky", {"retry": 2, "success": 1}),
    "flaky_bad": ("flaky", {"retry": 2, "failure": 1}),
    "skipped": ("add", {"skipped": 1}),
}
MIX = {"add": 12, "boom": 5, "flaky_ok": 4, "flaky_bad": 2, "skipped": 1}
EVENT_OF = {"success": "completed", "failure": "failed", "retry": "retried", "skipped": "revoked"}


def message_ids() -> list[tuple[str, str]]:
    """The plan: (kind, message id); every fourth id is one sampling at 0.1 keeps."""
    plan = []
    candidate = 0
    for kind, count in MIX.items():
        for n in range(count):
            keep = n % 4 == 0
            while (key_fraction(f"dramatiq-{candidate}") < 0.1) != keep:
                candidate += 1
            plan.append((kind, f"dramatiq-{candidate}"))
            candidate += 1
    return plan


def test_a_multi_process_worker_adds_up_exactly(fresh_redis: RedisServer, tmp_path: Path) -> None:
    base = f"redis://127.0.0.1:{fresh_redis.port}"
    (tmp_path / "jobs.py").write_text(APP.format(broker=f"{base}/1"))
    (tmp_path / "send.py").write_text(SEND)
    (tmp_path / "metricache.toml").write_text(
        # No sync happens during the test: every count reaches the store through the
        # final syncs of processes that end (worker processes end with os._exit).
        config_toml(f"{base}/0", "dramatiqtest", interval=600)
        + '\n[[events]]\nevent = "task.enqueued"\nbackends = ["metrics"]\nsampling_rate = 0.1\n'
        + '\n[[events]]\nevent = "task.started"\nenabled = false\n'
    )
    plan = message_ids()
    worker_log = tmp_path / "worker.log"
    worker_args = ["-m", "dramatiq", "jobs", "--processes", "3", "--threads", "2"]
    with process(worker_args, tmp_path, worker_log) as worker:
        with process(["send.py", json.dumps(plan)], tmp_path, tmp_path / "send.log") as sender:
            assert sender.wait(240) == 0, (tmp_path / "send.log").read_text()
        states = json.loads((tmp_path / "send.log").read_text().splitlines()[-1])
        worker.send_signal(signal.SIGTERM)  # the worker processes stop and exit
        assert worker.wait(120) == 0, worker_log.read_text()
    assert Counter(states.values()) == {
        "ok": 16,
        "ResultFailure:ValueError": 5,
        "ResultFailure:RuntimeError": 2,
        "ResultFailure:SkipMessage": 1,
    }, states
    log = worker_log.read_text()
    assert log.count("Worker process is ready for action.") == 3, log

    expected: Counter[tuple[str, str, str]] = Counter()  # (event, actor, status)
    durations: Counter[tuple[str, str]] = Counter()  # (actor, status)
    for kind, message_id in plan:
        actor, outcomes = KINDS[kind]
        for status, count in outcomes.items():
            expected[EVENT_OF[status], actor, status] += count
            if status != "skipped":
                durations[actor, status] += count
        if key_fraction(message_id) < 0.1:  # enqueued by the sender, then once per retry
            expected["enqueued", actor, "enqueued"] += 1 + outcomes.get("retry", 0)

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
    assert not any(name.startswith("task_started") for name, _ in view)  # dropped
    kept = sum(1 for _, message_id in plan if key_fraction(message_id) < 0.1)
    assert 0 < kept < len(plan)
