"""Agents answer from their mail client: relayed replies, internal notes, commands, proof."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from gateway.agents.identity import reply_mac
from gateway.config import Config, parse_config
from gateway.outbound.flush import flush_outbox_once
from gateway.outbound.render import Renderer
from gateway.outbound.smtp import SmtpSender
from gateway.pipeline import Disposition, RawMail, process
from gateway.rules.loader import RuleBook, vocabulary
from gateway.service import run_service
from store.db import transaction
from store.models import Message, OutboxMail, Ticket, Watcher
from tests.conftest import mail, mailbox_table
from tests.servers.dovecot import Dovecot
from tests.servers.smtp import SmtpServer

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
ALICE = {"address": "alice@example.com", "name": "alice", "display_name": "Alice Agent"}
BOB = {"address": "bob@example.com", "name": "bob", "display_name": "Bob"}


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


def agent_config(engine: Engine, smtp: SmtpServer, **extra: Any) -> Config:
    raw: dict[str, Any] = {
        "database": {"url": engine.url.render_as_string(hide_password=False)},
        "secret": "test-secret",
        "channel": [{"name": "support", "address": "support@example.com",
                     "display_name": "ACME Support"},
                    {"name": "hotline", "address": "hotline@example.com"}],
        "agent": [ALICE, BOB],
        "smtp": {"host": smtp.host, "port": smtp.port, "security": "none"},
        "trusted_authservers": ["mx.example.com"],
    }
    raw.update(extra)
    return parse_config(raw, "<test>")


async def flush(engine: Engine, config: Config) -> None:
    smtp = config.smtp
    assert smtp is not None
    await flush_outbox_once(engine, config, lambda: SmtpSender(smtp), Renderer(), T0)


def agent_mail(n: str, to: str, body: str, subject: str = "Re: your ticket", headers: str = "",
               sender: str = "Alice <alice@example.com>") -> bytes:
    return (f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Message-ID: <a-{n}@laptop.example.com>\r\n{headers}MIME-Version: 1.0\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n").encode()


def ticket(engine: Engine, number: str | None) -> Ticket:
    with transaction(engine) as session:
        return session.exec(select(Ticket).where(Ticket.number == number)).one()


async def open_ticket(engine: Engine, config: Config, smtp: SmtpServer) -> tuple[Disposition, str]:
    """A customer ticket; returns it and the signed Reply-To of Alice's notification."""
    created = process(engine, config, RawMail(mail("c1", "Drucker kaputt", "anna@acme.example",
                                                   headers="Cc: bert@acme.example\r\n"), "in"), now=T0)
    await flush(engine, config)
    (note,) = smtp.handler.to("alice@example.com")
    reply_to = note.message["Reply-To"]
    assert reply_to.startswith("support+") and created.ticket_number.lower() in reply_to
    return created, reply_to


QUOTED = (
    "Hallo Anna,\n\nbitte starten Sie den Drucker neu.\n\nViele Grüße\n-- \nAlice Agent\n"
    "Phone +49 30 1234567 · alice@example.com\n\n"
    "Am Mo., 23. Nov. 2026 um 10:00 schrieb Anna <anna@acme.example>:\n> Drucker kaputt\n> Body\n"
)


