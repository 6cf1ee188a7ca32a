"""Commands that feed mail to the pipeline or explain it: ingest, quarantine, rules explain."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from sqlalchemy.engine import Engine

from gateway.cli.common import Subcommands, channel_or_default, command, fail, print_rows, rules_in_force
from gateway.cli.progress import byte_progress
from gateway.config import Config
from gateway.configmodels import SOURCES
from gateway.intake.files import read_mails, total_bytes
from gateway.pipeline import RawMail, process
from gateway.rules.explain import explain, render_text
from store.db import transaction
from store.models import QuarantinedMail, utcnow
from store.views import quarantine_rows


def register(sub: Subcommands) -> None:
    """`ingest`, `quarantine list|retry`, `rules explain`."""
    ingest = command(sub, "ingest", "feed .eml files, mbox files or Maildirs", _ingest)
    ingest.add_argument("paths", nargs="+", type=Path)
    ingest.add_argument("--channel", default=None, help="channel for new tickets")
    quarantine = command(sub, "quarantine", "list or retry quarantined mails", _quarantine)
    qsub = quarantine.add_subparsers(dest="action", required=True)
    qlist = qsub.add_parser("list")
    qlist.add_argument("--json", action="store_true")
    qlist.add_argument("--all", action="store_true", help="include resolved entries")
    qretry = qsub.add_parser("retry")
    qretry.add_argument("id", type=int)
    rules = command(sub, "rules", "explain the routing rules", _rules)
    rsub = rules.add_subparsers(dest="action", required=True)
    rexplain = rsub.add_parser("explain", help="dry run: which rules would fire on a mail")
    rexplain.add_argument("mail", type=Path)
    rexplain.add_argument("--source", default="email", choices=SOURCES)
    rexplain.add_argument("--channel", default=None)
    rexplain.add_argument("--json", action="store_true")


def _ingest(args: argparse.Namespace, config: Config, engine: Engine) -> int:
    channel = channel_or_default(config, args.channel)
    totals: Counter[str] = Counter()
    missing = [p for p in args.paths if not p.exists()]
    for path in missing:
        print(f"{path}\terror\tno such file or folder", file=sys.stderr)
    failed = len(missing)
    in_force = rules_in_force(config)
    present = [p for p in args.paths if p.exists()]
    with byte_progress(total_bytes(present), "ingesting") as advance:
        for item in read_mails(present):
            advance(len(item.data))
            if item.error is not None:
                print(f"{item.label}\terror\t{item.error}", file=sys.stderr)
                failed += 1
                continue
            raw = RawMail(item.data, "ingest", channel=channel, source="email")
            result = process(engine, config, raw, rules=in_force)
            totals[result.outcome] += 1
            print(f"{item.label}\t{result.outcome}\t{result.ticket_number or '-'}\t"
                  f"<{result.message_id}>" + (f"\t{result.detail}" if result.detail else ""))
    summary = ", ".join(f"{v} {k}" for k, v in sorted(totals.items())) or "no mail found"
    print(f"ingested: {summary}", file=sys.stderr)
    return 1 if failed else 0


def _rules(args: argparse.Namespace, config: Config, engine: Engine) -> int:
    try:
        raw = args.mail.read_bytes()
    except OSError as exc:
        return fail(f"{args.mail}: {exc.strerror or exc}")
    channel = channel_or_default(config, args.channel)
    report = explain(engine, config, rules_in_force(config), raw, args.source, channel)
    print(json.dumps(report, ensure_ascii=False, indent=2) if args.json else render_text(report))
    return 1 if report.get("not_a_mail") else 0


def _quarantine(args: argparse.Namespace, config: Config, engine: Engine) -> int:
    if args.action == "list":
        with transaction(engine) as session:
            rows = quarantine_rows(session, include_resolved=args.all)
        return print_rows(rows, args.json, lambda row: (
            f"{row['id']}\t{row['mailbox']}\t{row['size']} B\t{row['reason']}"))
    raw = _kept_mail(config, engine, args.id)
    if raw is None:
        return 1
    result = process(engine, config, raw, keep_failures=False, rules=rules_in_force(config))
    with transaction(engine) as session:
        entry = session.get(QuarantinedMail, args.id)
        assert entry is not None
        if result.outcome == "quarantined":
            entry.reason = result.detail[:2000]
        else:
            entry.resolved_at = utcnow()
            entry.resolution = f"{result.outcome} {result.ticket_number or ''}".strip()
    if result.outcome == "quarantined":
        print(f"quarantine {args.id}: still failing: {result.detail}", file=sys.stderr)
        return 1
    print(f"quarantine {args.id}: {result.outcome} {result.ticket_number or ''}".strip())
    return 0


def _kept_mail(config: Config, engine: Engine, entry_id: int) -> RawMail | None:
    """The quarantined mail as it arrived, ready to run again; None (said why) when it cannot."""
    with transaction(engine) as session:
        entry = session.get(QuarantinedMail, entry_id)
        if entry is None or entry.resolved_at is not None:
            state = "no such entry" if entry is None else f"already resolved: {entry.resolution}"
            fail(f"quarantine {entry_id}: {state}")
            return None
        if entry.mailbox.startswith("api:"):  # an HTTP submission: its fields are in its headers
            from gateway.web.api.submit import kept_submission

            return kept_submission(config, entry.raw, entry.mailbox)
        box = next((m for m in config.mailboxes if m.name == entry.mailbox), None)
        return RawMail(entry.raw, f"retry:{entry.mailbox}",
                       channel=box.channel if box else config.channels[0].name,
                       source=box.source if box else "email")
