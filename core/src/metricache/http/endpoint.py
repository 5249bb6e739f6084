"""The one implementation of the metrics endpoint: a request in, a response out.

:class:`MetricsEndpoint` knows nothing of sockets or servers. The WSGI app
(:mod:`metricache.http.app`), the ASGI app (:mod:`metricache.http.asgi`) and the
stdlib server of ``metricache serve`` (:mod:`metricache.http.server`) translate
their requests into a :class:`Request` and write back the :class:`Response`.

Routes: ``GET /metrics`` (also ``GET /``, so the endpoint can be mounted under any
prefix) serves the store's view in the format chosen by ``?format=NAME`` or by the
``Accept`` header; ``GET /healthz`` says whether the store answers. ``HEAD`` works
like ``GET`` without a body; other methods get 405, other paths 404.
"""

from __future__ import annotations

import functools
import gzip
import http
import inspect
import json
import logging
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ParamSpec, TypeVar

import attrs

from metricache.collectors import install_collectors
from metricache.config import Config, load_config
from metricache.errors import FormatNotFound, MetricacheError, StoreError
from metricache.formats import available_formats, get_format, negotiate
from metricache.http.auth import Authorizer, AuthResult, BearerTokens, load_tokens
from metricache.runtime import read_view, syncer_view
from metricache.snapshot import Snapshot
from metricache.store import Store
from metricache.sync.syncer import Syncer

__all__ = ["MetricsEndpoint", "Request", "Response", "accepts_gzip", "make_endpoint"]

log = logging.getLogger("metricache.http")

_JSON = "application/json"


@attrs.frozen
class Request:
    """What the endpoint needs of an HTTP request.

    ``path`` is relative to where the endpoint is mounted; ``query`` is the raw query
    string; ``headers`` has lower-case names (repeated headers joined by ``, ``).
    """

    method: str
    path: str
    query: str = ""
    headers: Mapping[str, str] = attrs.field(factory=dict)
    client: str | None = None

    def query_param(self, name: str) -> str | None:
        """Return the last value of query parameter ``name``, or None."""
        values = urllib.parse.parse_qs(self.query, keep_blank_values=True).get(name)
        return values[-1] if values else None


