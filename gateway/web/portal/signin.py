"""Sign-in routes: ask for a link, confirm it (a press, so mail scanners cannot spend it), sign out.

The answer to a link request is the same page whether or not the address is a customer's;
only the rate limits (per address, per client) answer differently, and for every address alike.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from gateway.errors import store_errors
from gateway.intake.addresses import valid_address
from gateway.web.context import WebContext, context
from gateway.web.portal.access import (
    LinkRequest,
    link_is_live,
    open_session,
    redeem_link,
    request_link,
    revoke,
)
from gateway.web.portal.forms import read_form
from gateway.web.portal.guard import (
    PREFIX,
    clear_session,
    client_address,
    safe_next,
    session_cookie,
    set_session,
    visitor,
)
from gateway.web.portal.mailer import LinkMailer
from gateway.web.portal.pages import PageError, error_page, language_for, render
from store.db import transaction
from store.queries import find_contact

router = APIRouter(prefix=PREFIX, include_in_schema=False)
NextQ = Annotated[str | None, Query(alias="next", max_length=500)]


def _see_other(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303)


@router.get("")
@router.get("/")
def home() -> Response:
    """The portal's front door is the ticket list."""
    return _see_other(f"{PREFIX}/tickets")


@router.get("/signin")
def signin_page(request: Request, next_path: NextQ = None) -> Response:
    """The form asking for a mail address (signed-in visitors go straight on)."""
    me = visitor(request)
    if me is not None:
        return _see_other(safe_next(next_path))
    lang = language_for(request, None, None)
    return render(request, "signin", lang, None, next=safe_next(next_path), email="")


@router.post("/signin")
async def ask_for_link(request: Request) -> Response:
    """Record the request and mail a link to a customer; the same page for any address."""
    web = context(request)
    portal = web.config.portal
    assert portal is not None
    form = await read_form(request, None)
    address = valid_address(form.text("email", 320))
    lang = language_for(request, None, None)
    if address is None:
        raise PageError(422, "email")
    wanted = safe_next(form.text("next", 500))
    asked, mail_lang = await run_in_threadpool(_ask, web, address, client_address(request), wanted, lang)
    if asked.outcome == "limited":
        limited = error_page(request, lang, None, PageError(429))
        limited.headers["Retry-After"] = "600"
        return limited
    task = None
    if asked.token is not None:
        mailer: LinkMailer = request.app.state.portal_mailer
        task = BackgroundTask(mailer.send, address, f"{portal.url}/signin/{asked.token}", mail_lang,
                              portal.link_minutes)
    response = render(request, "signin_sent", lang, None, minutes=portal.link_minutes)
    response.background = task
    return response


def _ask(web: WebContext, address: str, client: str, wanted: str, lang: str) -> tuple[LinkRequest, str]:
    with store_errors(), transaction(web.engine) as session:
        asked = request_link(session, web.config, address, client, wanted, datetime.now(UTC))
        contact = find_contact(session, address) if asked.token else None
        return asked, (contact.language if contact and contact.language else lang)


@router.get("/signin/{token}")
def confirm_page(request: Request, token: str) -> Response:
    """The link's page: a button that signs in (GET never spends the link)."""
    web = context(request)
    lang = language_for(request, None, None)
    with store_errors(), transaction(web.engine) as session:
        live = len(token) <= 100 and link_is_live(session, token, datetime.now(UTC))
    if not live:
        return render(request, "link_invalid", lang, None, code=410)
    return render(request, "signin_confirm", lang, visitor(request), token=token)


@router.post("/signin/{token}")
async def redeem(request: Request, token: str) -> Response:
    """Spend the link once: a new session (replacing any other of this browser), then on."""
    web = context(request)
    portal = web.config.portal
    assert portal is not None
    before = visitor(request)
    await read_form(request, before)
    lang = language_for(request, None, None)
    now = datetime.now(UTC)
    with store_errors(), transaction(web.engine) as session:
        link = redeem_link(session, token, now) if len(token) <= 100 else None
        if link is None:
            return render(request, "link_invalid", lang, before, code=410)
        if before is not None:
            revoke(session, now, token=request.cookies.get(session_cookie(web), ""))
        opened = open_session(session, link.address, portal.session_hours, now)
        target = safe_next(link.next_path)
    response = _see_other(target)
    set_session(request, response, opened.token, portal.session_hours)
    return response


@router.post("/signout")
async def signout(request: Request) -> Response:
    """End this session in the store (the cookie alone would not) and in the browser."""
    web = context(request)
    me = visitor(request)
    if me is not None:
        await read_form(request, me)
        with store_errors(), transaction(web.engine) as session:
            revoke(session, datetime.now(UTC), token=request.cookies.get(session_cookie(web), ""))
    response = _see_other(f"{PREFIX}/signin")
    clear_session(request, response)
    return response
