"""A real OAuth2 token and introspection server on loopback, for tests and Dovecot's passdb oauth2.

It issues, expires and revokes tokens like Entra ID or Google would, over HTTP:
``/token`` (refresh_token, client_credentials, device_code and authorization_code grants),
``/devicecode`` (RFC 8628), ``/authorize`` (approves at once as the chosen user and redirects
with a code; PKCE S256 checked at the exchange) and ``/introspect`` (RFC 7662, what Dovecot
asks). Any path prefix is accepted, so Microsoft-shaped URLs
(``/TENANT/oauth2/v2.0/token``) work as well. Tests change its state directly.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit


@dataclass
class Client:
    """A registered app: its secret (None: a public client) and, for app-only tokens, whose mailbox."""

    secret: str | None
    lifetime: float
    app_user: str | None = None
    rotate: bool = False  # a new refresh token with every refresh, the old one dies


@dataclass
class Grant:
    """A user's consent to a client; revoked grants refresh no more."""

    username: str
    client_id: str
    revoked: bool = False


@dataclass
class Issued:
    """An access token: whose, until when (time.time()), from which grant."""

    username: str
    expires_at: float
    grant: Grant | None


@dataclass
class Device:
    """A pending device authorization."""

    client_id: str
    user_code: str
    approved_by: str | None = None
    denied: bool = False