async def test_agent_reply_round_trip_over_imap_and_smtp(engine: Engine, smtp: SmtpServer,
                                                         dovecot: Dovecot, folder: str) -> None:
    config = agent_config(engine, smtp, mailbox=[mailbox_table(dovecot, folder)])
    dovecot.append(mail(f"{folder}-c", "Drucker kaputt", "anna@acme.example",
                        headers="Cc: bert@acme.example\r\n"), folder=folder)
    await run_service(engine, config, once=True)
    (note,) = smtp.handler.to("alice@example.com")
    reply_to = note.message["Reply-To"]
    reply = agent_mail(folder, reply_to, QUOTED, subject=f"Re: {note.message['Subject']}",
                       headers=f"In-Reply-To: {note.message['Message-ID']}\r\n")
    dovecot.append(reply, folder=folder)
    await run_service(engine, config, once=True)
    (answer,) = [d for d in smtp.handler.to("anna@acme.example")
                 if d.message["Auto-Submitted"] == "no"]
    msg = answer.message
    assert msg["From"] == "Alice Agent <support@example.com>"
    assert msg["Reply-To"] == "support@example.com"
    assert msg["In-Reply-To"] == f"<m-{folder}-c@example.org>"
    assert "bert@acme.example" in answer.rcpt_tos  # the CC watcher hears it too
    text = msg.get_body(("plain",)).get_content()
    assert "bitte starten Sie den Drucker neu." in text
    assert "schrieb" not in text and "> Drucker" not in text and "+49 30" not in text
    assert "alice@example.com" not in answer.data.decode("utf-8", "replace")
    number = note.message["Subject"].split("]")[0].lstrip("[#")
    assert ticket(engine, number).status == "waiting_external"
    assert ticket(engine, number).owner == "alice"


async def test_internal_note_never_reaches_the_customer(engine: Engine, smtp: SmtpServer) -> None:
    config = agent_config(engine, smtp)
    created, reply_to = await open_ticket(engine, config, smtp)
    before = len(smtp.handler.delivered)
    result = process(engine, config, RawMail(agent_mail("n", reply_to, "#internal\nCustomer is grumpy."),
                                             "in"), now=T0)
    assert result.ticket_number == created.ticket_number
    await flush(engine, config)
    assert smtp.handler.to("anna@acme.example")[1:] == [] and smtp.handler.to("bert@acme.example") == []
    new = smtp.handler.delivered[before:]
    assert [d.rcpt_tos for d in new] == [["alice@example.com"]]  # only the command result
    with transaction(engine) as session:
        note = session.exec(select(Message).where(Message.message_id == "a-n@laptop.example.com")).one()
    assert (note.kind, note.public, note.text) == ("note", False, "Customer is grumpy.")


async def test_forged_agent_mail_changes_nothing_and_is_reported(engine: Engine, smtp: SmtpServer) -> None:
    config = agent_config(engine, smtp)
    created, _ = await open_ticket(engine, config, smtp)
    forged = agent_mail("f", "support@example.com", "#status closed\n#priority 9\nClose it.",
                        subject=f"Re: [#{created.ticket_number}]")
    result = process(engine, config, RawMail(forged, "in"), now=T0)
    assert "unproven" in result.detail
    after = ticket(engine, created.ticket_number)
    assert (after.status, after.priority) == ("new", 5)
    await flush(engine, config)
    report = smtp.handler.to("alice@example.com")[-1].message
    body = report.get_body(("plain",)).get_content()
    assert "#status closed: not executed" in body and "without proof" in body
    assert all(d.message["Auto-Submitted"] != "no" for d in smtp.handler.to("anna@acme.example"))


async def test_untrusted_authentication_results_are_not_proof(engine: Engine, smtp: SmtpServer) -> None:
    config = agent_config(engine, smtp)
    created, _ = await open_ticket(engine, config, smtp)
    for server, proven in (("evil.example", False), ("mx.example.com", True)):
        headers = f"Authentication-Results: {server}; dkim=pass header.d=example.com; spf=fail\r\n"
        result = process(engine, config, RawMail(
            agent_mail(server, "support@example.com", "#priority 8\nOk.",
                       subject=f"Re: [#{created.ticket_number}]", headers=headers), "in"), now=T0)
        assert ("unproven" in result.detail) != proven
        assert (ticket(engine, created.ticket_number).priority == 8) == proven


