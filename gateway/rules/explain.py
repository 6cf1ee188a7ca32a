"""Dry run of the rules on one mail: which rules fire, which conditions held, the result."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from gateway.config import Config
from gateway.intake.guard import inspect
from gateway.intake.headerblock import not_a_mail
from gateway.intake.parse import parse_mail
from gateway.rules.model import Rule
from gateway.rules.stage import decide, message_facts, store_facts
from gateway.thread.followup import find_thread
from gateway.thread.index import SessionThreadIndex
from store.models import Ticket


def explain(engine: Engine, config: Config, rules: list[Rule], raw: bytes, source: str,
            channel: str, now: datetime | None = None) -> dict[str, Any]:
    """What the rules would do with this mail; reads the database, changes nothing."""
    now = now or datetime.now(UTC)
    junk = not_a_mail(raw)
    if junk is not None:  # what ingest and run do with it: quarantine, no rule runs
        return {"not_a_mail": junk, "thread": None, "classification": [], "rules": [],
                "dropped": False, "result": {"quarantined": junk}}
    mail = parse_mail(raw)
    verdict = inspect(mail, config.own_addresses())
    with Session(engine) as session:
        agents = frozenset(a.address for a in config.agents)
        match = find_thread(mail, SessionThreadIndex(session, agents), config.tickets,
                            bounce="bounce" in verdict.classes)
        joined = session.get(Ticket, match.ticket.id) if match.ticket else None
        facts = store_facts(session, message_facts(config, mail, verdict, source=source,
                                                   channel=channel, mailbox="explain", now=now),
                            ticket=joined)
        session.rollback()
    events = ["message.received"] + ([] if joined else ["ticket.created"])
    decisions = decide(rules, events, facts, explain=True)
    result: dict[str, Any] = {
        "channel": facts.channel, "priority": facts.priority, "status": facts.status,
        "activity_type": joined.activity_type if joined else None,
        "category": [], "tag": [], "add_watcher": [], "notify": [], "owner": None,
        "auto_reply": "customer/acknowledgement",
    }
    traces = []
    for event, outcome in decisions.outcomes:
        for trace in outcome.traces:
            traces.append({
                "file": trace.rule.file, "line": trace.rule.line, "rule": trace.rule.name,
                "event": event, "fired": trace.fired,
                "conditions": [{"field": f, "ok": ok, "why": why} for f, ok, why in trace.checks],
                "actions": trace.rule.actions if trace.fired else {},
            })
        for key, value in outcome.actions.items():
            if isinstance(result.get(key), list):
                result[key].extend(value)
            else:
                result[key] = value
    if verdict.automatic:
        result["auto_reply"] = False  # never to automatic mail, whatever the rules say
    return {
        "thread": {"ticket": joined.number if joined else None, "via": match.via},
        "classification": list(verdict.classes),
        "rules": traces,
        "dropped": result.pop("drop", None) or False,
        "result": result,
    }


def render_text(report: dict[str, Any]) -> str:
    """The report as an admin reads it."""
    if report.get("not_a_mail"):
        return f"{report['not_a_mail']}: ingest and run quarantine it; no rule runs on it"
    lines = []
    thread = report["thread"]
    lines.append(f"thread: {thread['ticket'] or 'new ticket'} (via {thread['via']})"
                 + (f"; classified {', '.join(report['classification'])}"
                    if report["classification"] else ""))
    if not report["rules"]:
        lines.append("no rule listens to these events")
    for trace in report["rules"]:
        state = "FIRED" if trace["fired"] else "did not fire"
        lines.append(f"{trace['file']}:{trace['line']}  {trace['rule']!r} on {trace['event']}: {state}")
        for cond in trace["conditions"]:
            lines.append(f"    {'✓' if cond['ok'] else '✗'} {cond['field']}: {cond['why']}")
        for key, value in trace["actions"].items():
            lines.append(f"    → {key} = {json.dumps(value, ensure_ascii=False)}")
    if report["dropped"]:
        lines.append(f"result: DROPPED ({report['dropped']})")
    else:
        fields = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}"
                           for k, v in report["result"].items() if v not in (None, []))
        lines.append(f"result: {fields}")
    return "\n".join(lines)