@attrs.frozen
class Response:
    """An HTTP response: status code, headers in order, body."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    @property
    def reason(self) -> str:
        """The status's reason phrase (``OK``, ``Not Acceptable`` ...)."""
        return http.HTTPStatus(self.status).phrase

    @property
    def status_line(self) -> str:
        """``200 OK``: the status as WSGI wants it."""
        return f"{self.status} {self.reason}"

    def header(self, name: str) -> str | None:
        """Return the first header called ``name`` (any case), or None."""
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return None


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether an ``Accept-Encoding`` header admits gzip (``gzip``, or ``*``, with q > 0)."""
    if not accept_encoding:
        return False
    star = False
    for part in accept_encoding.split(","):
        coding, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        coding = coding.lower()
        if coding in ("gzip", "x-gzip"):
            return q > 0
        if coding == "*":
            star = q > 0
    return star


def _json_response(
    status: int, document: Mapping[str, Any], extra: Iterable[tuple[str, str]] = ()
) -> Response:
    body = json.dumps(document, separators=(",", ":")).encode() + b"\n"
    headers = (
        ("Content-Type", _JSON),
        ("Cache-Control", "no-store"),
        ("Content-Length", str(len(body))),
        *extra,
    )
    return Response(status, headers, body)


_INTERNAL_ERROR = {"error": "internal error"}


class MetricsEndpoint:
    """Answer requests for the metrics and health of one store.

    ``view`` returns the snapshot to serve (it may raise
    :class:`~metricache.errors.StoreError`, answered 503); ``health`` raises when the
    store is unreachable. With ``tokens`` and/or ``authorizer``, ``/metrics`` needs
    credentials: a request is allowed when a bearer token matches or the authorizer
    (called with the :class:`Request`) returns True; refused, it gets 401 when it
    carried no ``Authorization`` header and 403 when it did. ``/healthz`` needs none
    and tells only ``ok`` or ``unavailable``. ``default_format`` answers a request
    without ``Accept`` or with ``*/*`` (None, or not installed: ``prometheus`` when
    installed, else the first installed format by name).
    """

    def __init__(
        self,
        view: Callable[[], Snapshot],
        *,
        health: Callable[[], None] | None = None,
        tokens: BearerTokens | None = None,
        authorizer: Authorizer | None = None,
        metrics_paths: Iterable[str] = ("/metrics", "/"),
        health_path: str = "/healthz",
        default_format: str | None = None,
    ) -> None:
        self.view = view
        self.health = health
        self.tokens = tokens
        self.authorizer = authorizer
        self.metrics_paths = frozenset(metrics_paths)
        self.health_path = health_path
        self.default_format = default_format

    @property
    def protected(self) -> bool:
        """Whether ``/metrics`` needs credentials."""
        return self.tokens is not None or self.authorizer is not None

    def handle(self, request: Request) -> Response:
        """Answer ``request``. Never raises: an unexpected error is logged and answered 500."""
        try:
            response = self._route(request)
        except Exception:
            # The traceback goes to the log; the client learns nothing of the internals.
            log.exception("the endpoint failed to answer %s %s", request.method, request.path)
            response = _json_response(500, _INTERNAL_ERROR)
        if request.method == "HEAD":
            return attrs.evolve(response, body=b"")
        return response

    def _route(self, request: Request) -> Response:
        path = request.path or "/"
        if path not in self.metrics_paths and path != self.health_path:
            return _json_response(404, {"error": "not found"})
        if request.method not in ("GET", "HEAD"):
            return _json_response(405, {"error": "method not allowed"}, [("Allow", "GET, HEAD")])
        if path == self.health_path:
            return self._healthz()
        verdict = self._authorize(request)
        if verdict is AuthResult.MISSING:
            return _json_response(
                401,
                {"error": "credentials required"},
                [("WWW-Authenticate", 'Bearer realm="metricache"')],
            )
        if verdict is AuthResult.DENIED:
            return _json_response(403, {"error": "forbidden"})
        return self._metrics(request)

    def _authorize(self, request: Request) -> AuthResult:
        if not self.protected:
            return AuthResult.ALLOWED
        if self.tokens is not None and self.tokens.check(request.headers) is AuthResult.ALLOWED:
            return AuthResult.ALLOWED
        if self.authorizer is not None and self.authorizer(request) is True:
            return AuthResult.ALLOWED
        if "authorization" not in request.headers:
            return AuthResult.MISSING
        return AuthResult.DENIED

    def _healthz(self) -> Response:
        if self.health is not None:
            try:
                self.health()
            except StoreError as exc:
                log.warning("health check: the store is unreachable: %s", exc)
                return _json_response(
                    503, {"status": "unavailable", "reason": "the store is unreachable"}
                )
        return _json_response(200, {"status": "ok"})

    def _metrics(self, request: Request) -> Response:
        wanted = request.query_param("format")
        if wanted is not None:
            try:
                fmt = get_format(wanted)
            except FormatNotFound:
                return _json_response(
                    406,
                    {
                        "error": f"unknown format {wanted!r}",
                        "available": sorted(available_formats()),
                    },
                )
        else:
            found = negotiate(request.headers.get("accept"), self.default_format)
            if found is None:
                media = sorted({m for f in available_formats().values() for m in f.media_types})
                return _json_response(
                    406,
                    {
                        "error": "none of the accepted media types can be served",
                        "available": media,
                    },
                )
            fmt = found
        try:
            snapshot = self.view()
        except StoreError as exc:
            log.warning("cannot read the store for %s: %s", request.path, exc)
            return _json_response(
                503,
                {"error": "store unavailable", "reason": str(exc)},
                [("Retry-After", "5")],
            )
        except MetricacheError as exc:
            # A known condition (several local views, none chosen): its message says it all.
            log.error("cannot read the view to serve: %s", exc)  # noqa: TRY400
            return _json_response(500, _INTERNAL_ERROR)
        body = fmt.render(snapshot)
        headers = [
            ("Content-Type", fmt.content_type),
            ("Cache-Control", "no-store"),
            ("Vary", "Accept, Accept-Encoding"),
        ]
        if accepts_gzip(request.headers.get("accept-encoding")):
            body = gzip.compress(body, compresslevel=6, mtime=0)
            headers.append(("Content-Encoding", "gzip"))
        headers.append(("Content-Length", str(len(body))))
        return Response(200, tuple(headers), body)


def make_endpoint(
    config: Config | None = None,
    store: Store | None = None,
    *,
    syncer: Syncer | None = None,
    flush: bool = True,
    instance_id: str | None = None,
    tokens: BearerTokens | Iterable[str] | None = None,
    token_file: str | None = None,
    authorizer: Authorizer | None = None,
) -> MetricsEndpoint:
    """Build the endpoint for a store, as ``metricache serve`` and the apps do.

    ``config``: the configuration (default: loaded like every command loads it, unless
    a ``syncer`` is given). ``store``: the store to read (default: the syncer's, else
    the configured one). With ``syncer`` (this process's), its namespace, retention
    and strategy are used, and with ``flush`` it syncs before each read, so the
    response includes this process's latest changes. ``instance_id`` chooses whose
    view a ``local_only`` store serves (default: the syncer's instance, else the
    only one stored).

    Auth: ``tokens`` (a :class:`BearerTokens` or the token strings), else the tokens
    of ``METRICACHE_SERVE_TOKEN`` and of ``token_file`` (default: ``serve.token_file``
    of the configuration), if any; and/or an ``authorizer`` callable.
    """
    if config is None and syncer is None:
        config = load_config()
    if store is None:
        if syncer is not None:
            store = syncer.store
        else:
            from metricache.store_plugins import open_store_from_config

            assert config is not None
            store = open_store_from_config(config.store)
    view: Callable[[], Snapshot]
    if syncer is not None:
        install_collectors(syncer.registry)
        # The instance is asked per request: an app built in a pre-fork master serves,
        # in each worker, that worker's own instance.
        view = functools.partial(
            syncer_view, syncer, flush=flush, instance_id=instance_id, store=store
        )
    else:
        assert config is not None
        the_config = config
        the_store = store

        def config_view() -> Snapshot:
            return read_view(the_config, the_store, instance_id)

        view = config_view
    if tokens is None:
        file = token_file if token_file is not None else (config.serve.token_file if config else "")
        accepted = load_tokens(file or None)
    elif isinstance(tokens, BearerTokens):
        accepted = tokens
    else:
        accepted = BearerTokens(list(tokens))
    return MetricsEndpoint(view, health=store.ping, tokens=accepted, authorizer=authorizer)


P = ParamSpec("P")
A = TypeVar("A")


def app_factory(
    name: str, app: Callable[[MetricsEndpoint], A], build: Callable[P, MetricsEndpoint], doc: str
) -> Callable[P, A]:
    """Return a function taking ``build``'s arguments that serves its endpoint with ``app``.

    ``make_wsgi_app`` and ``make_asgi_app`` are made this way, so they take exactly the
    arguments of :func:`make_endpoint`.
    """

    def make(*args: P.args, **kwargs: P.kwargs) -> A:
        return app(build(*args, **kwargs))

    make.__name__ = make.__qualname__ = name
    make.__doc__ = doc
    make.__module__ = getattr(app, "__module__", __name__)
    # What help() and the docs show: build's parameters, returning the app.
    make.__signature__ = inspect.signature(build).replace(  # type: ignore[attr-defined]
        return_annotation=getattr(app, "__name__", "")
    )
    return make
