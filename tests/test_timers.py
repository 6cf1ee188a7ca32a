"""Timers over time: reminders, auto-close, SLA warnings and breaches, idle; restarts; two instances."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from gateway.outbound.flush import flush_outbox_once
from gateway.outbound.render import Renderer
from gateway.outbound.smtp import SmtpSender
from gateway.timers.fire import fire_due_timers_once, sync_open_tickets
from store.db import make_engine, transaction
from store.models import Ticket, Timer, WebhookDelivery
from store.timers import add_timer
from tests.servers.smtp import SmtpServer
from tests.timerkit import (
    T0,
    agent_writes,
    customer_writes,
    load_rules,
    queued,
    ticket,
    timer_config,
    timers,
)

DAY = timedelta(days=1)


def add_timers(engine: Engine, number: str | None, specs: list[tuple[str, datetime, str]]) -> None:
    """Timers written straight into the store: (kind, due, note)."""
    with transaction(engine) as session:
        found = session.exec(select(Ticket).where(Ticket.number == number)).one()
        assert found.id is not None
        for kind, due, note in specs:
            add_timer(session, found.id, kind, due, note=note, now=T0)


def test_remind_fires_once_at_its_time_across_a_restart(engine: Engine) -> None:
    config = timer_config(engine)
    number = customer_writes(engine, config, "r1", T0).ticket_number
    assert number is not None
    agent_writes(engine, config, number, "#remind 2d call back about the printer\nHello Anna", T0)
    (timer,) = timers(engine, number)
    assert (timer.kind, timer.note, timer.created_by) == ("reminder", "call back about the printer",
                                                          "alice")
    assert fire_due_timers_once(engine, config, T0 + 2 * DAY - timedelta(seconds=1)).total == 0
    restarted = make_engine(engine.url.render_as_string(hide_password=False))  # a new process
    try:
        counts = fire_due_timers_once(restarted, config, T0 + 2 * DAY)
        again = fire_due_timers_once(restarted, config, T0 + 30 * DAY)
    finally:
        restarted.dispose()
    assert counts.fired == {"reminder": 1} and again.total == 0
    ((to, context),) = queued(engine, "agent/reminder")
    assert to == ["alice@example.com"]  # the owner (the first agent who answered)
    assert context["timer"]["note"] == "call back about the printer"
    assert context["timer"]["due"] == "2026-11-25 10:00"  # Berlin time in the mail


def test_remind_at_a_local_date_and_time(engine: Engine) -> None:
    config = timer_config(engine)
    number = customer_writes(engine, config, "r2", T0).ticket_number
    assert number is not None
    agent_writes(engine, config, number, "#remind 2026-12-01 09:00 Angebot nachfassen\n#internal",
                 T0)
    agent_writes(engine, config, number, "#remind 29.03.2026 02:30 gap\n#internal", T0, n="gap")
    agent_writes(engine, config, number, "#remind 2026-01-01 past\n#internal", T0, n="past")
    agent_writes(engine, config, number, "#remind soon\n#internal", T0, n="soon")
    (timer,) = timers(engine, number)
    assert timer.due_at.replace(tzinfo=UTC) == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    results = [c["results"] for _, c in queued(engine, "agent/command_result")]
    assert "due 2026-12-01 09:00 (Europe/Berlin)" in results[0][0]
    assert "is in the past" in results[2][0] and "neither a duration" in results[3][0]
    assert "is in the past" in results[1][0] or "does not exist" in results[1][0]


def test_reminder_goes_to_the_channel_agents_when_nobody_owns_the_ticket(tmp_path: Path,
                                                                         engine: Engine) -> None:
    config = timer_config(engine)
    rules = load_rules(tmp_path, config, """
