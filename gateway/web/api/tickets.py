"""Ticket routes: create, read (for a customer or an organisation), answer, close, download.

Handlers are thin: they check input, build a ``Draft`` and hand it to the pipeline
(``gateway.web.api.submit``), or read through the one visibility rule
(``gateway.views.visibility``). A ticket the viewer may not see is 404, exactly like one
that does not exist.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from gateway.errors import store_errors
from gateway.statuses import CLOSED, PORTAL_STATES, shown_as
from gateway.views.visibility import Viewer, public_attachment, visible_ticket, visible_tickets
from gateway.web.api.body import read_document
from gateway.web.api.models import (
    CloseIn,
    Customer,
    MessageIn,
    Submitted,
    TicketDetail,
    TicketIn,
    TicketPage,
)
from gateway.web.api.reading import (
    BASE,
    detail_out,
    language,
    messages_out,
    ticket_out,
    viewer_from,
)
from gateway.web.api.submit import Draft, Result, Upload, reply_draft, submit
from gateway.web.auth import Scope
from gateway.web.context import WebContext, context
from gateway.web.problems import Problem
from gateway.web.tokens import Client
from store import blobs
from store.db import transaction
from store.queries import message_by_key, ticket_by_number

router = APIRouter(prefix=BASE, tags=["tickets"])
Reader = Annotated[Client, Depends(Scope("tickets:read"))]
Writer = Annotated[Client, Depends(Scope("tickets:write"))]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", description=(
    "A retried request with the same key returns the first result instead of a second ticket."))]
CustomerQ = Annotated[str | None, Query(description="Act for this customer (mail address).")]
OrganisationQ = Annotated[str | None, Query(description="Act for this organisation (mail domain).")]
Lang = Annotated[Literal["de", "en"] | None, Query(description="Language of status labels.")]
_PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {"description": text, "content": {"application/problem+json": {}}}
    for code, text in ((401, "No valid token"), (403, "Token lacks the scope"),
                       (404, "No such ticket for this viewer"),
                       (413, "Larger than the mail size limit"),
                       (422, "A field is invalid (named in the problem)"))}


def _body(model: str) -> dict[str, Any]:
    """The request body in OpenAPI: JSON of the model, or multipart with the files as parts."""
    multipart = {"type": "object", "properties": {
        "data": {"type": "string", "description": "the JSON document (or send its keys as fields)"},
        "attachments": {"type": "array", "items": {"type": "string", "format": "binary"}}}}
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": {"$ref": f"#/components/schemas/{model}"}},
        "multipart/form-data": {"schema": multipart}}}}


def _key(value: str | None) -> str | None:
    """An Idempotency-Key: 1 to 255 visible ASCII characters."""
    if value is None:
        return None
    if not 0 < len(value) <= 255 or not all(33 <= ord(c) <= 126 for c in value):
        raise Problem(422, "validation", "Idempotency-Key must be 1 to 255 visible ASCII characters",
                      field="Idempotency-Key")
    return value


def _customer(web: WebContext, customer: Customer) -> None:
    """A customer address that is one of ours would make the ticket talk to itself."""
    config = web.config
    agents = {a.address for a in config.agents}
    if customer.email in config.own_addresses() | agents \
            or customer.email.rpartition("@")[2] in config.own_domains:
        raise Problem(422, "validation", "customer.email: is one of our own or an agent's addresses",
                      field="customer.email")


@router.post("/tickets", status_code=201, response_model=Submitted, openapi_extra=_body("TicketIn"),
             responses={200: {"description": "Replay of an earlier request with this Idempotency-Key"},
                        202: {"description": "Dropped by a rule"}, **_PROBLEMS})
async def create_ticket(request: Request, client: Writer, idempotency_key: IdempotencyKey = None) -> Response:
    """Open a ticket: the same pipeline, rules and notifications as a mail."""
    web = context(request)
    doc, uploads = await read_document(request, TicketIn, web.max_files, web.max_request_bytes)
    key = _key(idempotency_key)
    _customer(web, doc.customer)
    channel = doc.channel or web.config.channels[0].name
    if web.config.channel(channel) is None:
        raise Problem(422, "validation", f"channel: {channel!r} is not a configured channel",
                      field="channel")
    draft = Draft(source=doc.source, email=doc.customer.email, name=doc.customer.name,
                  subject=doc.subject, text=doc.text, html=doc.html, channel=channel, files=uploads,
                  organisation=doc.organisation, category=doc.category, asset=doc.asset,
                  language=doc.customer.language,
                  request=f"POST /tickets\0{doc.model_dump_json(exclude={'attachments'})}")
    viewer = Viewer(customer=doc.customer.email)
    return await run_in_threadpool(_submit_and_answer, web, client, draft, key, viewer)


def _submit_and_answer(web: WebContext, client: Client, draft: Draft, key: str | None,
                       viewer: Viewer) -> Response:
    """Run the submission and answer with what became of it."""
    with store_errors():
        result = submit(web.engine, web.config, web.rules.current(), client, draft, key,
                        datetime.now(UTC))
    return _answer(web, result, viewer)


def _answer(web: WebContext, result: Result, viewer: Viewer) -> Response:
    """A disposition as an HTTP answer."""
    done = result.disposition
    if done.outcome == "conflict":
        raise Problem(422, "idempotency-conflict", "this Idempotency-Key was used for a different "
                      "request; use a new key for a new request", field="Idempotency-Key")
    if done.outcome == "rejected":
        raise Problem(409, "ticket-closed", f"ticket {done.ticket_number} is closed and takes no "
                      "more messages; open a new ticket")
    if done.outcome == "quarantined":
        raise Problem(500, "internal", "the submission could not be processed; it was kept for an "
                      "administrator (quarantine)")
    if done.outcome == "dropped":
        body = Submitted(outcome="dropped", ticket=None, message=None, detail=done.detail)
        return JSONResponse(body.model_dump(mode="json"), status_code=202)
    with store_errors(), transaction(web.engine) as session:
        ticket = ticket_by_number(session, done.ticket_number or "")
        message = message_by_key(session, result.key)
        if ticket is None:
            raise Problem(500, "internal", "the ticket vanished after it was stored")
        lang = language(session, web.config, viewer, None)
        head = ticket_out(session, web.config, ticket, lang, viewer)
        shown = messages_out(session, ticket, [message], viewer) if message and message.public else []
    body = Submitted.model_validate({"outcome": done.outcome, "ticket": head,
                                     "message": shown[0] if shown else None, "detail": done.detail})
    headers = {"Location": f"{BASE}/tickets/{head.number}"}
    if done.outcome == "duplicate":
        headers["Idempotent-Replayed"] = "true"
    status = 200 if done.outcome == "duplicate" else 201
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers)


@router.get("/tickets", response_model=TicketPage, responses=_PROBLEMS)
def list_tickets(request: Request, client: Reader, customer: CustomerQ = None,
                 organisation: OrganisationQ = None,
                 status: Annotated[list[str] | None, Query(description=(
                     "Portal states to include: in_progress, reply_expected, closed, postponed."))] = None,
                 updated_since: Annotated[datetime | None, Query(description=(
                     "Only tickets changed at or after this time (ISO 8601; UTC if no offset)."))] = None,
                 limit: Annotated[int, Query(ge=1, le=100)] = 20,
                 offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
                 lang: Lang = None) -> TicketPage:
    """The tickets a customer or an organisation may see, most recently updated first."""
    web = context(request)
    viewer = viewer_from(customer, organisation)
    wanted: list[str] | None = None
    if status:
        unknown = [s for s in status if s not in PORTAL_STATES]
        if unknown:
            raise Problem(422, "validation", f"status: unknown state {unknown[0]!r}; known: "
                          f"{', '.join(PORTAL_STATES)}", field="status")
        wanted = sorted({internal for state in status for internal in shown_as(state)})
    since = updated_since
    if since is not None:
        since = (since if since.tzinfo else since.replace(tzinfo=UTC)).astimezone(UTC)
    with store_errors(), transaction(web.engine) as session:
        page = visible_tickets(session, viewer, statuses=wanted, updated_since=since,
                               limit=limit, offset=offset)
        chosen = language(session, web.config, viewer, lang)
        items = [ticket_out(session, web.config, t, chosen, viewer) for t in page.tickets]
    following = None
    if offset + limit < page.total:
        following = str(request.url.include_query_params(offset=offset + limit))
    return TicketPage(items=items, total=page.total, limit=limit, offset=offset, next=following)


@router.get("/tickets/{number}", response_model=TicketDetail, responses=_PROBLEMS)
def get_ticket(request: Request, number: str, client: Reader, customer: CustomerQ = None,
               organisation: OrganisationQ = None, lang: Lang = None) -> TicketDetail:
    """One ticket with its public messages (never internal notes)."""
    web = context(request)
    viewer = viewer_from(customer, organisation)
    with store_errors(), transaction(web.engine) as session:
        ticket = visible_ticket(session, viewer, number)
        if ticket is None:
            raise _not_found(number)
        return detail_out(session, web.config, ticket, language(session, web.config, viewer, lang),
                          viewer)


def _not_found(number: str) -> Problem:
    return Problem(404, "not-found", f"no ticket {number[:40]!r} for this viewer", field="number")


@router.post("/tickets/{number}/messages", status_code=201, response_model=Submitted,
             openapi_extra=_body("MessageIn"), responses={
                 200: {"description": "Replay of an earlier request with this Idempotency-Key"},
                 409: {"description": "The ticket is closed and takes no messages"}, **_PROBLEMS})
async def add_message(request: Request, number: str, client: Writer,
                      idempotency_key: IdempotencyKey = None) -> Response:
    """A customer's message on their ticket; threads like a reply by mail."""
    web = context(request)
    doc, uploads = await read_document(request, MessageIn, web.max_files, web.max_request_bytes)
    key = _key(idempotency_key)
    _customer(web, doc.customer)
    if not (doc.text.strip() or doc.html.strip() or uploads):
        raise Problem(422, "validation", "text: a message needs text, html or attachments", field="text")
    sent = f"POST /tickets/{number}/messages\0{doc.model_dump_json(exclude={'attachments'})}"
    return await run_in_threadpool(_reply, web, client, number, doc.customer, doc.text, doc.html,
                                   uploads, key, sent)


