"""Which Redis a URL names: one server, a Sentinel-managed master, or a Cluster.

* ``redis://[[user]:password@]host[:port][/db]`` (``rediss://`` for TLS): one server;
* ``redis+sentinel://[[user]:password@]host:port[,host:port...]/SERVICE[/db]``: the
  master the sentinels name ``SERVICE``, found again after every failover; the user
  and password are the data nodes' (the sentinels' own password is the
  ``sentinel_password`` option);
* ``redis+cluster://[[user]:password@]host:port[,host:port...]``: a Redis Cluster,
  discovered from any of the nodes listed.

Errors never echo a password.
"""

from __future__ import annotations

import enum
from urllib.parse import unquote, urlsplit

import attrs
from metricache.masking import mask_url

__all__ = ["Kind", "Topology", "parse_url"]

DEFAULT_PORT = 6379
DEFAULT_SENTINEL_PORT = 26379


class Kind(str, enum.Enum):
    """The three ways of reaching Redis."""

    SINGLE = "single"
    SENTINEL = "sentinel"
    CLUSTER = "cluster"


@attrs.frozen
class Topology:
    """What a ``redis+sentinel://`` or ``redis+cluster://`` URL says.

    For ``SINGLE`` the URL is handed to redis-py as it is.
    """

    kind: Kind
    nodes: tuple[tuple[str, int], ...] = ()
    service: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None


def _hosts(text: str, default_port: int, url: str) -> tuple[tuple[str, int], ...]:
    found = []
    for item in text.split(","):
        part = item.strip()
        host, port_text = part, ""
        if part.startswith("["):
            end = part.find("]")
            if end < 0:
                raise ValueError(f"unclosed '[' in {mask_url(url)}")
            host, port_text = part[1:end], part[end + 1 :].lstrip(":")
        elif part.count(":") == 1:
            host, port_text = part.split(":")
        if not host:
            raise ValueError(f"a host is missing in {mask_url(url)}")
        if port_text and not (port_text.isdigit() and 0 < int(port_text) < 65536):
            raise ValueError(f"invalid port {port_text!r} in {mask_url(url)}")
        found.append((host, int(port_text) if port_text else default_port))
    if len(set(found)) != len(found):
        raise ValueError(f"a host is listed twice in {mask_url(url)}")
    return tuple(found)


def parse_url(url: str) -> Topology:
    """Return the topology ``url`` names; raise ValueError naming the problem."""
    scheme, sep, _ = url.partition("://")
    if scheme in ("redis", "rediss", "unix") or not sep:
        return Topology(Kind.SINGLE)
    if scheme not in ("redis+sentinel", "redis+cluster"):
        raise ValueError(
            f"unknown scheme {scheme!r} in {mask_url(url)}: use redis://, rediss://, "
            "redis+sentinel:// or redis+cluster://"
        )
    parts = urlsplit(url)
    netloc = parts.netloc
    username: str | None = None
    password: str | None = None
    if "@" in netloc:
        userinfo, _, netloc = netloc.rpartition("@")
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    if parts.query or parts.fragment:
        raise ValueError(f"no query or fragment is read in {mask_url(url)}")
    path = [p for p in parts.path.split("/") if p]
    if scheme == "redis+cluster":
        if path and path != ["0"]:
            raise ValueError(f"a Redis Cluster has database 0 only, got {mask_url(url)}")
        return Topology(
            Kind.CLUSTER,
            _hosts(netloc, DEFAULT_PORT, url),
            username=username,
            password=password,
        )
    if not path or len(path) > 2:
        raise ValueError(
            f"expected redis+sentinel://host:port[,host:port...]/SERVICE[/db], got {mask_url(url)}"
        )
    db = 0
    if len(path) == 2:
        if not path[1].isdigit():
            raise ValueError(f"the database must be a number, got {mask_url(url)}")
        db = int(path[1])
    return Topology(
        Kind.SENTINEL,
        _hosts(netloc, DEFAULT_SENTINEL_PORT, url),
        service=unquote(path[0]),
        db=db,
        username=username,
        password=password,
    )
