"""The rules interpreter and loader: every condition, operator and action, and every error."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gateway.rules.interpret import evaluate
from gateway.rules.loader import RuleBook, Vocabulary, parse_rule_file
from gateway.rules.model import Facts, FileFact, Person
from gateway.templates import TEMPLATE_NAMES

VOCAB = Vocabulary(channels=frozenset({"support", "hotline"}), agents=frozenset({"alice"}),
                   templates=TEMPLATE_NAMES)


def facts() -> Facts:
    """A Monday evening customer mail from a known contact with an invoice attached."""
    return Facts(
        source="email", channel="support", mailbox="inbox",
        sender=Person("anna@acme.example", "Anna Kunde"),
        to=(Person("support@example.com", "Support"),),
        cc=(Person("boss@acme.example", "Boss"),),
        subject="Drucker kaputt – dringend", body="Der Drucker druckt nicht.",
        headers={"x-source": ["portal-form"], "precedence": ["normal"]},
        attachments=(FileFact("Rechnung-42.pdf", "application/pdf"),),
        organisation="acme.example", customer_known=True, status="open", priority=5,
        author="customer", auto_submitted=False,
        local_time=datetime(2026, 11, 23, 19, 30, tzinfo=ZoneInfo("Europe/Berlin")),
    )


def rules_from(tmp_path: Path, text: str, name: str = "10-test.toml") -> list:  # type: ignore[type-arg]
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    rules, errors = parse_rule_file(path, VOCAB)
    assert not errors, [str(e) for e in errors]
    return rules


# (condition TOML, fires on facts()?)
CONDITIONS = [
    ('when.source = "email"', True),
    ('when.source = "portal"', False),
    ('when.source = ["portal", "email"]', True),
    ('when.channel = "support"', True),
    ('when.channel = { not = "support" }', False),
    ('when.mailbox = "inbox"', True),
    ('when.from = "ANNA@acme.example"', True),
    ('when.from = { domain = "acme.example" }', True),
    ('when.from = { domain = ["other.example"] }', False),
    ('when.from = { name = { contains = "kunde" } }', True),
    ('when.from = { address = { starts_with = "anna@" }, domain = "acme.example" }', True),
    ('when.from = { matches = "@acme\\\\.example$" }', True),
    ('when.to = "support@example.com"', True),
    ('when.to = { domain = "acme.example" }', False),
    ('when.cc = { domain = "acme.example" }', True),
    ('when.cc = { name = "nobody" }', False),
    ('when.subject = { contains = "DRINGEND" }', True),
    ('when.subject = { starts_with = "Drucker" }', True),
    ('when.subject = { starts_with = "kaputt" }', False),
    ('when.subject = { matches = "(?i)drucker\\\\s+kaputt" }', True),
    ('when.subject = { equals = "Drucker kaputt – dringend" }', True),
    ('when.subject = { in = ["a", "b"] }', False),
    ('when.subject = { not = { contains = "dringend" } }', False),
    ('when.subject = { any = [{ contains = "nope" }, { contains = "kaputt" }] }', True),
    ('when.subject = { all = [{ contains = "drucker" }, { contains = "nope" }] }', False),
    ('when.subject = { contains = "drucker", starts_with = "x" }', False),
    ('when.body = { contains = "druckt nicht" }', True),
    ('when.header = { "X-Source" = { starts_with = "portal" } }', True),
    ('when.header = { "X-Missing" = { matches = "." } }', False),
    ('when.header = { "X-Missing" = { not = { matches = "." } } }', True),
    ("when.has_attachment = true", True),
    ("when.has_attachment = false", False),
    ('when.attachment = { name = { matches = "(?i)\\\\.pdf$" } }', True),
    ('when.attachment = { type = "image/png" }', False),
    ('when.organisation = "acme.example"', True),
    ('when.customer = "known"', True),
    ('when.customer = "new"', False),
    ('when.status = ["open", "new"]', True),
    ('when.priority = { in = [7, 8, 9] }', False),
    ("when.priority = 5", True),
    ('when.author = "agent"', False),
    ("when.auto_submitted = false", True),
    ('when.time = { between = ["18:00", "08:00"] }', True),
    ('when.time = { between = ["08:00", "18:00"] }', False),
    ('when.weekday = ["mon", "tue"]', True),
    ('when.weekday = "sun"', False),
    ('when.any = [{ source = "portal" }, { subject = { contains = "drucker" } }]', True),
    ('when.all = [{ source = "email" }, { priority = 9 }]', False),
    ('when.not = { source = "portal" }', True),
]


@pytest.mark.parametrize(("condition", "fires"), CONDITIONS, ids=[c for c, _ in CONDITIONS])
def test_condition(tmp_path: Path, condition: str, fires: bool) -> None:
    rules = rules_from(tmp_path, f'[[rule]]\nname = "r"\non = "ticket.created"\n{condition}\n'
                                 "then.priority = 9\n")
    outcome = evaluate(rules, "ticket.created", facts(), explain=True)
    assert bool(outcome.fired) == fires, outcome.traces[0].checks
    assert outcome.traces[0].checks[-1][2]  # every verdict comes with a reason


# (actions TOML, expected merged actions)
ACTIONS = [
    ('then.channel = "hotline"', {"channel": "hotline"}),
    ('then.channel = "HOTLINE"', {"channel": "hotline"}),  # stored as configured
    ("then.priority = 8", {"priority": 8}),
    ('then.activity_type = "Remote support"', {"activity_type": "Remote support"}),
    ('then.category = ["Billing", "Printer"]', {"category": ["Billing", "Printer"]}),
    ('then.owner = "alice"', {"owner": "alice"}),
    ('then.status = "waiting_internal"', {"status": "waiting_internal"}),
    ('then.add_watcher = "boss@acme.example"', {"add_watcher": ["boss@acme.example"]}),
    ('then.tag = "vip"', {"tag": ["vip"]}),
    ('then.auto_reply = "customer/out_of_hours"', {"auto_reply": "customer/out_of_hours"}),
    ("then.auto_reply = false", {"auto_reply": False}),
    ('then.notify = { template = "agent/new_ticket", audience = "agents" }',
     {"notify": [{"template": "agent/new_ticket", "audience": "agents"}]}),
    ('then.drop = "newsletter"', {"drop": "newsletter"}),
]


@pytest.mark.parametrize(("action", "expected"), ACTIONS, ids=[a for a, _ in ACTIONS])
def test_action(tmp_path: Path, action: str, expected: dict) -> None:  # type: ignore[type-arg]
    rules = rules_from(tmp_path, f'[[rule]]\nname = "r"\non = "ticket.created"\n{action}\n')
    assert evaluate(rules, "ticket.created", facts()).actions == expected


def test_order_stop_and_accumulation(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, """
[[rule]]
name = "first"
on = "ticket.created"
then.priority = 3
then.tag = "a"