COMMANDS = [
    ("#status waiting_internal", {"status": "waiting_internal"}, "done"),
    ("#status waiting", {"status": "waiting_external"}, "done"),
    ("#status sleeping", {"status": "waiting_external"}, "unknown status 'sleeping'"),
    ("#priority 7", {"priority": 7}, "done"),
    ("#priority 10", {"priority": 5}, "priority must be a number from 1 to 9"),
    ("#assign bob", {"owner": "bob"}, "done"),
    ("#assign carol", {"owner": "alice"}, "unknown agent 'carol'"),
    ("#channel hotline", {"channel": "hotline"}, "done"),
    ("#channel sales", {"channel": "support"}, "unknown channel 'sales'"),
    ("#category Hardware", {"categories": '["Hardware"]'}, "done"),
    ("#activity Remote support", {"activity_type": "Remote support"}, "done"),
    ("#watch boss@acme.example", {}, "done"),
    ("#watch not-an-address", {}, "is not a valid address"),
    ("#close", {"status": "closed"}, "done"),
]


@pytest.mark.parametrize(("line", "expected", "result"), COMMANDS, ids=[c[0] for c in COMMANDS])
async def test_each_command(engine: Engine, smtp: SmtpServer, line: str, expected: dict[str, Any],
                            result: str) -> None:
    config = agent_config(engine, smtp)
    created, reply_to = await open_ticket(engine, config, smtp)
    process(engine, config, RawMail(agent_mail("cmd", reply_to, f"{line}\nThe reply text."), "in"), now=T0)
    after = ticket(engine, created.ticket_number)
    for key, value in expected.items():
        assert getattr(after, key) == value, key
    await flush(engine, config)
    report = smtp.handler.to("alice@example.com")[-1].message.get_body(("plain",)).get_content()
    assert f"{line}: " in report and result in report
    (answer,) = [d for d in smtp.handler.to("anna@acme.example") if d.message["Auto-Submitted"] == "no"]
    text = answer.message.get_body(("plain",)).get_content()
    assert "The reply text." in text and line not in text  # commands never reach the customer


async def test_customer_may_close_but_not_command(engine: Engine, smtp: SmtpServer) -> None:
    config = agent_config(engine, smtp)
    created, _ = await open_ticket(engine, config, smtp)
    process(engine, config, RawMail(mail("p", f"Re: [#{created.ticket_number}]", "anna@acme.example",
                                         body="#priority 9\nplease hurry"), "in"), now=T0)
    assert ticket(engine, created.ticket_number).priority == 5
    process(engine, config, RawMail(mail("x", f"Re: [#{created.ticket_number}]", "anna@acme.example",
                                         body="#close\nSolved, thanks!"), "in"), now=T0)
    assert ticket(engine, created.ticket_number).status == "closed"
    await flush(engine, config)
    assert any("Closed" in d.message["Subject"] for d in smtp.handler.to("anna@acme.example"))


async def test_ticket_on_a_customers_behalf(engine: Engine, smtp: SmtpServer) -> None:
    config = agent_config(engine, smtp)
    headers = "Authentication-Results: mx.example.com; dkim=pass header.d=example.com\r\n"
    result = process(engine, config, RawMail(agent_mail(
        "ob", "support@example.com", "#customer Carla Kunde <carla@kunde.example>\n\nShe called: VPN down.",
        subject="Fwd: VPN", headers=headers), "in"), now=T0)
    assert result.outcome == "created"
    made = ticket(engine, result.ticket_number)
    assert (made.type, made.subject) == ("request", "VPN")
    await flush(engine, config)
    (ack,) = smtp.handler.to("carla@kunde.example")
    assert result.ticket_number in ack.message["Subject"]
    customer_reply = mail("cr", f"Re: [#{result.ticket_number}] VPN", "carla@kunde.example")
    follow = process(engine, config, RawMail(customer_reply, "in"), now=T0)
    assert follow.ticket_number == result.ticket_number