[[rule]]
name = "hotline tickets are checked after an hour"
on = "ticket.created"
when.subject = { contains = "urgent" }
then.remind = { after = "1h", note = "is anybody on it?" }
""")
    number = customer_writes(engine, config, "u1", T0, subject="urgent: server down",
                             rules=rules).ticket_number
    (timer,) = timers(engine, number)
    assert timer.created_by == "rule (ticket.created)"
    assert fire_due_timers_once(engine, config, T0 + timedelta(minutes=59)).total == 0
    assert fire_due_timers_once(engine, config, T0 + timedelta(hours=1)).total == 1
    assert sorted(to[0] for to, _ in queued(engine, "agent/reminder")) == [
        "alice@example.com", "bob@example.com"]


def auto_close_config(engine: Engine):  # type: ignore[no-untyped-def]
    return timer_config(engine, channel=[{"name": "support", "address": "support@example.com",
                                          "auto_close_remind_days": 3, "auto_close_days": 4}])


def test_waiting_ticket_gets_a_reminder_then_closes(engine: Engine) -> None:
    config = auto_close_config(engine)
    number = customer_writes(engine, config, "w1", T0).ticket_number
    agent_writes(engine, config, number, "Which model is it?", T0)
    assert ticket(engine, number).status == "waiting_external"
    assert fire_due_timers_once(engine, config, T0 + 3 * DAY - timedelta(minutes=1)).total == 0
    assert fire_due_timers_once(engine, config, T0 + 3 * DAY).fired == {"waiting_reminder": 1}
    ((to, _),) = queued(engine, "customer/waiting_reminder")
    assert to == ["anna@acme.example"] and ticket(engine, number).status == "waiting_external"
    assert fire_due_timers_once(engine, config, T0 + 7 * DAY - timedelta(minutes=1)).total == 0
    assert fire_due_timers_once(engine, config, T0 + 7 * DAY).fired == {"auto_close": 1}
    assert ticket(engine, number).status == "resolved"
    ((to, _),) = queued(engine, "customer/closed")
    assert to == ["anna@acme.example"]
    assert fire_due_timers_once(engine, config, T0 + 60 * DAY).total == 0


def test_a_customer_reply_cancels_reminder_and_auto_close(engine: Engine) -> None:
    config = auto_close_config(engine)
    number = customer_writes(engine, config, "w2", T0).ticket_number
    agent_writes(engine, config, number, "Which model is it?", T0)
    fire_due_timers_once(engine, config, T0 + 3 * DAY)  # the reminder went out
    customer_writes(engine, config, "w2-reply", T0 + 5 * DAY, subject=f"Re: [#{number}]")
    assert ticket(engine, number).status == "open"
    assert {t.kind: t.status for t in timers(engine, number)} == {
        "waiting_reminder": "fired", "auto_close": "cancelled"}
    assert fire_due_timers_once(engine, config, T0 + 30 * DAY).total == 0
    assert ticket(engine, number).status == "open" and queued(engine, "customer/closed") == []
    # waiting again: a new round with new due times
    agent_writes(engine, config, number, "And the serial number?", T0 + 6 * DAY, n="again")
    assert fire_due_timers_once(engine, config, T0 + 9 * DAY).fired == {"waiting_reminder": 1}
    assert fire_due_timers_once(engine, config, T0 + 13 * DAY).fired == {"auto_close": 1}


def test_an_out_of_office_reply_does_not_stop_auto_close(engine: Engine) -> None:
    config = auto_close_config(engine)
    number = customer_writes(engine, config, "w3", T0).ticket_number
    agent_writes(engine, config, number, "Which model is it?", T0)
    customer_writes(engine, config, "ooo", T0 + DAY, subject=f"Re: [#{number}] Out of office",
                    headers="Auto-Submitted: auto-replied\r\n")
    assert fire_due_timers_once(engine, config, T0 + 7 * DAY).fired == {
        "waiting_reminder": 1, "auto_close": 1}


SLA = {"sla": [{"name": "standard", "first_response_hours": 4, "resolution_hours": 16}]}
FRIDAY_4PM = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)  # 16:00 in Berlin, an hour before closing


def test_sla_warning_and_breach_in_business_hours(tmp_path: Path, engine: Engine) -> None:
    config = timer_config(engine, **SLA)
    rules = load_rules(tmp_path, config, """
