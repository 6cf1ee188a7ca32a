"""`run`: the service (mail workers, outbox, timers, HTTP), or one pass with --once."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from sqlalchemy.engine import Engine

from gateway.cli.common import Subcommands, command
from gateway.config import Config


def register(sub: Subcommands) -> None:
    """`run [--once]`."""
    run = command(sub, "run", "run the service", _run)
    run.add_argument("--once", action="store_true", help="process what is waiting, then exit")


def _run(args: argparse.Namespace, config: Config, engine: Engine) -> int:
    if not config.mailboxes and (args.once or (config.http is None and not config.webhooks)):
        print("error: no [[mailbox]] configured; nothing to run (see config.example.toml)",
              file=sys.stderr)
        return 1
    results = asyncio.run(_serve(engine, config, args.once))
    for name, result in results.items():
        if result.error:
            print(f"{name}: error: {result.error}", file=sys.stderr)
            continue
        for label, done in result.mails:  # one line per mail, as `ingest` prints them
            print(f"{label}\t{done.outcome}\t{done.ticket_number or '-'}\t<{done.message_id}>"
                  + (f"\t{done.detail}" if done.detail else ""))
        counts = ", ".join(f"{k} {v}" for k, v in sorted(result.outcomes.items())) or "no mail"
        print(f"{name}: {result.fetched} fetched ({counts})")
    return 1 if any(result.error for result in results.values()) else 0


async def _serve(engine: Engine, config: Config, once: bool) -> dict[str, Any]:
    from gateway.service import run_service

    return await run_service(engine, config, once=once)
