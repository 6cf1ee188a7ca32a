"""Helpers for the time-travel tests: a config with agents, tickets opened and answered by mail."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from gateway.agents.identity import signed_reply_address
from gateway.config import Config, parse_config
from gateway.pipeline import Disposition, RawMail, process
from gateway.rules.loader import RuleBook, vocabulary
from gateway.rules.model import Rule
from store.db import transaction
from store.models import OutboxMail, Ticket, Timer
from tests.conftest import mail

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # a Monday, 10:00 in Berlin
ALICE = {"address": "alice@example.com", "name": "alice", "display_name": "Alice Agent"}
BOB = {"address": "bob@example.com", "name": "bob", "display_name": "Bob"}


def timer_config(engine: Engine, **extra: Any) -> Config:
    """Two channels, two agents, signed reply addresses, Berlin time."""
    raw: dict[str, Any] = {
        "database": {"url": engine.url.render_as_string(hide_password=False)},
        "secret": "test-secret",
        "tickets": {"timezone": "Europe/Berlin"},
        "channel": [{"name": "support", "address": "support@example.com",
                     "display_name": "ACME Support"},
                    {"name": "hotline", "address": "hotline@example.com"}],
        "agent": [ALICE, BOB],
    }
    raw.update(extra)
    return parse_config(raw, "<test>")


def load_rules(tmp_path: Path, config: Config, text: str) -> list[Rule]:
    """A rule file in a fresh folder, compiled (it must validate)."""
    folder = tmp_path / "rules"
    folder.mkdir(exist_ok=True)
    (folder / "10-test.toml").write_text(text, encoding="utf-8")
    book = RuleBook(folder, vocabulary(config))
    rules = book.current()
    assert rules, "the test's rules must load"
    return rules


def customer_writes(engine: Engine, config: Config, n: str, now: datetime, subject: str = "",
                    sender: str = "anna@acme.example", headers: str = "",
                    rules: Sequence[Rule] = ()) -> Disposition:
    """A customer's mail through the whole pipeline."""
    return process(engine, config, RawMail(mail(n, subject or f"Question {n}", sender,
                                                headers=headers), "in"), now=now, rules=rules)


def agent_writes(engine: Engine, config: Config, number: str, body: str, now: datetime,
                 n: str = "", agent: dict[str, str] = ALICE, headers: str = "",
                 rules: Sequence[Rule] = ()) -> Disposition:
    """An agent's reply to the signed address of a ticket, through the whole pipeline."""
    who = next(a for a in config.agents if a.address == agent["address"])
    to = signed_reply_address(config, "support@example.com", number, who)
    raw = (f"From: {agent['display_name']} <{agent['address']}>\r\nTo: {to}\r\n"
           f"Subject: Re: [#{number}]\r\nMessage-ID: <a-{n or body[:8].strip()}-{now.timestamp()}"
           f"@laptop.example.com>\r\n{headers}MIME-Version: 1.0\r\n"
           f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n").encode()
    return process(engine, config, RawMail(raw, "in"), now=now, rules=rules)


def ticket(engine: Engine, number: str | None) -> Ticket:
    with transaction(engine) as session:
        return session.exec(select(Ticket).where(Ticket.number == number)).one()


def queued(engine: Engine, template: str) -> list[tuple[list[str], dict[str, Any]]]:
    """Outbox mails of one template: recipients and context, oldest first."""
    with transaction(engine) as session:
        rows = session.exec(select(OutboxMail).where(OutboxMail.template == template)
                            .order_by(col(OutboxMail.id))).all()
        return [([r["address"] for r in json.loads(row.recipients)], json.loads(row.context))
                for row in rows]


def timers(engine: Engine, number: str | None = None) -> list[Timer]:
    with transaction(engine) as session:
        query = select(Timer).order_by(col(Timer.id))
        if number is not None:
            query = query.join(Ticket, col(Ticket.id) == col(Timer.ticket_id)).where(
                Ticket.number == number)
        return list(session.exec(query).all())


def config_file(tmp_path: Path, engine: Engine, extra: str = "") -> Path:
    """The TOML twin of timer_config, for the command line."""
    path = tmp_path / "config.toml"
    path.write_text(
        f'secret = "test-secret"\n[database]\nurl = "{engine.url.render_as_string(hide_password=False)}"\n'
        '[tickets]\ntimezone = "Europe/Berlin"\n'
        '[[channel]]\nname = "support"\naddress = "support@example.com"\n'
        'display_name = "ACME Support"\n'
        '[[channel]]\nname = "hotline"\naddress = "hotline@example.com"\n'
        '[[agent]]\naddress = "alice@example.com"\nname = "alice"\ndisplay_name = "Alice Agent"\n'
        '[[agent]]\naddress = "bob@example.com"\nname = "bob"\ndisplay_name = "Bob"\n' + extra,
        encoding="utf-8")
    return path
