"""Keep secrets out of output: masked URLs and redacted option values."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

__all__ = ["MASK", "is_secret_name", "mask_url", "redact"]

MASK = "***"
_SECRET_WORDS = ("password", "passwd", "secret", "token", "credential", "apikey", "api_key")


def is_secret_name(name: str) -> bool:
    """Return whether an option called ``name`` holds a secret by its name."""
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def mask_url(url: str) -> str:
    """Return ``url`` with any password (and a lone user token) replaced by ``***``.

    ``redis://:hunter2@host:6379/0`` becomes ``redis://:***@host:6379/0``; a URL
    without credentials is returned unchanged. A query parameter whose name looks
    like a secret (``?password=...``) is masked too.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, sep, _ = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{host}" if sep else f"{MASK}@{host}"
    query = parts.query
    if query:
        pairs = []
        for pair in query.split("&"):
            key, eq, _ = pair.partition("=")
            pairs.append(f"{key}={MASK}" if eq and is_secret_name(key) else pair)
        query = "&".join(pairs)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact(options: Mapping[str, object]) -> dict[str, object]:
    """Return a copy of ``options`` safe to print: secrets masked, URLs masked."""
    safe: dict[str, object] = {}
    for key, value in options.items():
        if is_secret_name(key):
            safe[key] = MASK
        elif isinstance(value, str) and "://" in value:
            safe[key] = mask_url(value)
        else:
            safe[key] = value
    return safe
