"""Bearer tokens: compared in constant time, and never shown in logs, bodies or ``status``.

(Which requests get 401, 403 or 200 is tested in tests/http; here: what an attacker
could learn.)
"""

from __future__ import annotations

import ast
import http.client
import inspect
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import metricache
import pytest
from metricache.http import auth
from metricache.http.auth import BearerTokens
from metricache.http.endpoint import MetricsEndpoint
from metricache.http.server import MetricsServer

from tests.export.cli import clean_env
from tests.support.servers import RedisServer

TOKEN = "s3cr3t-Token.value_42"
WRONG = "s3cr3t-Token.value_43"


def test_tokens_are_compared_with_hmac_compare_digest_and_never_with_equality() -> None:
    tree = ast.parse(textwrap.dedent(inspect.getsource(BearerTokens.check)))
    calls = [
        node.func
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    ]
    assert any(f.attr == "compare_digest" and getattr(f.value, "id", "") == "hmac" for f in calls)
    # No ==, !=, `in` on what the client sent: those stop at the first differing byte.
    comparisons = [
        op
        for node in ast.walk(tree)
        if isinstance(node, ast.Compare)
        for op in node.ops
        if not isinstance(op, (ast.Is, ast.IsNot))
    ]
    assert comparisons == []
    # The loop compares against every accepted token: no early exit.
    loops = [n for n in ast.walk(tree) if isinstance(n, ast.For)]
    assert loops
    assert not [
        n for loop in loops for n in ast.walk(loop) if isinstance(n, (ast.Break, ast.Return))
    ]
    # Both sides are digests of the same length, whatever the token's length.
    assert "sha256" in inspect.getsource(auth._digest)


def _raw_request(port: int, target: str, headers: dict[str, str]) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", target, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_no_log_line_and_no_response_ever_shows_a_token(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    registry = metricache.Registry()
    metricache.Counter("orders", "Orders", registry=registry).inc()

    def down() -> metricache.Snapshot:
        raise metricache.StoreUnavailable("the store is down")

    cases: list[tuple[str, dict[str, str], int]] = [
        ("/metrics", {}, 401),
        ("/metrics", {"Authorization": f"Bearer {WRONG}"}, 403),
        ("/metrics", {"Authorization": f"Basic {TOKEN}"}, 403),
        (f"/metrics?token={TOKEN}&access_token={TOKEN}", {}, 401),  # not a way in
        ("/metrics?format=yaml", {"Authorization": f"Bearer {TOKEN}"}, 406),
        (f"/admin?token={TOKEN}", {"Authorization": f"Bearer {TOKEN}"}, 404),
        ("/metrics", {"Authorization": f"Bearer {TOKEN}", "Accept": "image/png"}, 406),
        ("/metrics", {"Authorization": f"Bearer {TOKEN}"}, 200),
    ]
    for view, unavailable in ((registry.snapshot, False), (down, True)):
        endpoint = MetricsEndpoint(view, tokens=BearerTokens([TOKEN]))
        with MetricsServer(endpoint, "127.0.0.1", 0) as server:
            for target, headers, status in cases:
                expected = 503 if unavailable and status == 200 else status
                got, body = _raw_request(server.port, target, headers)
                assert got == expected, (target, headers)
                if got != 200:
                    assert TOKEN.encode() not in body
                    assert WRONG.encode() not in body
                    assert b"Traceback" not in body
    logged = caplog.text
    assert "GET /metrics 401" in logged  # the request log was on, at debug level
    assert TOKEN not in logged
    assert WRONG not in logged
    assert "Authorization" not in logged


def test_status_and_serve_never_print_a_token(
    redis_server: RedisServer, tmp_path: Path, namespace: str
) -> None:
    token_file = tmp_path / "tokens"
    token_file.write_text(f"# tokens\n{TOKEN}\n")
    config = tmp_path / "metricache.toml"
    config.write_text(
        f'[store]\nname = "redis"\noptions = {{ url = "{redis_server.url}" }}\n'
        f'[sync]\nnamespace = "{namespace}"\n'
        f'[serve]\ntoken_file = "{token_file}"\n'
    )
    env = clean_env()
    env["METRICACHE_SERVE_TOKEN"] = WRONG
    for args in (["status"], ["status", "--json"], ["-vv", "status"], ["plugins"]):
        done = subprocess.run(
            [sys.executable, "-m", "metricache.cli.main", "--config", str(config), *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert TOKEN not in done.stdout + done.stderr
        assert WRONG not in done.stdout + done.stderr
    # A port already taken: serve fails, and says why without the tokens.
    taken = MetricsEndpoint(lambda: metricache.Registry().snapshot())
    with MetricsServer(taken, "127.0.0.1", 0) as busy:
        failed = subprocess.run(
            [
                sys.executable,
                "-m",
                "metricache.cli.main",
                "-vv",
                "--config",
                str(config),
                "serve",
                "--port",
                str(busy.port),
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert failed.returncode == 1
    assert "cannot listen" in failed.stderr
    assert TOKEN not in failed.stdout + failed.stderr
    assert WRONG not in failed.stdout + failed.stderr
