"""The customer portal for tests: the real app on uvicorn with [portal] on, a cookie-keeping
HTTP client (Secure cookies over loopback http, as a browser keeps them), and the sign-in link
read from the SMTP sink."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any

import httpx
from sqlalchemy.engine import Engine

from gateway.config import Config
from gateway.rules.loader import RuleBook, vocabulary
from gateway.web.app import create_app
from gateway.web.tokens import SCOPES, create_token
from tests.conftest import ROOT
from tests.servers.http import ApiServer
from tests.servers.smtp import SmtpServer, free_port
from tests.web_fixtures import door_config

LINK = re.compile(r"(http://127\.0\.0\.1:\d+/portal/signin/[A-Za-z0-9_-]+)")
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
FORM_ID = re.compile(r'name="form_id" value="([^"]+)"')


@dataclass
class Site:
    """A running portal: store, config, address, an API client and the SMTP sink."""

    engine: Engine
    config: Config
    url: str
    api: httpx.Client
    smtp: SmtpServer

    def open_ticket(self, email: str, subject: str = "Drucker druckt nicht", **fields: Any) -> str:
        """A ticket by the API (as if it came by mail or portal); its number."""
        body = {"source": "api", "customer": {"email": email, "name": email.split("@")[0].title()},
                "subject": subject, "text": "Seit heute früh kein Ausdruck."} | fields
        answer = self.api.post("/api/v1/tickets", json=body)
        assert answer.status_code == 201, answer.text
        return str(answer.json()["ticket"]["number"])

    def share(self, domain: str, on: bool) -> None:
        """Grant or withdraw organisation-wide visibility (the API's organisations PATCH)."""
        answer = self.api.patch(f"/api/v1/organisations/{domain}", json={"share_tickets": on})
        assert answer.status_code == 200, answer.text

    def link_for(self, address: str, since: int = 0, timeout: float = 10.0) -> str:
        """The sign-in link mailed to address after the first `since` mails to it."""
        return link_in(self.smtp, address, since, timeout)


def link_in(smtp: SmtpServer, address: str, since: int = 0, timeout: float = 10.0) -> str:
    """The first sign-in link among the mails to address after the first `since` (other mails,
    such as acknowledgements, may come between)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for delivered in smtp.handler.to(address)[since:]:
            body = delivered.message.get_body(("plain",))
            found = LINK.search(body.get_content()) if body is not None else None
            if found:
                return found.group(1)
        time.sleep(0.02)  # the mail is sent after the answer, by a background task
    raise AssertionError(f"no sign-in link mailed to {address} in {timeout} s")


def portal_config(db_url: str, smtp: SmtpServer, port: int, **portal: Any) -> Config:
    """door_config plus [http] on port and [portal] at that address."""
    return door_config(db_url, smtp, http={"listen": f"127.0.0.1:{port}"}, outbound={},
                       portal={"url": f"http://127.0.0.1:{port}/portal", **portal})


def serve_portal(engine: Engine, smtp: SmtpServer, **portal: Any) -> Iterator[Site]:
    """Serve the app with the portal on and the example rules."""
    port = free_port()
    config = portal_config(engine.url.render_as_string(hide_password=False), smtp, port, **portal)
    token = create_token(engine, "portal-test", list(SCOPES))
    app = create_app(engine, config, rules=RuleBook(ROOT / "rules", vocabulary(config)))
    with ApiServer(app, port=port) as server, httpx.Client(
            base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as api:
        yield Site(engine, config, server.base_url, api, smtp)


@dataclass
class Visitor:
    """A browser as far as HTTP goes: keeps cookies (Secure ones too, on loopback), no redirects."""

    site: Site
    language: str = "en"
    cookies: dict[str, str] = field(default_factory=dict)
    set_cookies: list[str] = field(default_factory=list)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Accept-Language": self.language, **kwargs.pop("headers", {})}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        with httpx.Client(base_url=self.site.url, timeout=60) as client:
            answer = client.request(method, path, headers=headers, **kwargs)
        for line in answer.headers.get_list("set-cookie"):
            self.set_cookies.append(line)
            for name, morsel in SimpleCookie(line).items():
                if morsel["max-age"] == "0" or morsel.value in ("", '""'):
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return answer

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def csrf(self, path: str) -> str:
        """The CSRF token of the page's forms."""
        page = self.get(path)
        found = CSRF.search(page.text)
        assert found, (page.status_code, page.text[:500])
        return found.group(1)

    def ask_link(self, address: str, next_path: str = "/portal/tickets") -> httpx.Response:
        """Fill in and send the sign-in form."""
        token = self.csrf("/portal/signin")
        return self.post("/portal/signin", data={"csrf": token, "email": address, "next": next_path})

    def sign_in(self, address: str) -> None:
        """The whole way: ask, read the mail, confirm; a session cookie afterwards."""
        before = len(self.site.smtp.handler.to(address))
        assert self.ask_link(address).status_code == 200
        self.follow(self.site.link_for(address, since=before))

    def follow(self, link: str) -> httpx.Response:
        """Open a mailed link and press its button."""
        path = link.removeprefix(self.site.url)
        token = self.csrf(path)
        return self.post(path, data={"csrf": token})
