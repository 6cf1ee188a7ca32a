"""`outbox list|flush`: outbound mail waiting, sent or failed; send what is due now."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime

from sqlalchemy.engine import Engine

from gateway.cli.common import Subcommands, add_paging, command, fail, page, print_rows
from gateway.config import Config
from gateway.outbound.backlog import outbox_backlog
from store.db import transaction
from store.views import outbox_rows


def register(sub: Subcommands) -> None:
    """`outbox list [--status S] [--limit N] [--offset N] [--json]`, `outbox flush`."""
    outbox = command(sub, "outbox", "outbound mail: list or send now", _outbox)
    osub = outbox.add_subparsers(dest="action", required=True)
    olist = osub.add_parser("list")
    olist.add_argument("--json", action="store_true")
    olist.add_argument("--status", choices=("pending", "sending", "sent", "failed"))
    add_paging(olist, "mails")
    osub.add_parser("flush", help="send every due mail now (all of it, batch after batch)")


def _outbox(args: argparse.Namespace, config: Config, engine: Engine) -> int:
    if args.action == "list":
        with transaction(engine) as session:
            rows = outbox_rows(session, args.status, args.limit + 1 if args.limit else None, args.offset)
            backlog = outbox_backlog(session, datetime.now(UTC))
        print(backlog.summary(), file=sys.stderr)  # stdout stays one row a line (or JSON)
        return print_rows(page(rows, args, "mails"), args.json, lambda row: (
            f"{row['id']}\t{row['status']}\t{row['ticket']}\t{row['template']}\t"
            f"{','.join(row['recipients'])}\t{row['last_error']}"))
    if config.smtp is None:
        return fail("no [smtp] configured")
    from gateway.outbound.worker import OutboxWorker

    result = asyncio.run(OutboxWorker(engine, config).drain())
    print(f"outbox: {result.sent} sent, {result.retried} to retry, {result.failed} failed")
    return 0 if not result.failed else 1
