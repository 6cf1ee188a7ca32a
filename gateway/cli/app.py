"""The ticketgate command line: check, run, ingest, tickets, quarantine, outbox, rules, agents,
tokens, organisations, report, auth, erase, purge."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from importlib import metadata
from pathlib import Path

from gateway.cli import access, mail, outbox, portal, privacy, report, run, setup, tickets
from gateway.cli.common import open_store
from gateway.config import load_config
from gateway.errors import ConfigError, TicketgateError
from gateway.logsetup import configure_logging

GROUPS = (setup, run, mail, tickets, outbox, access, portal, report, privacy)  # the order of --help


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ticketgate", description=__doc__)
    parser.add_argument("--version", action="version", version=f"ticketgate {_version()}")
    _global_options(parser, argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.register(sub)
    _everywhere(parser)
    return parser


def _global_options(parser: argparse.ArgumentParser, default: object) -> None:
    """--config and -v; on a subcommand they default to SUPPRESS, so the earlier value stays."""
    parser.add_argument("--config", type=Path, default=default,
                        help="config file (default: ./config.toml, else built-in defaults)")
    parser.add_argument("-v", "--verbose", action="store_true", default=default,
                        help="debug logging, libraries' too")


def _everywhere(parser: argparse.ArgumentParser) -> None:
    """Accept the global options after any subcommand too: `ticketgate tickets list -v`."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _global_options(child, argparse.SUPPRESS)
                _everywhere(child)


def _version() -> str:
    try:
        return metadata.version("ticketgate")
    except metadata.PackageNotFoundError:  # run from a source tree that is not installed
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    args = _parser().parse_args(argv)
    args.config = getattr(args, "config", None)
    args.verbose = getattr(args, "verbose", False)
    configure_logging(args.verbose, args.command)
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
