"""redis-server with a password and an ACL user, and redis-server with TLS only."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.servers import RedisServer, require_binary

__all__ = ["PASSWORD", "USER", "USER_PASSWORD", "PasswordRedis", "TlsRedis", "make_certificate"]

# Characters a URL must percent-encode, so the masking of both forms is exercised.
PASSWORD = "hunter2:p@ss/w#rd"
USER = "metrics"
USER_PASSWORD = "acl-S3cret!"


class PasswordRedis(RedisServer):
    """A redis-server whose default user needs :data:`PASSWORD`, with an ACL user too."""

    def command(self) -> list[str]:
        return [
            *super().command(),
            "--requirepass",
            PASSWORD,
            # One word per argument: redis-server joins them into one config line.
            "--user",
            USER,
            "on",
            f">{USER_PASSWORD}",
            "~*",
            "&*",
            "+@all",
        ]


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """Write a self-signed certificate for 127.0.0.1 and its key; return their paths."""
    openssl = require_binary("openssl")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


class TlsRedis(RedisServer):
    """A redis-server that speaks TLS only (no plain port), with :data:`PASSWORD`."""

    def __init__(self, cert: Path, key: Path) -> None:
        super().__init__()
        self.cert = cert
        self.key = key

    def command(self) -> list[str]:
        plain = super().command()
        plain[plain.index("--port") + 1] = "0"
        return [
            *plain,
            "--tls-port",
            str(self.port),
            "--tls-cert-file",
            str(self.cert),
            "--tls-key-file",
            str(self.key),
            "--tls-ca-cert-file",
            str(self.cert),
            "--tls-auth-clients",
            "no",
            "--requirepass",
            PASSWORD,
        ]

    @property
    def url(self) -> str:
        """The rediss:// URL of database 0, with the password (percent-encoded)."""
        return f"rediss://:{quote(PASSWORD)}@127.0.0.1:{self.port}/0"


def quote(text: str) -> str:
    """Percent-encode ``text`` for the user information of a URL."""
    from urllib.parse import quote as url_quote

    return url_quote(text, safe="")
