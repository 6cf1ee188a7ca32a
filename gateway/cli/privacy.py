"""`erase ADDRESS` and `purge`: a person's data erased on request; retention applied now."""

from __future__ import annotations

import argparse
from collections import Counter

from sqlalchemy.engine import Engine
from sqlmodel import Session

from gateway.cli.common import Subcommands, command, fail
from gateway.config import Config
from gateway.errors import store_errors
from gateway.intake.addresses import valid_address
from gateway.timers.retention import purge_once
from store.erase import erase_person
from store.models import utcnow


def register(sub: Subcommands) -> None:
    """`erase ADDRESS [--dry-run]`, `purge [--dry-run]`."""
    erase = command(sub, "erase", "erase everything about one person (on their request)", _erase)
    erase.add_argument("address", help="the person's mail address")
    erase.add_argument("--dry-run", action="store_true", help="count what would go; change nothing")
    purge = command(sub, "purge", "purge what [retention] says is too old, now", _purge)
    purge.add_argument("--dry-run", action="store_true", help="count what would go; change nothing")


def _erase(args: argparse.Namespace, config: Config, engine: Engine) -> int:
    """Erase in one transaction (rolled back for a dry run) and print what went."""
    address = args.address.strip().lower()
    if valid_address(address) is None and ("@" not in address or len(address.split()) != 1):
        return fail(f"{args.address!r} is not a mail address")
    ours = {a.address for a in config.agents} | config.own_addresses()
    if address in ours:
        return fail(f"{address} is an agent's or one of our own addresses: not erased")
    with store_errors(), Session(engine, expire_on_commit=False) as session:
        done = erase_person(session, address)
        if args.dry_run:
            session.rollback()
        else:
            session.commit()
    _print(done, "would be erased" if args.dry_run else "erased", f"nothing stored about {address}")
    return 0


def _purge(args: argparse.Namespace, config: Config, engine: Engine) -> int:
    if not config.retention.enabled:
        return fail("no [retention] days configured: nothing is ever purged")
    done = purge_once(engine, config, utcnow(), dry_run=args.dry_run)
    _print(done, "would be purged" if args.dry_run else "purged", "nothing to purge")
    return 0


def _print(done: Counter[str], verb: str, empty: str) -> None:
    """One line per kind of row, in a stable order."""
    if not done:
        print(empty)
        return
    for kind, count in sorted(done.items()):
        print(f"{kind}\t{count}\t{verb}")
