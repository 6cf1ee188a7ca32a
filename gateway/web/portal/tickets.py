"""Ticket pages: the list (search, filter by state, sort), one ticket, new ticket, reply, close.

Every request reads through the one visibility rule (``gateway.views.visibility``), so an
organisation's sharing is checked each time and another customer's ticket is 404. Tickets
and messages go through the API's submission path with ``source = portal``.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from gateway.agents.mail import may_close
from gateway.errors import store_errors
from gateway.statuses import CLOSED, PORTAL_STATES, shown_as
from gateway.views.public import message_views, ticket_view
from gateway.views.visibility import (
    ORDERS,
    Viewer,
    public_attachment,
    public_messages,
    visible_ticket,
    visible_tickets,
)
from gateway.web.api.submit import Draft, Result, reply_draft, submit
from gateway.web.context import WebContext, context
from gateway.web.portal.forms import Form, as_pages, read_form
from gateway.web.portal.guard import PREFIX, visitor
from gateway.web.portal.pages import PageError, language_for, render
from gateway.web.portal.texts import TEXTS
from gateway.web.tokens import Client
from store import blobs
from store.db import transaction
from store.models import PortalSession
from store.queries import find_contact

router = APIRouter(prefix=PREFIX, include_in_schema=False)
PAGE_SIZE = 25
Text = Annotated[str | None, Query(max_length=200)]


class SignInNeeded(Exception):
    """No session: go to sign-in, and come back here after."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


def signed_in(request: Request) -> PortalSession:
    """The session, or off to sign-in (a forwarded link never carries anyone's access)."""
    me = visitor(request)
    if me is None:
        query = f"?{request.url.query}" if request.url.query else ""
        back = request.url.path + query if request.method == "GET" else _form_page(request.url.path)
        raise SignInNeeded(back)
    return me


def _form_page(path: str) -> str:
    """The page a form was sent from (a reply or close: its ticket), to return to after sign-in.

    >>> _form_page("/portal/tickets/T1/reply"), _form_page("/portal/tickets")
    ('/portal/tickets/T1', '/portal/tickets')
    """
    head, _, last = path.rpartition("/")
    return head if last in ("reply", "close") else f"{PREFIX}/tickets"


def portal_client(address: str) -> Client:
    """Who submits for the submission path: the portal, per customer (keys the idempotency)."""
    return Client("portal", frozenset(), hashlib.sha256(f"portal\0{address}".encode()).hexdigest())


