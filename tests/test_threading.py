"""Threading matrix (DESIGN section 4): where the reference is × who sends it → which ticket."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from gateway.pipeline import RawMail, process
from store.db import transaction
from store.models import Message, Ticket
from tests.conftest import mail, make_config
from tests.test_parse_fixtures import FIXTURES

CUSTOMER = "customer@acme.example"
COLLEAGUE = "colleague@acme.example"
WATCHER = "partner@other.example"
AGENT = "alice@example.com"
STRANGER = "stranger@evil.example"


@dataclass(frozen=True)
class Case:
    """One row of the matrix."""

    name: str
    sender: str
    subject: str  # {token} is replaced by the first ticket's token
    headers: str  # {ack} is replaced by the Message-ID of our acknowledgement
    expect: str  # same | new | linked


# One participant rule for both ways in (In-Reply-To/References and the subject token): the
# customer, a watcher, an agent or a colleague of the customer's organisation joins the ticket;
# anyone else opens a new ticket linked to it. Bounces thread whoever sends them.
MATRIX = [
    Case("in-reply-to", CUSTOMER, "Something else", "In-Reply-To: <m-first@example.org>\r\n", "same"),
    Case("references only", CUSTOMER, "Unrelated words",
         "References: <older@elsewhere.example> <m-first@example.org>\r\n", "same"),
    Case("references, nearest unknown", CUSTOMER, "x",
         "In-Reply-To: <unknown@x.example>\r\nReferences: <m-first@example.org>\r\n", "same"),
    Case("reply to our acknowledgement", CUSTOMER, "Re: hello", "In-Reply-To: <{ack}>\r\n", "same"),
    Case("in-reply-to from same organisation", COLLEAGUE, "Re: hello", "In-Reply-To: <{ack}>\r\n",
         "same"),
    Case("in-reply-to from a CC watcher", WATCHER, "Re: hello", "In-Reply-To: <m-first@example.org>\r\n",
         "same"),
    Case("in-reply-to from an agent", AGENT, "Re: hello", "In-Reply-To: <{ack}>\r\n", "same"),
    Case("in-reply-to from a stranger", STRANGER, "Re: hello",
         "In-Reply-To: <m-first@example.org>\r\n", "linked"),
    Case("references from a stranger", STRANGER, "Re: hello",
         "References: <{ack}>\r\n", "linked"),
    Case("stranger answers a forwarded acknowledgement", STRANGER, "Re: Fwd: {token} Printer broken",
         "In-Reply-To: <{ack}>\r\nReferences: <m-first@example.org> <{ack}>\r\n", "linked"),
    Case("stranger's auto-reply to our mail", STRANGER, "Abwesenheitsnotiz: {token}",
         "In-Reply-To: <{ack}>\r\nAuto-Submitted: auto-replied\r\n", "linked"),
    Case("bounce from MAILER-DAEMON naming our mail", "MAILER-DAEMON@mx.other.example",
         "Undelivered Mail Returned to Sender", "In-Reply-To: <{ack}>\r\n", "same"),
    Case("token, customer", CUSTOMER, "Re: {token} Printer broken", "", "same"),
    Case("token with AW:", CUSTOMER, "AW: {token} Printer broken", "", "same"),
    Case("token with WG: from same organisation", COLLEAGUE, "WG: {token} Printer", "", "same"),
    Case("token with SV: from a CC watcher", WATCHER, "SV: {token} Printer", "", "same"),
    Case("token, agent", AGENT, "Re: {token}", "", "same"),
    Case("token, stranger", STRANGER, "Re: {token} Printer broken", "", "linked"),
    Case("unknown token", CUSTOMER, "Re: [#T20990101.0001] Printer", "", "new"),
    Case("prefix only, no token, no refs", CUSTOMER, "AW: Printer broken", "", "new"),
    Case("unknown references", CUSTOMER, "Re: Printer broken",
         "In-Reply-To: <nobody@nowhere.example>\r\n", "new"),
]


def _first_ticket(engine: Engine) -> str:
    config = make_config()
    first = mail("first", "Printer broken", CUSTOMER, headers=f"Cc: {WATCHER}\r\n")
    result = process(engine, config, RawMail(first, "test"))
    assert result.outcome == "created" and result.ticket_number
    return result.ticket_number


def _acknowledgement(engine: Engine) -> str:
    """The Message-ID of the acknowledgement we queued for the first ticket."""
    with transaction(engine) as session:
        return session.exec(select(Message.message_id).where(Message.kind == "acknowledgement")).one()


@pytest.mark.parametrize("case", MATRIX, ids=[c.name for c in MATRIX])
def test_threading_matrix(engine: Engine, case: Case) -> None:
    number = _first_ticket(engine)
    subject = case.subject.replace("{token}", f"[#{number}]")
    headers = case.headers.replace("{ack}", _acknowledgement(engine))
    reply = mail("reply", subject, case.sender, headers=headers)
    result = process(engine, make_config(), RawMail(reply, "test"))
    if case.expect == "same":
        assert (result.outcome, result.ticket_number) == ("followup", number)
        return
    assert result.outcome == "created"
    assert result.ticket_number != number
    with transaction(engine) as session:
        new = session.exec(select(Ticket).where(Ticket.number == result.ticket_number)).one()
        old = session.exec(select(Ticket).where(Ticket.number == number)).one()
        if case.expect == "linked":
            assert new.linked_ticket_id == old.id  # a stranger's reference never hijacks
            assert f"of {number} from a non-participant" in result.detail
        else:
            assert new.linked_ticket_id is None


def test_delivery_report_threads_by_the_returned_message_id(engine: Engine) -> None:
    number = _first_ticket(engine)
    dsn = (FIXTURES / "bounce-dsn.eml").read_bytes().replace(
        b"ticket-10431.reply-1@example.com", _acknowledgement(engine).encode())
    result = process(engine, make_config(), RawMail(dsn, "test"))
    assert (result.outcome, result.ticket_number) == ("followup", number)
    with transaction(engine) as session:
        kinds = session.exec(select(Message.kind).where(Message.direction == "in")).all()
    assert kinds == ["customer", "bounce"]


@pytest.mark.parametrize(
    ("status", "policy", "outcome", "new_status", "same_ticket"),
    [
        ("waiting_external", "reopen", "followup", "open", True),
        ("resolved", "reopen", "followup", "open", True),
        ("closed", "reopen", "followup", "open", True),
        ("closed", "new", "created", "closed", False),
        ("closed", "reject", "rejected", "closed", True),
        ("postponed", "reopen", "followup", "postponed", True),
    ],
)
def test_customer_followup_moves_status(engine: Engine, status: str, policy: str, outcome: str,
                                        new_status: str, same_ticket: bool) -> None:
    number = _first_ticket(engine)
    with transaction(engine) as session:
        session.exec(select(Ticket).where(Ticket.number == number)).one().status = status
    config = make_config(tickets={"closed_followup": policy})
    reply = mail("reply", f"Re: [#{number}]", CUSTOMER)
    result = process(engine, config, RawMail(reply, "test"))
    assert result.outcome == outcome
    assert (result.ticket_number == number) == same_ticket
    with transaction(engine) as session:
        assert session.exec(select(Ticket).where(Ticket.number == number)).one().status == new_status


def test_auto_reply_threads_but_does_not_reopen(engine: Engine) -> None:
    number = _first_ticket(engine)
    with transaction(engine) as session:
        session.exec(select(Ticket).where(Ticket.number == number)).one().status = "resolved"
    ooo = mail("ooo", f"Out of office: Re: [#{number}]", CUSTOMER,
               headers="Auto-Submitted: auto-replied\r\n")
    result = process(engine, make_config(), RawMail(ooo, "test"))
    assert (result.outcome, result.ticket_number) == ("followup", number)
    with transaction(engine) as session:
        assert session.exec(select(Ticket).where(Ticket.number == number)).one().status == "resolved"
