"""Who may read the endpoint: bearer tokens, or an authorizer of the application's own.

Tokens come from the environment (``METRICACHE_SERVE_TOKEN``, several separated by
commas or white space) or from a file (one per line; blank lines and lines starting
with ``#`` are ignored), never from a command-line argument, where every user of
the machine could read them. They are compared in constant time, on SHA-256 digests,
so neither a token's characters nor its length leak through timing. Nothing here
logs or prints a token.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from metricache.errors import ConfigError

__all__ = [
    "TOKEN_ENV",
    "AuthResult",
    "Authorizer",
    "BearerTokens",
    "bearer_token",
    "load_tokens",
]

TOKEN_ENV = "METRICACHE_SERVE_TOKEN"
"""The environment variable holding the endpoint's bearer token(s)."""

# RFC 6750's b64token: what may follow "Bearer " in an Authorization header.
_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


class AuthResult(str, enum.Enum):
    """The verdict on a request's credentials."""

    ALLOWED = "allowed"
    MISSING = "missing"
    """No credentials: answered 401 with ``WWW-Authenticate: Bearer``."""
    DENIED = "denied"
    """Credentials that are not accepted: answered 403."""


Authorizer = Callable[..., bool]
"""A callable taking the :class:`~metricache.http.endpoint.Request`, returning True to allow."""


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """Return the token of an ``Authorization: Bearer ...`` header (lower-case names)."""
    value = headers.get("authorization")
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return ""  # credentials of another scheme: present, never accepted
    return token.strip()


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


class BearerTokens:
    """A set of accepted bearer tokens, checked in constant time."""

    def __init__(self, tokens: Iterable[str]) -> None:
        accepted = []
        for token in tokens:
            if not _TOKEN.fullmatch(token):
                # The message must not show the token.
                raise ConfigError(
                    [
                        "a bearer token may hold only letters, digits and -._~+/ "
                        "(followed by = padding); one of the tokens does not"
                    ]
                )
            accepted.append(_digest(token))
        if not accepted:
            raise ConfigError(["no bearer token was given"])
        self._digests = tuple(accepted)

    def __len__(self) -> int:
        return len(self._digests)

    def check(self, headers: Mapping[str, str]) -> AuthResult:
        """Judge the ``Authorization`` header among ``headers`` (lower-case names)."""
        given = bearer_token(headers)
        if given is None:
            return AuthResult.MISSING
        digest = _digest(given)
        matched = False
        for accepted in self._digests:  # every token is compared: no early exit
            matched |= hmac.compare_digest(digest, accepted)
        return AuthResult.ALLOWED if matched and given else AuthResult.DENIED

    def __repr__(self) -> str:
        return f"<BearerTokens: {len(self._digests)} token(s)>"


def _split_env(value: str) -> list[str]:
    return [part for part in re.split(r"[\s,]+", value) if part]


def _read_token_file(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"cannot read the token file {path}: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"the token file {path} is not UTF-8 text"]) from None
    tokens = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            tokens.append(stripped)
    if not tokens:
        raise ConfigError([f"the token file {path} holds no token"])
    return tokens


def load_tokens(
    token_file: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    env_var: str = TOKEN_ENV,
) -> BearerTokens | None:
    """Return the tokens of ``env_var`` and ``token_file`` together, or None if neither is set.

    A named file that cannot be read, holds no token or a malformed one raises
    :class:`~metricache.errors.ConfigError`: an endpoint meant to be protected must
    not start open.
    """
    env = os.environ if environ is None else environ
    tokens = _split_env(env.get(env_var, ""))
    if token_file:
        tokens += _read_token_file(Path(token_file))
    if not tokens:
        return None
    return BearerTokens(tokens)
