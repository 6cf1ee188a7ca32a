"""Signing in to a real Dovecot: TLS and STARTTLS verified against a test CA, never a plain-text
fallback; XOAUTH2 and OAUTHBEARER with tokens from a real token server, refreshed mid-run,
renewed after a refusal, and a revoked grant that stops only its own mailbox."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import func, select

from gateway.auth.signin import Credentials, SignIns
from gateway.config import Config
from gateway.errors import SignInError
from gateway.intake.imap import ImapMailbox
from gateway.rules.loader import RuleBook, vocabulary
from gateway.service import MailboxWorker
from store.db import transaction
from store.models import Message, OAuthGrant
from tests.conftest import OAUTH_SECRET, mail, mailbox_table, make_config, new_app, store_grant
from tests.servers.certs import TestCA
from tests.servers.dovecot import Dovecot
from tests.servers.oauth import TokenServer


def box_config(server: Dovecot, security: str, host: str, ca_file: Path | None, **extra: Any) -> Any:
    """A password mailbox on server over security, for connection tests."""
    port = server.tls_port if security == "tls" else server.port
    table = mailbox_table(server, "INBOX", host=host, port=port, security=security,
                          ca_file=str(ca_file) if ca_file else None, timeout_seconds=10, **extra)
    return make_config(mailbox=[table]).mailboxes[0]


@pytest.mark.parametrize("security", ["tls", "starttls"])
async def test_tls_and_starttls_sign_in_with_a_verified_certificate(
        secure_dovecot: Dovecot, test_ca: TestCA, security: str) -> None:
    box = ImapMailbox(box_config(secure_dovecot, security, "localhost", test_ca.cert))
    try:
        await box.connect()
        assert box.tls_version in ("TLSv1.2", "TLSv1.3")
        assert isinstance(await box.search(None), list)
    finally:
        await box.close()


@pytest.mark.parametrize(("security", "host", "which_ca", "words"), [
    ("tls", "127.0.0.1", "test", "the certificate is for another host name"),
    ("starttls", "127.0.0.1", "test", "the certificate is for another host name"),
    ("tls", "localhost", "system", "not signed by a CA this system trusts"),
    ("starttls", "localhost", "other", "not signed by the CA in ca_file"),
])
async def test_wrong_host_or_unknown_ca_is_a_clear_error(
        secure_dovecot: Dovecot, test_ca: TestCA, tmp_path: Path, security: str, host: str,
        which_ca: str, words: str) -> None:
    ca = {"test": test_ca.cert, "system": None, "other": TestCA.make(tmp_path / "other").cert}[which_ca]
    box = ImapMailbox(box_config(secure_dovecot, security, host, ca))
    with pytest.raises(SignInError) as caught:
        await box.connect()
    await box.close()
    assert words in str(caught.value) and "not connecting without TLS" in str(caught.value)
    assert str(caught.value).startswith("box-INBOX: TLS certificate of ")


async def _fake_imap(behaviour: str, received: bytearray) -> asyncio.Server:
    """A server that offers STARTTLS and then does not deliver it (or never offers it)."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        caps = "IMAP4rev1 AUTH=PLAIN" + ("" if behaviour == "not offered" else " STARTTLS")
        writer.write(b"* OK fake IMAP ready\r\n")
        while line := await reader.readline():
            received.extend(line)
            tag, _, command = line.decode(errors="replace").strip().partition(" ")
            if command.upper() == "CAPABILITY":
                writer.write(f"* CAPABILITY {caps}\r\n{tag} OK done\r\n".encode())
            elif command.upper() == "STARTTLS" and behaviour == "refused":
                writer.write(f"{tag} NO not today\r\n".encode())
            elif command.upper() == "STARTTLS":  # say yes, then answer the TLS hello in plain text
                writer.write(f"{tag} OK begin TLS now\r\n".encode())
                await writer.drain()
                received.extend(await reader.read(5))
                writer.write(b"* OK this is still plain text\r\n")
            else:
                writer.write(f"{tag} BAD unexpected\r\n".encode())
            await writer.drain()
        writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", 0)


@pytest.mark.parametrize(("behaviour", "words"), [
    ("not offered", "does not offer STARTTLS; not signing in without TLS"),
    ("refused", "refused STARTTLS (NO); not signing in without TLS"),
    ("plain text after OK", "failed (WRONG_VERSION_NUMBER)"),
])
async def test_a_failed_starttls_never_falls_back_to_plain_text(test_ca: TestCA, behaviour: str,
                                                                words: str) -> None:
    received = bytearray()
    server = await _fake_imap(behaviour, received)
    port = server.sockets[0].getsockname()[1]
    cfg = make_config(mailbox=[{"name": "b", "host": "127.0.0.1", "port": port, "security": "starttls",
                                "username": "support", "password": "hunter2",
                                "ca_file": str(test_ca.cert), "timeout_seconds": 10}]).mailboxes[0]
    box = ImapMailbox(cfg)
    try:
        with pytest.raises(SignInError) as caught:
            await box.connect()
    finally:
        await box.close()
        server.close()
    assert words in str(caught.value)
    assert b"hunter2" not in received and b"LOGIN" not in received.upper()