@router.post("/tickets/{number}/close", response_model=Submitted, openapi_extra=_body("CloseIn"),
             responses={
    403: {"description": "Only the ticket's customer or a watcher may close it"}, **_PROBLEMS})
async def close_ticket(request: Request, number: str, client: Writer,
                       idempotency_key: IdempotencyKey = None) -> Response:
    """The customer closes the ticket, as with #close by mail."""
    web = context(request)
    doc, _ = await read_document(request, CloseIn, 0, web.max_request_bytes)
    key = _key(idempotency_key)
    _customer(web, doc.customer)
    return await run_in_threadpool(_reply, web, client, number, doc.customer,
                                   f"#close\n\n{doc.text}".rstrip(), "", [], key,
                                   f"POST /tickets/{number}/close\0{doc.model_dump_json()}")


def _reply(web: WebContext, client: Client, number: str, customer: Customer, text: str, html: str,
           uploads: list[Upload], key: str | None, request: str) -> Response:
    """A customer message on a visible ticket through the pipeline, threaded by In-Reply-To."""
    closing = "/close\0" in request
    viewer = Viewer(customer=customer.email)
    with store_errors(), transaction(web.engine) as session:
        draft = reply_draft(session, number, customer.email, customer.name, customer.language,
                            text, html, uploads, request, closing)
        if draft is None:
            ticket = visible_ticket(session, viewer, number)
            assert ticket is not None
            lang = language(session, web.config, viewer, None)
            head = ticket_out(session, web.config, ticket, lang, viewer)
            body = Submitted(outcome="closed", ticket=head, message=None, detail="already closed")
            return JSONResponse(body.model_dump(mode="json"), status_code=200)
    response = _submit_and_answer(web, client, draft, key, viewer)
    if closing and response.status_code in (200, 201):
        return _closed_answer(web, number, viewer)
    return response


