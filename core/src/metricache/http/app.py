"""The endpoint as a WSGI application, to run under any WSGI server or mount in Flask/Django.

Mounted under a prefix (``DispatcherMiddleware``, a Django URL), the prefix is the
``SCRIPT_NAME`` and the endpoint sees only the rest of the path: ``/`` (the mount
point itself) serves the metrics, ``/healthz`` the health check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from metricache.http.endpoint import MetricsEndpoint, Request, app_factory, make_endpoint

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = ["WSGIApp", "make_wsgi_app", "request_from_environ"]


def request_from_environ(environ: WSGIEnvironment) -> Request:
    """Translate a WSGI environ into a :class:`Request` (header names in lower case)."""
    headers: dict[str, str] = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers[key[5:].replace("_", "-").lower()] = str(value)
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = str(environ[key])
    return Request(
        method=str(environ.get("REQUEST_METHOD", "GET")).upper(),
        path=str(environ.get("PATH_INFO", "")) or "/",
        query=str(environ.get("QUERY_STRING", "")),
        headers=headers,
        client=environ.get("REMOTE_ADDR"),
    )


class WSGIApp:
    """A WSGI callable answering with a :class:`~metricache.http.endpoint.MetricsEndpoint`."""

    def __init__(self, endpoint: MetricsEndpoint) -> None:
        self.endpoint = endpoint

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        """Answer one request."""
        response = self.endpoint.handle(request_from_environ(environ))
        start_response(response.status_line, list(response.headers))
        return [response.body]


make_wsgi_app = app_factory(
    "make_wsgi_app",
    WSGIApp,
    make_endpoint,
    """Return a WSGI app serving the store's view.

    The arguments are those of :func:`~metricache.http.endpoint.make_endpoint`.
    """,
)
