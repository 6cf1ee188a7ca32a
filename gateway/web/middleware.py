"""ASGI middleware of the HTTP door: request size limit, and request counts and latency by route."""

from __future__ import annotations

import time
from typing import Any

from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.metrics import HTTP_REQUESTS, HTTP_SECONDS
from gateway.web.problems import Problem


class _TooLarge(Exception):
    """The body went past the limit while it was being read."""


class BodyLimit:
    """Refuse request bodies over the limit with 413, by Content-Length or while reading."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.limit:
            await self._refuse(scope, receive, send)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooLarge
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except _TooLarge:
            if not started:
                await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        problem = Problem(413, "too-large", f"the request body is larger than {self.limit} bytes "
                          "(limits.max_message_bytes, with room for encoding)", field="body")
        await problem.response(scope.get("path", ""))(scope, receive, send)


class RequestMetrics:
    """Count every request by method, route template and status; time it by route."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def watched(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watched)
        finally:
            route = _template(scope.get("route"))
            method = str(scope.get("method", ""))
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_SECONDS.labels(method, route).observe(time.perf_counter() - started)


def _template(route: Any) -> str:
    """The route's path template (/api/v1/tickets/{number}); unmatched paths share one label."""
    return str(getattr(route, "path", "")) if isinstance(route, BaseRoute) else "(unmatched)"