[[rule]]
name = "breached first responses go up"
on = "ticket.sla_breached"
when.sla = "first_response"
then.priority = 9
then.tag = "sla-breached"
then.notify = { template = "agent/new_ticket", audience = "agents" }
""")
    number = customer_writes(engine, config, "s1", FRIDAY_4PM).ticket_number
    kinds = {t.kind: t.due_at.replace(tzinfo=UTC) for t in timers(engine, number)}
    monday = datetime(2026, 11, 30, tzinfo=UTC)
    # 80 % of 4 business hours: 1 h on Friday, 2 h 12 min on Monday from 08:00 Berlin
    assert kinds["sla_first_response_warning"] == monday + timedelta(hours=9, minutes=12)
    assert kinds["sla_first_response_breach"] == monday + timedelta(hours=10)
    assert kinds["sla_resolution_breach"] == datetime(2026, 12, 1, 13, 0, tzinfo=UTC)  # Tue 14:00
    weekend = fire_due_timers_once(engine, config, monday + timedelta(hours=7), rules=rules)
    assert weekend.total == 0  # nothing over the weekend
    fired = fire_due_timers_once(engine, config, monday + timedelta(hours=10), rules=rules)
    assert fired.fired == {"sla_first_response_warning": 1, "sla_first_response_breach": 1}
    assert len(queued(engine, "agent/sla_warning")) == 2  # nobody owns it: both agents
    assert [c["timer"]["target"] for _, c in queued(engine, "agent/sla_breached")] == [
        "first_response", "first_response"]
    after = ticket(engine, number)
    assert after.priority == 9 and "sla-breached" in after.tags
    assert len(queued(engine, "agent/new_ticket")) == 4  # 2 at creation, 2 from the rule


def test_a_first_response_in_time_stops_its_clock(engine: Engine) -> None:
    config = timer_config(engine, **SLA)
    number = customer_writes(engine, config, "s2", FRIDAY_4PM).ticket_number
    agent_writes(engine, config, number, "#internal\nlooking into it", FRIDAY_4PM + timedelta(minutes=5))
    assert ticket(engine, number).first_response_at is None  # a note is no response
    agent_writes(engine, config, number, "We are on it.", FRIDAY_4PM + timedelta(minutes=30), n="r")
    responded = ticket(engine, number).first_response_at
    assert responded is not None and responded.replace(tzinfo=UTC) == FRIDAY_4PM + timedelta(minutes=30)
    assert {t.kind for t in timers(engine, number) if t.status == "pending"} == {
        "sla_resolution_warning", "sla_resolution_breach"}
    assert fire_due_timers_once(engine, config, FRIDAY_4PM + 10 * DAY).fired == {
        "sla_resolution_warning": 1, "sla_resolution_breach": 1}


def test_resolving_cancels_the_sla_and_reopening_restores_it(engine: Engine) -> None:
    config = timer_config(engine, **SLA)
    number = customer_writes(engine, config, "s3", FRIDAY_4PM).ticket_number
    agent_writes(engine, config, number, "Fixed.\n", FRIDAY_4PM + timedelta(minutes=5))
    agent_writes(engine, config, number, "#status resolved", FRIDAY_4PM + timedelta(minutes=6),
                 n="resolve")
    assert [t for t in timers(engine, number) if t.status == "pending"] == []
    customer_writes(engine, config, "s3-again", FRIDAY_4PM + DAY, subject=f"Re: [#{number}]")
    assert {t.kind for t in timers(engine, number) if t.status == "pending"} == {
        "sla_resolution_warning", "sla_resolution_breach"}


def test_idle_tickets_raise_the_idle_event(tmp_path: Path, engine: Engine) -> None:
    config = timer_config(engine, channel=[{"name": "support", "address": "support@example.com",
                                            "idle_days": 2}])
    rules = load_rules(tmp_path, config, """
[[rule]]
name = "idle tickets are flagged"
on = "ticket.idle"
then.tag = "idle"
then.notify = { template = "agent/new_message", audience = "owner" }
""")
    number = customer_writes(engine, config, "i1", T0).ticket_number
    agent_writes(engine, config, number, "#internal\nhave a look", T0 + DAY)  # touched: later
    assert fire_due_timers_once(engine, config, T0 + 2 * DAY, rules=rules).total == 0
    assert fire_due_timers_once(engine, config, T0 + 3 * DAY, rules=rules).fired == {"idle": 1}
    assert "idle" in ticket(engine, number).tags
    assert [to for to, _ in queued(engine, "agent/new_message")] == [["alice@example.com"]]


def test_agent_commands_raise_status_changed_and_reopened(tmp_path: Path, engine: Engine) -> None:
    config = timer_config(engine)
    rules = load_rules(tmp_path, config, """
[[rule]]
name = "closed by an agent"
on = "ticket.status_changed"
when.status = "closed"
when.author = "agent"
then.tag = "closed-by-agent"

