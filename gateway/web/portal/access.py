"""Portal sign-in links and sessions in the store: single-use, short-lived, hashed, revocable.

A link or session token is 256 random bits; only its SHA-256 is stored (as API tokens).
Every link request is recorded, for unknown addresses too (without a token), so the rate
limits per address and per client count alike and answers never tell who is a customer.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import ColumnElement, delete, or_, update
from sqlmodel import Session, col, func, select

from gateway.config import Config
from gateway.web.tokens import token_hash
from store.models import PortalLink, PortalSession
from store.queries import find_contact

RATE_WINDOW = timedelta(hours=1)
KEEP_LINKS = timedelta(days=2)  # link requests older than this are forgotten
KEEP_SESSIONS = timedelta(days=30)  # sessions this long after they expired or were revoked, too
Outcome = Literal["sent", "unknown", "limited"]


@dataclass(frozen=True)
class LinkRequest:
    """What became of a request for a link: the token to mail (only when sent)."""

    outcome: Outcome
    token: str | None = None


def is_customer(session: Session, config: Config, address: str) -> bool:
    """A known contact that is not one of our own or an agent's addresses."""
    if address in config.own_addresses() or address in {a.address for a in config.agents}:
        return False
    if address.rpartition("@")[2] in config.own_domains:
        return False
    return find_contact(session, address) is not None


def _recent(session: Session, where: object, now: datetime) -> int:
    """Link requests matching where in the last rate window."""
    return int(session.exec(select(func.count()).select_from(PortalLink).where(
        where, col(PortalLink.created_at) > now - RATE_WINDOW)).one())  # type: ignore[arg-type]


def request_link(session: Session, config: Config, address: str, client: str, next_path: str,
                 now: datetime) -> LinkRequest:
    """Record a link request; a token for a customer within the limits (address, then client)."""
    portal = config.portal
    assert portal is not None
    session.exec(delete(PortalLink).where(col(PortalLink.created_at) < now - KEEP_LINKS))
    if _recent(session, col(PortalLink.address) == address, now) >= portal.links_per_address_hour \
            or _recent(session, col(PortalLink.client) == client, now) >= portal.links_per_client_hour:
        return LinkRequest("limited")
    token = secrets.token_urlsafe(32) if is_customer(session, config, address) else None
    session.add(PortalLink(token_hash=token_hash(token) if token else None, address=address,
                           client=client[:64], next_path=next_path, created_at=now,
                           expires_at=now + timedelta(minutes=portal.link_minutes)))
    return LinkRequest("sent" if token else "unknown", token)


def link_is_live(session: Session, token: str, now: datetime) -> bool:
    """The link exists, is unused and has not expired (the confirmation page asks this)."""
    return session.exec(select(PortalLink.id).where(
        PortalLink.token_hash == token_hash(token), col(PortalLink.used_at).is_(None),
        col(PortalLink.expires_at) > now)).first() is not None


def redeem_link(session: Session, token: str, now: datetime) -> PortalLink | None:
    """Use the link once: its row (address, next page), or None when unknown, used or expired.

    The UPDATE with ``used_at IS NULL`` makes two simultaneous uses yield one session.
    """
    digest = token_hash(token)
    result = session.exec(update(PortalLink).where(
        col(PortalLink.token_hash) == digest, col(PortalLink.used_at).is_(None),
        col(PortalLink.expires_at) > now).values(used_at=now))
    if result.rowcount != 1:
        return None
    return session.exec(select(PortalLink).where(PortalLink.token_hash == digest)).first()


@dataclass(frozen=True)
class Opened:
    """A new session: the cookie's token (never stored) and the session's CSRF token."""

    token: str
    csrf: str


def open_session(session: Session, address: str, hours: int, now: datetime) -> Opened:
    """A session for address, valid for hours; sessions long dead are forgotten on the way."""
    gone = now - KEEP_SESSIONS
    session.exec(delete(PortalSession).where(or_(
        col(PortalSession.expires_at) < gone, col(PortalSession.revoked_at) < gone)))
    opened = Opened(secrets.token_urlsafe(32), secrets.token_urlsafe(32))
    session.add(PortalSession(token_hash=token_hash(opened.token), address=address, csrf=opened.csrf,
                              created_at=now, last_seen_at=now,
                              expires_at=now + timedelta(hours=hours)))
    return opened


def session_for(session: Session, token: str, now: datetime) -> PortalSession | None:
    """The live session of a cookie (not revoked, not expired), marked as seen."""
    row = session.exec(select(PortalSession).where(
        PortalSession.token_hash == token_hash(token), col(PortalSession.revoked_at).is_(None),
        col(PortalSession.expires_at) > now)).first()
    if row is not None:
        row.last_seen_at = now
        session.add(row)
    return row


def revoke(session: Session, now: datetime, *, token: str | None = None,
           address: str | None = None) -> int:
    """End one session (by its cookie) or every session of an address; how many ended."""
    where: list[ColumnElement[bool]] = [col(PortalSession.revoked_at).is_(None)]
    if token is not None:
        where.append(col(PortalSession.token_hash) == token_hash(token))
    if address is not None:
        where.append(col(PortalSession.address) == address)
    if token is None and address is None:
        return 0
    result = session.exec(update(PortalSession).where(*where).values(revoked_at=now))
    return int(result.rowcount)


def live_sessions(session: Session, now: datetime, address: str | None = None) -> list[dict[str, object]]:
    """Sessions not revoked or expired (of one address, or all), newest first: for `portal sessions`."""
    query = select(PortalSession).where(col(PortalSession.revoked_at).is_(None),
                                        col(PortalSession.expires_at) > now)
    if address is not None:
        query = query.where(PortalSession.address == address)
    rows = session.exec(query.order_by(col(PortalSession.id).desc())).all()
    return [{"address": r.address, "created_at": str(r.created_at), "last_seen_at": str(r.last_seen_at),
             "expires_at": str(r.expires_at)} for r in rows]
