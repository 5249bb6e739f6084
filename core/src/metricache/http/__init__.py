"""The metrics endpoint over HTTP: one implementation, served three ways.

:func:`make_wsgi_app` (Flask, Django, any WSGI server), :func:`make_asgi_app`
(FastAPI, Starlette, any ASGI server) and ``metricache serve``
(:class:`~metricache.http.server.MetricsServer`) all answer with the same
:class:`~metricache.http.endpoint.MetricsEndpoint`.
"""

from __future__ import annotations

from metricache.http.app import WSGIApp, make_wsgi_app
from metricache.http.asgi import ASGIApp, make_asgi_app
from metricache.http.auth import TOKEN_ENV, AuthResult, BearerTokens, load_tokens
from metricache.http.endpoint import MetricsEndpoint, Request, Response, make_endpoint
from metricache.http.server import MetricsServer

__all__ = [
    "TOKEN_ENV",
    "ASGIApp",
    "AuthResult",
    "BearerTokens",
    "MetricsEndpoint",
    "MetricsServer",
    "Request",
    "Response",
    "WSGIApp",
    "load_tokens",
    "make_asgi_app",
    "make_endpoint",
    "make_wsgi_app",
]
