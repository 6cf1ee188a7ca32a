"""The oauth_grant rows: a sealed refresh token per mailbox, and what happened to its tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from gateway.auth.providers import Endpoints
from gateway.config import SMTP_GRANT, Config, OAuthConfig
from gateway.errors import store_errors
from store.db import transaction
from store.models import OAuthGrant, utcnow

__all__ = ["load", "record_error", "record_token", "save_sign_in", "status"]


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


def _when(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None


def _state(name: str, cfg: OAuthConfig, row: OAuthGrant | None) -> str:
    """In words: can this grant get tokens, and if not, what to run."""
    fix = f"run `ticketgate auth login {name}`"
    if cfg.grant == "client_credentials":
        return "app-only (client credentials)" + (f"; last error: {row.last_error}" if row and row.last_error
                                                  else "")
    if row is None or row.sealed_refresh_token is None:
        return f"not signed in: {fix}"
    if row.last_error:
        return f"failing: {row.last_error}"
    return "signed in"


def status(engine: Engine, config: Config) -> list[dict[str, str | None]]:
    """Each mailbox's (and SMTP's) sign-in: how, the grant's state, the access token's expiry."""
    with store_errors(), transaction(engine) as session:
        rows = {row.name: row for row in session.exec(select(OAuthGrant)).all()}
    entries: list[tuple[str, str, OAuthConfig | None, str | None]] = [
        (m.name, m.auth, m.oauth, None) for m in config.mailboxes]
    if config.smtp is not None:
        entries.append((SMTP_GRANT, config.smtp.auth, config.smtp.oauth, config.smtp.oauth_mailbox))
    found: list[dict[str, str | None]] = []
    for name, auth, cfg, shared in entries:
        row = rows.get(name)
        line: dict[str, str | None] = {"name": name, "auth": auth, "provider": None, "grant": None,
                                       "state": auth, "access_expires_at": None, "refreshed_at": None,
                                       "signed_in_at": None}
        if shared is not None:
            line["state"] = f"uses the grant of mailbox {shared!r}"
        elif cfg is not None:
            line.update(provider=cfg.provider, grant=cfg.grant, state=_state(name, cfg, row))
            if row is not None:
                line.update(access_expires_at=_when(row.access_expires_at),
                            refreshed_at=_when(row.refreshed_at), signed_in_at=_when(row.signed_in_at))
        found.append(line)
    return found