async def test_internal_ticket_sends_no_customer_mail(engine: Engine, smtp: SmtpServer) -> None:
    config = agent_config(engine, smtp)
    signed = f"support+new.{reply_mac('test-secret', 'NEW', 'alice@example.com')}@example.com"
    result = process(engine, config, RawMail(agent_mail("it", signed, "#internal\nRenew the TLS cert.",
                                                        subject="TLS cert"), "in"), now=T0)
    made = ticket(engine, result.ticket_number)
    assert (result.outcome, made.type, made.customer_id) == ("created", "internal", None)
    await flush(engine, config)
    assert all(d.rcpt_tos == ["alice@example.com"] or d.rcpt_tos == ["bob@example.com"]
               for d in smtp.handler.delivered)


async def test_a_reply_with_only_commands_sends_the_customer_nothing_quoted(
    engine: Engine, smtp: SmtpServer
) -> None:
    config = agent_config(engine, smtp)
    created, reply_to = await open_ticket(engine, config, smtp)
    quoted = ("#status resolved\n\nOn Mon, 23 Nov 2026 ACME Support <support@example.com> wrote:\n"
              "> Neues Ticket from Anna, internal priority 5\n> #internal hints\n")
    process(engine, config, RawMail(agent_mail("only", reply_to, quoted), "in"), now=T0)
    await flush(engine, config)
    to_anna = smtp.handler.to("anna@acme.example")
    assert all("internal" not in d.data.decode("utf-8", "replace") for d in to_anna)
    assert all(d.message["Auto-Submitted"] != "no" for d in to_anna)  # no relayed "reply"
    assert any("Closed" in d.message["Subject"] for d in to_anna)  # the status mail instead
    assert ticket(engine, created.ticket_number).status == "resolved"


async def test_a_signed_address_proves_nothing_for_another_ticket(engine: Engine, smtp: SmtpServer) -> None:
    config = agent_config(engine, smtp)
    _first, reply_to = await open_ticket(engine, config, smtp)
    other = process(engine, config, RawMail(mail("c2", "Other", "otto@else.example"), "in"), now=T0)
    leaked = agent_mail("leak", reply_to, "#watch evil@attacker.example\nhi",
                        subject=f"Re: [#{other.ticket_number}]")
    result = process(engine, config, RawMail(leaked, "in"), now=T0)
    assert result.ticket_number == other.ticket_number and "unproven" in result.detail
    with transaction(engine) as session:
        watchers = session.exec(select(Watcher.address).join(Ticket)
                                .where(Ticket.number == other.ticket_number)).all()
    assert "evil@attacker.example" not in watchers


async def test_unproven_agent_mail_stays_internal(engine: Engine, smtp: SmtpServer) -> None:
    config = agent_config(engine, smtp)
    created, _ = await open_ticket(engine, config, smtp)
    before = len(smtp.handler.to("bert@acme.example"))
    note = agent_mail("np", "support@example.com", "#internal Customer is difficult, max 10%",
                      subject=f"Re: [#{created.ticket_number}]")
    process(engine, config, RawMail(note, "in"), now=T0)
    await flush(engine, config)
    assert len(smtp.handler.to("bert@acme.example")) == before  # the CC watcher hears nothing
    with transaction(engine) as session:
        stored = session.exec(select(Message).where(Message.message_id == "a-np@laptop.example.com")).one()
    assert (stored.kind, stored.public) == ("unverified", False)


def quoted(text: str) -> str:
    """Text quoted the way mail clients do it: '> ' before each line."""
    return "".join(f"> {line}".rstrip() + "\n" for line in text.strip().splitlines())


def relayed_text(smtp: SmtpServer, address: str) -> list[str]:
    """The agent's text in each reply relayed to address (the template's footer cut off)."""
    mails = [d for d in smtp.handler.to(address) if d.message["Auto-Submitted"] == "no"]
    texts = [d.message.get_body(("plain",)).get_content().replace("\r\n", "\n") for d in mails]
    return [text.split("\n\n--\n")[0] for text in texts]


