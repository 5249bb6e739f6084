"""Bearer tokens of ``metricache serve``: from the environment or a file, 401/403/200, secret."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import metricache
import pytest

from tests.export.cli import clean_env
from tests.http.serving import Reply, Served, fetch, serve, sync_sample
from tests.support.servers import RedisServer

TOKENS = ("tok-alpha.1", "Zm9vYmFy+/==")  # base64-like characters are allowed


def store_args(redis_server: RedisServer) -> tuple[str, ...]:
    return ("--store", "redis", "--option", f"url={redis_server.url}")


def check_access(served: Served) -> None:
    def get(**headers: str) -> Reply:
        return fetch(served.url, headers=headers)

    anonymous = get()
    assert anonymous.status == 401
    assert anonymous.headers["www-authenticate"] == 'Bearer realm="metricache"'
    assert json.loads(anonymous.body) == {"error": "credentials required"}
    for wrong in ("Bearer nope", "Bearer tok-alpha", "Bearer tok-alpha.12", "Basic dG9rOg=="):
        refused = get(Authorization=wrong)
        assert refused.status == 403, wrong
        assert json.loads(refused.body) == {"error": "forbidden"}
        assert "www-authenticate" not in refused.headers
    for token in TOKENS:
        allowed = get(Authorization=f"Bearer {token}")
        assert allowed.status == 200
        assert b"orders_total" in allowed.body
    assert get(Authorization=f"bearer   {TOKENS[0]}  ").status == 200  # scheme in any case
    assert get(Authorization="Bearer").status == 403
    # The health check needs no token and tells nothing but the status.
    health = fetch(served.url, "/healthz")
    assert (health.status, json.loads(health.body)) == (200, {"status": "ok"})


def assert_never_shown(served: Served) -> None:
    printed = served.stdout + served.stderr
    for token in TOKENS:
        assert token.encode() not in printed
    assert b"Authorization" not in printed


@pytest.fixture
def synced(redis_server: RedisServer) -> None:
    sync_sample(metricache.open_store("redis", url=redis_server.url), "metricache")


def test_tokens_from_the_environment(
    redis_server: RedisServer, synced: None, tmp_path: Path
) -> None:
    with serve(
        *store_args(redis_server),
        cwd=tmp_path,
        verbose=True,  # debug logs: the request log must not show credentials either
        env={"METRICACHE_SERVE_TOKEN": f" {TOKENS[0]}, {TOKENS[1]}\n"},
    ) as served:
        check_access(served)
    assert b"(auth: bearer tokens (2))" in served.stdout
    assert b"GET /metrics 401" in served.stderr  # the request log is on, and token-free
    assert_never_shown(served)


def test_tokens_from_a_file(redis_server: RedisServer, synced: None, tmp_path: Path) -> None:
    token_file = tmp_path / "tokens"
    token_file.write_text(f"# metrics scrapers\n{TOKENS[0]}\n\n  {TOKENS[1]}  \n")
    with serve(*store_args(redis_server), "--token-file", str(token_file), cwd=tmp_path) as served:
        check_access(served)
    assert_never_shown(served)


def test_the_token_file_may_come_from_the_configuration(
    redis_server: RedisServer, synced: None, tmp_path: Path
) -> None:
    token_file = tmp_path / "tokens"
    token_file.write_text("\n".join(TOKENS) + "\n")
    (tmp_path / "metricache.toml").write_text(f'[serve]\ntoken_file = "{token_file}"\n')
    with serve(*store_args(redis_server), cwd=tmp_path) as served:
        check_access(served)


def run_serve(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    environment = clean_env()
    environment.update(env or {})
    done = subprocess.run(
        [sys.executable, "-m", "metricache.cli.main", "serve", "--port", "0", *args],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        timeout=60,
        check=False,
    )
    return done.returncode, (done.stdout + done.stderr).decode()


def test_a_protected_server_never_starts_open(tmp_path: Path) -> None:
    status, output = run_serve(tmp_path, "--token-file", str(tmp_path / "missing"))
    assert status == 2
    assert "cannot read the token file" in output
    assert "serving" not in output

    empty = tmp_path / "empty"
    empty.write_text("# nothing but a comment\n\n")
    status, output = run_serve(tmp_path, "--token-file", str(empty))
    assert (status, "holds no token" in output) == (2, True)

    bad = tmp_path / "bad"
    bad.write_text("has a space inside\n")
    status, output = run_serve(tmp_path, "--token-file", str(bad))
    assert status == 2
    assert "a bearer token may hold only letters" in output
    assert "space inside" not in output  # the message never shows the token

    status, output = run_serve(tmp_path, env={"METRICACHE_SERVE_TOKEN": "ok,not ok\x01"})
    assert status == 2
    assert "\x01" not in output


def test_there_is_no_command_line_option_for_a_token(tmp_path: Path) -> None:
    status, output = run_serve(tmp_path, "--token", "abc")
    assert status == 2
    assert "unrecognized arguments: --token abc" in output
