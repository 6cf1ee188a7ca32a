"""Mail fidelity through the pipeline: no mail to a sender we could not read, reports recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from gateway.pipeline import RawMail, process
from store.db import transaction
from store.models import Message, OutboxMail
from store.views import ticket_detail
from tests.conftest import mail, make_config

FIXTURES = Path(__file__).parent / "fixtures"


def _outbox(engine: Engine) -> list[OutboxMail]:
    with transaction(engine) as session:
        return list(session.exec(select(OutboxMail)).all())


def _shown(engine: Engine, number: str | None) -> dict:  # type: ignore[type-arg]
    assert number is not None
    with transaction(engine) as session:
        detail = ticket_detail(session, number)
    assert detail is not None
    return detail


@pytest.mark.parametrize(("fixture", "written"), [
    ("from-invalid-local-part", "John Smith <john smith@example.org>"),
    ("from-invalid-unbracketed", "anna maria@example.org"),
])
def test_a_sender_without_a_valid_address_gets_no_mail(engine: Engine, fixture: str,
                                                       written: str) -> None:
    result = process(engine, make_config(), RawMail((FIXTURES / f"{fixture}.eml").read_bytes(),
                                                    "ingest"))
    assert result.outcome == "created"
    assert "no customer/acknowledgement: the sender wrote no valid address" in result.detail
    sent = _outbox(engine)
    assert sent and {row.audience for row in sent} == {"agent"}  # the agents still hear of it
    message = _shown(engine, result.ticket_number)["messages"][0]
    assert message["from"] == "" and message["from_raw"] == written
    assert any("not a valid address" in d or "holds no valid address" in d
               for d in message["defects"])


def test_a_sender_with_a_valid_address_is_acknowledged(engine: Engine) -> None:
    result = process(engine, make_config(), RawMail(mail(1), "ingest"))
    acks = [row for row in _outbox(engine) if row.template == "customer/acknowledgement"]
    assert [[r["address"] for r in json.loads(row.recipients)] for row in acks] == [
        ["customer@example.org"]]
    message = _shown(engine, result.ticket_number)["messages"][0]
    assert message["from_raw"] == "Customer <customer@example.org>"
    assert message["delivery_status"] == []


def test_an_address_that_is_written_but_not_deliverable_gets_no_mail(engine: Engine) -> None:
    result = process(engine, make_config(), RawMail(mail(2, sender="root@localhost"), "ingest"))
    assert "not sent to root@localhost: not a valid address" in result.detail
    assert not [row for row in _outbox(engine) if row.audience == "customer"]
    assert _shown(engine, result.ticket_number)["messages"][0]["from"] == "root@localhost"


def test_a_delivery_report_is_recorded_on_its_message(engine: Engine) -> None:
    raw = (FIXTURES / "bounce-dsn-diagnostic-code.eml").read_bytes()
    expected = json.loads((FIXTURES / "bounce-dsn-diagnostic-code.expected.json").read_text())
    result = process(engine, make_config(), RawMail(raw, "ingest"))
    message = _shown(engine, result.ticket_number)["messages"][0]
    assert message["kind"] == "bounce"
    assert message["delivery_status"] == expected["delivery_status"]
    assert message["attachments"][0] == {"filename": "delivery-status.txt",
                                         "content_type": "message/delivery-status",
                                         "size": expected["attachments"][0]["size"]}
    with transaction(engine) as session:
        stored = session.exec(select(Message).where(Message.direction == "in")).one()
        assert json.loads(stored.delivery_status)[0]["status"] == "5.2.2"
    assert not [row for row in _outbox(engine) if row.audience == "customer"]


def test_a_domainless_mailer_daemon_is_kept_and_never_answered(engine: Engine) -> None:
    raw = (FIXTURES / "bounce-mailer-daemon-no-domain.eml").read_bytes()
    result = process(engine, make_config(), RawMail(raw, "ingest"))
    message = _shown(engine, result.ticket_number)["messages"][0]
    assert message["from"] == "mailer-daemon"
    assert message["kind"] == "bounce" and "no-reply" in message["classification"]
    assert not [row for row in _outbox(engine) if row.audience == "customer"]
