"""The HTTP API against a real uvicorn server on loopback, on SQLite and PostgreSQL.

Tickets through the API take the mail's way: the same rules, notifications, threading and
transaction. Visibility: an organisation never sees another's tickets, and internal notes
never appear in any response.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from gateway.intake.raw import RawMail
from gateway.pipeline import process
from gateway.web.api.models import TicketIn
from gateway.web.api.submit import Draft, kept_submission, message_id_for, render
from gateway.web.tokens import SCOPES, Client, create_token, revoke_token, token_hash
from store import blobs
from store.db import transaction
from store.models import Attachment, Message, OutboxMail, Ticket
from store.queries import ticket_by_number
from store.views import ticket_detail
from tests.conftest import mail
from tests.servers.smtp import SmtpServer
from tests.web_fixtures import Door, door_config, flush, serve


def tickets_in_store(engine: Engine) -> list[Ticket]:
    with transaction(engine) as session:
        return list(session.exec(select(Ticket)).all())


def is_problem(answer: httpx.Response, status: int) -> dict[str, object]:
    """The answer is an RFC 9457 problem with this status; its document."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    doc: dict[str, object] = answer.json()
    assert doc["status"] == status and str(doc["type"]).startswith("urn:ticketgate:problem:")
    assert "Traceback" not in answer.text
    return doc


async def test_portal_ticket_gets_the_example_rule_and_the_portal_notification_with_its_link(
        door: Door, smtp: SmtpServer) -> None:
    answer = door.create(asset="PRN-0815", category="Hardware", organisation="acme.example")
    assert answer.status_code == 201, answer.text
    number = answer.json()["ticket"]["number"]
    assert answer.headers["location"] == f"/api/v1/tickets/{number}"
    with transaction(door.engine) as session:
        detail = ticket_detail(session, number)
    assert detail is not None
    assert (detail["source"], detail["activity_type"]) == ("portal", "Remote support")
    assert detail["categories"] == ["Hardware", "Portal"]  # the client's, then the rule's
    assert [hit["rule"] for hit in detail["rule_hits"]] == ["portal tickets are remote support"]
    ticket = answer.json()["ticket"]
    assert (ticket["asset"], ticket["organisation"]) == ("PRN-0815", "acme.example")
    assert ticket["status"] == {"key": "in_progress", "label": "In progress", "colour": "orange",
                                "hex": "#e8890c"}
    await flush(door)
    (update,) = smtp.handler.to("anna@acme.example")
    text = update.message.get_body(("plain",)).get_content()
    assert f"https://portal.example.com/t/{number}" in text
    assert f"[#{number}]" in update.message["Subject"] and "Update" in update.message["Subject"]
    with transaction(door.engine) as session:
        templates = sorted(session.exec(select(OutboxMail.template)).all())
    assert templates == ["agent/new_ticket", "portal/ticket_update"]
    assert len(smtp.handler.to("alice@example.com")) == 1  # the channel's agent heard of it


async def test_api_source_gets_the_ordinary_acknowledgement_and_no_portal_rule(door: Door) -> None:
    answer = door.create(source="api", subject="Frage zur Rechnung 4711")
    assert answer.status_code == 201
    with transaction(door.engine) as session:
        detail = ticket_detail(session, answer.json()["ticket"]["number"])
        templates = set(session.exec(select(OutboxMail.template)).all())
    assert detail is not None and detail["activity_type"] is None
    assert detail["categories"] == ["Billing"]  # 20-keywords: an invoice question
    assert templates & {"customer/acknowledgement", "customer/out_of_hours"}
    assert "portal/ticket_update" not in templates


def test_an_idempotent_retry_returns_the_first_ticket_and_a_changed_body_is_refused(
        door: Door) -> None:
    first = door.create(key="order-77")
    again = door.create(key="order-77")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["ticket"]["number"] == first.json()["ticket"]["number"]
    assert again.json()["message"]["id"] == first.json()["message"]["id"]
    changed = door.create(key="order-77", subject="Something else")
    assert is_problem(changed, 422)["field"] == "Idempotency-Key"
    assert len(tickets_in_store(door.engine)) == 1
    with transaction(door.engine) as session:
        acks = session.exec(select(OutboxMail).where(OutboxMail.audience == "customer")).all()
    assert len(acks) == 1  # one notification, not one per retry
    assert door.create(key="order-78").json()["ticket"]["number"] != first.json()["ticket"]["number"]


