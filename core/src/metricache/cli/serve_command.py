"""``metricache serve``: the metrics endpoint on a threaded HTTP server, until stopped."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from metricache.cli.common import load, open_configured_store, print_error, store_parent
from metricache.collectors import install_collectors
from metricache.errors import StoreError
from metricache.http.auth import TOKEN_ENV, load_tokens
from metricache.http.endpoint import make_endpoint
from metricache.http.server import MetricsServer
from metricache.registry import REGISTRY

__all__ = ["register"]

EPILOG = f"""\
examples:
  metricache serve --store redis --option url=redis://127.0.0.1:6379/0
      serve the merged view on http://127.0.0.1:9464/metrics
  metricache serve --host 0.0.0.0 --port 0 --token-file /run/secrets/metrics-tokens
      listen on every interface, on a free port (printed), with bearer tokens

Routes: GET /metrics (format by ?format=NAME or the Accept header; gzip on request),
GET /healthz (200, or 503 when the store is unreachable). Bearer tokens come from
${TOKEN_ENV} (separated by commas or spaces) and from --token-file (one per
line), never from the command line; with any, /metrics answers 401 without a token
and 403 with a wrong one. SIGINT or SIGTERM stops the server.
"""


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: list[argparse.ArgumentParser],
) -> None:
    """Add the ``serve`` subcommand."""
    parser = sub.add_parser(
        "serve",
        parents=[*parents, store_parent()],
        help="serve the store's view over HTTP (a scrape endpoint)",
        description="Serve the store's view (merged for distributed stores, one instance's "
        "for local_only ones) at /metrics in every installed format, until stopped. "
        "Prints the URL it listens on.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        # "--token SECRET" must not pass for an abbreviation of --token-file.
        allow_abbrev=False,
    )
    parser.add_argument(
        "--host", metavar="HOST", help="address to listen on (default: [serve] host, 127.0.0.1)"
    )
    parser.add_argument(
        "--port",
        metavar="PORT",
        type=int,
        help="port to listen on; 0 picks a free one (default: [serve] port, 9464)",
    )
    parser.add_argument(
        "--token-file",
        metavar="PATH",
        help="file of accepted bearer tokens, one per line (default: [serve] token_file)",
    )
    parser.add_argument(
        "--instance",
        metavar="ID",
        help="the instance whose view to serve, for local_only stores that hold several",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM; return 0 after a clean stop."""
    config = load(args)
    host = args.host or config.serve.host
    port = args.port if args.port is not None else config.serve.port
    if not 0 <= port <= 65535:
        print_error(f"--port must be from 0 to 65535, got {port}")
        return 2
    # Read before the store opens: a protected endpoint must never start open.
    tokens = load_tokens(args.token_file or config.serve.token_file or None)
    install_collectors(REGISTRY)
    store = open_configured_store(config)
    try:
        # token_file="": the file was read above (none of it named means no tokens).
        endpoint = make_endpoint(
            config, store, instance_id=args.instance, tokens=tokens, token_file=""
        )
        try:
            server = MetricsServer(endpoint, host, port)
        except OSError as exc:
            print_error(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
            return 1
        try:
            store.ping()
        except StoreError as exc:
            print(
                f"metricache: warning: the store is unreachable for now ({exc}); "
                "/metrics answers 503 until it is back",
                file=sys.stderr,
            )
        stop = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        auth = f"bearer tokens ({len(tokens)})" if tokens is not None else "none"
        server.start()
        print(f"metricache: serving {server.url} (auth: {auth})", flush=True)
        stop.wait()
        server.stop()
        print("metricache: stopped", flush=True)
        return 0
    finally:
        store.close()