@dataclass
class TokenServer:
    """The server and its state; start() listens on a free loopback port."""

    clients: dict[str, Client] = field(default_factory=dict)
    grants: dict[str, Grant] = field(default_factory=dict)  # refresh token -> grant
    tokens: dict[str, Issued] = field(default_factory=dict)
    devices: dict[str, Device] = field(default_factory=dict)  # device code -> device
    codes: dict[str, tuple[Grant, str, str]] = field(default_factory=dict)  # code -> grant, challenge, uri
    counts: Counter[str] = field(default_factory=Counter)  # grant types served, introspections
    forms: list[dict[str, str]] = field(default_factory=list)  # every token request's form
    authorize_as: str | None = None  # /authorize approves as this user
    device_interval: float = 0.2
    lock: threading.Lock = field(default_factory=threading.Lock)
    _http: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT"""
        assert self._http is not None
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    def start(self) -> TokenServer:
        """Listen in a daemon thread."""
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                server._answer(self, "GET")

            def do_POST(self) -> None:
                server._answer(self, "POST")

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop listening."""
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None

    # -- what tests do -----------------------------------------------------------------------

    def add_client(self, client_id: str, secret: str | None = None, lifetime: float = 3600.0,
                   app_user: str | None = None, rotate: bool = False) -> None:
        """Register an app."""
        with self.lock:
            self.clients[client_id] = Client(secret, lifetime, app_user, rotate)

    def issue_grant(self, username: str, client_id: str) -> str:
        """A refresh token for username's consent to client_id (as if they had signed in)."""
        refresh = "rt-" + secrets.token_urlsafe(16)
        with self.lock:
            self.grants[refresh] = Grant(username, client_id)
        return refresh

    def issue_access(self, client_id: str, username: str) -> str:
        """An access token for username (as if the client had fetched one)."""
        with self.lock:
            return str(self._issue(self.clients[client_id], username, None)["access_token"])

    def revoke(self, client_id: str, username: str) -> None:
        """The user withdraws consent: refresh tokens and their access tokens stop working."""
        with self.lock:
            for grant in self.grants.values():
                if grant.client_id == client_id and grant.username == username:
                    grant.revoked = True
            for issued in self.tokens.values():
                if issued.grant is not None and issued.grant.revoked:
                    issued.expires_at = 0

    def expire_tokens(self, client_id: str) -> None:
        """Every access token of the client expires now (refresh tokens stay good)."""
        with self.lock:
            for issued in self.tokens.values():
                if issued.grant is None or issued.grant.client_id == client_id:
                    issued.expires_at = 0

    def approve(self, user_code: str, username: str, deny: bool = False) -> None:
        """The user entered user_code at the verification page and approved (or denied)."""
        with self.lock:
            device = next(d for d in self.devices.values() if d.user_code == user_code)
            device.approved_by, device.denied = (None, True) if deny else (username, False)

    def active(self, token: str) -> str | None:
        """The user of an access token that is still good, else None."""
        with self.lock:
            issued = self.tokens.get(token)
            if issued is None or issued.expires_at <= time.time():
                return None
            return issued.username

    # -- HTTP ------------------------------------------------------------------------------------

    def _answer(self, request: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(request.path)
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length).decode() if length else ""
        form = {k: v[0] for k, v in parse_qs(body if method == "POST" else parts.query).items()}
        path = parts.path.rstrip("/")
        if method == "GET" and path.endswith("/authorize"):
            self._authorize(request, form)
            return
        if path.endswith("/introspect"):
            status, reply = self._introspect(form, request.headers.get("Authorization", ""))
        elif path.endswith("/devicecode") or path.endswith("/device"):
            status, reply = self._device(form, request.headers.get("Authorization", ""))
        elif path.endswith("/token"):
            status, reply = self._token(form, request.headers.get("Authorization", ""))
        else:
            status, reply = 404, {"error": "not_found"}
        data = json.dumps(reply).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    def _client(self, form: dict[str, str], authorization: str) -> tuple[str, Client] | None:
        """The authenticated client (client_secret_post or basic), or None."""
        client_id, secret = form.get("client_id", ""), form.get("client_secret")
        if authorization.startswith("Basic "):
            client_id, _, secret = base64.b64decode(authorization[6:]).decode().partition(":")
        client = self.clients.get(client_id)
        if client is None or (client.secret is not None and secret != client.secret):
            return None
        return client_id, client

    def _issue(self, client: Client, username: str, grant: Grant | None) -> dict[str, Any]:
        token = "at-" + secrets.token_urlsafe(16)
        self.tokens[token] = Issued(username, time.time() + client.lifetime, grant)
        return {"access_token": token, "token_type": "Bearer", "expires_in": client.lifetime}

    def _token(self, form: dict[str, str], authorization: str) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.forms.append(form)
            kind = form.get("grant_type", "")
            self.counts[kind] += 1
            found = self._client(form, authorization)
            if found is None:
                return 401, {"error": "invalid_client", "error_description": "client authentication failed"}
            client_id, client = found
            if kind == "client_credentials":
                if client.app_user is None or client.secret is None:
                    return 400, {"error": "unauthorized_client"}
                return 200, self._issue(client, client.app_user, None)
            if kind == "refresh_token":
                return self._refresh(form.get("refresh_token", ""), client_id, client)
            if kind == "urn:ietf:params:oauth:grant-type:device_code":
                return self._device_token(form.get("device_code", ""), client_id, client)
            if kind == "authorization_code":
                return self._code_token(form, client_id, client)
            return 400, {"error": "unsupported_grant_type"}

    def _granted(self, grant: Grant, client: Client) -> tuple[int, dict[str, Any]]:
        refresh = "rt-" + secrets.token_urlsafe(16)
        self.grants[refresh] = grant
        return 200, self._issue(client, grant.username, grant) | {"refresh_token": refresh}

    def _refresh(self, refresh: str, client_id: str, client: Client) -> tuple[int, dict[str, Any]]:
        grant = self.grants.get(refresh)
        if grant is None or grant.revoked or grant.client_id != client_id:
            return 400, {"error": "invalid_grant",
                         "error_description": "AADSTS70000: The refresh token was revoked.\r\nTrace ID: 1"}
        if client.rotate:
            del self.grants[refresh]
            return self._granted(grant, client)
        return 200, self._issue(client, grant.username, grant)

    def _device(self, form: dict[str, str], authorization: str) -> tuple[int, dict[str, Any]]:
        with self.lock:
            found = self._client(form, authorization)
            if found is None:
                return 401, {"error": "invalid_client"}
            code, user_code = secrets.token_urlsafe(16), secrets.token_hex(4).upper()
            self.devices[code] = Device(found[0], user_code)
            return 200, {"device_code": code, "user_code": user_code,
                         "verification_uri": f"{self.url}/verify", "expires_in": 600,
                         "interval": self.device_interval,
                         "message": f"To sign in, open {self.url}/verify and enter {user_code}."}

    def _device_token(self, code: str, client_id: str, client: Client) -> tuple[int, dict[str, Any]]:
        device = self.devices.get(code)
        if device is None or device.client_id != client_id:
            return 400, {"error": "invalid_grant"}
        if device.denied:
            return 400, {"error": "access_denied"}
        if device.approved_by is None:
            return 400, {"error": "authorization_pending"}
        del self.devices[code]
        return self._granted(Grant(device.approved_by, client_id), client)

    def _authorize(self, request: BaseHTTPRequestHandler, query: dict[str, str]) -> None:
        with self.lock:
            uri, user = query.get("redirect_uri", ""), self.authorize_as
            ok = (query.get("client_id") in self.clients and user is not None
                  and query.get("code_challenge_method") == "S256" and uri.startswith("http://localhost:"))
            code = secrets.token_urlsafe(16)
            if ok and user is not None:
                self.codes[code] = (Grant(user, query["client_id"]), query["code_challenge"], uri)
        if not ok:
            request.send_response(400)
            request.end_headers()
            return
        request.send_response(302)
        request.send_header("Location", f"{uri}?{urlencode({'code': code, 'state': query.get('state', '')})}")
        request.end_headers()

    def _code_token(self, form: dict[str, str], client_id: str, client: Client) -> tuple[int, dict[str, Any]]:
        found = self.codes.pop(form.get("code", ""), None)
        if found is None:
            return 400, {"error": "invalid_grant"}
        grant, challenge, uri = found
        verifier = form.get("code_verifier", "").encode()
        expected = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=").decode()
        if grant.client_id != client_id or expected != challenge or form.get("redirect_uri") != uri:
            return 400, {"error": "invalid_grant", "error_description": "PKCE or redirect mismatch"}
        return self._granted(grant, client)

    def _introspect(self, form: dict[str, str], authorization: str) -> tuple[int, dict[str, Any]]:
        token = form.get("token") or authorization.removeprefix("Bearer ").strip()
        with self.lock:
            self.counts["introspect"] += 1
        user = self.active(token)
        return 200, ({"active": True, "username": user} if user else {"active": False})
