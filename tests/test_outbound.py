"""Outbound mail against a real SMTP server on loopback: who gets what, headers, loops, outages."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from gateway.config import Config
from gateway.outbound.flush import FlushResult, flush_outbox_once
from gateway.outbound.notify import Planner
from gateway.outbound.render import Renderer
from gateway.outbound.smtp import SmtpSender
from gateway.pipeline import Disposition, RawMail, process
from store.db import transaction
from store.models import Contact, Message, OutboxMail, Suppression, Ticket
from tests.conftest import mail, make_config
from tests.servers.smtp import SmtpServer

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
AGENTS = [
    {"address": "alice@example.com", "name": "alice", "display_name": "Alice Agent"},
    {"address": "bob@example.com", "name": "bob", "display_name": "Bob", "channels": ["hotline"]},
]


def outbound_config(smtp: SmtpServer, tickets: dict[str, Any] | None = None, **outbound: Any) -> Config:
    return make_config(
        smtp={"host": smtp.host, "port": smtp.port, "security": "none"},
        outbound={"portal_url": "https://portal.example.com/t/{number}", **outbound},
        channel=[{"name": "support", "address": "support@example.com", "display_name": "ACME Support"},
                 {"name": "hotline", "address": "hotline@example.com"}],
        agent=AGENTS,
        tickets=tickets or {},
    )


async def flush(engine: Engine, config: Config, now: datetime = T0) -> FlushResult:
    assert config.smtp is not None
    smtp_config = config.smtp
    return await flush_outbox_once(engine, config, lambda: SmtpSender(smtp_config), Renderer(), now)


def ingest(engine: Engine, config: Config, raw: bytes, now: datetime = T0, **kw: Any) -> Disposition:
    return process(engine, config, RawMail(raw, "in", **kw), now=now)


def dsn(n: str, recipient: str, status: str, returned_id: str,
        sender: str = "Mail Delivery System <MAILER-DAEMON@mx.example.com>") -> bytes:
    """A delivery status notification (RFC 3464) about the mail returned_id to recipient."""
    action = "failed" if status.startswith("5.") else "delayed"
    return (
        f"From: {sender}\r\n"
        "To: support@example.com\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: <dsn-{n}@mx.example.com>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.com\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: {action}\r\nStatus: {status}\r\n\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {returned_id}\r\nSubject: whatever\r\n\r\n--B--\r\n"
    ).encode()


async def test_new_ticket_acknowledges_customer_and_notifies_channel_agents(
    engine: Engine, smtp: SmtpServer
) -> None:
    config = outbound_config(smtp)
    created = ingest(engine, config, mail(1, "Drucker kaputt", "anna@acme.example",
                                          headers="Cc: Bert <bert@acme.example>\r\n"))
    result = await flush(engine, config)
    assert (result.sent, result.retried, result.failed) == (2, 0, 0)
    (ack,) = smtp.handler.to("anna@acme.example")
    assert smtp.handler.to("bert@acme.example") == []  # CC'd colleague: watcher, no ack
    (note,) = smtp.handler.to("alice@example.com")
    assert smtp.handler.to("bob@example.com") == []  # not his channel
    customer = ack.message
    assert customer["From"] == "ACME Support <support@example.com>"
    assert customer["Reply-To"] == "support@example.com"
    assert customer["Auto-Submitted"] == "auto-replied"
    assert customer["X-Auto-Response-Suppress"] == "All"
    assert customer["In-Reply-To"] == "<m-1@example.org>"
    assert customer["Message-ID"].endswith("@example.com>")
    assert f"[#{created.ticket_number}]" in customer["Subject"]
    assert customer.get_content_type() == "multipart/alternative"
    text = customer.get_body(("plain",)).get_content()
    html = customer.get_body(("html",)).get_content()
    assert "In progress" in text and created.ticket_number in text
    assert 'data-colour="orange"' in html and "In progress" in html
    agent = note.message
    assert agent["Auto-Submitted"] == "auto-generated"
    assert "Body of mail 1" in agent.get_body(("plain",)).get_content()
    assert agent["To"] == "Alice Agent <alice@example.com>"
    with transaction(engine) as session:  # our Message-IDs are stored, so replies thread
        ids = set(session.exec(select(Message.message_id).where(Message.direction == "out")).all())
    assert customer["Message-ID"].strip("<>") in ids and agent["Message-ID"].strip("<>") in ids


async def test_reply_to_our_acknowledgement_threads_and_notifies_agent(
    engine: Engine, smtp: SmtpServer
) -> None:
    config = outbound_config(smtp)
    created = ingest(engine, config, mail(1, "Drucker", "anna@acme.example"))
    await flush(engine, config)
    ack_id = smtp.handler.to("anna@acme.example")[0].message["Message-ID"]
    reply = mail(2, "no token at all", "anna@acme.example", headers=f"In-Reply-To: {ack_id}\r\n")
    followup = ingest(engine, config, reply)
    assert (followup.outcome, followup.ticket_number) == ("followup", created.ticket_number)
    await flush(engine, config)
    assert len(smtp.handler.to("anna@acme.example")) == 1  # no second acknowledgement
    assert [d.message["Subject"].split("]")[0] for d in smtp.handler.to("alice@example.com")] == [
        f"[#{created.ticket_number}"] * 2


async def test_customer_mails_never_show_internal_notes(engine: Engine, smtp: SmtpServer) -> None:
    config = outbound_config(smtp, language="de")
    created = ingest(engine, config, mail(1, "Drucker", "anna@acme.example"))
    with transaction(engine) as session:
        ticket = session.exec(select(Ticket)).one()
        note = Message(ticket_id=ticket.id, direction="in", kind="note", public=False,
                       message_id="note-1@example.com", message_key="k-note-1",
                       text="SECRET-NOTE: customer is difficult", subject="internal")
        session.add(note)
        session.flush()
        ticket.status = "waiting_external"
        Planner(session, config, ticket, T0).status_changed(note)
    await flush(engine, config)
    status_mail = [d.message for d in smtp.handler.to("anna@acme.example")
                   if "Status" in d.message["Subject"]]
    assert len(status_mail) == 1
    raw = status_mail[0].as_string()
    assert "SECRET-NOTE" not in raw
    assert "Antwort erwartet" in status_mail[0].get_body(("plain",)).get_content()
    assert 'data-colour="red"' in status_mail[0].get_body(("html",)).get_content()
    assert created.ticket_number in status_mail[0]["Subject"]


async def test_no_crlf_from_user_data_reaches_a_header(engine: Engine, smtp: SmtpServer) -> None:
    config = outbound_config(smtp)
    ingest(engine, config, mail(1, "Drucker", "anna@acme.example"))
    with transaction(engine) as session:
        ticket = session.exec(select(Ticket)).one()
        ticket.subject = "Printer\r\nBcc: victim@evil.example"
        session.exec(select(Contact)).one().name = "Anna\r\nCc: other@evil.example"
        ticket.status = "open"
        Planner(session, config, ticket, T0).status_changed(None)
    await flush(engine, config)
    assert smtp.handler.to("victim@evil.example") == [] and smtp.handler.to("other@evil.example") == []
    (status_mail,) = [d for d in smtp.handler.to("anna@acme.example") if "Status" in d.message["Subject"]]
    head = status_mail.data.split(b"\r\n\r\n", 1)[0].decode()
    fields = re.split(r"\r\n(?![ \t])", head)  # one entry per header field, folded lines joined
    names = [field.split(":", 1)[0].lower() for field in fields]
    assert "bcc" not in names and names.count("cc") == 0
    # The injected text is still there, but only as the harmless text of its own field.
    assert [n for n, f in zip(names, fields, strict=True) if "victim@evil.example" in f] == ["subject"]
    assert [n for n, f in zip(names, fields, strict=True) if "other@evil.example" in f] == ["to"]
    assert status_mail.message["Subject"].endswith("Printer Bcc: victim@evil.example")


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (mail(1, "Out of office", "anna@acme.example", headers="Auto-Submitted: auto-replied\r\n"),
         "automatic"),
        (mail(2, "Newsletter", "news@shop.example", headers="Precedence: bulk\r\n"), "automatic"),
        (mail(3, "Returned", "mailer-daemon@mx.example"), "automatic"),
        (mail(4, "Hi", "noreply@service.example"), "automatic"),
        (mail(5, "Loop", "support@example.com"), "automatic"),
    ],
    ids=["auto-submitted", "bulk", "mailer-daemon", "no-reply", "our own address"],
)
async def test_never_auto_reply_to_machines_or_ourselves(engine: Engine, smtp: SmtpServer,
                                                         raw: bytes, why: str) -> None:
    config = outbound_config(smtp)
    result = ingest(engine, config, raw)
    assert result.outcome == "created" and why in result.detail
    await flush(engine, config)
    assert all(d.message["Auto-Submitted"] != "auto-replied" for d in smtp.handler.delivered)


@pytest.mark.parametrize("hostile", [True, False], ids=["strips-references", "keeps-references"])
async def test_autoresponder_exchange_stays_within_the_limit_for_an_hour(
    engine: Engine, smtp: SmtpServer, hostile: bool
) -> None:
    """A robot answers every mail we send it; an hour of simulated time, minute by minute."""
    config = outbound_config(smtp, ack_limit_per_recipient_hour=3, ack_limit_per_ticket=2)
    robot = "robot@autoresponder.example"
    answered: set[str] = set()
    from_robot = 1
    ingest(engine, config, mail("robot-0", "Hello", robot), now=T0)
    for minute in range(60):
        now = T0 + timedelta(minutes=minute)
        await flush(engine, config, now)
        for delivered in smtp.handler.to(robot):
            ours = delivered.message["Message-ID"]
            if ours in answered:
                continue
            answered.add(ours)
            headers = "" if hostile else f"In-Reply-To: {ours}\r\n"
            subject = "Automatic answer" if hostile else f"Re: {delivered.message['Subject']}"
            ingest(engine, config, mail(f"robot-{from_robot}", subject, robot, headers=headers), now=now)
            from_robot += 1
    to_robot = len(smtp.handler.to(robot))
    assert to_robot <= config.outbound.ack_limit_per_recipient_hour
    assert to_robot + from_robot <= 2 * config.outbound.ack_limit_per_recipient_hour + 1
    assert to_robot >= 1  # the first acknowledgement did go out


async def test_smtp_outage_loses_nothing_and_sends_nothing_twice(engine: Engine) -> None:
    server = SmtpServer()  # not started: connections are refused
    config = outbound_config(server)
    for n in range(3):
        ingest(engine, config, mail(n, f"Question {n}", f"c{n}@acme.example"))
    down = await flush(engine, config, T0)
    assert (down.sent, down.retried) == (0, 6)
    early = await flush(engine, config, T0 + timedelta(seconds=10))  # before the backoff is over
    assert (early.sent, early.retried) == (0, 0)
    assert down.next_due is not None and down.next_due > T0
    server.start()
    try:
        back = await flush(engine, config, down.next_due)
        again = await flush(engine, config, T0 + timedelta(hours=2))
    finally:
        server.stop()
    assert (back.sent, again.sent) == (6, 0)
    ids = [d.message["Message-ID"] for d in server.handler.delivered]
    assert len(ids) == 6 and len(set(ids)) == 6
    with transaction(engine) as session:
        rows = session.exec(select(OutboxMail)).all()
    assert {r.status for r in rows} == {"sent"} and {r.attempts for r in rows} == {2}


async def test_permanent_refusal_is_recorded_as_failed(engine: Engine, smtp: SmtpServer) -> None:
    smtp.handler.refuse.add("gone@acme.example")
    config = outbound_config(smtp)
    ingest(engine, config, mail(1, "Hi", "gone@acme.example"))
    result = await flush(engine, config)
    assert (result.sent, result.failed) == (1, 1)  # the agent's mail still went out
    with transaction(engine) as session:
        failed = session.exec(select(OutboxMail).where(OutboxMail.status == "failed")).one()
    assert "550" in failed.last_error and failed.template == "customer/acknowledgement"


async def test_temporary_refusal_is_retried(engine: Engine, smtp: SmtpServer) -> None:
    smtp.handler.defer.add("busy@acme.example")
    config = outbound_config(smtp)
    ingest(engine, config, mail(1, "Hi", "busy@acme.example"))
    first = await flush(engine, config)
    assert (first.sent, first.retried) == (1, 1)
    smtp.handler.defer.clear()
    assert first.next_due is not None
    second = await flush(engine, config, first.next_due)
    assert second.sent == 1 and len(smtp.handler.to("busy@acme.example")) == 1


@pytest.mark.parametrize(("connections", "batch_size", "sessions"), [(1, 50, 1), (1, 3, 4), (4, 50, 4)])
async def test_connections_are_reused_up_to_the_batch_size(
    engine: Engine, smtp: SmtpServer, connections: int, batch_size: int, sessions: int
) -> None:
    config = outbound_config(smtp, connections=connections, batch_size=batch_size)
    for n in range(5):
        ingest(engine, config, mail(n, f"Q{n}", f"c{n}@acme.example"))
    result = await flush(engine, config)
    assert result.sent == 10
    assert len(smtp.handler.sessions) == sessions


@pytest.mark.parametrize(("status", "suppressing"), [("5.1.1", True), ("4.4.1", False)],
                         ids=["hard-bounce", "delay-notice"])
async def test_bounce_is_attached_and_only_a_hard_one_suppresses(
    engine: Engine, smtp: SmtpServer, status: str, suppressing: bool
) -> None:
    config = outbound_config(smtp)
    created = ingest(engine, config, mail(1, "Hi", "typo@acme.example"))
    await flush(engine, config)
    ack_id = smtp.handler.to("typo@acme.example")[0].message["Message-ID"]
    bounce = ingest(engine, config, dsn("1", "typo@acme.example", status, ack_id))
    assert (bounce.outcome, bounce.ticket_number) == ("followup", created.ticket_number)
    assert ("typo@acme.example suppressed" in bounce.detail) == suppressing
    with transaction(engine) as session:
        assert (session.get(Suppression, "typo@acme.example") is not None) == suppressing
        kinds = session.exec(select(Message.kind).where(Message.direction == "in")).all()
    assert sorted(kinds) == ["bounce", "customer"]
    later = T0 + timedelta(days=1)
    again = ingest(engine, config, mail(2, "Another question", "typo@acme.example"), now=later)
    assert again.outcome == "created"
    await flush(engine, config, later)
    # A dead address gets nothing more; a slow one is still answered.
    assert len(smtp.handler.to("typo@acme.example")) == (1 if suppressing else 2)


async def test_portal_ticket_gets_the_portal_update_with_link(engine: Engine, smtp: SmtpServer) -> None:
    config = outbound_config(smtp)
    created = process(engine, config, RawMail(mail(1, "Portal", "anna@acme.example"), "api",
                                              source="portal"), now=T0)
    await flush(engine, config)
    (update,) = smtp.handler.to("anna@acme.example")
    text = update.message.get_body(("plain",)).get_content()
    assert f"https://portal.example.com/t/{created.ticket_number}" in text


async def test_rule_can_silence_the_acknowledgement_and_notify_watchers(
    engine: Engine, smtp: SmtpServer, tmp_path: Any
) -> None:
    from gateway.rules.loader import RuleBook, vocabulary

    (tmp_path / "r.toml").write_text(
        '[[rule]]\nname = "quiet"\non = "ticket.created"\nthen.auto_reply = false\n'
        'then.notify = { template = "watcher/update", audience = "watchers" }\n', "utf-8")
    config = outbound_config(smtp)
    rules = RuleBook(tmp_path, vocabulary(config)).current()
    process(engine, config, RawMail(mail(1, "Hi", "anna@acme.example",
                                         headers="Cc: bert@acme.example\r\n"), "in"),
            now=T0, rules=rules)
    await flush(engine, config)
    assert smtp.handler.to("anna@acme.example") == []
    assert len(smtp.handler.to("bert@acme.example")) == 1


async def test_service_run_once_fetches_then_sends(engine: Engine, smtp: SmtpServer, dovecot: Any,
                                                   folder: str) -> None:
    from gateway.config import parse_config
    from gateway.service import run_service
    from tests.conftest import mailbox_table

    dovecot.append(mail(f"{folder}-1", "Hallo", "anna@acme.example"), folder=folder)
    config = parse_config({
        "database": {"url": engine.url.render_as_string(hide_password=False)},
        "channel": [{"name": "support", "address": "support@example.com"}],
        "agent": AGENTS[:1],
        "smtp": {"host": smtp.host, "port": smtp.port, "security": "none"},
        "mailbox": [mailbox_table(dovecot, folder)],
    }, "<test>")
    await run_service(engine, config, once=True)
    assert len(smtp.handler.to("anna@acme.example")) == 1
    assert len(smtp.handler.to("alice@example.com")) == 1


async def test_contact_language_from_content_language(engine: Engine, smtp: SmtpServer) -> None:
    config = outbound_config(smtp)  # default language en
    ingest(engine, config, mail(1, "Frage", "dora@acme.example", headers="Content-Language: de-DE\r\n"))
    ingest(engine, config, mail(2, "Question", "erik@acme.example"))
    await flush(engine, config)
    german = smtp.handler.to("dora@acme.example")[0].message.get_body(("plain",)).get_content()
    english = smtp.handler.to("erik@acme.example")[0].message.get_body(("plain",)).get_content()
    assert "Vielen Dank" in german or "vielen Dank" in german
    assert "thank you" in english


async def test_forged_bounce_cannot_silence_an_agent(engine: Engine, smtp: SmtpServer) -> None:
    config = outbound_config(smtp)
    created = ingest(engine, config, mail(1, "Hi", "anna@acme.example"))
    await flush(engine, config)
    ack_id = smtp.handler.to("anna@acme.example")[0].message["Message-ID"]
    forged = dsn("forged", "alice@example.com", "5.1.1", ack_id, sender="MAILER-DAEMON@evil.example")
    result = ingest(engine, config, forged)
    assert result.ticket_number == created.ticket_number and "ignored" in result.detail
    with transaction(engine) as session:
        assert session.get(Suppression, "alice@example.com") is None


async def test_two_cc_robots_cannot_loop_through_watcher_updates(engine: Engine, smtp: SmtpServer) -> None:
    config = outbound_config(smtp, ack_limit_per_recipient_hour=3)
    created = ingest(engine, config, mail("start", "Hi", "anna@acme.example",
                                          headers="Cc: robot-a@x.example, robot-b@y.example\r\n"))
    for n in range(20):  # each robot answers every update it gets, without any auto headers
        robot = "robot-a@x.example" if n % 2 == 0 else "robot-b@y.example"
        ingest(engine, config, mail(f"r{n}", f"Re: [#{created.ticket_number}] Hi", robot),
               now=T0 + timedelta(minutes=n))
    await flush(engine, config, T0 + timedelta(minutes=30))
    assert len(smtp.handler.to("robot-a@x.example")) <= 3
    assert len(smtp.handler.to("robot-b@y.example")) <= 3


def _acks(smtp: SmtpServer, address: str) -> list[str]:
    """Subjects of the automatic replies (acknowledgements, rejections) address received."""
    return [d.message["Subject"] for d in smtp.handler.to(address)
            if d.message["Auto-Submitted"] == "auto-replied"]


async def test_per_recipient_limit_holds_back_acknowledgements_for_an_hour(
    engine: Engine, smtp: SmtpServer
) -> None:
    config = outbound_config(smtp, ack_limit_per_recipient_hour=2, ack_limit_per_ticket=100)
    results = [ingest(engine, config, mail(f"p{n}", f"Question {n}", "anna@acme.example"),
                      now=T0 + timedelta(minutes=n)) for n in range(4)]
    assert [r.outcome for r in results] == ["created"] * 4  # four tickets, each its first ack
    assert all("automatic replies" not in r.detail for r in results[:2])
    for held in results[2:]:
        assert "2 automatic replies to anna@acme.example in the last hour (limit 2)" in held.detail
    other = ingest(engine, config, mail("q", "Question", "bert@acme.example"), now=T0)
    later = ingest(engine, config, mail("p9", "Next day", "anna@acme.example"),
                   now=T0 + timedelta(minutes=61))  # the first one left the window
    await flush(engine, config, T0 + timedelta(minutes=61))
    assert len(_acks(smtp, "anna@acme.example")) == 3  # two, then one an hour later
    assert len(_acks(smtp, "bert@acme.example")) == 1  # the limit is per address
    assert "automatic replies" not in other.detail + later.detail


async def test_per_ticket_limit_holds_back_replies_to_any_sender(engine: Engine, smtp: SmtpServer) -> None:
    """Two people keep writing to a closed ticket (policy reject): each would be told again."""
    config = outbound_config(smtp, tickets={"closed_followup": "reject"},
                             ack_limit_per_recipient_hour=100, ack_limit_per_ticket=3)
    created = ingest(engine, config, mail("t0", "Printer", "anna@acme.example",
                                          headers="Cc: bert@acme.example\r\n"))
    with transaction(engine) as session:
        session.exec(select(Ticket)).one().status = "closed"
    token = f"[#{created.ticket_number}]"
    results = [ingest(engine, config, mail(f"t{n}", f"Re: {token} Printer", sender),
                      now=T0 + timedelta(minutes=n))
               for n, sender in enumerate(["anna@acme.example", "bert@acme.example"] * 3, 1)]
    assert [r.outcome for r in results] == ["rejected"] * 6
    assert ["automatic replies on this ticket" in r.detail for r in results] == [
        False, False, True, True, True, True]  # the acknowledgement and two rejections
    assert "3 automatic replies on this ticket already (limit 3)" in results[-1].detail
    await flush(engine, config, T0 + timedelta(minutes=10))
    assert len(_acks(smtp, "anna@acme.example")) == 2 and len(_acks(smtp, "bert@acme.example")) == 1


@pytest.mark.parametrize(("x_loop", "looped"), [
    ("support@example.com", True), ("SUPPORT@Example.com", True),
    ("helpdesk@other.example", False),
], ids=["ours", "ours-other-case", "someone-elses"])
async def test_x_loop_naming_us_gets_no_automatic_reply(engine: Engine, smtp: SmtpServer,
                                                        x_loop: str, looped: bool) -> None:
    """A forwarder that keeps our X-Loop header (and adds no Auto-Submitted) sends our mail back."""
    config = outbound_config(smtp)
    result = ingest(engine, config, mail(1, "Re: Drucker", "dora@acme.example",
                                         headers=f"X-Loop: {x_loop}\r\n"))
    await flush(engine, config)
    assert result.outcome == "created"
    assert ("the mail is automatic (loop)" in result.detail) == looped
    assert len(_acks(smtp, "dora@acme.example")) == (0 if looped else 1)
    with transaction(engine) as session:
        stored = session.exec(select(Message).where(Message.message_id == "m-1@example.org")).one()
    assert (stored.classification == "loop") == looped


@pytest.mark.parametrize("forgery", ["names-another-customer", "returns-no-mail-of-ours"])
async def test_forged_bounce_cannot_silence_a_customer(engine: Engine, smtp: SmtpServer,
                                                       forgery: str) -> None:
    config = outbound_config(smtp)
    ingest(engine, config, mail(1, "Hi", "anna@acme.example"))
    ingest(engine, config, mail(2, "Hello", "carl@other.example"))  # a customer with mail from us
    await flush(engine, config)
    anna_ack = smtp.handler.to("anna@acme.example")[0].message["Message-ID"]
    victim, returned = (("carl@other.example", anna_ack) if forgery == "names-another-customer"
                        else ("anna@acme.example", "<made-up@example.com>"))
    result = ingest(engine, config, dsn("forged", victim, "5.1.1", returned,
                                        sender="MAILER-DAEMON@evil.example"))
    assert f"bounce for {victim} ignored" in result.detail
    with transaction(engine) as session:
        assert session.get(Suppression, victim) is None
    later = T0 + timedelta(days=1)
    ingest(engine, config, mail(3, "Again", victim), now=later)
    await flush(engine, config, later)
    assert len(_acks(smtp, victim)) == 2  # still answered
