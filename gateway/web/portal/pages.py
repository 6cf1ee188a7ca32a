"""Rendering portal pages: one autoescaping Jinja environment over templates/portal_web/.

Every page gets the visitor's language and words, the CSRF token for its forms and the
signed-in address; ``PageError`` is an error shown as a page (never problem+json, never a
traceback).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlmodel import Session

from gateway.statuses import COLOURS, LABELS, PORTAL_STATES
from gateway.templates import BUILTIN
from gateway.web.context import context
from gateway.web.portal.guard import PREFIX, form_token, keep_csrf_cookie
from gateway.web.portal.texts import TEXTS, accepted_language
from store.models import PortalSession
from store.queries import find_contact

FOLDER: Path = BUILTIN / "portal_web"
_ENV = Environment(loader=FileSystemLoader(str(FOLDER)), autoescape=select_autoescape(default=True),
                   undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


class PageError(Exception):
    """An error answered with the error page: status, and a detail for 422."""

    def __init__(self, status: int, detail: str = "") -> None:
        super().__init__(f"{status} {detail}")
        self.status, self.detail = status, detail


def language_for(request: Request, session: Session | None, address: str | None) -> str:
    """The contact's language, else the browser's (Accept-Language), else the configured default."""
    contact = find_contact(session, address) if session is not None and address else None
    if contact is not None and contact.language in TEXTS:
        return contact.language
    asked = accepted_language(request.headers.get("accept-language", ""))
    return asked or context(request).config.outbound.language


def render(request: Request, name: str, language: str, signed_in: PortalSession | None,
           code: int = 200, **values: Any) -> HTMLResponse:
    """A page with the shared values; sets the pre-sign-in CSRF cookie when the page made one."""
    words = TEXTS.get(language, TEXTS["en"])
    html = _ENV.get_template(f"{name}.html.j2").render(
        t=words, lang=language, csrf=form_token(request, signed_in), base=PREFIX,
        me=signed_in.address if signed_in else None,
        states=[(key, LABELS[language][key]) for key in PORTAL_STATES], **values)
    response = HTMLResponse(html, status_code=code)
    keep_csrf_cookie(request, response)
    return response


def error_page(request: Request, language: str, signed_in: PortalSession | None,
               error: PageError) -> HTMLResponse:
    """The error page for a status (its words from the texts, e.g. e404)."""
    words = TEXTS.get(language, TEXTS["en"])
    key = f"e{error.status}" if f"e{error.status}" in words else "e500"
    return render(request, "error", language, signed_in, code=error.status,
                  message=words[key].format(detail=error.detail))


def stylesheet() -> str:
    """The portal's CSS, with the traffic-light colours of the one status vocabulary."""
    css = (FOLDER / "portal.css").read_text("utf-8")
    badges = "\n".join(f".badge-{name} {{ background: {hexa}; }}" for name, hexa in COLOURS.items())
    return f"{css}\n{badges}\n"
