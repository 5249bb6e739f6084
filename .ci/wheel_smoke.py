"""Smoke test of metricache installed from its wheels alone, in a fresh virtual environment.

Run by ``.ci/wheels.sh`` with the environment's own interpreter, from an empty
directory (never the repository): record, sync to the store, read the merged view
back with the configuration's namespace and retention, render it, serve one scrape
with ``metricache serve`` (``Accept: */*``) and, when the conformance package is
installed, run its store basics and the format kit. Exits non-zero, saying what went
wrong, at the first problem.

    python wheel_smoke.py --store redis --format json --expect metricache,metricache-redis,...
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from importlib import metadata
from pathlib import Path


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(store: str, workdir: Path) -> tuple[subprocess.Popen[bytes] | None, str]:
    """Start the server a store needs on a free port; return it and the store's url."""
    port = free_port()
    if store == "redis":
        command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        url = f"redis://127.0.0.1:{port}/0"
    elif store == "memcached":
        command = ["memcached", "-l", "127.0.0.1", "-p", str(port), "-U", "0"]
        if os.geteuid() == 0:  # memcached refuses to run as root without -u
            command += ["-u", "root"]
        url = f"memcached://127.0.0.1:{port}"
    else:
        return None, ""
    if shutil.which(command[0]) is None:
        raise SystemExit(f"smoke: {command[0]} is not installed")
    proc = subprocess.Popen(command, cwd=workdir, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, url
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"smoke: {command[0]} did not start")


def check(condition: bool, message: str) -> None:
    """Stop with ``message`` unless ``condition`` holds."""
    if not condition:
        raise SystemExit(f"smoke: {message}")


def installed_distributions() -> set[str]:
    """The metricache distributions installed in this environment."""
    names = {(d.metadata["Name"] or "").lower() for d in metadata.distributions()}
    return {n for n in names if n == "metricache" or n.startswith("metricache-")}


def record_sync_read_render(fmt: str) -> bytes:
    """Record, sync, read the view back as the configuration names it, render it."""
    import metricache
    from metricache.runtime import ViewReader

    check(
        Path(metricache.__file__).resolve().is_relative_to(Path(sys.prefix).resolve()),
        f"metricache was imported from {metricache.__file__}, not from this environment",
    )
    jobs = metricache.Counter("smoke_jobs", "Jobs done", ["queue"])
    latency = metricache.Histogram("smoke_latency_seconds", "Latency", buckets=(0.1, 1.0))
    jobs.labels("mail").inc(3)
    latency.observe(0.05)
    config = metricache.load_config()
    syncer = metricache.start(config)
    check(syncer.flush().ok, f"the sync to {syncer.store.describe()} failed")
    if config.store.name == "memory":  # held by this process's store object alone
        view = ViewReader(config, syncer.store).view()
    else:  # what a separate reader process does
        with metricache.open_reader(config) as reader:
            view = reader.view()
    family = view.get("smoke_jobs")
    check(family is not None, "the view read back holds no smoke_jobs")
    sample = family.sample("mail") if family is not None else None
    check(sample is not None and getattr(sample, "value", None) == 3.0, f"read back {sample!r}")
    payload = metricache.render(view, fmt)
    check(b"smoke_jobs" in payload, f"the {fmt} rendering holds no smoke_jobs: {payload[:200]!r}")
    final = syncer.stop()  # its last sync, while the store still runs
    check(final is None or final.ok, f"the final sync failed: {final!r}")
    return payload


def serve_one_scrape(bin_dir: Path, shared: bool) -> None:
    """Run ``metricache serve`` and scrape it once with ``Accept: */*``."""
    command = [str(bin_dir / "metricache"), "serve", "--port", "0"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        check(line.startswith("metricache: serving http://"), f"serve printed {line!r}")
        url = line.split()[2]
        request = urllib.request.Request(url, headers={"Accept": "*/*"})
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
            check(response.status == 200, f"the scrape answered {response.status}")
        if shared:  # a memory store is this process's alone: nothing of the smoke's to see
            check(b"smoke_jobs_total" in body, f"the scrape holds {body[:300]!r}")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


def run_conformance(bin_dir: Path, store: str, url: str, fmt: str) -> None:
    """Run the store basics and the format kit from the command line."""
    metricache_cli = str(bin_dir / "metricache")
    store_args = [store, "--check", "basics", *(["-o", f"url={url}"] if url else [])]
    for args in (store_args, ["--formats", fmt]):
        done = subprocess.run(
            [metricache_cli, "conformance", *args],
            check=False,
            capture_output=True,
            text=True,
            timeout=300,
        )
        check(done.returncode == 0, f"metricache conformance {' '.join(args)}: {done.stdout}")


def main() -> int:
    """Check the environment, then smoke-test it; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--store", required=True)
    parser.add_argument("--format", required=True)
    parser.add_argument("--expect", required=True, help="the metricache distributions, by comma")
    args = parser.parse_args()
    expected = set(args.expect.split(","))
    found = installed_distributions()
    check(found == expected, f"installed {sorted(found)}, expected {sorted(expected)}")
    for name in sorted(found):
        check(metadata.version(name) == metadata.version("metricache"), f"{name} version")

    workdir = Path(tempfile.mkdtemp(prefix="metricache-smoke-"))
    os.chdir(workdir)
    server, url = start_server(args.store, workdir)
    try:
        options = f'options = {{ url = "{url}" }}\n' if url else ""
        namespace = "smoke"  # not the default: the reader must take it from the config
        Path("metricache.toml").write_text(
            f'[store]\nname = "{args.store}"\n{options}\n[sync]\nnamespace = "{namespace}"\n',
            encoding="utf-8",
        )
        payload = record_sync_read_render(args.format)
        bin_dir = Path(sys.executable).parent
        serve_one_scrape(bin_dir, shared=args.store != "memory")
        if "metricache-conformance" in found:
            run_conformance(bin_dir, args.store, url, args.format)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps({"store": args.store, "format": args.format, "bytes": len(payload)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