[[rule]]
name = "reopened by an agent"
on = "ticket.reopened"
when.author = "agent"
then.tag = "reopened-by-agent"
then.notify = { template = "agent/new_ticket", audience = "owner" }
""")
    number = customer_writes(engine, config, "sc", T0, rules=rules).ticket_number
    agent_writes(engine, config, number, "#close", T0, rules=rules)
    assert ticket(engine, number).tags == '["closed-by-agent"]'
    agent_writes(engine, config, number, "#status open\n#internal", T0, n="reopen", rules=rules)
    assert ticket(engine, number).tags == '["closed-by-agent", "reopened-by-agent"]'
    assert [to for to, _ in queued(engine, "agent/new_ticket")][-1] == ["alice@example.com"]


def test_two_instances_fire_each_timer_once(engine: Engine) -> None:
    config = timer_config(engine)
    numbers = [customer_writes(engine, config, f"many{t}", T0).ticket_number for t in range(4)]
    for t, number in enumerate(numbers):  # 4 tickets, 15 timers each, due interleaved
        add_timers(engine, number, [("reminder", T0 + timedelta(minutes=n), f"n{n}")
                                    for n in range(t, 60, 4)])
    url = engine.url.render_as_string(hide_password=False)
    totals: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def instance() -> None:
        own = make_engine(url)  # each instance its own connections, like a second process
        try:
            start.wait()
            totals.append(fire_due_timers_once(own, config.model_copy(
                update={"timers": config.timers.model_copy(update={"batch_size": 1000})}),
                T0 + DAY).total)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            own.dispose()

    threads = [threading.Thread(target=instance) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(totals) == 60
    notes = sorted(c["timer"]["note"] for to, c in queued(engine, "agent/reminder")
                   if to == ["alice@example.com"])
    assert notes == sorted(f"n{n}" for n in range(60))  # each exactly once
    assert {t.status for t in timers(engine)} == {"fired"}


async def test_a_reminder_reaches_the_agent_over_smtp(engine: Engine) -> None:
    server = SmtpServer().start()
    try:
        config = timer_config(engine, smtp={"host": server.host, "port": server.port,
                                            "security": "none"})
        number = customer_writes(engine, config, "smtp", T0).ticket_number
        agent_writes(engine, config, number, "#remind 1h ring Anna\n#internal", T0)
        due = T0 + timedelta(hours=1)
        fire_due_timers_once(engine, config, due)
        smtp = config.smtp
        assert smtp is not None
        await flush_outbox_once(engine, config, lambda: SmtpSender(smtp), Renderer(), due)
        (reminder,) = [d for d in server.handler.to("alice@example.com")
                       if "Reminder" in d.message["Subject"]]
        assert number in reminder.message["Subject"]
        assert "ring Anna" in reminder.message.get_body(("plain",)).get_content()
        assert reminder.message["Reply-To"].startswith("support+")  # answer from the reminder
    finally:
        server.stop()


def test_a_failing_timer_is_retried_then_kept_failed(engine: Engine) -> None:
    config = timer_config(engine)
    number = customer_writes(engine, config, "bad", T0).ticket_number
    add_timers(engine, number, [("no-such-kind-of-timer-effect", T0, ""), ("reminder", T0, "")])
    moment = T0
    for _ in range(6):
        fire_due_timers_once(engine, config, moment)
        moment += timedelta(hours=2)
    states = {t.kind: (t.status, t.attempts) for t in timers(engine, number)}
    assert states == {"reminder": ("fired", 0), "no-such-kind-of-timer-effect": ("failed", 5)}
    with transaction(engine) as session:
        broken = session.exec(select(Timer).where(Timer.status == "failed")).one()
    assert "unknown timer kind" in broken.last_error


def test_a_new_sla_reaches_tickets_already_open(engine: Engine) -> None:
    before = timer_config(engine)
    open_ones = [customer_writes(engine, before, f"o{n}", T0).ticket_number for n in range(3)]
    done = customer_writes(engine, before, "done", T0).ticket_number
    agent_writes(engine, before, str(done), "#status resolved\nSolved.", T0)
    assert timers(engine) == []
    after = timer_config(engine, **SLA)
    assert sync_open_tickets(engine, after, T0, chunk=2) == 3
    for number in open_ones:
        assert {t.kind for t in timers(engine, number)} == {
            "sla_first_response_warning", "sla_first_response_breach",
            "sla_resolution_warning", "sla_resolution_breach"}
    assert timers(engine, done) == []
    assert sync_open_tickets(engine, after, T0) == 3 and len(timers(engine)) == 12  # no doubles


def test_auto_close_and_merge_tell_webhook_subscribers(engine: Engine) -> None:
    config = timer_config(engine, channel=[{"name": "support", "address": "support@example.com",
                                            "auto_close_days": 2}],
                          webhook=[{"name": "crm", "url": "https://crm.example.com/hook",
                                    "events": ["ticket.created", "ticket.status_changed"],
                                    "secret": "s"}])
    first = customer_writes(engine, config, "h1", T0).ticket_number
    second = customer_writes(engine, config, "h2", T0).ticket_number
    agent_writes(engine, config, str(first), "Which model?", T0)
    agent_writes(engine, config, str(second), f"#merge {first}", T0, n="merge")
    fire_due_timers_once(engine, config, T0 + 2 * DAY)
    with transaction(engine) as session:
        rows = session.exec(select(WebhookDelivery.event, Ticket.number)
                            .join(Ticket, col(Ticket.id) == col(WebhookDelivery.ticket_id))
                            .order_by(col(WebhookDelivery.id))).all()
    assert [tuple(r) for r in rows] == [
        ("ticket.created", first), ("ticket.created", second),
        ("ticket.status_changed", first),   # the agent's reply: waiting for the customer
        ("ticket.status_changed", second),  # merged: closed (no ticket.created for the target)
        ("ticket.status_changed", first),   # auto-closed two days later
    ]
    assert ticket(engine, first).status == "resolved"
