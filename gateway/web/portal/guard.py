"""The portal's browser rules: session and CSRF cookies, form tokens, safe redirects, headers.

The session cookie is Secure, HttpOnly and SameSite=Lax (a link in a mail is a cross-site
navigation that must arrive signed in; a cross-site POST never carries it); the session
itself lives in the store, so it can be revoked. Every form carries a CSRF token: the
session's, or before sign-in the value of a SameSite=Strict cookie (double submit).
"""

from __future__ import annotations

import hmac
import re
import secrets
from datetime import UTC, datetime

from fastapi import Request, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import store_errors
from gateway.web.context import WebContext, context
from gateway.web.portal.access import session_for
from store.db import transaction
from store.models import PortalSession

PREFIX = "/portal"
HOME = f"{PREFIX}/tickets"
CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-frame-options", b"DENY"),
           (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
           (b"cache-control", b"no-store"), (b"cross-origin-opener-policy", b"same-origin")]
_SAFE_NEXT = re.compile(r"^/portal/[A-Za-z0-9/_.\-?=&%+]{0,400}$")


def _secure(web: WebContext) -> bool:
    return web.config.portal.secure_cookies if web.config.portal else True


def session_cookie(web: WebContext) -> str:
    """The session cookie's name (__Host- when Secure: no Domain, Path=/, HTTPS only)."""
    return "__Host-tg_portal" if _secure(web) else "tg_portal"


def csrf_cookie(web: WebContext) -> str:
    """The pre-sign-in CSRF cookie's name."""
    return "__Host-tg_portal_csrf" if _secure(web) else "tg_portal_csrf"


def safe_next(value: str | None) -> str:
    """Where to go after sign-in: a portal path, never another site (//evil, \\\\evil).

    >>> safe_next("/portal/tickets/20261129-0001"), safe_next("//evil.example/"), safe_next(None)
    ('/portal/tickets/20261129-0001', '/portal/tickets', '/portal/tickets')
    >>> safe_next("/portal/..//evil"), safe_next("https://evil.example/portal/")
    ('/portal/tickets', '/portal/tickets')
    """
    if value and _SAFE_NEXT.match(value) and "//" not in value and ".." not in value:
        return value
    return HOME


def visitor(request: Request) -> PortalSession | None:
    """The signed-in session of this request, if its cookie names a live one."""
    web = context(request)
    token = request.cookies.get(session_cookie(web), "")
    if not token or len(token) > 100:
        return None
    with store_errors(), transaction(web.engine) as session:
        found = session_for(session, token, datetime.now(UTC))
        if found is not None:
            session.expunge(found)
    return found


def form_token(request: Request, signed_in: PortalSession | None) -> str:
    """The CSRF token forms of this page carry: the session's, else the pre-sign-in cookie's."""
    if signed_in is not None:
        return signed_in.csrf
    existing = request.cookies.get(csrf_cookie(context(request)), "")
    token = existing if 20 <= len(existing) <= 100 else secrets.token_urlsafe(32)
    request.state.new_csrf = None if token == existing else token
    return token


def csrf_ok(request: Request, sent: object, signed_in: PortalSession | None) -> bool:
    """The form's token matches the session's (signed in) or the CSRF cookie (before)."""
    if not isinstance(sent, str) or not sent:
        return False
    expected = signed_in.csrf if signed_in is not None else \
        request.cookies.get(csrf_cookie(context(request)), "")
    return bool(expected) and hmac.compare_digest(sent.encode(), expected.encode())


def keep_csrf_cookie(request: Request, response: Response) -> None:
    """Set the pre-sign-in CSRF cookie when this page made a new one."""
    token = getattr(request.state, "new_csrf", None)
    if token:
        web = context(request)
        response.set_cookie(csrf_cookie(web), token, path="/", secure=_secure(web), httponly=True,
                            samesite="strict")


def set_session(request: Request, response: Response, token: str, hours: int) -> None:
    """Give the browser its session cookie; the pre-sign-in CSRF cookie is spent."""
    web = context(request)
    response.set_cookie(session_cookie(web), token, max_age=hours * 3600, path="/",
                        secure=_secure(web), httponly=True, samesite="lax")
    response.delete_cookie(csrf_cookie(web), path="/", secure=_secure(web), httponly=True,
                           samesite="strict")


def clear_session(request: Request, response: Response) -> None:
    """Forget the session cookie in the browser."""
    web = context(request)
    response.delete_cookie(session_cookie(web), path="/", secure=_secure(web), httponly=True,
                           samesite="lax")


def client_address(request: Request) -> str:
    """The client's IP address (uvicorn takes it from X-Forwarded-For only from a trusted proxy)."""
    return request.client.host if request.client else ""


class PortalHeaders:
    """ASGI middleware: the strict security headers on every answer under /portal."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or not (path == PREFIX or path.startswith(PREFIX + "/")):
            await self.app(scope, receive, send)
            return

        async def headed(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                added = [(k, v) for k, v in HEADERS if k not in present]  # a stricter one stays
                message = {**message, "headers": [*message.get("headers", []), *added]}
            await send(message)

        await self.app(scope, receive, headed)
