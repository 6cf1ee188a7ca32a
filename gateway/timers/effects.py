"""What a timer does when it falls due: the mails it queues and the rule events it raises.

Runs inside the firing transaction (``gateway.timers.fire``): every mail goes to the outbox
and every change to the ticket is written in the same commit that marks the timer fired.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Session

from gateway.config import Config
from gateway.outbound.events import status_changed
from gateway.outbound.notify import Planner, rule_mails
from gateway.rules.model import Rule
from gateway.rules.stage import Decisions, apply, decide, ticket_facts
from gateway.statuses import Status, move
from gateway.timers.policy import AUTO_CLOSE, IDLE, SLA_KINDS, WAITING_REMINDER, aware
from store.models import Ticket, Timer

SLA_TEMPLATES = {"warning": "agent/sla_warning", "breach": "agent/sla_breached"}
SLA_EVENTS = {"warning": "ticket.sla_warning", "breach": "ticket.sla_breached"}


def timer_context(config: Config, timer: Timer, ticket: Ticket) -> dict[str, Any]:
    """The timer as templates see it: kind, note, due time (local), SLA target and hours."""
    zone = config.tickets.zone
    target, step = SLA_KINDS.get(timer.kind, ("", ""))
    sla = config.sla_for(ticket.channel, ticket.priority)
    hours = getattr(sla, f"{target}_hours", None) if sla and target else None
    channel = config.channel(ticket.channel)
    return {"kind": timer.kind, "note": timer.note, "by": timer.created_by,
            "due": f"{aware(timer.due_at).astimezone(zone):%Y-%m-%d %H:%M}",
            "zone": zone.key, "target": target, "step": step,
            "sla": sla.name if sla else "", "hours": hours or 0,
            "close_days": channel.auto_close_days if channel else None}


def fire(session: Session, config: Config, timer: Timer, ticket: Ticket, now: datetime,
         rules: Sequence[Rule]) -> list[str]:
    """Carry out one due timer on its ticket; returns notes on mails held back."""
    plan = Planner(session, config, ticket, now)
    before = ticket.status
    extra = {"timer": timer_context(config, timer, ticket)}
    events: list[str] = []
    sla = ""
    if timer.kind == "reminder":
        for agent in plan.owner_or_agents():
            plan.to_agent("agent/reminder", agent, None, extra=extra)
    elif timer.kind == WAITING_REMINDER:
        plan.to_customer("customer/waiting_reminder", None, auto="auto-generated", extra=extra)
    elif timer.kind == AUTO_CLOSE:
        if move(ticket, Status.RESOLVED, now):
            plan.status_changed(None)
            events.append("ticket.status_changed")
    elif timer.kind in SLA_KINDS:
        sla, step = SLA_KINDS[timer.kind]
        for agent in plan.owner_or_agents():
            plan.to_agent(SLA_TEMPLATES[step], agent, None, extra=extra)
        events.append(SLA_EVENTS[step])
    elif timer.kind == IDLE:
        events.append("ticket.idle")
    else:
        raise ValueError(f"unknown timer kind {timer.kind!r}")
    if events and rules:
        _rule_events(session, config, plan, ticket, events, sla, now, rules)
    if ticket.status != before:  # auto-close, or a rule on the timer's event
        status_changed(session, config, ticket, before, now)
    return plan.notes


def _rule_events(session: Session, config: Config, plan: Planner, ticket: Ticket,
                 events: list[str], sla: str, now: datetime, rules: Sequence[Rule]) -> None:
    """Let the rules act on the timer's event: actions on the ticket, hits, notify mails."""
    decisions: Decisions = decide(rules, events, ticket_facts(session, config, ticket, now, sla))
    changed = apply(session, config, ticket, decisions, None, now)
    rule_mails(plan, decisions, None, changed)
