"""Fixtures for the HTTP door: the real app on uvicorn on loopback, a token, an SMTP sink."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from gateway.config import Config
from gateway.outbound.flush import FlushResult, flush_outbox_once
from gateway.outbound.render import Renderer
from gateway.outbound.smtp import SmtpSender
from gateway.rules.loader import RuleBook, vocabulary
from gateway.web.app import create_app
from gateway.web.tokens import SCOPES, create_token
from tests.conftest import ROOT, make_config
from tests.servers.http import ApiServer
from tests.servers.smtp import SmtpServer

PORTAL = "https://portal.example.com/t/{number}"


@dataclass
class Door:
    """A running HTTP door: its store, config, address and a client holding a full token."""

    engine: Engine
    config: Config
    url: str
    token: str
    client: httpx.Client

    def create(self, email: str = "anna@acme.example", key: str | None = None,
               **fields: Any) -> httpx.Response:
        """POST a ticket (defaults: a portal ticket from anna)."""
        body = {"source": "portal", "customer": {"email": email, "name": "Anna Kunde"},
                "subject": "Drucker druckt nicht", "text": "Seit heute früh kein Ausdruck."} | fields
        headers = {"Idempotency-Key": key} if key else {}
        return self.client.post("/api/v1/tickets", json=body, headers=headers)


def door_config(db_url: str, smtp: SmtpServer | None = None, **sections: Any) -> Config:
    """Two channels (the example rules name the hotline), an agent, the portal link."""
    extra: dict[str, Any] = {"outbound": {"portal_url": PORTAL}} | sections
    if smtp is not None:
        extra["smtp"] = {"host": smtp.host, "port": smtp.port, "security": "none"}
    return make_config(
        db_url,
        channel=[{"name": "support", "address": "support@example.com", "display_name": "ACME Support"},
                 {"name": "hotline", "address": "hotline@example.com"}],
        **extra)


def serve(engine: Engine, config: Config, scopes: tuple[str, ...] = SCOPES) -> Iterator[Door]:
    """Serve the app with the example rules; yield a Door with a token of these scopes."""
    token = create_token(engine, f"test-{len(scopes)}", list(scopes))
    book = RuleBook(ROOT / "rules", vocabulary(config))
    with ApiServer(create_app(engine, config, rules=book)) as server, httpx.Client(
            base_url=server.base_url, headers={"Authorization": f"Bearer {token}"},
            timeout=60) as client:
        yield Door(engine, config, server.base_url, token, client)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A capturing SMTP server on loopback."""
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def door(engine: Engine, smtp: SmtpServer) -> Iterator[Door]:
    """The HTTP door on this backend, with SMTP configured (mail is sent by flush())."""
    yield from serve(engine, door_config(str(engine.url.render_as_string(hide_password=False)), smtp))


async def flush(door: Door) -> FlushResult:
    """Send what the outbox holds, now, to the SMTP sink."""
    smtp = door.config.smtp
    assert smtp is not None
    return await flush_outbox_once(door.engine, door.config, lambda: SmtpSender(smtp), Renderer())
