"""Who may do what: API tokens, organisations that share tickets, OAuth sign-in of mailboxes."""

from __future__ import annotations

import argparse
import asyncio
import sys

from sqlalchemy.engine import Engine

from gateway.cli.common import Subcommands, command, fail, print_rows
from gateway.config import Config
from gateway.web.tokens import SCOPES, create_token, list_tokens, revoke_token
from store.db import transaction
from store.queries import set_organisation
from store.views import organisation_rows


def register(sub: Subcommands) -> None:
    """`tokens`, `organisations`, `auth`."""
    _register_tokens(sub)
    orgs = command(sub, "organisations", "organisations and whether they share tickets",
                   _organisations)
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
    auth = command(sub, "auth", "OAuth sign-in of mailboxes: login once, status", _auth)
    asub = auth.add_subparsers(dest="action", required=True)
    alogin = asub.add_parser("login", help="sign a mailbox (or smtp) in and store its grant")
    alogin.add_argument("name", help="the mailbox name, or smtp for [smtp.oauth]")
    alogin.add_argument("--flow", choices=("device", "browser"), default=None,
                        help="device code, or a browser redirected to localhost (default: the provider's)")
    alogin.add_argument("--port", type=int, default=0,
                        help="browser flow: the localhost port to listen on (default: any free one)")
    astatus = asub.add_parser("status", help="each mailbox's sign-in, grant and token expiry")
    astatus.add_argument("--json", action="store_true")


def _register_tokens(sub: Subcommands) -> None:
    """`tokens create NAME --scope S...`, `tokens list`, `tokens revoke NAME`."""
    tokens = command(sub, "tokens", "API tokens: create (shown once), list, revoke", _tokens)
    ksub = tokens.add_subparsers(dest="action", required=True)
    kcreate = ksub.add_parser("create")
    kcreate.add_argument("name")
    kcreate.add_argument("--scope", action="append", default=[], choices=SCOPES,
                         help="repeat for several scopes")
    klist = ksub.add_parser("list")
    klist.add_argument("--json", action="store_true")
    krevoke = ksub.add_parser("revoke")
    krevoke.add_argument("name")


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
    return print_rows(list_tokens(engine), args.json, lambda row: (
        f"{row['name']}\t{','.join(row['scopes'])}\tcreated {row['created_at']}\t"
        f"{'revoked ' + str(row['revoked_at']) if row['revoked_at'] else 'active'}"))


def _organisations(args: argparse.Namespace, config: Config, engine: Engine) -> int:
    if args.action == "set":
        with transaction(engine) as session:
            org = set_organisation(session, args.domain, name=args.name, share_tickets=args.share)
            if org is None:
                return fail(f"{args.domain!r} is a freemail provider or not a domain")
            print(f"{org.domain}\t{org.name}\tshares tickets: {'yes' if org.share_tickets else 'no'}")
        return 0
    with transaction(engine) as session:
        rows = organisation_rows(session)
    return print_rows(rows, args.json, lambda row: (
        f"{row['domain']}\t{row['name']}\tshares tickets: {'yes' if row['share_tickets'] else 'no'}"
        f"\t{row['contacts']} contact(s)"))


def _auth(args: argparse.Namespace, config: Config, engine: Engine) -> int:
    """`auth login NAME` signs a grant in; `auth status` shows every mailbox's sign-in."""
    from gateway.auth import grants
    from gateway.auth.login import login

    if args.action == "login":
        asyncio.run(login(engine, config, args.name, lambda text: print(text, flush=True),
                          args.flow, args.port))
        return 0
    rows = grants.status(engine, config)
    return print_rows(rows, args.json, lambda row: "\t".join(
        str(row[key] or "-") for key in ("name", "auth", "provider", "grant", "state",
                                          "access_expires_at")))