[[rule]]
name = "second"
on = "ticket.created"
then.priority = 7
then.tag = "b"
stop = true

[[rule]]
name = "never"
on = "ticket.created"
then.priority = 1

[[rule]]
name = "other event"
on = "message.received"
then.priority = 2

[[rule]]
name = "disabled"
on = "ticket.created"
enabled = false
then.priority = 1
""")
    outcome = evaluate(rules, "ticket.created", facts())
    assert outcome.actions == {"priority": 7, "tag": ["a", "b"]}
    assert [t.rule.name for t in outcome.fired] == ["first", "second"]


# (rule file text, expected line, expected fragment of the message)
ERRORS = [
    ('[[rule]]\nname = "x"\non = "ticket.created"\nwhen.subject = { matches = "([a-z" }\n'
     "then.priority = 3\n", 4, "when.subject.matches: bad regular expression"),
    ('[[rule]]\nname = "x"\non = "ticket.created"\nthen.priority = 12\n', 4,
     "then.priority: priority must be 1-9, got 12"),
    ('[[rule]]\nname = "x"\non = "ticket.created"\nthen.channel = "nowhere"\n', 4,
     "then.channel: unknown channel 'nowhere'"),
    ('[[rule]]\nname = "x"\non = "ticket.created"\nthen.owner = "bob"\n', 4, "unknown agent 'bob'"),
    ('[[rule]]\nname = "x"\non = "ticket.created"\nthen.auto_reply = "customer/nope"\n', 4,
     "unknown template 'customer/nope'"),
    ('[[rule]]\nname = "x"\non = "ticket.created"\nwhen.subject = { resembles = "a" }\n'
     "then.priority = 3\n", 4, "unknown operator 'resembles'"),
    ('[[rule]]\nname = "x"\non = "ticket.created"\nwhen.colour = "red"\nthen.priority = 3\n', 4,
     "unknown condition 'colour'"),
    ('[[rule]]\nname = "x"\non = "ticket.created"\nthen.explode = true\n', 4, "unknown action 'explode'"),
    ('[[rule]]\nname = "x"\non = "ticket.created"\nthen.priority = 3\nstopp = true\n', 5,
     "stopp: unknown key"),
    ('[[rule]]\nname = "x"\non = "mail.arrived"\nthen.priority = 3\n', 3, "unknown event 'mail.arrived'"),
    ('[[rule]]\nname = "x"\non = "ticket.created"\nwhen.status = "opn"\nthen.priority = 3\n', 4,
     "unknown status 'opn'"),
    ('[[rule]]\nname = "x"\non = "ticket.created"\nwhen.time = { between = ["25:00", "08:00"] }\n'
     "then.priority = 3\n", 4, "needs HH:MM times"),
    ('[[rule]]\nname = "x"\non = "ticket.created"\nthen.add_watcher = "not an address"\n', 4,
     "is not a valid address"),
    ('[[rule]]\nname = "x"\non = "ticket.created"\n', 1, "then: needs at least one action"),
    ('[[rule]]\nname = "x"\non = "ticket.created"\nthen.priority = 3\n[[rule\n', 5, "toml"),
    ("rule = [1]\n", 1, "must be a table"),
    ('[[rule]]\nname = "x"\non = "ticket.created"\n'
     'then.notify = { template = "agent/new_ticket", audience = "customer" }\n', 4,
     "is written for agents, not for customer"),
]


@pytest.mark.parametrize(("text", "line", "fragment"), ERRORS, ids=[e[2] for e in ERRORS])
def test_validation_names_file_line_and_key(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    path = tmp_path / "20-broken.toml"
    path.write_text(text, encoding="utf-8")
    rules, errors = parse_rule_file(path, VOCAB)
    assert rules == [] and errors
    message = str(errors[0])
    assert message.startswith(f"{path}:{line}: "), message
    assert fragment in message


def test_rulebook_reloads_and_keeps_last_good(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "10-a.toml"
    path.write_text('[[rule]]\nname = "p3"\non = "ticket.created"\nthen.priority = 3\n', "utf-8")
    book = RuleBook(tmp_path, VOCAB)
    assert [r.name for r in book.current()] == ["p3"]
    path.write_text('[[rule]]\nname = "p4"\non = "ticket.created"\nthen.priority = 4\n', "utf-8")
    assert [r.name for r in book.current()] == ["p4"]
    path.write_text('[[rule]]\nname = "bad"\non = "ticket.created"\nthen.priority = 40\n', "utf-8")
    assert [r.name for r in book.current()] == ["p4"]  # last good stays
    assert [r.name for r in book.current()] == ["p4"]
    errors = [r for r in caplog.records if "then.priority" in r.getMessage()]
    assert len(errors) == 1 and f"{path}:4" in errors[0].getMessage()  # logged once
    (tmp_path / "05-b.toml").write_text('[[rule]]\nname = "b"\non = "ticket.created"\n'
                                        'then.tag = "x"\n', "utf-8")
    assert [r.name for r in book.current()] == ["b", "p4"]  # file-name order


def test_rulebook_sees_an_edit_that_keeps_size_and_mtime(tmp_path: Path) -> None:
    """Within the file system's timestamp granularity an edit can leave (mtime, size) alone."""
    path = tmp_path / "10-a.toml"
    path.write_text('[[rule]]\nname = "p3"\non = "ticket.created"\nthen.priority = 3\n', "utf-8")
    book = RuleBook(tmp_path, VOCAB)
    assert [r.name for r in book.current()] == ["p3"]
    before = path.stat()
    path.write_text('[[rule]]\nname = "p7"\non = "ticket.created"\nthen.priority = 7\n', "utf-8")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (path.stat().st_mtime_ns, path.stat().st_size) == (before.st_mtime_ns, before.st_size)
    assert [(r.name, r.actions["priority"]) for r in book.current()] == [("p7", 7)]
