"""Redis passwords, ACL users and TLS work, and a password never shows anywhere.

Against real servers: one that requires a password (and has an ACL user), one that
speaks TLS only with a self-signed certificate made by ``openssl``. Wherever a URL
can be printed (``describe()``, logs, sync reports, ``metricache status``, ``sync``,
``export``, ``serve``), the password is masked: neither its text nor its
percent-encoded form appears.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import metricache
import pytest
from metricache.errors import StoreError

from tests.export.cli import clean_env
from tests.http.serving import fetch, serve
from tests.security.redis_servers import (
    PASSWORD,
    USER,
    USER_PASSWORD,
    PasswordRedis,
    TlsRedis,
    make_certificate,
    quote,
)
from tests.support.servers import free_port

SECRETS = (PASSWORD, quote(PASSWORD), USER_PASSWORD, quote(USER_PASSWORD), "p@ss", "hunter2")


def assert_no_secret(*texts: str | bytes) -> None:
    for text in texts:
        shown = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
        for secret in SECRETS:
            assert secret not in shown, f"{secret!r} shown in {shown[:300]!r}"


@pytest.fixture(scope="module")
def protected() -> Iterator[PasswordRedis]:
    with PasswordRedis() as server:
        yield server


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("tls"))


def password_url(port: int) -> str:
    return f"redis://:{quote(PASSWORD)}@127.0.0.1:{port}/0"


def count_orders(store: metricache.Store, namespace: str) -> float:
    registry = metricache.Registry()
    metricache.Counter("orders", "Orders", registry=registry).inc(3)
    syncer = metricache.Syncer(registry, store, interval=3600, namespace=namespace)
    report = syncer.flush()
    assert report.ok, report.error
    assert_no_secret(report.store, str(report))
    family = metricache.merged_snapshot(store, namespace=namespace)["orders"]
    sample = family.samples[0]
    assert isinstance(sample, metricache.Sample)
    return sample.value


def test_a_password_and_an_acl_user_work_and_are_masked(
    protected: PasswordRedis, namespace: str
) -> None:
    store = metricache.open_store("redis", url=password_url(protected.port))
    assert count_orders(store, namespace) == 3
    assert store.describe() == f"redis redis://:***@127.0.0.1:{protected.port}/0"
    user_url = f"redis://{USER}:{quote(USER_PASSWORD)}@127.0.0.1:{protected.port}/0"
    as_user = metricache.open_store("redis", url=user_url)
    assert count_orders(as_user, namespace + "u") == 3
    assert as_user.describe() == f"redis redis://{USER}:***@127.0.0.1:{protected.port}/0"
    assert_no_secret(store.describe(), as_user.describe(), repr(store), repr(as_user))


def test_a_missing_or_wrong_password_fails_clearly_without_showing_it(
    protected: PasswordRedis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = f"redis://:{quote(PASSWORD + 'x')}@127.0.0.1:{protected.port}/0"
    for url in (wrong, f"redis://127.0.0.1:{protected.port}/0"):
        store = metricache.open_store("redis", url=url)
        with pytest.raises(StoreError) as failed:
            store.ping()
        assert "AuthenticationError" in str(failed.value)
        registry = metricache.Registry()
        metricache.Counter("orders", "Orders", registry=registry).inc()
        report = metricache.Syncer(registry, store, interval=3600).flush()
        assert not report.ok
        assert_no_secret(str(failed.value), str(report))
    assert_no_secret(caplog.text)


def test_a_password_never_shows_in_logs_or_reports_while_the_server_is_down(
    caplog: pytest.LogCaptureFixture, namespace: str
) -> None:
    caplog.set_level(logging.DEBUG)
    store = metricache.open_store("redis", url=password_url(free_port()), connect_timeout=0.5)
    registry = metricache.Registry()
    metricache.Counter("orders", "Orders", registry=registry).inc()
    syncer = metricache.Syncer(registry, store, interval=3600, namespace=namespace)
    reports = [syncer.flush() for _ in range(3)]
    assert not any(r.ok for r in reports)
    with pytest.raises(StoreError) as unreadable:
        metricache.merged_snapshot(store, namespace=namespace)
    assert "***" in caplog.text
    assert_no_secret(caplog.text, str(unreadable.value), *(str(r) for r in reports))
    with pytest.raises(StoreError) as invalid:
        metricache.open_store("redis", url=f"redis://:{quote(PASSWORD)}@127.0.0.1:notaport/0")
    assert_no_secret(str(invalid.value))


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "metricache.cli.main", "-vv", *args],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("reachable", ["up", "down"])
def test_status_sync_export_and_serve_never_print_the_password(
    protected: PasswordRedis, tmp_path: Path, namespace: str, reachable: str
) -> None:
    port = protected.port if reachable == "up" else free_port()
    store_args = ["--store", "redis", "--option", f"url={password_url(port)}"]
    config = tmp_path / "metricache.toml"
    config.write_text(
        f'[store]\nname = "redis"\noptions = {{ url = "{password_url(port)}" }}\n'
        f'[sync]\nnamespace = "{namespace}"\n'
    )
    runs = [
        cli("status", *store_args, cwd=tmp_path),
        cli("status", "--json", cwd=tmp_path),
        cli("sync", *store_args, cwd=tmp_path),
        cli("export", *store_args, "--format", "json", cwd=tmp_path),
        cli("export", "--exporter", "stdout", cwd=tmp_path),
    ]
    for done in runs:
        assert_no_secret(done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
        if reachable == "up":
            assert done.returncode == 0, done.stderr
        else:
            assert done.returncode == 1
            assert "***" in done.stdout + done.stderr
    if reachable == "up":
        assert json.loads(runs[1].stdout)["store"].endswith(f":***@127.0.0.1:{port}/0")
    with serve(*store_args, cwd=tmp_path, verbose=True) as served:
        metrics = fetch(served.url)
        health = fetch(served.url, "/healthz")
    assert (metrics.status, health.status) == ((200, 200) if reachable == "up" else (503, 503))
    assert_no_secret(metrics.body, health.body, served.stdout, served.stderr)


def test_tls_with_a_password_syncs_and_reads_and_masks_it(
    certificate: tuple[Path, Path], namespace: str
) -> None:
    cert, key = certificate
    with TlsRedis(cert, key) as server:
        store = metricache.open_store("redis", url=server.url, ssl_ca_certs=str(cert))
        assert count_orders(store, namespace) == 3
        assert store.describe() == f"redis rediss://:***@127.0.0.1:{server.port}/0"

        # Without the CA, the self-signed certificate is refused: a clear, masked error.
        untrusted = metricache.open_store("redis", url=server.url, connect_timeout=2.0)
        with pytest.raises(StoreError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify"):
            untrusted.ping()
        # Plain text to a TLS port: no answer Redis would give; it fails, it never hangs.
        plain = metricache.open_store(
            "redis",
            url=f"redis://:{quote(PASSWORD)}@127.0.0.1:{server.port}/0",
            socket_timeout=2.0,
            connect_timeout=2.0,
        )
        with pytest.raises(StoreError) as refused:
            plain.ping()
        assert_no_secret(str(refused.value), untrusted.describe(), plain.describe())


def test_tls_to_a_server_without_tls_fails_at_the_handshake_masked(
    protected: PasswordRedis, certificate: tuple[Path, Path]
) -> None:
    cert, _ = certificate
    url = f"rediss://:{quote(PASSWORD)}@127.0.0.1:{protected.port}/0"
    store = metricache.open_store("redis", url=url, ssl_ca_certs=str(cert), connect_timeout=0.5)
    with pytest.raises(StoreError) as failed:
        store.ping()
    # The server waits for a command the handshake never ends: the connect timeout
    # ends it, and the error names the (masked) rediss:// URL.
    assert f"rediss://:***@127.0.0.1:{protected.port}/0" in str(failed.value)
    assert store.describe().startswith("redis rediss://:***@")
    assert_no_secret(str(failed.value))
