"""Putting the portal on the app: its routes, error pages, security headers, mailer and stylesheet."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.engine import Engine

from gateway.config import Config
from gateway.errors import StoreUnavailable
from gateway.web.portal import signin, tickets
from gateway.web.portal.guard import PREFIX, PortalHeaders, visitor
from gateway.web.portal.mailer import LinkMailer
from gateway.web.portal.pages import PageError, error_page, language_for, stylesheet
from gateway.web.portal.tickets import SignInNeeded

log = logging.getLogger("gateway.portal")


def install(app: FastAPI, engine: Engine, config: Config, mailer: LinkMailer | None = None) -> None:
    """Serve the portal under /portal when [portal] is configured."""
    if config.portal is None:
        return
    app.state.portal_mailer = mailer or LinkMailer(engine, config)
    app.include_router(signin.router)
    app.include_router(tickets.router)
    css = stylesheet()

    @app.get(f"{PREFIX}/static/portal.css", include_in_schema=False)
    def portal_css() -> Response:
        """The stylesheet (the only one: the CSP allows no inline style)."""
        return Response(css, media_type="text/css", headers={"Cache-Control": "public, max-age=3600"})

    @app.exception_handler(SignInNeeded)
    async def _sign_in(request: Request, exc: SignInNeeded) -> Response:
        return RedirectResponse(f"{PREFIX}/signin?{_next(exc.path)}", status_code=303)

    @app.exception_handler(PageError)
    async def _page(request: Request, exc: PageError) -> Response:
        return _error(request, exc)

    app.add_middleware(PortalHeaders)


def _next(path: str) -> str:
    return urlencode({"next": path})


def _error(request: Request, exc: PageError) -> Response:
    """The error page; without the database, a bare one in the browser's language."""
    try:
        me = visitor(request)
    except StoreUnavailable:
        me = None
    return error_page(request, language_for(request, None, None), me, exc)


def error_pages(request: Request, status: int, detail: str) -> Response | None:
    """Errors under /portal (unknown pages, bad queries, the database down) as pages; None
    elsewhere, where the API answers problem+json."""
    path = request.url.path
    if not (path == PREFIX or path.startswith(PREFIX + "/")):
        return None
    try:
        return _error(request, PageError(400 if status == 422 else status))
    except Exception:  # the page itself failed: problem+json, never a traceback
        log.exception("%s: the error page for %d failed", path, status)
        return None