async def test_bottom_posted_reply_round_trip_over_imap_and_smtp(engine: Engine, smtp: SmtpServer,
                                                                 dovecot: Dovecot, folder: str) -> None:
    config = agent_config(engine, smtp, mailbox=[mailbox_table(dovecot, folder)])
    dovecot.append(mail(f"{folder}-c", "Drucker kaputt", "anna@acme.example"), folder=folder)
    await run_service(engine, config, once=True)
    (note,) = smtp.handler.to("alice@example.com")
    notification = note.message.get_body(("plain",)).get_content()
    body = (f"On 23.11.26 10:00, ACME Support wrote:\n{quoted(notification)}\n"
            "Hallo Anna,\n\nbitte installieren Sie Treiber 4.2.\n\nViele Grüße\nAlice\n\n"
            "-- \nAlice Agent · Phone +49 30 1234567\n")
    dovecot.append(agent_mail(folder, note.message["Reply-To"], body,
                              subject=f"Re: {note.message['Subject']}",
                              headers=f"In-Reply-To: {note.message['Message-ID']}\r\n"), folder=folder)
    await run_service(engine, config, once=True)
    assert relayed_text(smtp, "anna@acme.example") == [
        "Hallo Anna,\n\nbitte installieren Sie Treiber 4.2.\n\nViele Grüße\nAlice"]
    number = note.message["Subject"].split("]")[0].lstrip("[#")
    assert ticket(engine, number).status == "waiting_external"


async def test_inline_answers_reach_the_customer_with_the_questions_they_answer(
    engine: Engine, smtp: SmtpServer
) -> None:
    config = agent_config(engine, smtp)
    _created, reply_to = await open_ticket(engine, config, smtp)
    body = ("On Mon, Nov 23, 2026 at 10:00 AM ACME Support <support@example.com> wrote:\n\n"
            "> Anna Kunde wrote on ticket T20261123.0001:\n>\n> Does the printer need a new driver?\n\n"
            "Yes, version 4.2.\n\n> And the scanner?\n\nIt needs one too.\n\n"
            "> --\n> Ticket T20261123.0001 · new · priority 5 · channel support\n")
    process(engine, config, RawMail(agent_mail("inl", reply_to, body), "in"), now=T0)
    await flush(engine, config)
    assert relayed_text(smtp, "anna@acme.example") == ["> Does the printer need a new driver?\n\n"
                                                       "Yes, version 4.2.\n\n> And the scanner?\n\n"
                                                       "It needs one too."]


async def test_a_reply_with_nothing_of_the_agents_own_is_kept_as_a_note_and_never_sent_empty(
    engine: Engine, smtp: SmtpServer
) -> None:
    config = agent_config(engine, smtp)
    created, reply_to = await open_ticket(engine, config, smtp)
    body = ("\n-- \nAlice Agent\n\nOn Mon, Nov 23, 2026 at 10:00 AM ACME Support <support@example.com> "
            "wrote:\n> Drucker kaputt\n")
    result = process(engine, config, RawMail(agent_mail("empty", reply_to, body), "in"), now=T0)
    assert "not relayed" in result.detail
    await flush(engine, config)
    assert relayed_text(smtp, "anna@acme.example") == [] and smtp.handler.to("bert@acme.example") == []
    with transaction(engine) as session:
        stored = session.exec(select(Message).where(Message.message_id == "a-empty@laptop.example.com")).one()
    assert (stored.kind, stored.public, stored.text) == ("note", False, body.strip())
    after = ticket(engine, created.ticket_number)
    assert (after.status, after.owner) == ("new", "alice")  # not waiting for a reply never sent
    report = smtp.handler.to("alice@example.com")[-1].message
    assert report["Subject"].startswith(f"[#{created.ticket_number}] Not sent")
    assert "Nothing was sent to the customer" in report.get_body(("plain",)).get_content()