def test_concurrent_retries_with_one_key_make_one_ticket(door: Door) -> None:
    answers: list[int] = []

    def post() -> None:
        with httpx.Client(base_url=door.url, headers={"Authorization": f"Bearer {door.token}"},
                          timeout=60) as client:
            body = {"customer": {"email": "anna@acme.example"}, "subject": "Same", "text": "x"}
            answers.append(client.post("/api/v1/tickets", json=body,
                                       headers={"Idempotency-Key": "race-1"}).status_code)

    threads = [threading.Thread(target=post) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [200] * 5 + [201]
    assert len(tickets_in_store(door.engine)) == 1


@pytest.fixture
def two_organisations(door: Door) -> Iterator[dict[str, str]]:
    """Tickets of anna and bert (acme.example) and of carla (beta.example)."""
    numbers = {}
    for email in ("anna@acme.example", "bert@acme.example", "carla@beta.example"):
        answer = door.create(email=email, subject=f"Ticket von {email}")
        assert answer.status_code == 201
        numbers[email] = answer.json()["ticket"]["number"]
    yield numbers


def _numbers(door: Door, **viewer: str) -> set[str]:
    answer = door.client.get("/api/v1/tickets", params=viewer)
    assert answer.status_code == 200, answer.text
    return {t["number"] for t in answer.json()["items"]}


def test_organisation_a_never_sees_organisation_b(door: Door, two_organisations: dict[str, str]) -> None:
    anna, bert, carla = (two_organisations[e] for e in
                         ("anna@acme.example", "bert@acme.example", "carla@beta.example"))
    assert _numbers(door, organisation="acme.example") == {anna, bert}
    assert _numbers(door, organisation="beta.example") == {carla}
    for viewer in ({"organisation": "acme.example"}, {"customer": "anna@acme.example"}):
        assert is_problem(door.client.get(f"/api/v1/tickets/{carla}", params=viewer), 404)
    note = {"customer": {"email": "anna@acme.example"}, "text": "let me in"}
    assert is_problem(door.client.post(f"/api/v1/tickets/{carla}/messages", json=note), 404)
    assert is_problem(door.client.post(f"/api/v1/tickets/{carla}/close",
                                       json={"customer": {"email": "anna@acme.example"}}), 404)
    with transaction(door.engine) as session:
        ticket = ticket_by_number(session, carla)
        assert ticket is not None and ticket.status == "new"
        texts = session.exec(select(Message.text).where(Message.ticket_id == ticket.id)).all()
    assert not any("let me in" in t for t in texts)


def test_a_customer_sees_colleagues_tickets_only_where_the_organisation_grants_it(
        door: Door, two_organisations: dict[str, str]) -> None:
    anna, bert = two_organisations["anna@acme.example"], two_organisations["bert@acme.example"]
    assert _numbers(door, customer="anna@acme.example") == {anna}
    assert is_problem(door.client.get(f"/api/v1/tickets/{bert}",
                                      params={"customer": "anna@acme.example"}), 404)
    granted = door.client.patch("/api/v1/organisations/acme.example", json={"share_tickets": True})
    assert granted.status_code == 200 and granted.json()["share_tickets"] is True
    assert _numbers(door, customer="anna@acme.example") == {anna, bert}
    assert door.client.get(f"/api/v1/tickets/{bert}", params={"customer": "anna@acme.example"}
                           ).status_code == 200
    # seeing is not closing: only bert (or someone copied on it) closes bert's ticket
    refused = door.client.post(f"/api/v1/tickets/{bert}/close",
                               json={"customer": {"email": "anna@acme.example"}})
    assert is_problem(refused, 403)["field"] == "customer.email"
    assert _numbers(door, customer="carla@beta.example") == {two_organisations["carla@beta.example"]}
    door.client.patch("/api/v1/organisations/acme.example", json={"share_tickets": False})
    assert _numbers(door, customer="anna@acme.example") == {anna}


def test_internal_notes_and_agent_only_mail_never_appear_in_any_api_response(door: Door) -> None:
    created = door.create(email="anna@acme.example")
    number = created.json()["ticket"]["number"]
    with transaction(door.engine) as session:
        ticket = ticket_by_number(session, number)
        assert ticket is not None and ticket.id is not None
        for n, (kind, public, direction) in enumerate([("note", False, "in"),
                                                        ("unverified", False, "in"),
                                                        ("notification", False, "out"),
                                                        ("customer", False, "in")]):
            row = Message(ticket_id=ticket.id, kind=kind, public=public, direction=direction,
                          message_id=f"secret-{n}@example.com", message_key=f"secret-key-{n}",
                          text=f"SECRET-{kind}: the customer is difficult",
                          from_address="alice.private@example.com", subject="SECRET subject")
            session.add(row)
            session.flush()
        agent = Message(ticket_id=ticket.id, kind="agent", public=True, direction="in",
                        message_id="agent-1@example.com", message_key="agent-key-1",
                        text="We will send a technician.", from_name="Alice (Support)",
                        from_address="alice.private@example.com")
        session.add(agent)
        session.flush()
        session.add(Attachment(message_id=row.id or 0, filename="secret.txt", content_type="text/plain",
                               size=6, blob=blobs.put(session, b"SECRET")))
        session.flush()
        secret_file = session.exec(select(Attachment.id)).first()
    view = {"customer": "anna@acme.example"}
    answers = [
        created,
        door.client.get("/api/v1/tickets", params=view),
        door.client.get("/api/v1/tickets", params={"organisation": "acme.example"}),
        door.client.get(f"/api/v1/tickets/{number}", params=view),
        door.client.get(f"/api/v1/tickets/{number}", params={"organisation": "acme.example"}),
        door.client.get(f"/api/v1/tickets/{number}/attachments/{secret_file}", params=view),
        door.client.post(f"/api/v1/tickets/{number}/messages",
                         json={"customer": {"email": "anna@acme.example"}, "text": "Danke"}),
        door.client.post(f"/api/v1/tickets/{number}/close",
                         json={"customer": {"email": "anna@acme.example"}}),
        door.client.get(f"/api/v1/tickets/{number}", params=view),
    ]
    for answer in answers:
        assert "SECRET" not in answer.text and "alice.private" not in answer.text, answer.text
    assert answers[5].status_code == 404  # the note's file
    messages = answers[-1].json()["messages"]
    assert [m["author"]["role"] for m in messages] == ["customer", "agent", "customer", "customer"]
    assert messages[1]["author"] == {"role": "agent", "name": "Alice (Support)", "email": None}


def test_missing_revoked_or_unknown_token_is_401_and_a_missing_scope_403(door: Door, engine: Engine) -> None:
    anonymous = httpx.post(f"{door.url}/api/v1/tickets", json={})
    assert is_problem(anonymous, 401)["field"] == "Authorization"
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    forged = httpx.get(f"{door.url}/api/v1/tickets", params={"organisation": "acme.example"},
                       headers={"Authorization": "Bearer tg_" + "A" * 43})
    is_problem(forged, 401)
    reader = create_token(engine, "reader", ["tickets:read"])
    as_reader = {"Authorization": f"Bearer {reader}"}
    assert httpx.get(f"{door.url}/api/v1/tickets", params={"organisation": "acme.example"},
                     headers=as_reader).status_code == 200
    refused = httpx.post(f"{door.url}/api/v1/tickets", headers=as_reader,
                         json={"customer": {"email": "a@acme.example"}, "subject": "x"})
    assert "tickets:write" in str(is_problem(refused, 403)["detail"])
    assert is_problem(httpx.patch(f"{door.url}/api/v1/organisations/acme.example", headers=as_reader,
                                  json={"share_tickets": True}), 403)
    revoke_token(engine, "reader")
    is_problem(httpx.get(f"{door.url}/api/v1/tickets", params={"organisation": "acme.example"},
                         headers=as_reader), 401)
    assert tickets_in_store(engine) == []


GOOD = {"customer": {"email": "anna@acme.example"}, "subject": "Hallo"}


@pytest.mark.parametrize(("body", "field"), [
    ({**GOOD, "customer": {"email": "not an address"}}, "customer.email"),
    ({**GOOD, "customer": {"email": "alice@example.com"}}, "customer.email"),  # an agent
    ({**GOOD, "customer": {"email": "support@example.com"}}, "customer.email"),  # ourselves
    ({"customer": {"email": "anna@acme.example"}}, "subject"),
    ({**GOOD, "subject": ""}, "subject"),
    ({**GOOD, "subject": "x" * 1001}, "subject"),
    ({**GOOD, "source": "fax"}, "source"),
    ({**GOOD, "source": 5}, "source"),
    ({**GOOD, "channel": "nowhere"}, "channel"),
    ({**GOOD, "organisation": "gmail.com"}, "organisation"),
    ({**GOOD, "organisation": "not a domain"}, "organisation"),
    ({**GOOD, "asset": "a" * 256}, "asset"),
    ({**GOOD, "text": ["a list"]}, "text"),
    ({**GOOD, "customer": "anna@acme.example"}, "customer"),
    ({**GOOD, "customer": {"email": "anna@acme.example", "role": "admin"}}, "customer.role"),
    ({**GOOD, "priority": 9}, "priority"),
    ({**GOOD, "attachments": [{"filename": "a.txt", "content_base64": "%%%"}]},
     "attachments[0].content_base64"),
    ({**GOOD, "attachments": [{"filename": "", "content_base64": ""}]}, "attachments[0].filename"),
    ({**GOOD, "attachments": [{"filename": "a", "content_type": "evil", "content_base64": ""}]},
     "attachments[0].content_type"),
    ([1, 2, 3], "body"),
    ("just a string", "body"),
])
def test_each_bad_field_is_a_problem_that_names_it(door: Door, body: object, field: str) -> None:
    answer = door.client.post("/api/v1/tickets", json=body)
    doc = is_problem(answer, 422)
    assert doc["field"] == field, doc
    assert tickets_in_store(door.engine) == []


def test_bad_query_and_header_values_are_problems_too(door: Door) -> None:
    cases = [
        (door.client.get("/api/v1/tickets"), "customer"),
        (door.client.get("/api/v1/tickets", params={"customer": "x", "organisation": "y"}), "customer"),
        (door.client.get("/api/v1/tickets", params={"customer": "no-at-sign"}), "customer"),
        (door.client.get("/api/v1/tickets", params={"organisation": "a.example", "limit": 0}), "limit"),
        (door.client.get("/api/v1/tickets", params={"organisation": "a.example", "limit": "ten"}), "limit"),
        (door.client.get("/api/v1/tickets", params={"organisation": "a.example", "status": "open"}),
         "status"),
        (door.client.get("/api/v1/tickets", params={"organisation": "a.example",
                                                    "updated_since": "yesterday"}), "updated_since"),
        (door.client.get("/api/v1/tickets/T1/attachments/abc", params={"organisation": "a.example"}),
         "attachment_id"),
        (door.client.post("/api/v1/tickets", json=GOOD, headers={"Idempotency-Key": "a b"}),
         "Idempotency-Key"),
        (door.client.patch("/api/v1/organisations/acme.example", json={"share_tickets": "maybe"}),
         "share_tickets"),
        (door.client.patch("/api/v1/organisations/gmail.com", json={"share_tickets": True}), "domain"),
    ]
    for answer, field in cases:
        assert is_problem(answer, 422)["field"] == field, answer.text
    assert is_problem(door.client.get("/api/v1/nowhere"), 404)
    assert is_problem(door.client.delete("/api/v1/tickets"), 405)


def test_no_input_makes_a_500_or_a_traceback(door: Door) -> None:
    bodies: list[tuple[bytes, str]] = [
        (b"{", "application/json"), (b"", "application/json"), (b"null", "application/json"),
        (b'{"customer": {"email": "a@acme.example"}, "subject": "\\ud800 lone"}', "application/json"),
        (b"\xff\xfe\x00garbage", "application/json"),
        (json.dumps({**GOOD, "text": "x" * 200_000, "html": "<script>alert(1)</script>" * 1000}).encode(),
         "application/json"),
        (json.dumps({**GOOD, "subject": "Hi\r\nBcc: victim@evil.example"}).encode(), "application/json"),
        (json.dumps({**GOOD, "customer": {"email": "a@acme.example", "name": "\u0000\u2028x"}}).encode(),
         "application/json"),
        (b"--xyz\r\nContent-Disposition: form-data; name=\"subject\"\r\n\r\nhi",
         "multipart/form-data; boundary=xyz"),
        (b"no boundary at all", "multipart/form-data"),
        (b"subject=hi", "application/x-www-form-urlencoded"),
        (b"<ticket/>", "application/xml"),
    ]
    for body, ctype in bodies:
        answer = door.client.post("/api/v1/tickets", content=body, headers={"Content-Type": ctype})
        assert answer.status_code < 500, (body[:60], answer.text)
        assert "Traceback" not in answer.text
        if answer.status_code >= 400:
            assert answer.headers["content-type"].startswith("application/problem+json")
    with transaction(door.engine) as session:
        stored = session.exec(select(Ticket)).all()
        subjects = [t.subject for t in stored]
        htmls = session.exec(select(Message.html)).all()
    assert all("\r" not in s and "\n" not in s for s in subjects)
    assert not any("<script" in h for h in htmls)  # sanitised like mail


def test_multipart_with_files_and_download_of_the_exact_bytes(door: Door) -> None:
    pdf = bytes(range(256)) * 40
    answer = door.client.post("/api/v1/tickets", data={
        "source": "web", "customer.email": "anna@acme.example", "customer.name": "Anna",
        "subject": "Foto vom Fehler", "asset": "Anlage 7"},
        files=[("attachments", ("../../etc/fehler.pdf", pdf, "application/pdf")),
               ("attachments", ("notiz.txt", "Grüße".encode(), "text/plain"))])
    assert answer.status_code == 201, answer.text
    files = answer.json()["message"]["attachments"]
    assert [f["filename"] for f in files] == ["fehler.pdf", "notiz.txt"]  # no paths, like mail
    download = door.client.get(files[0]["href"])
    assert download.status_code == 200 and download.content == pdf
    assert download.headers["content-disposition"].startswith("attachment;")
    assert download.headers["x-content-type-options"] == "nosniff"
    as_json = door.client.post("/api/v1/tickets", data={"data": json.dumps(GOOD)},
                               files=[("attachments", ("a.bin", b"\x00\x01", "application/octet-stream"))])
    assert as_json.status_code == 201, as_json.text
    wrong_part = door.client.post("/api/v1/tickets", data={"data": json.dumps(GOOD)},
                                  files=[("upload", ("a.bin", b"1", "application/octet-stream"))])
    assert is_problem(wrong_part, 422)["field"] == "upload"


def test_requests_over_the_mail_size_limit_are_413_and_too_many_files_422(
        engine: Engine, smtp: SmtpServer) -> None:
    url = engine.url.render_as_string(hide_password=False)
    config = door_config(url, smtp, limits={"max_message_bytes": 60_000}, http={
        "listen": "127.0.0.1:1", "max_attachments": 2})
    for door in serve(engine, config):
        big = door.client.post("/api/v1/tickets", data={"customer.email": "a@acme.example",
                                                        "subject": "big"},
                               files=[("attachments", ("big.bin", b"x" * 50_000, "application/pdf"))])
        assert is_problem(big, 413)["field"] == "attachments"  # 50 kB is 67 kB in base64
        huge = door.client.post("/api/v1/tickets", content=b"x" * 1_200_000,  # 80 kB + 1 MiB room
                                headers={"Content-Type": "application/json"})
        assert is_problem(huge, 413)["field"] == "body"
        many = door.client.post("/api/v1/tickets", data={"customer.email": "a@acme.example",
                                                         "subject": "many"},
                                files=[("attachments", (f"{n}.txt", b"1", "text/plain")) for n in range(3)])
        assert is_problem(many, 422)["field"] == "attachments"
        broken = door.client.post("/api/v1/tickets", content=b"--b\r\nContent-Disposition: form-data",
                                  headers={"Content-Type": "multipart/form-data; boundary=b"})
        assert broken.status_code in (400, 422) and is_problem(broken, broken.status_code)["field"]
        assert tickets_in_store(engine) == []


async def test_a_customer_message_threads_onto_the_ticket_and_closing_uses_close(
        door: Door, smtp: SmtpServer) -> None:
    number = door.create().json()["ticket"]["number"]
    await flush(door)
    answer = door.client.post(f"/api/v1/tickets/{number}/messages", json={
        "customer": {"email": "anna@acme.example"}, "text": "Noch eine Frage",
        "attachments": [{"filename": "log.txt", "content_type": "text/plain",
                         "content_base64": "bG9nIGxpbmU="}]})
    assert answer.status_code == 201, answer.text
    assert (answer.json()["outcome"], answer.json()["ticket"]["number"]) == ("followup", number)
    await flush(door)
    assert len(smtp.handler.to("alice@example.com")) == 2  # new ticket, then the new message
    empty = door.client.post(f"/api/v1/tickets/{number}/messages",
                             json={"customer": {"email": "anna@acme.example"}, "text": "  "})
    assert is_problem(empty, 422)["field"] == "text"
    closed = door.client.post(f"/api/v1/tickets/{number}/close",
                              json={"customer": {"email": "anna@acme.example"}, "text": "Geht wieder"})
    assert closed.status_code == 200, closed.text
    assert closed.json()["outcome"] == "closed"
    assert closed.json()["ticket"]["status"]["key"] == "closed"
    with transaction(door.engine) as session:
        ticket = ticket_by_number(session, number)
        assert ticket is not None and ticket.status == "closed" and ticket.closed_at is not None
    await flush(door)
    last = smtp.handler.to("anna@acme.example")[-1].message
    assert "Closed" in last.get_body(("plain",)).get_content()  # portal/ticket_update, closed
    again = door.client.post(f"/api/v1/tickets/{number}/close",
                             json={"customer": {"email": "anna@acme.example"}})
    assert (again.status_code, again.json()["detail"]) == (200, "already closed")


def test_a_message_to_a_closed_ticket_follows_the_closed_ticket_policy(
        engine: Engine, smtp: SmtpServer) -> None:
    url = engine.url.render_as_string(hide_password=False)
    for door in serve(engine, door_config(url, smtp, tickets={"closed_followup": "reject"})):
        number = door.create().json()["ticket"]["number"]
        door.client.post(f"/api/v1/tickets/{number}/close", json={"customer": {"email": "anna@acme.example"}})
        late = door.client.post(f"/api/v1/tickets/{number}/messages",
                                json={"customer": {"email": "anna@acme.example"}, "text": "Und noch was"})
        assert is_problem(late, 409)["type"] == "urn:ticketgate:problem:ticket-closed"


def test_listing_filters_by_portal_state_and_updated_since_and_pages(door: Door) -> None:
    numbers = [door.create(subject=f"Frage {n}").json()["ticket"]["number"] for n in range(5)]
    door.client.post(f"/api/v1/tickets/{numbers[0]}/close", json={"customer": {"email": "anna@acme.example"}})
    view = {"customer": "anna@acme.example"}
    closed = door.client.get("/api/v1/tickets", params={**view, "status": "closed"}).json()
    assert [t["number"] for t in closed["items"]] == [numbers[0]]
    assert closed["items"][0]["status"]["colour"] == "green"
    open_ones = door.client.get("/api/v1/tickets",
                                params={**view, "status": ["in_progress", "reply_expected"]})
    assert {t["number"] for t in open_ones.json()["items"]} == set(numbers[1:])
    first = door.client.get("/api/v1/tickets", params={**view, "limit": 2}).json()
    assert (first["total"], len(first["items"])) == (5, 2) and first["next"]
    second = door.client.get(first["next"]).json()
    third = door.client.get(second["next"]).json()
    assert third["next"] is None
    seen = [t["number"] for page in (first, second, third) for t in page["items"]]
    assert sorted(seen) == sorted(numbers) and seen[0] == numbers[0]  # the closed one changed last
    with transaction(door.engine) as session:
        newest = session.exec(select(Ticket).where(Ticket.number == numbers[0])).one().updated_at
    since = newest.isoformat() if newest.tzinfo else newest.isoformat() + "+00:00"
    recent = door.client.get("/api/v1/tickets", params={**view, "updated_since": since}).json()
    assert [t["number"] for t in recent["items"]] == [numbers[0]]
    german = door.client.get("/api/v1/tickets", params={**view, "status": "closed", "lang": "de"}).json()
    assert german["items"][0]["status"]["label"] == "Geschlossen"


def test_the_openapi_document_and_docs_page_are_served(door: Door) -> None:
    spec = door.client.get("/api/v1/openapi.json").json()
    assert {"/api/v1/tickets", "/api/v1/tickets/{number}", "/api/v1/tickets/{number}/messages",
            "/api/v1/tickets/{number}/close", "/api/v1/tickets/{number}/attachments/{attachment_id}",
            "/api/v1/organisations/{domain}"} <= set(spec["paths"])
    body = spec["paths"]["/api/v1/tickets"]["post"]["requestBody"]["content"]
    assert body["application/json"]["schema"]["$ref"] == "#/components/schemas/TicketIn"
    assert "asset" in spec["components"]["schemas"]["TicketIn"]["properties"]
    assert "swagger" in door.client.get("/api/docs").text.lower()


def test_mail_from_a_portal_mailbox_is_a_portal_ticket(engine: Engine) -> None:
    config = door_config(engine.url.render_as_string(hide_password=False))
    raw = RawMail(mail(1, "Formular: Drucker"), "portal-box", 1, 1, "support", "portal")
    assert process(engine, config, raw).outcome == "created"
    (ticket,) = tickets_in_store(engine)
    assert ticket.source == "portal"


def test_a_retried_message_is_a_replay_even_after_the_thread_moved_on(door: Door) -> None:
    number = door.create().json()["ticket"]["number"]
    body = {"customer": {"email": "anna@acme.example"}, "text": "Foto anbei"}
    first = door.client.post(f"/api/v1/tickets/{number}/messages", json=body,
                             headers={"Idempotency-Key": "m-1"})
    door.client.post(f"/api/v1/tickets/{number}/messages",
                     json={"customer": {"email": "anna@acme.example"}, "text": "Und noch eins"})
    again = door.client.post(f"/api/v1/tickets/{number}/messages", json=body,
                             headers={"Idempotency-Key": "m-1"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["message"]["id"] == first.json()["message"]["id"]
    detail = door.client.get(f"/api/v1/tickets/{number}", params={"customer": "anna@acme.example"})
    assert [m["text"].strip() for m in detail.json()["messages"]] == [
        "Seit heute früh kein Ausdruck.", "Foto anbei", "Und noch eins"]


def test_a_quarantined_submission_retried_keeps_its_fields_and_its_idempotency(door: Door) -> None:
    client = Client("test-4", frozenset(SCOPES), token_hash(door.token))
    body = {"source": "portal", "customer": {"email": "anna@acme.example", "name": "Anna Kunde"},
            "subject": "Drucker druckt nicht", "text": "Seit heute früh kein Ausdruck.",
            "asset": "PRN-1"}
    sent = TicketIn.model_validate(body).model_dump_json(exclude={"attachments"})
    draft = Draft(source="portal", email="anna@acme.example", name="Anna Kunde",
                  subject=str(body["subject"]), text=str(body["text"]), html="", channel="support",
                  asset="PRN-1", request=f"POST /tickets\0{sent}")
    data = render(door.config, draft, message_id_for(door.config, client, "q-1"), client,
                  datetime.now(UTC))
    raw = kept_submission(door.config, data, "api:test-4")  # as `quarantine retry` rebuilds it
    assert (raw.source, raw.submission and raw.submission.asset) == ("portal", "PRN-1")
    done = process(door.engine, door.config, raw)
    assert done.outcome == "created"
    replay = door.create(key="q-1", asset="PRN-1")  # the client retries after the outage
    assert (replay.status_code, replay.json()["ticket"]["number"]) == (200, done.ticket_number)
    assert replay.json()["ticket"]["asset"] == "PRN-1"
