"""`tickets list|show|original|reprocess`: what is stored, for people and (with --json) for
scripts; a stored mail's raw original, printed or run through the pipeline again."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Engine

from gateway.cli.common import (
    Subcommands,
    add_paging,
    command,
    fail,
    page,
    print_rows,
    rules_in_force,
)
from gateway.config import Config
from gateway.durations import format_minutes
from gateway.outbound.preview import fill_previews
from gateway.pipeline import RawMail, process
from gateway.thread.numbers import counter_scope, find_token, format_number
from store import blobs
from store.db import transaction
from store.views import message_on_ticket, ticket_detail, ticket_rows

LIST_COLUMNS = ("number", "status", "priority", "channel", "customer", "created_at", "subject")


def register(sub: Subcommands) -> None:
    """`tickets list [--limit N] [--offset N] [--json]`, `tickets show NUMBER [--json]`."""
    tickets = command(sub, "tickets", "list or show tickets", _tickets)
    tsub = tickets.add_subparsers(dest="action", required=True)
    tlist = tsub.add_parser("list")
    tlist.add_argument("--json", action="store_true")
    add_paging(tlist, "tickets")
    tshow = tsub.add_parser("show")
    tshow.add_argument("number")
    tshow.add_argument("--json", action="store_true")
    for name, help_text in (("original", "print a message's raw original mail as it arrived"),
                            ("reprocess", "run a message's original through the pipeline "
                                          "again, into a new message on the same ticket")):
        action = tsub.add_parser(name, help=help_text)
        action.add_argument("number")
        action.add_argument("message", help="its position in `tickets show` (1, 2, ...) "
                                            "or its Message-ID")


def _tickets(args: argparse.Namespace, config: Config, engine: Engine) -> int:
    if args.action in ("original", "reprocess"):
        return _original(args, config, engine)
    if args.action == "list":
        return _list(engine, args)
    number = _wanted(config, args.number)
    if number is None:
        return fail(f"{args.number!r} is not a ticket number: they look like "
                    f"{_example(config)} (`ticketgate tickets list` shows them)")
    with transaction(engine) as session:
        detail = ticket_detail(session, number)
        if detail is not None:
            fill_previews(session, config, detail)
    if detail is None:
        return fail(f"no ticket {number} (`ticketgate tickets list` shows the numbers)")
    if args.json:
        print(json.dumps(detail, ensure_ascii=False, indent=2))
        return 0
    _print_head(detail)
    _print_time_and_timers(detail)
    for message in detail["messages"]:
        _print_message(message)
    return 0


def _list(engine: Engine, args: argparse.Namespace) -> int:
    """Newest first under a header, a page at a time; "no tickets" said, not an empty screen."""
    with transaction(engine) as session:
        rows = page(ticket_rows(session, args.limit + 1 if args.limit else None, args.offset),
                    args, "tickets")
    if not args.json:
        print("\t".join(LIST_COLUMNS) if rows else "no tickets")
    return print_rows(rows, args.json, lambda row: (
        f"{row['number']}\t{row['status']}\tP{row['priority']}\t{row['channel']}\t"
        f"{row['customer'] or '-'}\t{row['created_at']}\t{row['subject']}"))


def _wanted(config: Config, text: str) -> str | None:
    """The number asked for, as stored: any case, with or without [# ]."""
    return find_token(config.tickets, f"[#{text.strip().strip('[]').lstrip('#').strip()}]")


def _example(config: Config) -> str:
    cfg = config.tickets
    return format_number(cfg, counter_scope(cfg, datetime.now(UTC)), 7)


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
    """One message: who sent it, its outbox state, delivery reports, text, attachments."""
    sender = message["from"] or f"(no valid address: {message['from_raw'] or 'no From'})"
    kept = "" if message["original"] or message["direction"] == "out" else " (no original)"
    print(f"\n--- #{message['position']} {message['kind']} from {sender} "
          f"<{message['message_id']}>  {message['created_at']}{kept}")
    outbox = message["outbox"]
    if outbox is not None:
        print(f"[outbox] {_outbox_line(outbox)}")
    if message["direction"] == "out" or message["subject"]:
        print(f"Subject: {message['subject']}")
    for report in message["delivery_status"]:
        print(f"[delivery] {report['recipient']}: {report['action'] or '-'} "
              f"{report['status'] or '-'} {report['diagnostic_code']}".rstrip())
    print(message["text"].strip()[:2000])
    for item in message["attachments"]:
        print(f"[attachment] {item['filename']} ({item['content_type']}, {item['size']} B)")


def _outbox_line(outbox: dict[str, Any]) -> str:
    """State, recipients and what happens next to an outbound mail."""
    state = outbox["state"]
    line = f"{state} to {', '.join(outbox['recipients'])} ({outbox['template']})"
    if state in ("queued", "retrying"):
        line += f", next attempt {outbox['next_attempt_at']}"
    if state == "sent":
        line += f" at {outbox['sent_at']}"
    if outbox["last_error"] and state != "sent":
        line += f", last error: {outbox['last_error']}"
    if outbox["preview"]:
        line += "; not sent yet: subject and text below as they will be rendered"
    return line


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


def _original(args: argparse.Namespace, config: Config, engine: Engine) -> int:
    """Print the raw original byte for byte, or reprocess it into a new message."""
    number = _wanted(config, args.number) or args.number
    with transaction(engine) as session:
        message = message_on_ticket(session, number, args.message)
        if message is None:
            return fail(f"ticket {args.number} has no message {args.message}")
        if message.original is None:
            why = "our own mail" if message.direction == "out" else "erased or purged by retention"
            return fail(f"{args.number} message {args.message}: no original kept ({why})")
        raw, row_id, box = blobs.read(session, message.original), message.id, message.mailbox
    if args.action == "original":
        sys.stdout.buffer.write(raw)
        return 0
    result = process(engine, config, RawMail(raw, "reprocess", channel=_channel(config, box),
                                             reprocess_of=row_id),
                     keep_failures=False, rules=rules_in_force(config))
    if result.outcome != "followup":
        return fail(f"{args.number} message {args.message}: {result.outcome}: {result.detail}")
    print(f"{args.number} message {args.message} reprocessed into a new message on "
          f"{result.ticket_number}")
    return 0


def _channel(config: Config, mailbox: str | None) -> str:
    """The channel of the mailbox the mail came from, else the first channel."""
    box = next((m for m in config.mailboxes if m.name == mailbox), None)
    return box.channel if box else config.channels[0].name
