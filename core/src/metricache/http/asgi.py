"""The endpoint as an ASGI application, to run under any ASGI server or mount in FastAPI.

The endpoint's work (reading the store, rendering) blocks, so it runs in the event
loop's default thread pool and never stalls other requests. Mounted under a prefix,
the part of the path after ``root_path`` is routed: the mount point itself serves
the metrics, ``/healthz`` the health check. Lifespan events are acknowledged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from metricache.http.endpoint import MetricsEndpoint, Request, app_factory, make_endpoint

__all__ = ["ASGIApp", "make_asgi_app", "request_from_scope"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def request_from_scope(scope: Scope) -> Request:
    """Translate an ASGI ``http`` scope into a :class:`Request`."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        name = bytes(raw_name).decode("latin-1").lower()
        value = bytes(raw_value).decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    path = str(scope.get("path", "/"))
    root = str(scope.get("root_path", ""))
    if root and path.startswith(root):
        path = path[len(root) :]
    client = scope.get("client")
    return Request(
        method=str(scope.get("method", "GET")).upper(),
        path=path or "/",
        query=bytes(scope.get("query_string", b"")).decode("latin-1"),
        headers=headers,
        client=str(client[0]) if client else None,
    )


class ASGIApp:
    """An ASGI callable answering with a :class:`~metricache.http.endpoint.MetricsEndpoint`."""

    def __init__(self, endpoint: MetricsEndpoint) -> None:
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one connection scope (``http``, or ``lifespan``)."""
        kind = scope.get("type")
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        if kind != "http":
            raise ValueError(f"the metrics endpoint serves http, not {kind!r}")
        while True:  # the request body is not used, but must be consumed
            message = await receive()
            if message.get("type") == "http.disconnect":
                return
            if message.get("type") == "http.request" and not message.get("more_body"):
                break
        request = request_from_scope(scope)
        loop = asyncio.get_running_loop()
        response = await loop.run_in_executor(None, self.endpoint.handle, request)
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [
                    (name.lower().encode("latin-1"), value.encode("latin-1"))
                    for name, value in response.headers
                ],
            }
        )
        await send({"type": "http.response.body", "body": response.body})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message.get("type") == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message.get("type") == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


make_asgi_app = app_factory(
    "make_asgi_app",
    ASGIApp,
    make_endpoint,
    """Return an ASGI app serving the store's view.

    The arguments are those of :func:`~metricache.http.endpoint.make_endpoint`.
    """,
)
