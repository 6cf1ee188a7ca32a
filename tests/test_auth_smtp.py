"""SMTP sign-in against a real aiosmtpd server: XOAUTH2 with tokens from the token server
(renewed after a refusal, a revoked grant keeps mail queued with a clear error), and TLS or
STARTTLS verified against the test CA."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from gateway.auth.signin import SignIns
from gateway.config import Config, SmtpConfig
from gateway.errors import TemporarySendError
from gateway.outbound.smtp import SmtpSender, outgoing
from gateway.outbound.worker import OutboxWorker
from gateway.pipeline import RawMail, process
from store.db import transaction
from store.models import OutboxMail
from tests.conftest import OAUTH_SECRET, mail, make_config, new_app, store_grant
from tests.servers.certs import TestCA
from tests.servers.oauth import TokenServer
from tests.servers.smtp import OAuthHandler, SmtpServer


@pytest.fixture
def oauth_smtp(token_server: TokenServer) -> Iterator[SmtpServer]:
    """aiosmtpd offering AUTH XOAUTH2, checking tokens with the token server."""
    server = SmtpServer(user_of=token_server.active).start()
    yield server
    server.stop()


def _config(engine: Engine, smtp: dict[str, Any], **extra: Any) -> Config:
    return make_config(engine.url.render_as_string(hide_password=False), smtp=smtp,
                       secret=OAUTH_SECRET, **extra)


def _oauth(token_server: TokenServer, client_id: str) -> dict[str, Any]:
    return {"provider": "generic", "client_id": client_id, "client_secret": "app-secret",
            "token_url": f"{token_server.url}/token"}


def _signed_in(engine: Engine, token_server: TokenServer, smtp: SmtpServer) -> tuple[Config, str]:
    """A config whose [smtp] signs in with its own grant, signed in as support."""
    client_id = new_app(token_server)
    config = _config(engine, {"host": smtp.host, "port": smtp.port, "security": "none",
                              "username": "support", "auth": "oauth2",
                              "oauth": _oauth(token_server, client_id)},
                     outbound={"connections": 1})  # one sign-in per pass, to count them
    assert config.smtp is not None
    store_grant(engine, "smtp", config.smtp.oauth, token_server.issue_grant("support", client_id))
    return config, client_id


def _note(to: str = "someone@example.org") -> EmailMessage:
    note = EmailMessage()
    note["From"], note["To"], note["Subject"] = "support@example.com", to, "hello"
    note.set_content("hello")
    return note


async def test_xoauth2_sends_through_the_worker_and_renews_a_refused_token(
        engine: Engine, token_server: TokenServer, oauth_smtp: SmtpServer) -> None:
    config, client_id = _signed_in(engine, token_server, oauth_smtp)
    process(engine, config, RawMail(mail("x1"), "in"))  # an acknowledgement in the outbox
    worker = OutboxWorker(engine, config)
    assert (await worker.flush()).sent >= 1
    handler = oauth_smtp.handler
    assert isinstance(handler, OAuthHandler) and handler.signed_in == ["support"]
    assert handler.to("customer@example.org")
    token_server.expire_tokens(client_id)  # the worker still holds that token
    process(engine, config, RawMail(mail("x2"), "in"))
    assert (await worker.flush()).sent >= 1
    assert handler.refused == 1 and handler.signed_in == ["support", "support"]


async def test_a_revoked_smtp_grant_keeps_mail_queued_with_the_fix_named(
        engine: Engine, token_server: TokenServer, oauth_smtp: SmtpServer) -> None:
    config, client_id = _signed_in(engine, token_server, oauth_smtp)
    token_server.revoke(client_id, "support")
    process(engine, config, RawMail(mail("y1"), "in"))
    result = await OutboxWorker(engine, config).flush()
    assert result.sent == 0 and result.retried >= 1 and result.failed == 0
    with transaction(engine) as session:
        rows = session.exec(select(OutboxMail)).all()
    assert rows and all(row.status == "pending" for row in rows)
    assert all("the OAuth grant is no longer valid" in row.last_error
               and "run `ticketgate auth login smtp`" in row.last_error for row in rows)
    assert oauth_smtp.handler.delivered == []


async def test_smtp_can_use_a_mailboxes_grant(engine: Engine, token_server: TokenServer,
                                              oauth_smtp: SmtpServer) -> None:
    client_id = new_app(token_server)
    box = {"name": "inbox", "host": "127.0.0.1", "security": "none", "username": "support",
           "auth": "oauth2", "oauth": _oauth(token_server, client_id)}
    config = _config(engine, {"host": oauth_smtp.host, "port": oauth_smtp.port, "security": "none",
                              "username": "support", "auth": "oauth2", "oauth_mailbox": "inbox"},
                     mailbox=[box])
    store_grant(engine, "inbox", config.mailboxes[0].oauth, token_server.issue_grant("support", client_id))
    assert config.smtp is not None
    signins = SignIns(engine, config)
    async with SmtpSender(config.smtp, signins.for_smtp(config.smtp)) as sender:
        await sender.send(outgoing(_note()))
    assert len(oauth_smtp.handler.delivered) == 1
    before = token_server.counts["refresh_token"]
    await signins.for_mailbox(config.mailboxes[0]).credentials()  # the same grant: no new refresh
    assert token_server.counts["refresh_token"] == before


def _tls_smtp(security: str, port: int, host: str, ca: Path | None) -> SmtpConfig:
    table = {"host": host, "port": port, "security": security, "timeout_seconds": 10}
    smtp = make_config(smtp=table | ({"ca_file": str(ca)} if ca else {})).smtp
    assert smtp is not None
    return smtp


@pytest.mark.parametrize("security", ["tls", "starttls"])
async def test_smtp_tls_and_starttls_verify_the_test_ca(
        test_ca: TestCA, localhost_cert: tuple[Path, Path], security: str) -> None:
    server = SmtpServer(tls=localhost_cert, implicit_tls=security == "tls").start()
    try:
        async with SmtpSender(_tls_smtp(security, server.port, "localhost", test_ca.cert)) as sender:
            assert sender.client is not None and sender.client.get_transport_info("sslcontext")
            await sender.send(outgoing(_note()))
        assert len(server.handler.delivered) == 1
        with pytest.raises(TemporarySendError) as wrong_host:
            async with SmtpSender(_tls_smtp(security, server.port, "127.0.0.1", test_ca.cert)):
                pass
        with pytest.raises(TemporarySendError) as unknown_ca:
            async with SmtpSender(_tls_smtp(security, server.port, "localhost", None)):
                pass
    finally:
        server.stop()
    assert "TLS certificate of 127.0.0.1" in str(wrong_host.value)
    assert "the certificate is for another host name" in str(wrong_host.value)
    assert "not signed by a CA this system trusts" in str(unknown_ca.value)
    assert len(server.handler.delivered) == 1


async def test_smtp_starttls_not_offered_is_refused(test_ca: TestCA) -> None:
    server = SmtpServer().start()  # plain text only
    try:
        with pytest.raises(TemporarySendError) as caught:
            async with SmtpSender(_tls_smtp("starttls", server.port, "localhost", test_ca.cert)):
                pass
    finally:
        server.stop()
    assert "does not offer STARTTLS; not sending without TLS" in str(caught.value)
