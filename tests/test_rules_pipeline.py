"""Rules applied by the pipeline: ticket fields, rule hits, drops; hot reload in `ticketgate run`."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import select

from gateway.config import Config
from gateway.pipeline import RawMail, process
from gateway.rules.loader import RuleBook, vocabulary
from gateway.rules.model import Rule
from store.db import transaction
from store.models import LedgerEntry, Message, RuleHit, Ticket, Watcher
from store.views import ticket_detail
from tests.conftest import mail, make_config, start_service, stop_service, write_config
from tests.servers.dovecot import Dovecot

RULES = """
[[rule]]
name = "portal is remote support"
on = "ticket.created"
when.source = "portal"
then.activity_type = "Remote support"
then.category = "Portal"

[[rule]]
name = "vip"
on = "ticket.created"
when.from = { domain = "vip.example" }
then.priority = 8
then.owner = "alice"
then.add_watcher = "manager@example.com"
then.tag = "vip"
then.channel = "hotline"

[[rule]]
name = "reopened tickets wait internally"
on = "ticket.reopened"
then.status = "waiting_internal"

[[rule]]
name = "newsletters"
on = "message.received"
when.header = { "List-Unsubscribe" = { matches = "." } }
then.drop = "newsletter"
"""


def _setup(tmp_path: Path) -> tuple[Config, list[Rule]]:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "10-test.toml").write_text(RULES, encoding="utf-8")
    config = make_config(channel=[{"name": "support", "address": "support@example.com"},
                                  {"name": "hotline", "address": "hotline@example.com"}])
    rules = RuleBook(tmp_path / "rules", vocabulary(config)).current()
    assert len(rules) == 4
    return config, rules


def _ticket(engine: Engine, number: str | None) -> dict:  # type: ignore[type-arg]
    with transaction(engine) as session:
        detail = ticket_detail(session, number or "")
    assert detail is not None
    return detail


def test_actions_land_on_the_ticket_with_their_hits(engine: Engine, tmp_path: Path) -> None:
    config, rules = _setup(tmp_path)
    portal = process(engine, config, RawMail(mail("p"), "api", source="portal"), rules=rules)
    ticket = _ticket(engine, portal.ticket_number)
    assert ticket["activity_type"] == "Remote support" and ticket["categories"] == ["Portal"]
    assert [(h["rule"], h["event"]) for h in ticket["rule_hits"]] == [
        ("portal is remote support", "ticket.created")]
    assert "'portal' equals 'portal'" in ticket["rule_hits"][0]["why"]

    vip = process(engine, config, RawMail(mail("v", sender="ceo@vip.example"), "in"), rules=rules)
    ticket = _ticket(engine, vip.ticket_number)
    assert (ticket["priority"], ticket["owner"], ticket["channel"], ticket["tags"]) == (
        8, "alice", "hotline", ["vip"])
    assert set(ticket["watchers"]) == {"ceo@vip.example", "alice@example.com", "manager@example.com"}


def test_drop_is_recorded_with_the_rule_and_stores_nothing(engine: Engine, tmp_path: Path) -> None:
    config, rules = _setup(tmp_path)
    news = mail("n", headers="List-Unsubscribe: <mailto:off@news.example>\r\n")
    result = process(engine, config, RawMail(news, "in", 1, 5), rules=rules)
    assert result.outcome == "dropped"
    with transaction(engine) as session:
        entry = session.exec(select(LedgerEntry)).one()
        assert session.exec(select(Message).where(Message.direction == "in")).first() is None
    assert entry.outcome == "dropped"
    assert "rule 'newsletters'" in entry.detail and "10-test.toml:" in entry.detail
    again = process(engine, config, RawMail(news, "in", 1, 5), rules=rules)
    assert again.outcome == "duplicate"  # the ledger remembers it: never fetched twice


def test_reopen_event_fires_on_a_customer_reply(engine: Engine, tmp_path: Path) -> None:
    config, rules = _setup(tmp_path)
    first = process(engine, config, RawMail(mail("a"), "in"), rules=rules)
    with transaction(engine) as session:
        session.exec(select(Ticket)).one().status = "resolved"
    reply = mail("b", f"Re: [#{first.ticket_number}]")
    process(engine, config, RawMail(reply, "in"), rules=rules)
    with transaction(engine) as session:
        ticket = session.exec(select(Ticket)).one()
        hits = session.exec(select(RuleHit.rule, RuleHit.event)).all()
        watchers = session.exec(select(Watcher.address)).all()
    assert ticket.status == "waiting_internal"
    assert ("reopened tickets wait internally", "ticket.reopened") in hits
    assert watchers == ["customer@example.org"]


def test_rule_file_edited_while_running_applies_to_next_mail(
    sqlite_url: str, dovecot: Dovecot, folder: str, tmp_path: Path
) -> None:
    from store.db import make_engine, migrate

    engine = make_engine(sqlite_url)
    migrate(engine)
    rules = tmp_path / "rules"
    rules.mkdir()
    rule_file = rules / "10-priority.toml"
    rule_file.write_text('[[rule]]\nname = "p3"\non = "ticket.created"\nthen.priority = 3\n', "utf-8")
    config = write_config(tmp_path / "config.toml", engine, dovecot, folder,
                          extra=f'[rules]\nfolder = "{rules}"\n')
    log = tmp_path / "service.log"
    proc = start_service(config, log=log)
    try:
        def priority_of(n: str) -> int | None:
            with transaction(engine) as session:
                return session.exec(select(Ticket.priority).join(Message)
                                    .where(Message.message_id == f"m-{n}@example.org")).first()

        def wait(n: str) -> int:
            deadline = time.monotonic() + 30
            while (found := priority_of(n)) is None:
                assert time.monotonic() < deadline, log.read_text()[-2000:]
                time.sleep(0.05)
            return found

        dovecot.append(mail(f"{folder}-1"), folder=folder)
        assert wait(f"{folder}-1") == 3
        before = rule_file.stat()
        rule_file.write_text('[[rule]]\nname = "p9"\non = "ticket.created"\nthen.priority = 9\n', "utf-8")
        # Same size, and the clock of a coarse file system: only the content tells the edit.
        os.utime(rule_file, ns=(before.st_atime_ns, before.st_mtime_ns))
        dovecot.append(mail(f"{folder}-2"), folder=folder)
        assert wait(f"{folder}-2") == 9  # no restart
        rule_file.write_text('[[rule]]\nname = "broken"\non = "ticket.created"\n'
                             'then.priority = 99\n', "utf-8")
        dovecot.append(mail(f"{folder}-3"), folder=folder)
        assert wait(f"{folder}-3") == 9  # the last good rules stay in force
        dovecot.append(mail(f"{folder}-4"), folder=folder)
        assert wait(f"{folder}-4") == 9
    finally:
        stopped = stop_service(proc)
    assert stopped.code == 0 and stopped.left == frozenset()
    text = log.read_text()
    assert text.count(f"{rule_file}:4: rule 'broken' then.priority: priority must be 1-9, got 99") == 1
    hits = json.dumps(_hits(engine))
    assert "p9" in hits and "broken" not in hits


def _hits(engine: Engine) -> list[str]:
    with transaction(engine) as session:
        return list(session.exec(select(RuleHit.rule)).all())
