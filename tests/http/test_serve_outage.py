"""``metricache serve`` while redis is down: 503 with a JSON reason, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import metricache

from tests.http.serving import fetch, serve, sync_sample
from tests.support.servers import RedisServer


def test_503_with_a_reason_while_redis_is_stopped_then_back(
    fresh_redis: RedisServer, tmp_path: Path
) -> None:
    sync_sample(metricache.open_store("redis", url=fresh_redis.url), "metricache")
    with serve("--store", "redis", "--option", f"url={fresh_redis.url}", cwd=tmp_path) as served:
        assert fetch(served.url).status == 200
        fresh_redis.stop()

        down = fetch(served.url, headers={"Accept": "application/json"})
        assert down.status == 503
        assert down.headers["content-type"] == "application/json"
        assert down.headers["cache-control"] == "no-store"
        document = json.loads(down.body)
        assert document["error"] == "store unavailable"
        assert f"127.0.0.1:{fresh_redis.port}" in document["reason"]
        assert "Traceback" not in document["reason"]
        assert set(document) == {"error", "reason"}

        health = fetch(served.url, "/healthz")
        assert health.status == 503
        assert json.loads(health.body) == {
            "status": "unavailable",
            "reason": "the store is unreachable",
        }
        fresh_redis.start()  # empty, but reachable again
        assert fetch(served.url, "/healthz").status == 200
        back = fetch(served.url)
        assert back.status == 200
        assert b"orders_total" not in back.body  # the restarted redis kept nothing
    assert b"Traceback" not in served.stderr


def test_serve_starts_while_redis_is_down_and_says_so(
    fresh_redis: RedisServer, tmp_path: Path
) -> None:
    fresh_redis.stop()
    with serve("--store", "redis", "--option", f"url={fresh_redis.url}", cwd=tmp_path) as served:
        assert fetch(served.url).status == 503
        fresh_redis.start()
        assert fetch(served.url).status == 200
    assert b"warning: the store is unreachable for now" in served.stderr