class FixedToken:
    """A sign-in with given access tokens, one per call; records the renewals asked for."""

    def __init__(self, username: str, *tokens: str) -> None:
        self.username, self.tokens, self.renewals = username, list(tokens), 0

    async def credentials(self, renew: bool = False) -> Credentials:
        self.renewals += renew
        return Credentials(self.username, self.tokens.pop(0) if len(self.tokens) > 1 else self.tokens[0],
                           oauth=True, grant="b")


class XOAuth2Only(ImapMailbox):
    """The same mailbox, as if the server offered XOAUTH2 only (like Exchange Online)."""

    async def _sign_in(self, client: Any) -> None:
        client.protocol.capabilities.discard("AUTH=OAUTHBEARER")
        await super()._sign_in(client)


def plain_oauth_box(server: Dovecot, username: str = "support", **extra: Any) -> Any:
    """An OAuth mailbox on the plain loopback port (the token is checked, not the transport)."""
    table = {"name": "b", "host": server.host, "port": server.port, "security": "none",
             "username": username, "auth": "oauth2", "timeout_seconds": 30,
             "oauth": {"provider": "generic", "client_id": "x", "token_url": "http://127.0.0.1:1/t"}}
    return make_config(mailbox=[table | extra], secret=OAUTH_SECRET).mailboxes[0]


@pytest.mark.parametrize("mailbox_class", [ImapMailbox, XOAuth2Only], ids=["OAUTHBEARER", "XOAUTH2"])
async def test_oauth_sign_in_and_a_rejected_token_never_hangs(
        secure_dovecot: Dovecot, token_server: TokenServer, mailbox_class: type[ImapMailbox]) -> None:
    client_id = new_app(token_server)
    good = token_server.issue_access(client_id, "support")
    signin = FixedToken("support", "expired-or-unknown", good)
    box = mailbox_class(plain_oauth_box(secure_dovecot), signin)
    try:
        await box.connect()  # the first token is refused, a renewed one works
        assert signin.renewals == 1 and isinstance(await box.search(None), list)
    finally:
        await box.close()
    wrong_user = token_server.issue_access(client_id, "sales")  # valid, but for another mailbox
    signin = FixedToken("support", wrong_user)
    box = mailbox_class(plain_oauth_box(secure_dovecot), signin)
    try:
        with pytest.raises(SignInError) as caught:  # a hang would be a TemporarySourceError (timeout)
            await box.connect()
    finally:
        await box.close()
    assert signin.renewals == 1
    assert "refused the sign-in of 'support' even with a new access token" in str(caught.value)
    status = ("OAUTHBEARER NO: status invalid_token" if mailbox_class is ImapMailbox
              else "XOAUTH2 NO: status 401")
    assert status in str(caught.value) and "ticketgate auth login b" in str(caught.value)


# -- with a stored grant: the store on both backends --------------------------------------------

def oauth_box(server: Dovecot, token_server: TokenServer, folder: str, user: str, client_id: str,
              **extra: Any) -> dict[str, Any]:
    oauth = {"provider": "generic", "client_id": client_id, "client_secret": "app-secret",
             "token_url": f"{token_server.url}/token"}
    return mailbox_table(server, folder, name=f"{user}-{folder}", username=user, password=None,
                         auth="oauth2", oauth=oauth, poll_seconds=0.3, **extra)


def config_of(engine: Engine, *boxes: dict[str, Any]) -> Config:
    return make_config(engine.url.render_as_string(hide_password=False), mailbox=list(boxes),
                       secret=OAUTH_SECRET)


def sign_in(engine: Engine, config: Config, name: str, refresh_token: str) -> None:
    store_grant(engine, name, next(m for m in config.mailboxes if m.name == name).oauth, refresh_token)


def stored(engine: Engine) -> list[str]:
    with transaction(engine) as session:
        return sorted(session.exec(select(Message.message_id).where(Message.direction == "in")).all())


