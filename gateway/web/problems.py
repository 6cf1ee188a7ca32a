"""RFC 9457 problem documents: every error the HTTP door answers, naming the field at fault.

Routes raise ``Problem``; the handlers installed by ``install`` also turn FastAPI's
validation errors, unknown routes and anything unexpected into ``application/problem+json``.
A client never sees a traceback: an unexpected error is logged and answered with a bare 500.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.errors import StoreUnavailable

log = logging.getLogger("gateway.web")

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "urn:ticketgate:problem:"
_TITLES = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
           405: "Method not allowed", 409: "Conflict", 413: "Content too large",
           415: "Unsupported media type", 422: "Invalid request", 500: "Internal error",
           503: "Service unavailable"}


class Problem(Exception):
    """An error answer: status, a problem type slug, what went wrong and which field."""

    def __init__(self, status: int, kind: str, detail: str, *, field: str | None = None,
                 errors: Sequence[dict[str, str]] = (), headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.kind, self.detail, self.field = status, kind, detail, field
        self.errors, self.headers = list(errors), headers or {}

    def response(self, instance: str) -> JSONResponse:
        """The problem+json answer."""
        body: dict[str, Any] = {"type": TYPE_BASE + self.kind,
                                "title": _TITLES.get(self.status, "Error"),
                                "status": self.status, "detail": self.detail, "instance": instance}
        if self.field is not None:
            body["field"] = self.field
        if self.errors:
            body["errors"] = self.errors
        return JSONResponse(body, status_code=self.status, media_type=PROBLEM_JSON,
                            headers=self.headers)


def field_name(loc: Sequence[int | str]) -> str:
    """A pydantic location as the field a client sent: customer.email, attachments[0].filename.

    >>> field_name(("body", "customer", "email")), field_name(("body", "attachments", 0, "filename"))
    ('customer.email', 'attachments[0].filename')
    >>> field_name(("query", "limit")), field_name(("body",))
    ('limit', 'body')
    """
    parts = list(loc)
    if len(parts) > 1 and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".")


def invalid(errors: Sequence[Any], prefix: Sequence[int | str] = ()) -> Problem:
    """A 422 problem from pydantic's errors, one entry per field at fault."""
    found = []
    for error in errors:
        loc = [*prefix, *error.get("loc", ())]
        message = str(error.get("msg", "invalid"))
        if error.get("type") == "extra_forbidden":
            message = "unknown field"
        elif error.get("type") == "json_invalid":
            message = f"not valid JSON: {error.get('ctx', {}).get('error', message)}"
            loc = ["body"]
        found.append({"field": field_name(loc) or "body", "message": message})
    first = found[0] if found else {"field": "body", "message": "invalid"}
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in found[:10])
    return Problem(422, "validation", detail or "invalid request", field=first["field"], errors=found)


PageHook = Callable[[Request, int, str], Response | None]


def install(app: FastAPI, page: PageHook | None = None) -> None:
    """Answer every error as problem+json (or as the page hook's HTML page where it gives one)."""

    def answer(request: Request, problem: Problem) -> Response:
        shown = page(request, problem.status, problem.detail) if page is not None else None
        return shown if shown is not None else problem.response(request.url.path)

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> Response:
        return answer(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        return answer(request, invalid(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        kind = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http")
        detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "error")
        return answer(request, Problem(exc.status_code, kind, detail, headers=dict(exc.headers or {})))

    @app.exception_handler(StoreUnavailable)
    async def _store(request: Request, exc: StoreUnavailable) -> Response:
        log.warning("%s %s: database unavailable: %s", request.method, request.url.path, exc)
        return answer(request, Problem(503, "unavailable", "the database is unavailable; try again "
                                       "later", headers={"Retry-After": "30"}))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("%s %s failed", request.method, request.url.path)
        return answer(request, Problem(500, "internal", "internal error; it has been logged"))
