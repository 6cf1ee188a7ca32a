"""`tickets list|show`: what is stored, for people and (with --json) for scripts."""

from __future__ import annotations

import argparse
import json
from typing import Any

from sqlalchemy.engine import Engine

from gateway.cli.common import Subcommands, command, fail, print_rows
from gateway.config import Config
from gateway.durations import format_minutes
from store.db import transaction
from store.views import ticket_detail, ticket_rows


def register(sub: Subcommands) -> None:
    """`tickets list [--json]`, `tickets show NUMBER [--json]`."""
    tickets = command(sub, "tickets", "list or show tickets", _tickets)
    tsub = tickets.add_subparsers(dest="action", required=True)
    tlist = tsub.add_parser("list")
    tlist.add_argument("--json", action="store_true")
    tshow = tsub.add_parser("show")
    tshow.add_argument("number")
    tshow.add_argument("--json", action="store_true")


def _tickets(args: argparse.Namespace, config: Config, engine: Engine) -> int:
    with transaction(engine) as session:
        if args.action == "list":
            return print_rows(ticket_rows(session), args.json, lambda row: (
                f"{row['number']}\t{row['status']}\tP{row['priority']}\t"
                f"{row['channel']}\t{row['customer'] or '-'}\t{row['subject']}"))
        detail = ticket_detail(session, args.number)
    if detail is None:
        return fail(f"no ticket {args.number}")
    if args.json:
        print(json.dumps(detail, ensure_ascii=False, indent=2))
        return 0
    _print_head(detail)
    _print_time_and_timers(detail)
    for message in detail["messages"]:
        _print_message(message)
    return 0


def _print_head(detail: dict[str, Any]) -> None:
    """Number, subject, status, watchers and the limits that held recipients back."""
    print(f"{detail['number']}  {detail['subject']}\nstatus {detail['status']}, priority "
          f"{detail['priority']}, channel {detail['channel']}, customer {detail['customer']}\n"
          f"watchers: {', '.join(detail['watchers']) or '-'}")
    for hit in detail["capped"]:
        named = ", ".join(hit["addresses"][:5]) + (", ..." if hit["left_out"] > 5 else "")
        print(f"capped: limits.{hit['limit']} = {hit['maximum']}: {hit['left_out']} address(es) "
              f"held back ({named}) on <{hit['message_id'] or '-'}> at {hit['at']}")


def _print_message(message: dict[str, Any]) -> None:
    """One message: who sent it, delivery reports, text, attachments."""
    sender = message["from"] or f"(no valid address: {message['from_raw'] or 'no From'})"
    print(f"\n--- {message['kind']} from {sender} <{message['message_id']}>")
    for report in message["delivery_status"]:
        print(f"[delivery] {report['recipient']}: {report['action'] or '-'} "
              f"{report['status'] or '-'} {report['diagnostic_code']}".rstrip())
    print(message["text"].strip()[:2000])
    for item in message["attachments"]:
        print(f"[attachment] {item['filename']} ({item['content_type']}, {item['size']} B)")


def _print_time_and_timers(detail: dict[str, Any]) -> None:
    """Booked time, first response, merge link and pending timers of tickets show."""
    if detail.get("merged_into"):
        print(f"merged into {detail['merged_into']}")
    if detail["first_response_at"]:
        print(f"first response: {detail['first_response_at']}")
    entries = detail["time_entries"]
    if entries:
        print(f"time booked: {format_minutes(detail['time_booked_minutes'])} in "
              f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}")
        for entry in entries:
            print(f"  {entry['at']}  {entry['agent']}  {format_minutes(entry['minutes'])}  "
                  f"{entry['activity'] or '-'}")
    for timer in detail["timers"]:
        print(f"timer: {timer['kind']} due {timer['due_at']}" + (
            f" ({timer['note']})" if timer["note"] else ""))