async def until(check: Callable[[], bool | Awaitable[bool]], what: str, seconds: float = 60) -> None:
    """Wait for a condition the service makes true (the event), failing after seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        found = check()
        if (await found) if not isinstance(found, bool) else found:
            return
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def worker(engine: Engine, config: Config, index: int, stop: asyncio.Event,
           signins: SignIns) -> MailboxWorker:
    box = config.mailboxes[index]
    return MailboxWorker(box, engine, config, stop, RuleBook(None, vocabulary(config)),
                         signin=signins.for_mailbox(box))


async def test_tokens_expire_mid_run_and_no_mail_is_lost_or_doubled(
        engine: Engine, secure_dovecot: Dovecot, token_server: TokenServer, folder: str) -> None:
    client_id = new_app(token_server, lifetime=1.5, rotate=True)  # a new refresh token each time
    config = config_of(engine, oauth_box(secure_dovecot, token_server, folder, "support", client_id))
    name = config.mailboxes[0].name
    sign_in(engine, config, name, token_server.issue_grant("support", client_id))
    stop = asyncio.Event()
    runner = worker(engine, config, 0, stop, SignIns(engine, config))
    task = asyncio.create_task(runner.run())
    expected: list[str] = []
    try:
        for wave in range(5):
            refreshed = token_server.counts["refresh_token"]
            batch = [mail(f"{folder}-{wave}-{n}") for n in range(6)]
            await asyncio.to_thread(secure_dovecot.seed, batch, "support", folder)
            expected += [f"m-{folder}-{wave}-{n}@example.org" for n in range(6)]
            await until(lambda: stored(engine) == sorted(expected), f"wave {wave} stored")  # noqa: B023
            await until(lambda: token_server.counts["refresh_token"] > refreshed,  # noqa: B023
                        "a token refresh")
    finally:
        stop.set()
        await task
    assert stored(engine) == sorted(expected)  # each exactly once
    with transaction(engine) as session:
        assert session.exec(select(func.count()).select_from(Message)).one() >= len(expected)
        row = session.get(OAuthGrant, name)
    assert secure_dovecot.count(folder=folder) == 0
    assert secure_dovecot.count(folder=f"{folder}/done") == len(expected)
    assert runner.outage is None and row is not None and row.last_error == ""
    assert row.sealed_refresh_token is not None and "rt-" not in row.sealed_refresh_token


async def test_a_token_the_server_refuses_is_renewed_once(
        engine: Engine, secure_dovecot: Dovecot, token_server: TokenServer, folder: str) -> None:
    client_id = new_app(token_server)  # an hour's lifetime: no renewal by the clock
    config = config_of(engine, oauth_box(secure_dovecot, token_server, folder, "support", client_id))
    sign_in(engine, config, config.mailboxes[0].name, token_server.issue_grant("support", client_id))
    signin = SignIns(engine, config).for_mailbox(config.mailboxes[0])
    secure_dovecot.append(mail(f"{folder}-1"), "support", folder)
    first = ImapMailbox(config.mailboxes[0], signin)
    await first.connect()
    await first.close()
    assert token_server.counts["refresh_token"] >= 1
    before = token_server.counts["refresh_token"]
    token_server.expire_tokens(client_id)  # the server forgets the token we still hold
    second = ImapMailbox(config.mailboxes[0], signin)
    try:
        await second.connect()
        assert len(await second.search(None)) == 1
    finally:
        await second.close()
    assert token_server.counts["refresh_token"] == before + 1


async def test_a_revoked_grant_stops_its_mailbox_only_until_signed_in_again(
        engine: Engine, secure_dovecot: Dovecot, token_server: TokenServer, folder: str,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "gateway.service")
    support_app, sales_app = new_app(token_server, 1.0), new_app(token_server, 1.0)
    config = config_of(engine, oauth_box(secure_dovecot, token_server, folder, "support", support_app),
                       oauth_box(secure_dovecot, token_server, folder, "sales", sales_app))
    support, sales = (m.name for m in config.mailboxes)
    sign_in(engine, config, support, token_server.issue_grant("support", support_app))
    sign_in(engine, config, sales, token_server.issue_grant("sales", sales_app))
    stop = asyncio.Event()
    signins = SignIns(engine, config)
    workers = [worker(engine, config, i, stop, signins) for i in (0, 1)]
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:
        secure_dovecot.append(mail(f"{folder}-a1"), "support", folder)
        secure_dovecot.append(mail(f"{folder}-b1"), "sales", folder)
        await until(lambda: len(stored(engine)) == 2, "both mailboxes working")
        token_server.revoke(sales_app, "sales")
        await until(lambda: workers[1].outage is not None, "the sales mailbox noticing")
        secure_dovecot.append(mail(f"{folder}-a2"), "support", folder)
        secure_dovecot.append(mail(f"{folder}-b2"), "sales", folder)
        await until(lambda: f"m-{folder}-a2@example.org" in stored(engine), "support going on")
        assert f"m-{folder}-b2@example.org" not in stored(engine)
        assert workers[0].outage is None
        sign_in(engine, config, sales, token_server.issue_grant("sales", sales_app))  # auth login
        await until(lambda: f"m-{folder}-b2@example.org" in stored(engine), "sales recovering")
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    words = f"{sales}: the OAuth grant is no longer valid (invalid_grant: AADSTS70000: The refresh " \
            f"token was revoked.): it was revoked or has expired, or the password changed; sign in " \
            f"again: run `ticketgate auth login {sales}`"
    assert any(words in record.getMessage() for record in caplog.records)
    assert any(f"{sales} recovered" in record.getMessage() for record in caplog.records)