async def test_a_bottom_posted_internal_note_never_reaches_the_customer(engine: Engine,
                                                                        smtp: SmtpServer) -> None:
    config = agent_config(engine, smtp)
    created, reply_to = await open_ticket(engine, config, smtp)
    body = ("On Mon, Nov 23, 2026 at 10:00 AM ACME Support <support@example.com> wrote:\n"
            "> Drucker kaputt\n\n#internal\n#priority 8\nCustomer is grumpy, max 10% discount.\n")
    process(engine, config, RawMail(agent_mail("bpi", reply_to, body), "in"), now=T0)
    await flush(engine, config)
    assert relayed_text(smtp, "anna@acme.example") == []
    with transaction(engine) as session:
        stored = session.exec(select(Message).where(Message.message_id == "a-bpi@laptop.example.com")).one()
    assert (stored.kind, stored.public) == ("note", False)
    assert stored.text == "Customer is grumpy, max 10% discount."
    assert ticket(engine, created.ticket_number).priority == 8


NOTE_RULES = """
[[rule]]
name = "agents' mails: the ticket waits internally, watchers hear of it"
on = "message.received"
when.author = "agent"
then.status = "waiting_internal"
then.notify = { template = "watcher/update", audience = "watchers" }
"""
COMMAND_RULES = """
[[rule]]
name = "an agent moved the status: watchers hear of it"
on = "ticket.status_changed"
when.author = "agent"
when.status = "waiting_internal"
then.notify = { template = "watcher/update", audience = "watchers" }
"""
SECRET = "SECRET-NOTE-7f3a: customer is difficult"


@pytest.mark.parametrize("source", ["email", "portal"])
@pytest.mark.parametrize(("rules_text", "command"), [(NOTE_RULES, ""),
                                                     (COMMAND_RULES, "#status waiting_internal\n")],
                         ids=["rule-on-message", "status-changed-by-command"])
async def test_rule_driven_customer_mails_after_an_internal_note_never_show_it(
    engine: Engine, smtp: SmtpServer, tmp_path: Path, source: str, rules_text: str, command: str
) -> None:
    """The watcher update and the status mail (portal: the portal update) render the message
    they are about: for an internal note that must be nothing. The same holds, once each, when
    the note's own #status raised ticket.status_changed and a rule on it sent the update."""
    config = agent_config(engine, smtp)
    (tmp_path / "10-notes.toml").write_text(rules_text, "utf-8")
    rules = RuleBook(tmp_path, vocabulary(config)).current()
    created = process(engine, config, RawMail(mail("c1", "Drucker kaputt", "anna@acme.example",
                                                   headers="Cc: bert@acme.example\r\n"), "in",
                                              source=source), now=T0, rules=rules)
    await flush(engine, config)
    (note,) = smtp.handler.to("alice@example.com")
    before = len(smtp.handler.delivered)
    internal = agent_mail("n", note.message["Reply-To"], f"{command}#internal\n{SECRET}")
    result = process(engine, config, RawMail(internal, "in"), now=T0, rules=rules)
    assert result.ticket_number == created.ticket_number
    assert ticket(engine, created.ticket_number).status == "waiting_internal"
    await flush(engine, config)
    new = smtp.handler.delivered[before:]
    to_customers = [d for d in new if d.rcpt_tos != ["alice@example.com"]]
    expected = "portal/ticket_update" if source == "portal" else "customer/status_changed"
    assert sorted((d.rcpt_tos[0], _template(engine, d)) for d in to_customers) == [
        ("anna@acme.example", expected), ("bert@acme.example", "watcher/update")]
    for delivered in to_customers:
        raw = delivered.data.decode("utf-8", "replace")
        assert "SECRET-NOTE-7f3a" not in raw and "#internal" not in raw
        assert "a-n@laptop.example.com" not in raw  # nor the note's Message-ID
        assert delivered.message["In-Reply-To"] == "<m-c1@example.org>"  # the customer's thread


def _template(engine: Engine, delivered: Any) -> str:
    """The template an outbound mail was rendered from (looked up by its Message-ID)."""
    with transaction(engine) as session:
        row = session.exec(select(OutboxMail).join(Message).where(
            Message.message_id == delivered.message["Message-ID"].strip("<>"))).one()
    return row.template
