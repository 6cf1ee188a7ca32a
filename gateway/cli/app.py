"""The ticketgate command line: check, run, ingest, tickets, quarantine, outbox, rules, agents,
tokens, organisations, report, auth."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

from gateway.cli import access, mail, outbox, portal, report, run, setup, tickets
from gateway.cli.common import open_store
from gateway.config import load_config
from gateway.errors import ConfigError, TicketgateError

GROUPS = (setup, run, mail, tickets, outbox, access, portal, report)  # the order of --help


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ticketgate", description=__doc__)
    parser.add_argument("--config", type=Path, default=None,
                        help="config file (default: ./config.toml, else built-in defaults)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO if args.command == "run"
        else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        code = _command(args)
        sys.stdout.flush()  # a reader that went away shows here, inside the try
        return code
    except BrokenPipeError:
        # `ticketgate tickets list | head`: end quietly, as if killed by SIGPIPE. SIGPIPE itself
        # stays ignored: at its default it kills `ticketgate run` writing to a dropped socket.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE


def _command(args: argparse.Namespace) -> int:
    """Run the chosen command; expected errors become a message and exit code 1."""
    try:
        config = load_config(args.config)
        if args.config_only is not None:
            code: int = args.config_only(args, config)
            return code
        code = args.handler(args, config, open_store(config))
        return code
    except ConfigError as exc:
        for line in str(exc).splitlines():  # one problem per line, all of them
            print(f"config error: {line}", file=sys.stderr)
        return 1
    except TicketgateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
