"""The token endpoint: refresh and client-credentials grants, device code, code + PKCE (RFC 6749,
8628, 7636), on httpx.

The same few form posts serve Microsoft Entra ID, Google and any standard server, so one small
typed client covers all three providers. Errors are sorted at this edge: a refused grant or
client is a ``SignInError`` naming the mailbox and the fix; a network fault, 5xx or 429 is a
``TokenEndpointUnavailable`` (try again later).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from gateway.auth.providers import Endpoints, endpoints
from gateway.auth.tls import client_context
from gateway.config import OAuthConfig
from gateway.errors import SignInError, TokenEndpointUnavailable

__all__ = ["DeviceCode", "Token", "TokenClient"]

DEFAULT_LIFETIME = 3600.0  # when a server leaves expires_in out (RFC 6749 only recommends it)
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True)
class Token:
    """An access token, when it expires, and the refresh token that came with it (if any)."""

    access_token: str = field(repr=False)
    expires_at: datetime
    lifetime: float
    refresh_token: str | None = field(default=None, repr=False)
    scope: str = ""

    @property
    def renew_at(self) -> datetime:
        """When to get a new one: a tenth of its life before expiry (at most five minutes)."""
        return self.expires_at - timedelta(seconds=min(300.0, self.lifetime / 10))


@dataclass(frozen=True)
class DeviceCode:
    """A device authorization: the code the user types at the verification page."""

    device_code: str = field(repr=False)
    user_code: str
    verification_uri: str
    interval: float
    expires_at: datetime
    message: str = ""


def _words(value: Any, limit: int = 200) -> str:
    """A server-supplied text fit for one log line.

    >>> _words("AADSTS70000: The grant was revoked.\\r\\nTrace ID: 42")
    'AADSTS70000: The grant was revoked.'
    """
    text = str(value or "").strip().splitlines()[0] if str(value or "").strip() else ""
    return _CONTROL.sub(" ", text)[:limit]


class TokenClient:
    """Token requests for one grant (a mailbox's, or [smtp]'s), named in every error."""

    def __init__(self, name: str, cfg: OAuthConfig, timeout: float = 30.0) -> None:
        self.name, self.cfg, self.timeout = name, cfg, timeout
        self.endpoints: Endpoints = endpoints(cfg)

    def _client_form(self) -> dict[str, str]:
        """Client authentication in the form (client_secret_post): Entra ID, Google and RFC servers."""
        form = {"client_id": self.cfg.client_id}
        if self.cfg.client_secret is not None:
            form["client_secret"] = self.cfg.client_secret
        return form

    def _scoped(self, form: dict[str, str]) -> dict[str, str]:
        return form | ({"scope": " ".join(self.endpoints.scopes)} if self.endpoints.scopes else {})

    async def post(self, url: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """POST a form; (status, JSON body); TokenEndpointUnavailable when there is no usable answer."""
        import httpx  # loaded by the first token request: most runs of the CLI make none

        try:
            async with httpx.AsyncClient(timeout=self.timeout, verify=client_context()) as http:
                response = await http.post(url, data=form, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise TokenEndpointUnavailable(f"{self.name}: token endpoint {url} unreachable: "
                                           f"{type(exc).__name__}: {_words(exc)}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise TokenEndpointUnavailable(f"{self.name}: token endpoint {url} answered "
                                           f"{response.status_code}; trying again later")
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise TokenEndpointUnavailable(f"{self.name}: token endpoint {url} answered "
                                           f"{response.status_code} without a JSON object")
        return response.status_code, body

    def refused(self, status: int, body: dict[str, Any]) -> SignInError | TokenEndpointUnavailable:
        """The error for a refused token request, worded by its OAuth error code."""
        error, said = _words(body.get("error"), 60), _words(body.get("error_description"))
        detail = f"{error or status}" + (f": {said}" if said else "")
        fix = f"run `ticketgate auth login {self.name}`"
        if error in ("temporarily_unavailable", "server_error"):
            return TokenEndpointUnavailable(f"{self.name}: token endpoint busy ({detail})")
        if error == "invalid_grant":
            return SignInError(f"{self.name}: the OAuth grant is no longer valid ({detail}): it was "
                               f"revoked or has expired, or the password changed; sign in again: {fix}")
        if error in ("invalid_client", "unauthorized_client"):
            return SignInError(f"{self.name}: the token endpoint refused the client "
                               f"{self.cfg.client_id!r} ({detail}): check client_id and client_secret "
                               f"(or client_secret_env) of the app registration, then {fix}")
        return SignInError(f"{self.name}: token request refused ({detail}): check the oauth "
                           f"settings (provider, tenant, scopes), then {fix}")

    def token(self, status: int, body: dict[str, Any], now: datetime) -> Token:
        """The token of a successful answer, or the error of a refused one."""
        access = body.get("access_token")
        if status != 200 or not isinstance(access, str) or not access:
            raise self.refused(status, body)
        try:
            lifetime = float(body.get("expires_in", DEFAULT_LIFETIME))
        except (TypeError, ValueError):
            lifetime = DEFAULT_LIFETIME
        lifetime = max(lifetime, 1.0)
        refresh = body.get("refresh_token")
        return Token(access, now + timedelta(seconds=lifetime), lifetime,
                     refresh if isinstance(refresh, str) and refresh else None,
                     str(body.get("scope", "")))

    async def refresh(self, refresh_token: str, now: datetime) -> Token:
        """A new access token (and perhaps a rotated refresh token) for a delegated grant."""
        form = self._scoped(self._client_form() | {"grant_type": "refresh_token",
                                                   "refresh_token": refresh_token})
        return self.token(*await self.post(self.endpoints.token_url, form), now)

    async def client_credentials(self, now: datetime) -> Token:
        """An app-only access token (no user, no refresh token)."""
        form = self._scoped(self._client_form() | {"grant_type": "client_credentials"})
        return self.token(*await self.post(self.endpoints.token_url, form), now)

    async def exchange_code(self, code: str, verifier: str, redirect_uri: str, now: datetime) -> Token:
        """Tokens for the code the browser brought back to our localhost redirect."""
        form = self._client_form() | {"grant_type": "authorization_code", "code": code,
                                      "code_verifier": verifier, "redirect_uri": redirect_uri}
        return self.token(*await self.post(self.endpoints.token_url, form), now)

    async def start_device(self, url: str, now: datetime) -> DeviceCode:
        """Ask for a device code and the page where the user enters it."""
        status, body = await self.post(url, self._scoped(self._client_form()))
        device, user = body.get("device_code"), body.get("user_code")
        page = body.get("verification_uri") or body.get("verification_url")  # Google says _url
        if status != 200 or not all(isinstance(v, str) and v for v in (device, user, page)):
            raise self.refused(status, body)
        try:
            interval = max(float(body.get("interval", 5)), 0.1)
            lifetime = float(body.get("expires_in", 900))
        except (TypeError, ValueError):
            interval, lifetime = 5.0, 900.0
        return DeviceCode(str(device), str(user), str(page), interval,
                          now + timedelta(seconds=lifetime), _words(body.get("message"), 400))

    async def poll_device(self, device: DeviceCode, now: datetime) -> Token | str:
        """The tokens once the user approved, else "authorization_pending" or "slow_down"."""
        form = self._client_form() | {"grant_type": DEVICE_CODE_GRANT,
                                      "device_code": device.device_code}
        status, body = await self.post(self.endpoints.token_url, form)
        if status != 200 and body.get("error") in ("authorization_pending", "slow_down"):
            return str(body["error"])
        if status != 200 and body.get("error") in ("access_denied", "expired_token"):
            what = "was declined" if body["error"] == "access_denied" else "took too long"
            raise SignInError(f"{self.name}: the sign-in {what}; run `ticketgate auth login "
                              f"{self.name}` again")
        return self.token(status, body, now)
