"""The support address is no broadcaster: caps on watchers and recipients, over a real SMTP server,
recorded on the ticket and shown by `tickets show`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from gateway.cli import main
from gateway.pipeline import RawMail, process
from store.db import transaction
from store.views import ticket_detail
from tests.conftest import mail
from tests.servers.smtp import SmtpServer
from tests.test_agents import T0, agent_config, agent_mail, flush, smtp

__all__ = ["smtp"]  # the fixture, shared with test_agents

STRANGER = "stranger@spam.example"


def copied(count: int, start: int = 0) -> str:
    """A Cc header with count distinct victims."""
    return "Cc: " + ", ".join(f"victim{n}@list{n % 7}.example" for n in range(start, start + count)) + "\r\n"


def detail(engine: Engine, number: str | None) -> dict[str, Any]:
    with transaction(engine) as session:
        found = ticket_detail(session, number or "")
    assert found is not None
    return found


def victims_mailed(smtp: SmtpServer) -> list[list[str]]:
    """The envelope recipients of every mail that reached a copied address."""
    return [[r for r in d.rcpt_tos if r.startswith("victim")] for d in smtp.handler.delivered
            if any(r.startswith("victim") for r in d.rcpt_tos)]


async def test_hundreds_of_cc_addresses_make_at_most_the_cap_of_mails(
    engine: Engine, smtp: SmtpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = agent_config(engine, smtp)  # the default limits
    first = process(engine, config, RawMail(mail("s1", "Win big", STRANGER, headers=copied(300)), "in"),
                    now=T0)
    await flush(engine, config)
    assert victims_mailed(smtp) == []  # nobody copied gets an acknowledgement
    ticket = detail(engine, first.ticket_number)
    assert len(ticket["watchers"]) == 1 + 20  # the sender and limits.watchers_per_mail
    (hit,) = ticket["capped"]
    assert (hit["limit"], hit["maximum"], hit["left_out"]) == ("watchers_per_mail", 20, 280)
    assert hit["addresses"][0] == "victim20@list6.example" and len(hit["addresses"]) == 100
    assert hit["message_id"] == "m-s1@example.org"
    assert "280 copied address(es) not made watchers" in first.detail

    again = mail("s2", f"Re: [#{first.ticket_number}] Win big", STRANGER, headers=copied(300, 300))
    process(engine, config, RawMail(again, "in"), now=T0)
    await flush(engine, config)
    updates = victims_mailed(smtp)
    assert len(updates) == 20 and all(len(r) == 1 for r in updates)  # one watcher/update each
    ticket = detail(engine, first.ticket_number)
    assert len(ticket["watchers"]) == 30  # limits.watchers_per_ticket
    assert [(h["limit"], h["left_out"]) for h in ticket["capped"]] == [
        ("watchers_per_mail", 280), ("watchers_per_ticket", 291)]

    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "{engine.url.render_as_string(hide_password=False)}"\n',
                    encoding="utf-8")
    assert main(["--config", str(path), "tickets", "show", first.ticket_number or ""]) == 0
    text = capsys.readouterr().out
    assert "capped: limits.watchers_per_mail = 20: 280 address(es) held back (victim20@list6.example, " \
           in text
    assert main(["--config", str(path), "tickets", "show", first.ticket_number or "", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["capped"] == ticket["capped"]


async def test_recipients_per_mail_and_per_event(engine: Engine, smtp: SmtpServer) -> None:
    limits = {"watchers_per_mail": 5, "watchers_per_ticket": 9, "recipients_per_mail": 4,
              "recipients_per_event": 6}
    config = agent_config(engine, smtp, limits=limits)
    created = process(engine, config, RawMail(mail("c1", "Drucker", "anna@acme.example",
                                                   headers=copied(8)), "in"), now=T0)
    number = created.ticket_number
    process(engine, config, RawMail(mail("c2", f"Re: [#{number}]", "anna@acme.example",
                                         headers=copied(8, 8)), "in"), now=T0)
    await flush(engine, config)
    assert len(detail(engine, number)["watchers"]) == 9  # anna, 5, then 3 more up to the ticket cap
    (note,) = smtp.handler.to("alice@example.com")[:1]
    process(engine, config, RawMail(agent_mail("r1", note.message["Reply-To"], "Fixed it."), "in"),
            now=T0)
    await flush(engine, config)
    (answer,) = [d for d in smtp.handler.delivered if d.message["Auto-Submitted"] == "no"]
    assert len(answer.rcpt_tos) == 4 and "anna@acme.example" in answer.rcpt_tos  # customer first
    before = len(smtp.handler.delivered)
    process(engine, config, RawMail(mail("c3", f"Re: [#{number}]", "anna@acme.example"), "in"), now=T0)
    await flush(engine, config)
    updates = [d for d in smtp.handler.delivered[before:] if d.rcpt_tos != ["alice@example.com"]]
    assert len(updates) == 6  # 8 copied watchers, limits.recipients_per_event 6
    capped = [(h["limit"], h["maximum"], h["left_out"]) for h in detail(engine, number)["capped"]]
    assert capped == [("watchers_per_mail", 5, 3), ("watchers_per_ticket", 9, 5),
                      ("recipients_per_mail", 4, 5), ("recipients_per_event", 6, 2)]
