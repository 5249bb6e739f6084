"""Bearer token parsing, sources and checks; the Accept-Encoding table."""

from __future__ import annotations

from pathlib import Path

import pytest
from metricache.errors import ConfigError
from metricache.http.auth import AuthResult, BearerTokens, bearer_token, load_tokens
from metricache.http.endpoint import accepts_gzip


@pytest.mark.parametrize(
    ("header", "token"),
    [
        (None, None),
        ("Bearer abc", "abc"),
        ("bearer abc", "abc"),
        ("BEARER   abc  ", "abc"),
        ("Bearer", ""),
        ("Basic YWJjOmRlZg==", ""),  # another scheme: present, never accepted
        ("abc", ""),
    ],
)
def test_bearer_token_parsing(header: str | None, token: str | None) -> None:
    headers = {"authorization": header} if header is not None else {}
    assert bearer_token(headers) == token


def test_tokens_are_checked_whatever_their_length() -> None:
    tokens = BearerTokens(["short", "a-much-longer-token_with.all~chars+/=="])
    assert len(tokens) == 2
    assert tokens.check({}) is AuthResult.MISSING
    assert tokens.check({"authorization": "Bearer short"}) is AuthResult.ALLOWED
    assert (
        tokens.check({"authorization": "Bearer a-much-longer-token_with.all~chars+/=="})
        is AuthResult.ALLOWED
    )
    for wrong in ("Bearer shor", "Bearer shortt", "Bearer SHORT", "Bearer ", "Basic short"):
        assert tokens.check({"authorization": wrong}) is AuthResult.DENIED, wrong
    assert "short" not in repr(tokens)


def test_tokens_come_from_the_environment_and_a_file_together(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text("# the scrapers\nfrom-file-1\n\n   from-file-2   \n")
    tokens = load_tokens(path, environ={"METRICACHE_SERVE_TOKEN": "env-1, env-2\tenv-3"})
    assert tokens is not None
    assert len(tokens) == 5
    for token in ("env-1", "env-3", "from-file-1", "from-file-2"):
        assert tokens.check({"authorization": f"Bearer {token}"}) is AuthResult.ALLOWED
    assert tokens.check({"authorization": "Bearer # the scrapers"}) is AuthResult.DENIED


def test_no_token_anywhere_means_an_open_endpoint() -> None:
    assert load_tokens(None, environ={}) is None
    assert load_tokens(None, environ={"METRICACHE_SERVE_TOKEN": " , "}) is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read the token file"),
        ("\n# only a comment\n", "holds no token"),
        ("good\nnot good\n", "a bearer token may hold only letters"),
        (b"\xff\xfe", "is not UTF-8 text"),
    ],
)
def test_a_bad_token_file_is_refused_without_showing_a_token(
    tmp_path: Path, content: str | bytes | None, message: str
) -> None:
    path = tmp_path / "tokens"
    if isinstance(content, str):
        path.write_text(content)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    with pytest.raises(ConfigError, match=message) as caught:
        load_tokens(path, environ={})
    assert "not good" not in str(caught.value)


def test_no_token_at_all_is_refused() -> None:
    with pytest.raises(ConfigError, match="no bearer token"):
        BearerTokens([])


@pytest.mark.parametrize(
    ("header", "gzip"),
    [
        (None, False),
        ("", False),
        ("gzip", True),
        ("GZIP", True),
        ("deflate, gzip;q=0.5", True),
        ("gzip;q=0", False),
        ("gzip;q=0.0, *", False),  # an explicit refusal beats the wildcard
        ("*", True),
        ("*;q=0", False),
        ("br, deflate", False),
        ("x-gzip", True),
        ("gzip;q=bogus", False),
    ],
)
def test_accept_encoding(header: str | None, gzip: bool) -> None:
    assert accepts_gzip(header) is gzip