@router.get("/tickets")
def ticket_list(request: Request, q: Text = None, status: Text = None, sort: Text = None,
                page: Annotated[int, Query(ge=1, le=10_000)] = 1) -> Response:
    """The visitor's tickets and, where shared, the organisation's."""
    me = signed_in(request)
    web = context(request)
    state = status if status in PORTAL_STATES else None
    order = sort if sort in ORDERS else "updated"
    with store_errors(), transaction(web.engine) as session:
        lang = language_for(request, session, me.address)
        found = visible_tickets(session, Viewer(customer=me.address),
                                statuses=sorted(shown_as(state)) if state else None,
                                search=(q or "").strip() or None, order=order,
                                limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
        rows = [ticket_view(session, web.config, t, lang) for t in found.tickets]
    pages = max(1, -(-found.total // PAGE_SIZE))
    link = {"q": q or "", "status": state or "", "sort": order}
    return render(request, "list", lang, me, tickets=rows, q=q or "", status=state or "", sort=order,
                  page=page, pages=pages, total=found.total,
                  previous=f"?{urlencode({**link, 'page': page - 1})}" if page > 1 else None,
                  following=f"?{urlencode({**link, 'page': page + 1})}" if page < pages else None)


@router.get("/tickets/new")
def new_ticket_page(request: Request) -> Response:
    """The form for a new ticket."""
    me = signed_in(request)
    web = context(request)
    with store_errors(), transaction(web.engine) as session:
        lang = language_for(request, session, me.address)
    return _new_form(request, lang, me, {})


def _new_form(request: Request, lang: str, me: PortalSession, values: dict[str, str],
              status: int = 200, problem: str = "") -> Response:
    portal = context(request).config.portal
    assert portal is not None
    return render(request, "new", lang, me, code=status, values=values, problem=problem,
                  categories=portal.categories, form_id=secrets.token_urlsafe(18),
                  max_files=portal.max_attachments, max_mb=portal.max_file_mb)


@router.post("/tickets")
async def create(request: Request) -> Response:
    """Open a ticket with source = portal: the pipeline, rules and notifications of every ticket."""
    me = signed_in(request)
    web = context(request)
    form = await read_form(request, me, files=True)
    values = {name: form.text(name, limit) for name, limit in
              (("subject", 1000), ("text", 100_000), ("category", 100), ("asset", 255))}
    with store_errors(), transaction(web.engine) as session:
        lang = language_for(request, session, me.address)
        contact = find_contact(session, me.address)
        name = contact.name if contact else ""
    missing = "need_subject" if not values["subject"].strip() else \
        "need_text" if not (values["text"].strip() or form.files) else ""
    if missing:
        return _new_form(request, lang, me, values, 422, TEXTS[lang][missing])
    portal = web.config.portal
    assert portal is not None
    category = values["category"].strip() or None
    if category and portal.categories and category not in portal.categories:
        raise PageError(422, "category")
    draft = Draft(source="portal", email=me.address, name=name, subject=values["subject"].strip(),
                  text=values["text"], html="", channel=portal.channel or web.config.channels[0].name,
                  files=form.files, category=category, asset=values["asset"].strip() or None,
                  language=lang, request=f"portal POST /tickets\0{json.dumps(values, sort_keys=True)}")
    result = await run_in_threadpool(_submit, web, me.address, draft, form)
    return _after(result, None)


def _submit(web: WebContext, address: str, draft: Draft, form: Form) -> Result:
    with as_pages(), store_errors():
        return submit(web.engine, web.config, web.rules.current(), portal_client(address), draft,
                      form.form_id(), datetime.now(UTC))


def _after(result: Result, number: str | None) -> Response:
    """Where the browser goes after a submission (the ticket), or the error page."""
    done = result.disposition
    if done.outcome == "conflict":
        raise PageError(400)
    if done.outcome == "rejected":
        raise PageError(409)
    if done.outcome == "quarantined":
        raise PageError(500)
    target = done.ticket_number or number
    where = f"{PREFIX}/tickets/{quote(target, safe='')}" if target else f"{PREFIX}/tickets"
    return RedirectResponse(where, status_code=303)


@router.get("/tickets/{number}")
def ticket_page(request: Request, number: str) -> Response:
    """One ticket with its public messages (never internal notes), reply and close forms."""
    me = signed_in(request)
    web = context(request)
    portal = web.config.portal
    assert portal is not None
    with store_errors(), transaction(web.engine) as session:
        lang = language_for(request, session, me.address)
        ticket = visible_ticket(session, Viewer(customer=me.address), number[:40])
        if ticket is None or ticket.id is None:
            raise PageError(404)
        view = ticket_view(session, web.config, ticket, lang)
        messages = message_views(session, public_messages(session, ticket.id))
        closable = ticket.status not in CLOSED and may_close(session, ticket, me.address)
        closed = ticket.status in CLOSED
    return render(request, "ticket", lang, me, ticket=view, messages=messages, closable=closable,
                  closed=closed, form_id=secrets.token_urlsafe(18),
                  max_files=portal.max_attachments, max_mb=portal.max_file_mb)


@router.get("/tickets/{number}/attachments/{attachment_id}")
def download(request: Request, number: str, attachment_id: int) -> Response:
    """A file of a public message of a ticket the visitor may see, as a download."""
    me = signed_in(request)
    web = context(request)
    with store_errors(), transaction(web.engine) as session:
        ticket = visible_ticket(session, Viewer(customer=me.address), number[:40])
        item = public_attachment(session, ticket.id, attachment_id) if ticket and ticket.id else None
        if item is None:
            raise PageError(404)
        data, name, ctype = blobs.read(session, item.blob), item.filename, item.content_type
    return Response(data, media_type=ctype, headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name, safe='')}",
        "Content-Security-Policy": "default-src 'none'; sandbox"})


@router.post("/tickets/{number}/reply")
async def reply(request: Request, number: str) -> Response:
    """The visitor's message on the ticket, with files: threads like a reply by mail."""
    me = signed_in(request)
    form = await read_form(request, me, files=True)
    text = form.text("text")
    if not (text.strip() or form.files):
        raise PageError(422, "text")
    return await _message(request, me, number[:40], text, form, closing=False)


@router.post("/tickets/{number}/close")
async def close(request: Request, number: str) -> Response:
    """The customer closes the ticket, as with #close by mail."""
    me = signed_in(request)
    form = await read_form(request, me)
    return await _message(request, me, number[:40], "#close", form, closing=True)


async def _message(request: Request, me: PortalSession, number: str, text: str, form: Form,
                   closing: bool) -> Response:
    web = context(request)
    sent: dict[str, Any] = {"text": text, "files": [f.filename for f in form.files]}
    route = f"portal POST /tickets/{number}/{'close' if closing else 'reply'}\0"
    with as_pages(), store_errors(), transaction(web.engine) as session:
        lang = language_for(request, session, me.address)
        contact = find_contact(session, me.address)
        draft = reply_draft(session, number, me.address, contact.name if contact else "", lang, text, "",
                            form.files, route + json.dumps(sent, sort_keys=True), closing)
    if draft is None:  # closed already
        return RedirectResponse(f"{PREFIX}/tickets/{quote(number, safe='')}", status_code=303)
    result = await run_in_threadpool(_submit, web, me.address, draft, form)
    return _after(result, number)
