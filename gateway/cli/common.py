"""What several commands share: listings, the rules in force, the migrated store."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any, TypeAlias

from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from gateway.config import Config, config_folder
from gateway.errors import ConfigError, StoreUnavailable, store_errors
from gateway.rules.loader import RuleBook, vocabulary
from gateway.rules.model import Rule
from store.db import make_engine, migrate


def print_rows(rows: list[dict[str, Any]], as_json: bool,
               line: Callable[[dict[str, Any]], str]) -> int:
    """A listing: JSON for scripts, one tab-separated line per row for people."""
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        for row in rows:
            print(line(row))
    return 0


def add_paging(parser: argparse.ArgumentParser, what: str) -> None:
    """--limit N (0: all) and --offset N for a listing, newest first."""
    parser.add_argument("--limit", type=_count, default=1000,
                        help=f"at most this many {what}, newest first (default 1000; 0: all)")
    parser.add_argument("--offset", type=_count, default=0,
                        help=f"skip this many of the newest {what} first (the next page)")


def _count(text: str) -> int:
    """A whole number >= 0 (argparse names the option when this raises)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def page(rows: list[dict[str, Any]], args: argparse.Namespace, what: str) -> list[dict[str, Any]]:
    """The rows of one page (fetched with one extra row); a note on stderr when more follow."""
    if args.limit and len(rows) > args.limit:
        print(f"more {what}: see them with --offset {args.offset + args.limit}", file=sys.stderr)
        return rows[:args.limit]
    return rows


def fail(message: str) -> int:
    """An expected failure: one line on stderr, exit code 1."""
    print(f"error: {message}", file=sys.stderr)
    return 1


def rules_in_force(config: Config) -> list[Rule]:
    """The valid rules now; invalid files are reported on stderr and skipped."""
    book = RuleBook(config.rules_folder, vocabulary(config))
    return book.current()


def channel_or_default(config: Config, channel: str | None) -> str:
    """The --channel given, checked, else the first configured channel."""
    name = channel or config.channels[0].name
    if config.channel(name) is None:
        raise ConfigError(f"--channel {name!r} is not a configured channel")
    return name


def open_store(config: Config) -> Engine:
    """The migrated database, or a ConfigError / StoreUnavailable that names the problem."""
    source = config.path or "<defaults>"
    try:  # the URL passed validation; a missing SQLite folder may be made under the config's folder
        engine = make_engine(config.database_url, create_under=config_folder(config.path))
    except (ArgumentError, NoSuchModuleError) as exc:
        raise ConfigError(f"{source}: database.url: is not a usable database URL: {exc}") from None
    try:
        with store_errors():
            migrate(engine)
    except StoreUnavailable as exc:
        url = engine.url.render_as_string(hide_password=True)
        raise StoreUnavailable(f"database {url} unreachable: {exc}") from None
    return engine


Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"  # register() adds here
ConfigOnly = Callable[[argparse.Namespace, Config], int]
Handler = Callable[[argparse.Namespace, Config, Engine], int]


def command(sub: Subcommands, name: str, help_text: str, handler: Handler | None = None,
            *, config_only: ConfigOnly | None = None) -> argparse.ArgumentParser:
    """A subcommand run on the migrated store (handler) or on the configuration alone."""
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text)
    parser.set_defaults(handler=handler, config_only=config_only)
    return parser
