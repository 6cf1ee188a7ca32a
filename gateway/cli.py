"""The ticketgate command line: check, run, ingest, tickets, quarantine, outbox, rules, agents,
tokens, organisations."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from gateway.agents.identity import NEW_TICKET, signed_reply_address
from gateway.config import Config, config_folder, load_config
from gateway.configmodels import SOURCES
from gateway.durations import format_minutes
from gateway.errors import ConfigError, StoreUnavailable, TicketgateError, store_errors
from gateway.intake.files import read_mails
from gateway.pipeline import RawMail, process
from gateway.rules.explain import explain, render_text
from gateway.rules.loader import RuleBook, load_rules, vocabulary
from gateway.rules.model import Rule
from gateway.web.tokens import SCOPES, create_token, list_tokens, revoke_token
from store.db import make_engine, migrate, transaction
from store.models import QuarantinedMail, utcnow
from store.queries import set_organisation
from store.views import organisation_rows, outbox_rows, quarantine_rows, ticket_detail, ticket_rows

log = logging.getLogger("gateway.cli")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ticketgate", description=__doc__)
    parser.add_argument("--config", type=Path, default=None,
                        help="config file (default: ./config.toml, else built-in defaults)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check", help="validate the configuration")
    run = sub.add_parser("run", help="run the service")
    run.add_argument("--once", action="store_true", help="process what is waiting, then exit")
    ingest = sub.add_parser("ingest", help="feed .eml files, mbox files or Maildirs")
    ingest.add_argument("paths", nargs="+", type=Path)
    ingest.add_argument("--channel", default=None, help="channel for new tickets")
    tickets = sub.add_parser("tickets", help="list or show tickets")
    tsub = tickets.add_subparsers(dest="action", required=True)
    tlist = tsub.add_parser("list")
    tlist.add_argument("--json", action="store_true")
    tshow = tsub.add_parser("show")
    tshow.add_argument("number")
    tshow.add_argument("--json", action="store_true")
    quarantine = sub.add_parser("quarantine", help="list or retry quarantined mails")
    qsub = quarantine.add_subparsers(dest="action", required=True)
    qlist = qsub.add_parser("list")
    qlist.add_argument("--json", action="store_true")
    qlist.add_argument("--all", action="store_true", help="include resolved entries")
    qretry = qsub.add_parser("retry")
    qretry.add_argument("id", type=int)
    outbox = sub.add_parser("outbox", help="outbound mail: list or send now")
    osub = outbox.add_subparsers(dest="action", required=True)
    olist = osub.add_parser("list")
    olist.add_argument("--json", action="store_true")
    olist.add_argument("--status", choices=("pending", "sending", "sent", "failed"))
    osub.add_parser("flush", help="send every due mail now")
    sub.add_parser("agents", help="agents and their personal addresses for new tickets")
    tokens = sub.add_parser("tokens", help="API tokens: create (shown once), list, revoke")
    ksub = tokens.add_subparsers(dest="action", required=True)
    kcreate = ksub.add_parser("create")
    kcreate.add_argument("name")
    kcreate.add_argument("--scope", action="append", default=[], choices=SCOPES,
                         help="repeat for several scopes")
    klist = ksub.add_parser("list")
    klist.add_argument("--json", action="store_true")
    krevoke = ksub.add_parser("revoke")
    krevoke.add_argument("name")
    orgs = sub.add_parser("organisations", help="organisations and whether they share tickets")
    gsub = orgs.add_subparsers(dest="action", required=True)
    glist = gsub.add_parser("list")
    glist.add_argument("--json", action="store_true")
    gset = gsub.add_parser("set", help="create or change an organisation")
    gset.add_argument("domain")
    gset.add_argument("--name", default=None)
    share = gset.add_mutually_exclusive_group()
    share.add_argument("--share-tickets", dest="share", action="store_true", default=None,
                       help="every contact sees all the organisation's tickets")
    share.add_argument("--no-share-tickets", dest="share", action="store_false")
    report = sub.add_parser("report", help="opened/resolved, response and resolution times, SLA, time")
    report.add_argument("--since", required=True, help="first day, YYYY-MM-DD ([tickets] timezone)")
    report.add_argument("--until", default=None, help="last day, YYYY-MM-DD (default: up to now)")
    report.add_argument("--by", default="channel", choices=("channel", "priority", "activity_type"))
    report.add_argument("--csv", type=Path, default=None, help="also write the figures as CSV")
    report.add_argument("--html", type=Path, default=None, help="also write an HTML page with charts")
    report.add_argument("--json", action="store_true", help="print JSON instead of the table")
    auth = sub.add_parser("auth", help="OAuth sign-in of mailboxes: login once, status")
    asub = auth.add_subparsers(dest="action", required=True)
    alogin = asub.add_parser("login", help="sign a mailbox (or smtp) in and store its grant")
    alogin.add_argument("name", help="the mailbox name, or smtp for [smtp.oauth]")
    alogin.add_argument("--flow", choices=("device", "browser"), default=None,
                        help="device code, or a browser redirected to localhost (default: the provider's)")
    alogin.add_argument("--port", type=int, default=0,
                        help="browser flow: the localhost port to listen on (default: any free one)")
    astatus = asub.add_parser("status", help="each mailbox's sign-in, grant and token expiry")
    astatus.add_argument("--json", action="store_true")
    rules = sub.add_parser("rules", help="explain the routing rules")
    rsub = rules.add_subparsers(dest="action", required=True)
    rexplain = rsub.add_parser("explain", help="dry run: which rules would fire on a mail")
    rexplain.add_argument("mail", type=Path)
    rexplain.add_argument("--source", default="email", choices=SOURCES)
    rexplain.add_argument("--channel", default=None)
    rexplain.add_argument("--json", action="store_true")
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
        if args.command == "check":
            return _check(config)
        if args.command == "agents":
            return _agents(config)
        engine = _open_store(config)
        handler = {"run": _run, "ingest": _ingest, "tickets": _tickets, "auth": _auth,
                   "quarantine": _quarantine, "rules": _rules, "outbox": _outbox,
                   "tokens": _tokens, "organisations": _organisations,
                   "report": _report}[args.command]
        return handler(args, config, engine)
    except ConfigError as exc:
        for line in str(exc).splitlines():  # one problem per line, all of them
            print(f"config error: {line}", file=sys.stderr)
        return 1
    except TicketgateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _print_rows(rows: list[dict[str, Any]], as_json: bool,
                line: Callable[[dict[str, Any]], str]) -> int:
    """A listing: JSON for scripts, one tab-separated line per row for people."""
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        for row in rows:
            print(line(row))
    return 0


def _check(config: Config) -> int:
    """Validate config, then every rule file; print every problem with file, line and key."""
    count = 0
    if config.rules_folder is not None:
        rules, errors = load_rules(config.rules_folder, vocabulary(config))
        for error in errors:
            print(f"rule error: {error}", file=sys.stderr)
        if errors:
            return 1
        count = len(rules)
    print(f"{config.path or '<defaults>'}: OK ({len(config.mailboxes)} mailbox(es), "
          f"{len(config.channels)} channel(s), {len(config.agents)} agent(s), {count} rule(s))")
    return 0


def _rules_in_force(config: Config) -> list[Rule]:
    """The valid rules now; invalid files are reported on stderr and skipped."""
    book = RuleBook(config.rules_folder, vocabulary(config))
    return book.current()


def _agents(config: Config) -> int:
    """Each agent with the signed address that proves a new mail (#customer, #internal) is theirs."""
    if not config.secret:
        print("note: no secret configured: signed addresses are off; agents prove themselves "
              "only through trusted_authservers (DKIM/SPF)", file=sys.stderr)
    for agent in config.agents:
        channels = ", ".join(agent.channels) or "all channels"
        address = signed_reply_address(config, config.channels[0].address, NEW_TICKET, agent)
        print(f"{agent.name}\t{agent.display_name} <{agent.address}>\t{channels}\tnew tickets: {address}")
    return 0


def _tokens(args: argparse.Namespace, config: Config, engine: Engine) -> int:
    if args.action == "create":
        token = create_token(engine, args.name, args.scope)
        print(token)
        print(f"token {args.name!r} created with {', '.join(sorted(set(args.scope)))}; it is shown "
              "only now: store it in the client, send it as Authorization: Bearer TOKEN",
              file=sys.stderr)
        return 0
    if args.action == "revoke":
        revoke_token(engine, args.name)
        print(f"token {args.name!r} revoked")
        return 0
    return _print_rows(list_tokens(engine), args.json, lambda row: (
        f"{row['name']}\t{','.join(row['scopes'])}\tcreated {row['created_at']}\t"
        f"{'revoked ' + str(row['revoked_at']) if row['revoked_at'] else 'active'}"))


def _organisations(args: argparse.Namespace, config: Config, engine: Engine) -> int:
    if args.action == "set":
        with transaction(engine) as session:
            org = set_organisation(session, args.domain, name=args.name, share_tickets=args.share)
            if org is None:
                print(f"error: {args.domain!r} is a freemail provider or not a domain",
                      file=sys.stderr)
                return 1
            print(f"{org.domain}\t{org.name}\tshares tickets: {'yes' if org.share_tickets else 'no'}")
        return 0
    with transaction(engine) as session:
        rows = organisation_rows(session)
    return _print_rows(rows, args.json, lambda row: (
        f"{row['domain']}\t{row['name']}\tshares tickets: {'yes' if row['share_tickets'] else 'no'}"
        f"\t{row['contacts']} contact(s)"))


def _outbox(args: argparse.Namespace, config: Config, engine: Engine) -> int:
    if args.action == "list":
        with transaction(engine) as session:
            rows = outbox_rows(session, args.status)
        return _print_rows(rows, args.json, lambda row: (
            f"{row['id']}\t{row['status']}\t{row['ticket']}\t{row['template']}\t"
            f"{','.join(row['recipients'])}\t{row['last_error']}"))
    if config.smtp is None:
        print("error: no [smtp] configured", file=sys.stderr)
        return 1
    from gateway.outbound.worker import OutboxWorker

    result = asyncio.run(OutboxWorker(engine, config).flush())
    print(f"outbox: {result.sent} sent, {result.retried} to retry, {result.failed} failed")
    return 0 if not result.failed else 1


def _rules(args: argparse.Namespace, config: Config, engine: Engine) -> int:
    try:
        raw = args.mail.read_bytes()
    except OSError as exc:
        print(f"error: {args.mail}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    channel = args.channel or config.channels[0].name
    if config.channel(channel) is None:
        raise ConfigError(f"--channel {channel!r} is not a configured channel")
    report = explain(engine, config, _rules_in_force(config), raw, args.source, channel)
    print(json.dumps(report, ensure_ascii=False, indent=2) if args.json else render_text(report))
    return 0


def _open_store(config: Config) -> Engine:
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
        counts = ", ".join(f"{k} {v}" for k, v in sorted(result.outcomes.items())) or "no mail"
        print(f"{name}: {result.fetched} fetched ({counts})")
    return 1 if any(result.error for result in results.values()) else 0


def _auth(args: argparse.Namespace, config: Config, engine: Engine) -> int:
    """`auth login NAME` signs a grant in; `auth status` shows every mailbox's sign-in."""
    from gateway.auth import grants
    from gateway.auth.login import login

    if args.action == "login":
        asyncio.run(login(engine, config, args.name, lambda text: print(text, flush=True),
                          args.flow, args.port))
        return 0
    rows = grants.status(engine, config)
    return _print_rows(rows, args.json, lambda row: "\t".join(
        str(row[key] or "-") for key in ("name", "auth", "provider", "grant", "state",
                                          "access_expires_at")))


async def _serve(engine: Engine, config: Config, once: bool) -> dict[str, Any]:
    from gateway.service import run_service

    return await run_service(engine, config, once=once)


def _ingest(args: argparse.Namespace, config: Config, engine: Engine) -> int:
    channel = args.channel or config.channels[0].name
    if config.channel(channel) is None:
        raise ConfigError(f"--channel {channel!r} is not a configured channel")
    totals: Counter[str] = Counter()
    missing = [p for p in args.paths if not p.exists()]
    for path in missing:
        print(f"{path}\terror\tno such file or folder", file=sys.stderr)
    failed = len(missing)
    in_force = _rules_in_force(config)
    for item in read_mails([p for p in args.paths if p.exists()]):
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


def _tickets(args: argparse.Namespace, config: Config, engine: Engine) -> int:
    with transaction(engine) as session:
        if args.action == "list":
            return _print_rows(ticket_rows(session), args.json, lambda row: (
                f"{row['number']}\t{row['status']}\tP{row['priority']}\t"
                f"{row['channel']}\t{row['customer'] or '-'}\t{row['subject']}"))
        detail = ticket_detail(session, args.number)
    if detail is None:
        print(f"error: no ticket {args.number}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(detail, ensure_ascii=False, indent=2))
        return 0
    print(f"{detail['number']}  {detail['subject']}\nstatus {detail['status']}, priority "
          f"{detail['priority']}, channel {detail['channel']}, customer {detail['customer']}\n"
          f"watchers: {', '.join(detail['watchers']) or '-'}")
    for hit in detail["capped"]:
        named = ", ".join(hit["addresses"][:5]) + (", ..." if hit["left_out"] > 5 else "")
        print(f"capped: limits.{hit['limit']} = {hit['maximum']}: {hit['left_out']} address(es) "
              f"held back ({named}) on <{hit['message_id'] or '-'}> at {hit['at']}")
    _print_time_and_timers(detail)
    for message in detail["messages"]:
        sender = message["from"] or f"(no valid address: {message['from_raw'] or 'no From'})"
        print(f"\n--- {message['kind']} from {sender} <{message['message_id']}>")
        for report in message["delivery_status"]:
            print(f"[delivery] {report['recipient']}: {report['action'] or '-'} "
                  f"{report['status'] or '-'} {report['diagnostic_code']}".rstrip())
        print(message["text"].strip()[:2000])
        for item in message["attachments"]:
            print(f"[attachment] {item['filename']} ({item['content_type']}, {item['size']} B)")
    return 0


def _report(args: argparse.Namespace, config: Config, engine: Engine) -> int:
    from gateway.report.figures import build_report, period
    from gateway.report.output import to_csv, to_html, to_text, write

    try:
        since, until = period(config, args.since, args.until, utcnow())
    except ValueError as exc:
        print(f"error: report: {exc}", file=sys.stderr)
        return 1
    with store_errors(), transaction(engine) as session:
        report = build_report(session, config, since, until, args.by)
    try:
        if args.csv is not None:
            write(args.csv, to_csv(report))
        if args.html is not None:
            write(args.html, to_html(report))
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report.as_dict(), ensure_ascii=False, indent=2) if args.json
          else to_text(report))
    return 0


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


def _quarantine(args: argparse.Namespace, config: Config, engine: Engine) -> int:
    if args.action == "list":
        with transaction(engine) as session:
            rows = quarantine_rows(session, include_resolved=args.all)
        return _print_rows(rows, args.json, lambda row: (
            f"{row['id']}\t{row['mailbox']}\t{row['size']} B\t{row['reason']}"))
    with transaction(engine) as session:
        entry = session.get(QuarantinedMail, args.id)
        if entry is None or entry.resolved_at is not None:
            state = "no such entry" if entry is None else f"already resolved: {entry.resolution}"
            print(f"error: quarantine {args.id}: {state}", file=sys.stderr)
            return 1
        box = next((m for m in config.mailboxes if m.name == entry.mailbox), None)
        raw = RawMail(entry.raw, f"retry:{entry.mailbox}",
                      channel=box.channel if box else config.channels[0].name,
                      source=box.source if box else "email")
        if entry.mailbox.startswith("api:"):  # an HTTP submission: its fields are in its headers
            from gateway.web.api.submit import kept_submission

            raw = kept_submission(config, entry.raw, entry.mailbox)
    result = process(engine, config, raw, keep_failures=False, rules=_rules_in_force(config))
    if result.outcome == "quarantined":
        with transaction(engine) as session:
            entry = session.get(QuarantinedMail, args.id)
            assert entry is not None
            entry.reason = result.detail[:2000]
        print(f"quarantine {args.id}: still failing: {result.detail}", file=sys.stderr)
        return 1
    with transaction(engine) as session:
        entry = session.get(QuarantinedMail, args.id)
        assert entry is not None
        entry.resolved_at = utcnow()
        entry.resolution = f"{result.outcome} {result.ticket_number or ''}".strip()
    print(f"quarantine {args.id}: {result.outcome} {result.ticket_number or ''}".strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
