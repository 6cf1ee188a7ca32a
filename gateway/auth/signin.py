"""Credentials for a mailbox or SMTP: a password, or an OAuth access token refreshed before expiry.

One ``GrantTokens`` per grant holds the access token in memory; the IMAP worker and the mailer
share it when [smtp] uses a mailbox's grant. A refused refresh is a ``SignInError`` that names
the mailbox and `ticketgate auth login NAME`; the refresh token is read from the database on
each refresh, so a new sign-in is picked up without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlalchemy.engine import Engine

from gateway.auth import grants, vault
from gateway.auth.tokens import Token, TokenClient
from gateway.config import Config, MailboxConfig, OAuthConfig, SmtpConfig
from gateway.errors import SignInError, TicketgateError, TokenEndpointUnavailable
from store.models import OAuthGrant, utcnow

__all__ = ["Credentials", "GrantTokens", "OAuthSignIn", "PasswordSignIn", "SignIn", "SignIns"]


@dataclass(frozen=True)
class Credentials:
    """Who signs in and with what: a password, or an OAuth access token (oauth) to renew by renew_at."""

    username: str
    secret: str = field(repr=False)
    oauth: bool = False
    renew_at: datetime | None = None
    grant: str = ""  # the OAuth grant's name: what `ticketgate auth login` wants


class SignIn(Protocol):
    """Gives the credentials to sign in with; renew=True after the server refused them."""

    async def credentials(self, renew: bool = False) -> Credentials:
        """The credentials to use now."""
        ...


@dataclass(frozen=True)
class PasswordSignIn:
    """A username and password from the config."""

    username: str
    password: str = field(repr=False)

    async def credentials(self, renew: bool = False) -> Credentials:
        """Always the same: a password cannot be refreshed."""
        return Credentials(self.username, self.password)


class GrantTokens:
    """The access tokens of one grant: fetched when missing, near expiry, or refused."""

    def __init__(self, name: str, cfg: OAuthConfig, engine: Engine, secret: str,
                 timeout: float = 30.0) -> None:
        self.name, self.cfg, self.engine, self.secret = name, cfg, engine, secret
        self.client = TokenClient(name, cfg, timeout)
        self.token: Token | None = None
        self._lock = asyncio.Lock()

    async def current(self, renew: bool = False) -> Token:
        """A usable access token; a new one when renew, when there is none, or when it is due."""
        async with self._lock:
            if renew or self.token is None or utcnow() >= self.token.renew_at:
                try:
                    self.token = await self._fetch()
                except (SignInError, TokenEndpointUnavailable) as exc:
                    with contextlib.suppress(TicketgateError):  # the store may be down as well
                        await asyncio.to_thread(grants.record_error, self.engine, self.name, str(exc))
                    raise
            return self.token

    async def _fetch(self) -> Token:
        where = self.client.endpoints
        if self.cfg.grant == "client_credentials":
            token = await self.client.client_credentials(utcnow())
            await asyncio.to_thread(grants.record_token, self.engine, self.name, self.cfg, where,
                                    token.expires_at)
            return token
        for attempt in (1, 2):
            row = await asyncio.to_thread(grants.load, self.engine, self.name)
            sealed = self._sealed(row)
            refresh = await asyncio.to_thread(self._unseal, sealed)
            try:
                token = await self.client.refresh(refresh, utcnow())
            except SignInError:
                latest = await asyncio.to_thread(grants.load, self.engine, self.name)
                if attempt == 1 and latest is not None and latest.sealed_refresh_token != sealed:
                    continue  # another process rotated the token meanwhile, or a new sign-in
                raise
            rotated = None
            if token.refresh_token is not None and token.refresh_token != refresh:
                rotated = await asyncio.to_thread(vault.seal, self.secret, token.refresh_token,
                                                  vault.salt_of(sealed))
            await asyncio.to_thread(grants.record_token, self.engine, self.name, self.cfg, where,
                                    token.expires_at, rotated)
            return token
        raise AssertionError("unreachable")

    def _sealed(self, row: OAuthGrant | None) -> str:
        """The stored refresh token of this grant, as long as it was made for this app."""
        fix = f"run `ticketgate auth login {self.name}`"
        if row is None or row.sealed_refresh_token is None:
            raise SignInError(f"{self.name}: not signed in yet: {fix}")
        if row.client_id != self.cfg.client_id or row.token_url != self.client.endpoints.token_url:
            raise SignInError(f"{self.name}: the stored grant was made for client {row.client_id!r} "
                              f"at {row.token_url}, not for the configured app: {fix}")
        return row.sealed_refresh_token

    def _unseal(self, sealed: str) -> str:
        try:
            return vault.unseal(self.secret, sealed)
        except ValueError as exc:
            raise SignInError(f"{self.name}: the stored grant cannot be opened with the configured "
                              f"secret ({exc}; was the secret changed?): run "
                              f"`ticketgate auth login {self.name}`") from None


@dataclass
class OAuthSignIn:
    """Signs in as username with the access tokens of a grant."""

    username: str
    tokens: GrantTokens

    async def credentials(self, renew: bool = False) -> Credentials:
        """The current access token, renewed first when asked or when it is due."""
        token = await self.tokens.current(renew)
        return Credentials(self.username, token.access_token, oauth=True, renew_at=token.renew_at,
                           grant=self.tokens.name)


class SignIns:
    """The sign-ins of one process: one token holder per grant, shared by IMAP and SMTP."""

    def __init__(self, engine: Engine, config: Config) -> None:
        self.engine, self.config = engine, config
        self._grants: dict[str, GrantTokens] = {}

    def grant(self, name: str, cfg: OAuthConfig, timeout: float) -> GrantTokens:
        """The token holder of the grant called name (made on first use)."""
        if name not in self._grants:
            self._grants[name] = GrantTokens(name, cfg, self.engine, self.config.secret, timeout)
        return self._grants[name]

    def for_mailbox(self, box: MailboxConfig) -> SignIn:
        """How the mailbox signs in."""
        if box.auth == "oauth2" and box.oauth is not None:
            return OAuthSignIn(box.username, self.grant(box.name, box.oauth, box.timeout_seconds))
        return PasswordSignIn(box.username, box.password or "")

    def for_smtp(self, smtp: SmtpConfig) -> SignIn | None:
        """How SMTP signs in; None when it does not (no username)."""
        if smtp.username is None:
            return None
        if smtp.auth != "oauth2":
            return PasswordSignIn(smtp.username, smtp.password) if smtp.password is not None else None
        name = smtp.grant_name or ""
        cfg = smtp.oauth or next(m.oauth for m in self.config.mailboxes if m.name == name)
        assert cfg is not None  # config validation: oauth_mailbox names a mailbox with oauth2
        return OAuthSignIn(smtp.username, self.grant(name, cfg, smtp.timeout_seconds))
