"""The customer portal over real HTTP (uvicorn on loopback, httpx): sign-in by mailed link,
sessions, CSRF, rate limits, who may see which ticket, uploads, headers, languages."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from gateway.cli import main
from gateway.config import parse_config
from gateway.errors import ConfigError
from gateway.statuses import COLOURS
from store.db import transaction
from store.models import Attachment, Message, PortalLink, PortalSession, Ticket
from tests.portalkit import FORM_ID, Site, Visitor, serve_portal
from tests.servers.smtp import SmtpServer

ANNA, BERT, CARL = "anna@acme.example", "bert@acme.example", "carl@other.example"


@pytest.fixture
def site(engine: Engine, smtp: SmtpServer) -> Iterator[Site]:
    """The portal with small rate limits, so tests reach them."""
    yield from serve_portal(engine, smtp, links_per_address_hour=3, links_per_client_hour=8,
                            max_attachments=2, max_file_mb=1)


def test_a_link_signs_in_once_with_a_secure_session_cookie(site: Site) -> None:
    site.open_ticket(ANNA)
    anna = Visitor(site)
    assert anna.ask_link(ANNA).status_code == 200
    link = site.link_for(ANNA)
    token = link.rsplit("/", 1)[1]
    answer = anna.follow(link)
    assert answer.status_code == 303 and answer.headers["location"] == "/portal/tickets"
    cookie = next(c for c in anna.set_cookies if c.startswith("__Host-tg_portal="))
    attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"secure", "httponly", "samesite=lax", "path=/"} <= attributes
    assert not any(a.startswith("domain") for a in attributes)
    listing = anna.get("/portal/tickets")
    assert listing.status_code == 200 and "Drucker druckt nicht" in listing.text
    with transaction(site.engine) as session:  # only hashes are kept
        row = session.exec(select(PortalLink).where(PortalLink.address == ANNA)).one()
        assert row.token_hash == hashlib.sha256(token.encode()).hexdigest() and row.used_at
        stored = session.exec(select(PortalSession)).one()
        assert stored.token_hash != anna.cookies["__Host-tg_portal"] and stored.address == ANNA
    thief = Visitor(site)  # the link is spent: for this browser and any other
    path, token = link.removeprefix(site.url), thief.csrf("/portal/signin")
    assert thief.get(path).status_code == 410
    assert thief.post(path, data={"csrf": token}).status_code == 410
    assert anna.post(path, data={"csrf": anna.csrf("/portal/tickets")}).status_code == 410
    assert "__Host-tg_portal" not in thief.cookies


def test_unknown_addresses_get_the_same_answer_and_no_mail(site: Site) -> None:
    site.open_ticket(ANNA)
    known = Visitor(site).ask_link(ANNA)
    unknown = Visitor(site).ask_link("nobody@acme.example")
    agent = Visitor(site).ask_link("alice@example.com")
    assert known.status_code == unknown.status_code == agent.status_code == 200
    assert known.text == unknown.text == agent.text
    site.link_for(ANNA)
    assert not site.smtp.handler.to("nobody@acme.example")
    assert not site.smtp.handler.to("alice@example.com")


def test_an_expired_link_is_refused(site: Site) -> None:
    site.open_ticket(ANNA)
    anna = Visitor(site)
    anna.ask_link(ANNA)
    link = site.link_for(ANNA)
    with transaction(site.engine) as session:
        row = session.exec(select(PortalLink).where(PortalLink.address == ANNA)).one()
        row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
        session.add(row)
    path = link.removeprefix(site.url)
    assert anna.get(path).status_code == 410
    assert anna.post(path, data={"csrf": anna.csrf("/portal/signin")}).status_code == 410
    assert "__Host-tg_portal" not in anna.cookies
    assert Visitor(site).get(path[:-3] + "xyz").status_code == 410  # a mangled link too


def test_link_requests_are_limited_per_address_and_per_client(site: Site) -> None:
    site.open_ticket(ANNA)
    anna = Visitor(site)
    answers = [anna.ask_link(ANNA).status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]
    assert len(site.smtp.handler.to(ANNA)) >= 1
    nobody = [Visitor(site).ask_link("nobody@acme.example").status_code for _ in range(4)]
    assert nobody == [200, 200, 200, 429]  # the same for an address that is no customer's
    others = [Visitor(site).ask_link(f"x{i}@acme.example").status_code for i in range(3)]
    assert others == [200, 200, 429]  # 8 requests from this client in the hour: the client is limited


def test_forms_without_or_with_a_wrong_csrf_token_are_refused(site: Site) -> None:
    number = site.open_ticket(ANNA)
    assert Visitor(site).post("/portal/signin", data={"email": ANNA}).status_code == 403
    assert not site.smtp.handler.to(ANNA)
    anna, bert = Visitor(site), Visitor(site)
    anna.sign_in(ANNA)
    site.open_ticket(BERT)
    bert.sign_in(BERT)
    for data in ({"text": "no token"}, {"text": "wrong", "csrf": "x" * 43},
                 {"text": "bert's token", "csrf": bert.csrf("/portal/tickets")}):
        assert anna.post(f"/portal/tickets/{number}/reply", data=data).status_code == 403
        assert anna.post("/portal/tickets", data={**data, "subject": "s"}).status_code == 403
        assert anna.post(f"/portal/tickets/{number}/close", data=data).status_code == 403
    with transaction(site.engine) as session:
        ticket = session.exec(select(Ticket).where(Ticket.number == number)).one()
        assert ticket.status != "closed"
        texts = [m.text for m in session.exec(select(Message).where(Message.ticket_id == ticket.id))]
        assert not any("token" in t or "wrong" in t for t in texts)
    assert anna.post("/portal/signout", data={}).status_code == 403  # sign-out too


def test_another_customers_ticket_and_files_are_404(site: Site) -> None:
    mine = site.open_ticket(ANNA)
    theirs = site.open_ticket(CARL, attachments=[{"filename": "secret.txt", "content_base64": "c2VjcmV0"}])
    anna = Visitor(site)
    anna.sign_in(ANNA)
    assert anna.get(f"/portal/tickets/{mine}").status_code == 200
    with transaction(site.engine) as session:
        attachment = session.exec(select(Attachment).join(Message)
                                  .where(Message.direction == "in")).one()  # Carl's file
    missing = anna.get("/portal/tickets/T00000000.0000")
    assert missing.status_code == 404
    for path in (f"/portal/tickets/{theirs}", f"/portal/tickets/{theirs}/attachments/{attachment.id}",
                 f"/portal/tickets/{mine}/attachments/{attachment.id}"):
        answer = anna.get(path)
        assert answer.status_code == 404 and answer.text == missing.text  # as if it did not exist
    token = anna.csrf("/portal/tickets")
    assert anna.post(f"/portal/tickets/{theirs}/reply", data={"csrf": token, "text": "hi"}).status_code == 404
    assert anna.post(f"/portal/tickets/{theirs}/close", data={"csrf": token}).status_code == 404
    with transaction(site.engine) as session:
        ticket = session.exec(select(Ticket).where(Ticket.number == theirs)).one()
        assert ticket.status != "closed"


def test_without_a_session_a_ticket_link_goes_through_sign_in_and_back(site: Site) -> None:
    number = site.open_ticket(ANNA)
    assert site.config.outbound.portal_url == f"{site.url}/portal/tickets/{{number}}"
    visitor = Visitor(site)
    answer = visitor.get(f"/portal/tickets/{number}")
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/portal/signin?next=%2Fportal%2Ftickets%2F{number}"
    form = visitor.get(answer.headers["location"])
    assert f'name="next" value="/portal/tickets/{number}"' in form.text
    token = visitor.csrf(answer.headers["location"])
    visitor.post("/portal/signin", data={"csrf": token, "email": ANNA,
                                         "next": f"/portal/tickets/{number}"})
    landed = visitor.follow(site.link_for(ANNA))
    assert landed.headers["location"] == f"/portal/tickets/{number}"
    evil, before = Visitor(site), len(site.smtp.handler.to(ANNA))
    token = evil.csrf("/portal/signin")
    evil.post("/portal/signin", data={"csrf": token, "email": ANNA, "next": "//evil.example/x"})
    assert evil.follow(site.link_for(ANNA, since=before)).headers["location"] == "/portal/tickets"


def test_sign_out_revokes_the_session_in_the_store(site: Site) -> None:
    site.open_ticket(ANNA)
    anna = Visitor(site)
    anna.sign_in(ANNA)
    cookie = dict(anna.cookies)
    token = anna.csrf("/portal/tickets")
    assert anna.post("/portal/signout", data={"csrf": token}).status_code == 303
    replay = Visitor(site, cookies=cookie)  # a copy of the cookie taken before sign-out
    assert replay.get("/portal/tickets").status_code == 303
    with transaction(site.engine) as session:
        assert session.exec(select(PortalSession)).one().revoked_at is not None


def test_organisation_sharing_is_checked_on_every_request(site: Site) -> None:
    number = site.open_ticket(ANNA)
    site.open_ticket(BERT, subject="Bert's own")
    bert = Visitor(site)
    bert.sign_in(BERT)
    assert bert.get(f"/portal/tickets/{number}").status_code == 404
    assert "Drucker" not in bert.get("/portal/tickets").text
    site.share("acme.example", True)
    assert bert.get(f"/portal/tickets/{number}").status_code == 200
    assert "Drucker" in bert.get("/portal/tickets").text
    site.share("acme.example", False)  # withdrawn: the same session loses it at once
    assert bert.get(f"/portal/tickets/{number}").status_code == 404


def test_internal_notes_never_appear(site: Site) -> None:
    number = site.open_ticket(ANNA)
    with transaction(site.engine) as session:
        ticket = session.exec(select(Ticket).where(Ticket.number == number)).one()
        session.add(Message(ticket_id=ticket.id, kind="agent", public=False, direction="in",
                            message_id="note-1@example.com", message_key="note-key-1",
                            from_address="alice@example.com", from_name="Alice",
                            subject="note", text="INTERNAL: customer is difficult"))
    anna = Visitor(site)
    anna.sign_in(ANNA)
    page = anna.get(f"/portal/tickets/{number}")
    assert page.status_code == 200 and "Seit heute früh" in page.text
    assert "INTERNAL" not in page.text


def test_pages_carry_strict_security_headers_and_escape_input(site: Site) -> None:
    number = site.open_ticket(ANNA, subject="<script>alert(1)</script> Drucker")
    anna = Visitor(site)
    anna.sign_in(ANNA)
    for path in ("/portal/signin", "/portal/tickets", f"/portal/tickets/{number}", "/portal/tickets/new",
                 "/portal/tickets/nope"):
        answer = anna.get(path)
        csp = answer.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src" not in csp and "unsafe" not in csp
        assert "frame-ancestors 'none'" in csp and answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["referrer-policy"] == "no-referrer"
        assert "<script>" not in answer.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in anna.get("/portal/tickets").text
    css = anna.get("/portal/static/portal.css").text
    assert all(f".badge-{name} {{ background: {hexa}; }}" in css for name, hexa in COLOURS.items())


def test_new_ticket_is_a_portal_ticket_through_the_rules_with_its_files(site: Site) -> None:
    site.open_ticket(ANNA)
    anna = Visitor(site)
    anna.sign_in(ANNA)
    form = anna.get("/portal/tickets/new").text
    token, form_id = anna.csrf("/portal/tickets/new"), FORM_ID.search(form)
    assert form_id
    data = {"csrf": token, "form_id": form_id.group(1), "subject": "Scanner", "text": "Er scannt nicht.",
            "category": "Hardware", "asset": "SN-4711"}
    files = [("attachments", ("log.txt", b"error 42", "text/plain"))]
    answer = anna.post("/portal/tickets", data=data, files=files)
    assert answer.status_code == 303
    number = answer.headers["location"].rsplit("/", 1)[1]
    again = anna.post("/portal/tickets", data=data, files=files)  # sent twice: one ticket
    assert again.headers["location"] == answer.headers["location"]
    with transaction(site.engine) as session:
        ticket = session.exec(select(Ticket).where(Ticket.number == number)).one()
        assert (ticket.source, ticket.asset, ticket.activity_type) == ("portal", "SN-4711", "Remote support")
        assert "Hardware" in ticket.categories
    page = anna.get(f"/portal/tickets/{number}")
    assert "SN-4711" in page.text and "log.txt" in page.text
    link = page.text.split('href="/portal/tickets/' + number + '/attachments/')[1].split('"')[0]
    download = anna.get(f"/portal/tickets/{number}/attachments/{link}")
    assert download.content == b"error 42" and "attachment" in download.headers["content-disposition"]


def test_uploads_are_limited_in_count_and_size(site: Site) -> None:
    number = site.open_ticket(ANNA)
    anna = Visitor(site)
    anna.sign_in(ANNA)
    before = _messages(site, number)
    token = anna.csrf(f"/portal/tickets/{number}")
    three = [("attachments", (f"f{i}.txt", b"x", "text/plain")) for i in range(3)]
    answer = anna.post(f"/portal/tickets/{number}/reply", data={"csrf": token, "text": "t"}, files=three)
    assert answer.status_code == 422
    big = [("attachments", ("big.bin", b"x" * (1024 * 1024 + 1), "application/octet-stream"))]
    answer = anna.post(f"/portal/tickets/{number}/reply", data={"csrf": token, "text": "t"}, files=big)
    assert answer.status_code == 413
    assert _messages(site, number) == before


def _messages(site: Site, number: str) -> int:
    """How many messages the ticket has (in and out)."""
    with transaction(site.engine) as session:
        ticket = session.exec(select(Ticket).where(Ticket.number == number)).one()
        return len(session.exec(select(Message).where(Message.ticket_id == ticket.id)).all())


def test_language_is_the_contacts_else_the_browsers(site: Site) -> None:
    site.open_ticket(ANNA, customer={"email": ANNA, "language": "de"})
    site.open_ticket(BERT)
    anna, bert = Visitor(site, language="en"), Visitor(site, language="de-CH, en;q=0.5")
    anna.sign_in(ANNA)
    bert.sign_in(BERT)
    assert "In Bearbeitung" in anna.get("/portal/tickets").text  # her contact says German
    assert "In Bearbeitung" in bert.get("/portal/tickets").text  # his browser asks for German
    assert "Send me a sign-in link" in Visitor(site, language="fr, en;q=0.4").get("/portal/signin").text
    mail = site.smtp.handler.to(ANNA)[-1].message
    assert "Anmeldelink" in mail["Subject"]


def test_portal_revoke_signs_a_customer_out_everywhere(site: Site, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    site.open_ticket(ANNA)
    laptop, phone = Visitor(site), Visitor(site)
    laptop.sign_in(ANNA)
    phone.sign_in(ANNA)
    config = tmp_path / "cli.toml"
    config.write_text(f'[database]\nurl = "{site.engine.url.render_as_string(hide_password=False)}"\n',
                      encoding="utf-8")
    assert main(["--config", str(config), "portal", "sessions", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [row["address"] for row in listed] == [ANNA, ANNA]
    assert main(["--config", str(config), "portal", "revoke", ANNA.upper()]) == 0
    assert "2 session(s) ended" in capsys.readouterr().out
    assert laptop.get("/portal/tickets").status_code == 303
    assert phone.get("/portal/tickets").status_code == 303
    assert main(["--config", str(config), "portal", "revoke", "not an address"]) == 1


@pytest.mark.parametrize(("portal", "extra", "message"), [
    ({"url": "http://support.example.com/portal"}, {}, "portal.url: must be https://"),
    ({"url": "ftp://x/portal"}, {}, "portal.url: must be the portal's address"),
    ({"url": "https://support.example.com/portal"}, {"smtp": None}, "portal: needs [smtp]"),
    ({"url": "https://support.example.com/portal"}, {"http": None}, "portal: needs [http]"),
    ({"url": "https://support.example.com/portal", "channel": "sales"}, {},
     "portal.channel: unknown channel 'sales'"),
    ({"url": "https://support.example.com/portal", "link_minutes": 0}, {}, "portal.link_minutes"),
    ({"url": "https://support.example.com/portal", "colour": "red"}, {}, "portal.colour: unknown key"),
])
def test_portal_config_errors_name_the_key(portal: dict[str, Any], extra: dict[str, Any],
                                           message: str) -> None:
    raw: dict[str, Any] = {"database": {"url": "sqlite:///:memory:"},
                           "smtp": {"host": "127.0.0.1", "port": 25, "security": "none"},
                           "http": {"listen": "127.0.0.1:8080"}, "portal": portal}
    raw.update(extra)
    raw = {k: v for k, v in raw.items() if v is not None}
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, "config.toml")
    assert message in str(caught.value)


def test_portal_config_fills_in_the_notification_link() -> None:
    raw = {"database": {"url": "sqlite:///:memory:"},
           "smtp": {"host": "127.0.0.1", "port": 25, "security": "none"},
           "http": {"listen": "127.0.0.1:8080"}, "portal": {"url": "https://support.example.com/portal/"}}
    config = parse_config(raw, "config.toml")
    assert config.portal is not None and config.portal.url == "https://support.example.com/portal"
    assert config.outbound.portal_url == "https://support.example.com/portal/tickets/{number}"


@pytest.mark.parametrize(("language", "words"), [("en", "sign-in link"), ("de", "Anmeldelink")])
def test_the_sign_in_mail_renders_in_both_languages_with_the_link(language: str, words: str) -> None:
    from gateway.outbound.render import Renderer
    out = Renderer().render("portal/signin_link", language, {
        "link": "https://s.example/portal/signin/abc?x=<b>", "minutes": 15,
        "recipient": {"address": ANNA},
        "channel": {"name": "support", "display_name": "ACME <Support>", "address": "s@example.com"}})
    assert words in out.subject and "15" in out.text
    assert "https://s.example/portal/signin/abc?x=<b>" in out.text
    assert "<b>" not in out.html and "ACME &lt;Support&gt;" in out.html and f'lang="{language}"' in out.html


def test_the_list_searches_filters_by_state_and_sorts(site: Site) -> None:
    first = site.open_ticket(ANNA, subject="Printer 50% slower")
    second = site.open_ticket(ANNA, subject="VPN drops")
    with transaction(site.engine) as session:
        ticket = session.exec(select(Ticket).where(Ticket.number == second)).one()
        ticket.status = "waiting_external"
        session.add(ticket)
    anna = Visitor(site)
    anna.sign_in(ANNA)
    found = anna.get("/portal/tickets", params={"q": "50%"}).text
    assert first in found and second not in found
    assert anna.get("/portal/tickets", params={"q": "5_%"}).text.count("ticket-T") == 0  # literal
    waiting = anna.get("/portal/tickets", params={"status": "reply_expected"}).text
    assert second in waiting and first not in waiting and "badge-red" in waiting
    by_age = anna.get("/portal/tickets", params={"sort": "oldest"}).text
    assert by_age.index(first) < by_age.index(second)
    newest = anna.get("/portal/tickets").text
    assert newest.index(second) < newest.index(first)
    assert anna.get("/portal/tickets", params={"status": "bogus", "sort": "x' OR 1=1"}).status_code == 200
    bad = anna.get("/portal/tickets", params={"page": "zero"})
    assert bad.status_code == 400 and bad.headers["content-type"].startswith("text/html")  # a page


def test_a_form_sent_after_the_session_ended_leads_back_to_its_ticket(site: Site) -> None:
    number = site.open_ticket(ANNA)
    anna = Visitor(site)
    anna.sign_in(ANNA)
    token = anna.csrf(f"/portal/tickets/{number}")
    with transaction(site.engine) as session:
        for row in session.exec(select(PortalSession)).all():
            row.expires_at = row.created_at
            session.add(row)
    answer = anna.post(f"/portal/tickets/{number}/reply", data={"csrf": token, "text": "late"})
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/portal/signin?next=%2Fportal%2Ftickets%2F{number}"


def test_sessions_long_expired_or_revoked_are_forgotten_at_the_next_sign_in(engine: Engine) -> None:
    from gateway.web.portal.access import open_session

    now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    ages = {"expired-long-ago": (now - timedelta(days=40), None),
            "revoked-long-ago": (now + timedelta(days=1), now - timedelta(days=31)),
            "expired-lately": (now - timedelta(days=3), None), "live": (now + timedelta(hours=5), None)}
    with transaction(engine) as session:
        for name, (expires, revoked) in ages.items():
            session.add(PortalSession(token_hash=hashlib.sha256(name.encode()).hexdigest(), address=name,
                                      csrf="c", created_at=now - timedelta(days=60),
                                      last_seen_at=now, expires_at=expires, revoked_at=revoked))
    with transaction(engine) as session:
        open_session(session, "anna@acme.example", 8, now)
    with transaction(engine) as session:
        left = sorted(session.exec(select(PortalSession.address)).all())
    assert left == ["anna@acme.example", "expired-lately", "live"]
