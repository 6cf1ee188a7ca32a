"""The oauth_grant rows: a sealed refresh token per mailbox, and what happened to its tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

from gateway.auth.providers import Endpoints
from gateway.config import OAuthConfig
from gateway.errors import store_errors
from store.db import transaction
from store.models import OAuthGrant, utcnow

__all__ = ["load", "record_error", "record_token", "save_sign_in"]


def load(engine: Engine, name: str) -> OAuthGrant | None:
    """The grant row of name, detached from its session, or None when nobody signed in yet."""
    with store_errors(), transaction(engine) as session:
        return session.get(OAuthGrant, name)


def _row(session: Session, name: str, cfg: OAuthConfig, where: Endpoints) -> OAuthGrant:
    """The row of name (made when missing), describing the grant as configured now."""
    row = session.get(OAuthGrant, name)
    if row is None:
        row = OAuthGrant(name=name, provider=cfg.provider, grant_type=cfg.grant,
                         client_id=cfg.client_id, token_url=where.token_url)
        session.add(row)
    row.provider, row.grant_type, row.client_id = cfg.provider, cfg.grant, cfg.client_id
    row.token_url, row.scopes = where.token_url, " ".join(where.scopes)
    return row


def save_sign_in(engine: Engine, name: str, cfg: OAuthConfig, where: Endpoints,
                 sealed: str | None, expires_at: datetime) -> None:
    """A fresh sign-in: the new sealed refresh token replaces any earlier grant and its error."""
    now = utcnow()
    with store_errors(), transaction(engine) as session:
        row = _row(session, name, cfg, where)
        row.sealed_refresh_token, row.signed_in_at, row.refreshed_at = sealed, now, now
        row.access_expires_at, row.last_error, row.last_error_at = expires_at, "", None


def record_token(engine: Engine, name: str, cfg: OAuthConfig, where: Endpoints,
                 expires_at: datetime, sealed: str | None = None) -> None:
    """A token was issued; sealed is the rotated refresh token when the server sent a new one."""
    with store_errors(), transaction(engine) as session:
        row = _row(session, name, cfg, where)
        if sealed is not None:
            row.sealed_refresh_token = sealed
        row.refreshed_at, row.access_expires_at = utcnow(), expires_at
        row.last_error, row.last_error_at = "", None


def record_error(engine: Engine, name: str, message: str) -> None:
    """Why the last token request failed, for `ticketgate auth status`."""
    with store_errors(), transaction(engine) as session:
        row = session.get(OAuthGrant, name)
        if row is not None:
            row.last_error, row.last_error_at = message[:2000], utcnow()
