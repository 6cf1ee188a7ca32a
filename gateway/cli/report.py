"""`report`: opened and resolved tickets, response and resolution times, SLA, booked time."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sqlalchemy.engine import Engine

from gateway.cli.common import Subcommands, command, fail
from gateway.config import Config
from gateway.errors import store_errors
from store.db import transaction
from store.models import utcnow


def register(sub: Subcommands) -> None:
    """`report --since DAY [--until DAY] [--by ...] [--csv F] [--html F] [--json]`."""
    report = command(sub, "report", "opened/resolved, response and resolution times, SLA, time",
                     _report)
    report.add_argument("--since", required=True, help="first day, YYYY-MM-DD ([tickets] timezone)")
    report.add_argument("--until", default=None, help="last day, YYYY-MM-DD (default: up to now)")
    report.add_argument("--by", default="channel", choices=("channel", "priority", "activity_type"))
    report.add_argument("--csv", type=Path, default=None, help="also write the figures as CSV")
    report.add_argument("--html", type=Path, default=None, help="also write an HTML page with charts")
    report.add_argument("--json", action="store_true", help="print JSON instead of the table")


def _report(args: argparse.Namespace, config: Config, engine: Engine) -> int:
    from gateway.report.figures import build_report, period
    from gateway.report.output import to_csv, to_html, to_text, write

    try:
        since, until = period(config, args.since, args.until, utcnow())
    except ValueError as exc:
        return fail(f"report: {exc}")
    with store_errors(), transaction(engine) as session:
        report = build_report(session, config, since, until, args.by)
    try:
        if args.csv is not None:
            write(args.csv, to_csv(report))
        if args.html is not None:
            write(args.html, to_html(report))
    except OSError as exc:
        return fail(str(exc))
    print(json.dumps(report.as_dict(), ensure_ascii=False, indent=2) if args.json
          else to_text(report))
    return 0
