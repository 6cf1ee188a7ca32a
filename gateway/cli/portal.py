"""The customer portal's sessions: list them, end every session of an address."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from sqlalchemy.engine import Engine

from gateway.cli.common import Subcommands, command, fail, print_rows
from gateway.config import Config
from gateway.intake.addresses import valid_address
from gateway.web.portal.access import live_sessions, revoke
from store.db import transaction


def register(sub: Subcommands) -> None:
    """`portal sessions`, `portal revoke ADDRESS`."""
    portal = command(sub, "portal", "customer portal sessions: list, revoke", _portal)
    psub = portal.add_subparsers(dest="action", required=True)
    listing = psub.add_parser("sessions", help="signed-in portal sessions")
    listing.add_argument("--address", default=None, help="only this customer's")
    listing.add_argument("--json", action="store_true")
    ending = psub.add_parser("revoke", help="sign a customer out everywhere, now")
    ending.add_argument("address")


def _portal(args: argparse.Namespace, config: Config, engine: Engine) -> int:
    address = valid_address(args.address) if args.address else None
    if args.address and address is None:
        return fail(f"{args.address!r} is not a mail address")
    now = datetime.now(UTC)
    with transaction(engine) as session:
        if args.action == "revoke":
            ended = revoke(session, now, address=address)
            print(f"{address}: {ended} session(s) ended")
            return 0
        rows = live_sessions(session, now, address)
    return print_rows(rows, args.json, lambda row: (
        f"{row['address']}\tsigned in {row['created_at']}\tlast seen {row['last_seen_at']}\t"
        f"until {row['expires_at']}"))
