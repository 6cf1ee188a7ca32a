"""`ticketgate auth login NAME`: sign in once, store the refresh token sealed with the secret.

Two ways to sign in: the device code flow (RFC 8628: open a page anywhere, type a code;
Microsoft's default), or a browser with PKCE and a redirect to a one-shot HTTP listener on
this machine's loopback (RFC 8252; Google's way, since its device flow refuses the mail scope).
An app-only grant (client credentials) needs no sign-in: login fetches one token to prove the
settings work.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

from sqlalchemy.engine import Engine

from gateway.auth import grants, vault
from gateway.auth.tokens import Token, TokenClient
from gateway.config import SMTP_GRANT, Config, OAuthConfig
from gateway.errors import ConfigError, SignInError
from store.models import utcnow

__all__ = ["LOGIN_TIMEOUT", "grant_settings", "login"]

LOGIN_TIMEOUT = 900.0  # seconds a person has to finish signing in
_PAGE = b"Signed in. You can close this window and go back to ticketgate.\n"


def grant_settings(config: Config, name: str) -> tuple[OAuthConfig, float]:
    """The OAuth settings and timeout of the grant called name (a mailbox, or smtp)."""
    found = {m.name: (m.oauth, m.timeout_seconds) for m in config.mailboxes if m.oauth is not None}
    if config.smtp is not None and config.smtp.oauth is not None:
        found[SMTP_GRANT] = (config.smtp.oauth, config.smtp.timeout_seconds)
    if name not in found:
        known = ", ".join(sorted(found)) or "none"
        raise ConfigError(f"{config.path or '<defaults>'}: no mailbox named {name!r} with "
                          f"auth = \"oauth2\" (known: {known})")
    return found[name]


async def login(engine: Engine, config: Config, name: str, say: Callable[[str], None],
                flow: str | None = None, port: int = 0) -> Token:
    """Sign the grant called name in (flow "device" or "browser"; None: the provider's way)."""
    cfg, timeout = grant_settings(config, name)
    client = TokenClient(name, cfg, timeout)
    where = client.endpoints
    if cfg.grant == "client_credentials":
        token = await client.client_credentials(utcnow())
        await asyncio.to_thread(grants.save_sign_in, engine, name, cfg, where, None, token.expires_at)
        say(f"{name}: app-only access (client credentials) works; nothing to store")
        return token
    if flow is None:
        flow = "device" if where.device_url else "browser"
    if flow == "device" and where.device_url:
        token = await _device_flow(client, where.device_url, say)
    elif flow == "browser" and where.authorize_url:
        token = await _browser_flow(client, where.authorize_url, say, port)
    else:
        raise SignInError(f"{name}: provider {cfg.provider!r} offers no {flow} sign-in here: "
                          f"set {'device_url' if flow == 'device' else 'authorize_url'} in its oauth table")
    if token.refresh_token is None:
        raise SignInError(f"{name}: the provider issued no refresh token: add the scope that grants "
                          "one (Microsoft: offline_access) and sign in again")
    sealed = await asyncio.to_thread(vault.seal, config.secret, token.refresh_token)
    await asyncio.to_thread(grants.save_sign_in, engine, name, cfg, where, sealed, token.expires_at)
    say(f"{name}: signed in; the refresh token is stored encrypted")
    return token


async def _device_flow(client: TokenClient, url: str, say: Callable[[str], None]) -> Token:
    """Show the code, then poll until the user approved at the verification page."""
    device = await client.start_device(url, utcnow())
    say(device.message or f"To sign in, open {device.verification_uri} and enter the code "
                          f"{device.user_code}")
    interval = device.interval
    while utcnow() < device.expires_at:
        await asyncio.sleep(interval)
        answer = await client.poll_device(device, utcnow())
        if isinstance(answer, Token):
            return answer
        if answer == "slow_down":
            interval += 5  # RFC 8628 section 3.5
    raise SignInError(f"{client.name}: the sign-in took too long; run `ticketgate auth login "
                      f"{client.name}` again")


def _pkce() -> tuple[str, str]:
    """(verifier, S256 challenge) of RFC 7636."""
    verifier = secrets.token_urlsafe(64)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


async def _browser_flow(client: TokenClient, url: str, say: Callable[[str], None], port: int) -> Token:
    """Send the user to the authorization page; the browser brings the code back to loopback."""
    verifier, challenge = _pkce()
    state = secrets.token_urlsafe(16)
    arrived: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()
    server = await asyncio.start_server(lambda r, w: _callback(r, w, arrived), "127.0.0.1", port)
    try:
        redirect = f"http://localhost:{server.sockets[0].getsockname()[1]}/"
        query = {"client_id": client.cfg.client_id, "response_type": "code",
                 "redirect_uri": redirect, "scope": " ".join(client.endpoints.scopes),
                 "state": state, "code_challenge": challenge, "code_challenge_method": "S256",
                 **dict(client.endpoints.authorize_params)}
        say(f"To sign in, open this address in a browser on this machine (or forward port "
            f"{redirect.rsplit(':', 1)[1].rstrip('/')} with ssh -L):\n{url}?{urlencode(query)}")
        try:
            answer = await asyncio.wait_for(arrived, LOGIN_TIMEOUT)
        except TimeoutError:
            raise SignInError(f"{client.name}: no answer from the browser within "
                              f"{timedelta(seconds=LOGIN_TIMEOUT)}; run `ticketgate auth login "
                              f"{client.name}` again") from None
    finally:
        server.close()
    if answer.get("state") != state:
        raise SignInError(f"{client.name}: the browser's answer does not belong to this sign-in")
    if "code" not in answer:
        raise SignInError(f"{client.name}: sign-in refused: {answer.get('error', 'no code')} "
                          f"{answer.get('error_description', '')}".rstrip())
    return await client.exchange_code(answer["code"], verifier, redirect, utcnow())


async def _callback(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    arrived: asyncio.Future[dict[str, str]]) -> None:
    """Take one `GET /?code=…&state=…` from the browser; anything else gets a 404."""
    try:
        request = (await asyncio.wait_for(reader.readline(), 30)).decode("latin-1").split()
        while (await asyncio.wait_for(reader.readline(), 30)) not in (b"\r\n", b"\n", b""):
            pass
        target = urlsplit(request[1]) if len(request) >= 2 else urlsplit("/missing")
        query = {k: v[0] for k, v in parse_qs(target.query).items()}
        found = target.path == "/" and ("code" in query or "error" in query)
        status = b"200 OK" if found else b"404 Not Found"
        body = _PAGE if found else b"Not found\n"
        writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Type: text/plain; charset=utf-8\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
        await writer.drain()
        if found and not arrived.done():
            arrived.set_result(query)
    except (TimeoutError, OSError, UnicodeError):
        pass
    finally:
        writer.close()
