"""Admin input for the timers: config keys and rule parts are checked at load, with their key."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from gateway.errors import ConfigError
from gateway.rules.loader import RuleBook, parse_rule_file, vocabulary
from gateway.timers.worker import TimerWorker
from tests.conftest import make_config
from tests.test_rules import VOCAB
from tests.timerkit import T0, agent_writes, customer_writes, queued, timer_config

BAD_CONFIG = [
    ({"business_hours": {"days": ["mon", "fri", "funday"]}}, "business_hours.days: unknown day 'funday'"),
    ({"business_hours": {"days": []}}, "business_hours.days: needs at least one working day"),
    ({"business_hours": {"start": "18:00", "end": "08:00"}}, "business_hours.end: must be after start"),
    ({"business_hours": {"start": "8"}}, "business_hours.start: must be a time HH:MM"),
    ({"business_hours": {"end": "24:30"}}, "business_hours.end: must be a time HH:MM"),
    ({"business_hours": {"timezone": "Mars/Olympus"}}, "business_hours.timezone: is not a known time zone"),
    ({"business_hours": {"holidays_country": "XX"}}, "business_hours.holidays_country: unknown country"),
    ({"business_hours": {"holidays_country": "DE", "holidays_subdivision": "ZZ"}},
     "business_hours.holidays_subdivision: unknown subdivision 'ZZ' of DE"),
    ({"business_hours": {"holidays_subdivision": "BE"}},
     "business_hours.holidays_subdivision: needs holidays_country"),
    ({"sla": [{"name": "x"}]}, "sla[0].resolution_hours: needs first_response_hours or resolution_hours"),
    ({"sla": [{"name": "x", "first_response_hours": 0}]}, "sla[0].first_response_hours: must be > 0"),
    ({"sla": [{"name": "x", "resolution_hours": 8, "priorities": [0]}]},
     "sla[0].priorities[0]: must be 1 to 9"),
    ({"sla": [{"name": "x", "resolution_hours": 8, "warn_percent": 100}]},
     "sla[0].warn_percent: must be between 0 and 100"),
    ({"sla": [{"name": "x", "resolution_hours": 8, "channels": ["sales"]}]},
     "sla[0].channels: names unknown channel 'sales'"),
    ({"sla": [{"name": "x", "resolution_hours": 8}, {"name": "x", "resolution_hours": 4}]},
     "sla[1].name: 'x' is used twice"),
    ({"channel": [{"name": "support", "address": "s@example.com", "auto_close_days": 0}]},
     "channel[0].auto_close_days: must be > 0"),
    ({"channel": [{"name": "support", "address": "s@example.com", "idle_days": "3"}]},
     "channel[0].idle_days: must be int"),
    ({"timers": {"interval_seconds": -1}}, "timers.interval_seconds: must be > 0"),
    ({"timers": {"every": 5}}, "timers.every: unknown key"),
]


@pytest.mark.parametrize(("sections", "message"), BAD_CONFIG, ids=[m for _, m in BAD_CONFIG])
def test_bad_timer_config_names_the_key(sections: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        make_config(**sections)
    assert f"<test>: {message}" in str(caught.value)


def test_business_hours_default_to_the_tickets_time_zone() -> None:
    config = make_config(tickets={"timezone": "Europe/Vienna"})
    assert config.business_hours.timezone == "Europe/Vienna"
    assert make_config(business_hours={"timezone": "UTC"}, tickets={
        "timezone": "Europe/Vienna"}).business_hours.timezone == "UTC"


RULE = '[[rule]]\nname = "r"\non = "{on}"\n{body}\n'
BAD_RULES = [
    ("ticket.created", 'then.remind = "soon"', "then.remind: needs a duration"),
    ("ticket.created", 'then.remind = { after = "0m" }', "then.remind.after: needs a duration"),
    ("ticket.created", 'then.remind = { in = "2d" }', 'then.remind: needs a duration or { after'),
    ("ticket.created", 'then.remind = { after = "2d", note = 5 }', "then.remind.note: needs a string"),
    ("ticket.idle", "then.drop = true", "then.drop: ticket.idle comes with no mail"),
    ("ticket.sla_breached", 'then.auto_reply = "customer/acknowledgement"', "then.auto_reply"),
    ("ticket.sla_warning", 'when.sla = "response"\nthen.priority = 9', "unknown SLA target 'response'"),
]


@pytest.mark.parametrize(("on", "body", "message"), BAD_RULES, ids=[m for _, _, m in BAD_RULES])
def test_bad_timer_rules_name_the_key(tmp_path: Path, on: str, body: str, message: str) -> None:
    path = tmp_path / "10-timers.toml"
    path.write_text(RULE.format(on=on, body=body), encoding="utf-8")
    rules, errors = parse_rule_file(path, VOCAB)
    assert rules == [] and message in str(errors[0])


def test_a_remind_action_compiles_to_minutes(tmp_path: Path) -> None:
    path = tmp_path / "10-timers.toml"
    path.write_text(RULE.format(on="ticket.sla_breached", body='when.sla = "resolution"\n'
                                'then.remind = { after = "1h30m", note = "escalate" }'), "utf-8")
    (rule,), errors = parse_rule_file(path, VOCAB)
    assert errors == [] and rule.actions["remind"] == {"after_minutes": 90, "note": "escalate"}


async def test_the_service_loop_fires_on_its_clock_and_stops(tmp_path: Path, engine: Engine) -> None:
    config = timer_config(engine, timers={"interval_seconds": 0.05})
    number = customer_writes(engine, config, "loop", T0).ticket_number
    assert number is not None
    agent_writes(engine, config, number, "#remind 1h from the loop\n#internal", T0)
    now = [T0]
    worker = TimerWorker(engine, config, RuleBook(None, vocabulary(config)), clock=lambda: now[0])
    assert (await worker.pass_once()).total == 0  # at T0 nothing is due
    now[0] = T0 + timedelta(hours=1)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        for _ in range(200):  # wait for the pass that sees the new time (bounded)
            if queued(engine, "agent/reminder"):
                break
            await asyncio.sleep(0.05)
        assert len(queued(engine, "agent/reminder")) == 1
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert task.done() and task.exception() is None
