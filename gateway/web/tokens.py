"""API tokens: one per integration, shown once, stored as SHA-256, with scopes; revocable.

A token is 256 random bits (``tg_`` + 43 URL-safe characters). Only its SHA-256 is kept:
with that much entropy a plain hash is as strong as a slow one, and a lookup stays one
indexed query per request.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from gateway.errors import TicketgateError
from store.db import transaction
from store.models import ApiToken, utcnow

SCOPES = ("tickets:read", "tickets:write", "organisations:read", "organisations:write")
PREFIX = "tg_"


class TokenError(TicketgateError):
    """A token command cannot be done (unknown scope, name taken, no such token)."""


@dataclass(frozen=True)
class Client:
    """An authenticated API client: the token's name, scopes and hash (idempotency keys use it)."""

    name: str
    scopes: frozenset[str]
    token_hash: str


def token_hash(token: str) -> str:
    """SHA-256 hex of a token, as stored.

    >>> token_hash("tg_x")[:12]
    '6a818fa0a930'
    """
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def create_token(engine: Engine, name: str, scopes: list[str]) -> str:
    """A new token for name with scopes; the token itself is returned once and never stored."""
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise TokenError(f"unknown scope {unknown[0]!r}; known: {', '.join(SCOPES)}")
    if not scopes:
        raise TokenError(f"give at least one --scope ({', '.join(SCOPES)})")
    if not name or len(name) > 100 or not name.isprintable():
        raise TokenError("the name must be 1 to 100 printable characters")
    token = PREFIX + secrets.token_urlsafe(32)
    with transaction(engine) as session:
        if _active(session, name) is not None:
            raise TokenError(f"a token named {name!r} exists; revoke it first")
        session.add(ApiToken(name=name, token_hash=token_hash(token),
                             scopes=json.dumps(sorted(set(scopes)))))
    return token


def _active(session: Session, name: str) -> ApiToken | None:
    return session.exec(select(ApiToken).where(ApiToken.name == name,
                                               col(ApiToken.revoked_at).is_(None))).first()


def revoke_token(engine: Engine, name: str, now: datetime | None = None) -> None:
    """Revoke the active token called name: every later request with it gets 401."""
    with transaction(engine) as session:
        row = _active(session, name)
        if row is None:
            raise TokenError(f"no active token named {name!r}")
        row.revoked_at = now or utcnow()


def list_tokens(engine: Engine) -> list[dict[str, object]]:
    """Every token (never the token itself), oldest first."""
    with transaction(engine) as session:
        rows = session.exec(select(ApiToken).order_by(col(ApiToken.id))).all()
        return [{"name": r.name, "scopes": json.loads(r.scopes),
                 "created_at": r.created_at.isoformat(timespec="seconds"),
                 "revoked_at": r.revoked_at.isoformat(timespec="seconds") if r.revoked_at else None}
                for r in rows]


def authenticate(session: Session, token: str) -> Client | None:
    """The client a presented token belongs to; None when unknown or revoked."""
    if not token.startswith(PREFIX) or len(token) > 200:
        return None
    digest = token_hash(token)
    row = session.exec(select(ApiToken).where(ApiToken.token_hash == digest)).first()
    if row is None or row.revoked_at is not None:
        return None
    return Client(row.name, frozenset(json.loads(row.scopes)), digest)