def _closed_answer(web: WebContext, number: str, viewer: Viewer) -> Response:
    with store_errors(), transaction(web.engine) as session:
        ticket = visible_ticket(session, viewer, number)
        assert ticket is not None
        head = ticket_out(session, web.config, ticket, language(session, web.config, viewer, None), viewer)
    body = Submitted(outcome="closed" if ticket.status in CLOSED else "followup", ticket=head,
                     message=None)
    return JSONResponse(body.model_dump(mode="json"), status_code=200)


@router.get("/tickets/{number}/attachments/{attachment_id}", response_class=Response,
            responses={200: {"content": {"application/octet-stream": {}}}, **_PROBLEMS})
def download(request: Request, number: str, attachment_id: int, client: Reader,
             customer: CustomerQ = None, organisation: OrganisationQ = None) -> Response:
    """A file of a public message, as an attachment download."""
    web = context(request)
    viewer = viewer_from(customer, organisation)
    with store_errors(), transaction(web.engine) as session:
        ticket = visible_ticket(session, viewer, number)
        item = public_attachment(session, ticket.id, attachment_id) if ticket and ticket.id else None
        if item is None:
            raise Problem(404, "not-found", "no such attachment on a public message of this ticket",
                          field="attachment_id")
        data, name, ctype = blobs.read(session, item.blob), item.filename, item.content_type
    return Response(data, media_type=ctype, headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name, safe='')}",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox"})
