"""The http exporter, against a real HTTP server on a loopback socket."""

from __future__ import annotations

import base64
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from metricache.errors import ConfigError
from metricache.exporters import ExportRequest, open_exporter
from metricache.snapshot import ViewKind

from tests.export.receiver import Receiver

TOKEN = "s3cr3t-t0ken-value"
REQUEST = ExportRequest(
    format="json",
    exporter="http",
    view=ViewKind.MERGED,
    snapshot_timestamp=1700000000.0,
    content_type="application/json",
    extension="json",
)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as server:
        yield server


def test_posts_the_bytes_with_the_format_content_type(receiver: Receiver) -> None:
    exporter = open_exporter("http", {"url": receiver.url("/status/200")})
    where = exporter.deliver(b'{"schema":"metricache/v1"}', REQUEST)
    (got,) = receiver.received
    assert got.method == "POST"
    assert got.body == b'{"schema":"metricache/v1"}'
    assert got.headers["content-type"] == "application/json"
    assert "authorization" not in got.headers
    assert where == f"{receiver.url('/status/200')} (200)"


def test_extra_headers_are_sent(receiver: Receiver) -> None:
    exporter = open_exporter(
        "http",
        {"url": receiver.url("/status/202"), "headers": "X-Tenant: acme\nX-Source: web, api"},
    )
    exporter.deliver(b"x", REQUEST)
    headers = receiver.received[0].headers
    assert headers["x-tenant"] == "acme"
    assert headers["x-source"] == "web, api"


def test_a_bearer_token_from_the_environment(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLLECTOR_TOKEN", TOKEN)
    exporter = open_exporter(
        "http", {"url": receiver.url("/status/200"), "bearer_token_env": "COLLECTOR_TOKEN"}
    )
    exporter.deliver(b"x", REQUEST)
    assert receiver.received[0].headers["authorization"] == f"Bearer {TOKEN}"


def test_a_bearer_token_from_a_file_is_read_at_each_delivery(
    receiver: Receiver, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    exporter = open_exporter(
        "http", {"url": receiver.url("/status/200"), "bearer_token_file": str(token_file)}
    )
    exporter.deliver(b"x", REQUEST)
    token_file.write_text("rotated\n")
    exporter.deliver(b"x", REQUEST)
    assert [r.headers["authorization"] for r in receiver.received] == [
        f"Bearer {TOKEN}",
        "Bearer rotated",
    ]


def test_basic_auth_with_a_password_file(receiver: Receiver, tmp_path: Path) -> None:
    password_file = tmp_path / "password"
    password_file.write_text("pa:ss wörd")
    exporter = open_exporter(
        "http",
        {
            "url": receiver.url("/status/200"),
            "username": "metrics",
            "password_file": str(password_file),
        },
    )
    exporter.deliver(b"x", REQUEST)
    expected = base64.b64encode("metrics:pa:ss wörd".encode()).decode()
    assert receiver.received[0].headers["authorization"] == f"Basic {expected}"


@pytest.mark.parametrize("status", [400, 401, 404, 500, 503])
def test_an_error_status_is_a_failure(receiver: Receiver, status: int) -> None:
    exporter = open_exporter("http", {"url": receiver.url(f"/status/{status}")})
    with pytest.raises(OSError, match=f"answered {status}"):
        exporter.deliver(b"x", REQUEST)


def test_a_redirect_is_a_failure_not_a_get_without_the_payload(receiver: Receiver) -> None:
    exporter = open_exporter("http", {"url": receiver.url("/redirect")})
    with pytest.raises(OSError, match="answered 302"):
        exporter.deliver(b"payload", REQUEST)
    assert [(r.method, r.path) for r in receiver.received] == [("POST", "/redirect")]


def test_a_server_that_never_answers_times_out() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # the connection completes in the backlog; nothing ever answers
        port = silent.getsockname()[1]
        exporter = open_exporter("http", {"url": f"http://127.0.0.1:{port}/", "timeout": "0.3"})
        with pytest.raises(OSError, match="timed out"):
            exporter.deliver(b"x", REQUEST)


def test_a_refused_connection_is_a_failure() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    exporter = open_exporter("http", {"url": f"http://127.0.0.1:{port}/"})
    with pytest.raises(OSError, match="Connection refused"):
        exporter.deliver(b"x", REQUEST)


def test_a_missing_token_variable_fails_without_revealing_anything(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ABSENT_TOKEN", raising=False)
    exporter = open_exporter(
        "http", {"url": receiver.url("/status/200"), "bearer_token_env": "ABSENT_TOKEN"}
    )
    with pytest.raises(ValueError, match="ABSENT_TOKEN holding the bearer token is not set"):
        exporter.deliver(b"x", REQUEST)
    assert receiver.received == []


def test_credentials_never_appear_in_errors(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLLECTOR_TOKEN", TOKEN)
    exporter = open_exporter(
        "http", {"url": receiver.url("/status/500"), "bearer_token_env": "COLLECTOR_TOKEN"}
    )
    with pytest.raises(OSError) as caught:
        exporter.deliver(b"x", REQUEST)
    assert receiver.received[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in str(caught.value)
    with pytest.raises(ConfigError) as rejected:
        open_exporter("http", {"url": "http://user:urlpass@127.0.0.1/"})
    assert "holds credentials" in str(rejected.value)
    assert "urlpass" not in str(rejected.value)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "export.options.url: missing required key"),
        ({"url": "ftp://host/x"}, "url: expected an http:// or https:// URL"),
        ({"url": "http://h/", "token": TOKEN}, "export.options.token: unknown key"),
        ({"url": "http://h/", "timeout": "0"}, "timeout: expected a number of seconds > 0"),
        ({"url": "http://h/", "headers": "no colon"}, "headers: expected 'Name: value' lines"),
        (
            {"url": "http://h/", "headers": "Authorization: Bearer x"},
            "headers: Authorization is set by the exporter",
        ),
        (
            {"url": "http://h/", "bearer_token_env": "A", "bearer_token_file": "/f"},
            "give bearer_token_env or bearer_token_file, not both",
        ),
        (
            {"url": "http://h/", "bearer_token_env": "A", "username": "u", "password_env": "P"},
            "choose bearer token auth or basic auth, not both",
        ),
        ({"url": "http://h/", "username": "u"}, "basic auth needs password_env or password_file"),
        ({"url": "http://h/", "password_env": "P"}, "basic auth needs a username"),
    ],
)
def test_invalid_options_are_rejected_when_the_exporter_is_built(
    options: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        open_exporter("http", options)
    assert message in str(caught.value)
    assert TOKEN not in str(caught.value)
