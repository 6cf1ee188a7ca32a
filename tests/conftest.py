"""Shared fixtures: databases (SQLite and PostgreSQL), a private Dovecot, configs, mails."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from gateway.auth import grants, vault
from gateway.auth.providers import endpoints
from gateway.config import Config, OAuthConfig, parse_config
from store.db import make_engine, migrate
from store.models import utcnow
from tests.processes import Proc, descendants, kill_all, wait_gone
from tests.servers import postgres
from tests.servers.certs import TestCA
from tests.servers.dovecot import Dovecot, ensure_installed
from tests.servers.oauth import TokenServer
from tests.servers.smtp import SmtpServer

ROOT = Path(__file__).resolve().parent.parent
pytest_plugins = ["tests.web_fixtures"]
# Set by .ci/test: there, a missing PostgreSQL fails the PostgreSQL variants instead of
# skipping them, so CI cannot pass having tested SQLite only.
PG_REQUIRED = "TICKETGATE_TEST_PG_REQUIRED"
_PG_REASON: list[str | None] = []


def require_postgres() -> None:
    """Return when PostgreSQL answers; else skip the test with the reason (fail under PG_REQUIRED)."""
    if not _PG_REASON:
        _PG_REASON.append(postgres.ensure_running())
    reason = _PG_REASON[0]
    if reason is None:
        return
    if os.environ.get(PG_REQUIRED, "") not in ("", "0"):
        pytest.fail(f"PostgreSQL unavailable, and {PG_REQUIRED} is set: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL unavailable: {reason}")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database on each backend (PostgreSQL skipped, with the reason, if absent)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ticketgate.db'}"
        return
    require_postgres()
    url = postgres.create_database()
    try:
        yield url
    finally:
        postgres.drop_database(url)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite database file."""
    return f"sqlite:///{tmp_path / 'ticketgate.db'}"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """A migrated engine on each backend."""
    engine = make_engine(db_url)
    migrate(engine)
    yield engine
    engine.dispose()


def make_config(db_url: str = "sqlite:///:memory:", **sections: Any) -> Config:
    """A Config from TOML-shaped data, with one channel and one agent by default."""
    raw: dict[str, Any] = {
        "database": {"url": db_url},
        "channel": [{"name": "support", "address": "support@example.com"}],
        "agent": [{"address": "alice@example.com", "name": "alice", "display_name": "Alice"}],
        "own_domains": ["example.com"],
    }
    raw.update(sections)
    return parse_config(raw, "<test>")


@pytest.fixture(scope="session")
def dovecot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dovecot]:
    """One private Dovecot for the session; tests use their own folders."""
    ensure_installed()
    server = Dovecot.start(tmp_path_factory.mktemp("dovecot"))
    yield server
    server.kill()


# What an older IMAP server offers: no MOVE, so mail is settled by COPY, STORE and EXPUNGE.
WITHOUT_MOVE = "IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UNSELECT CHILDREN UIDPLUS"


@pytest.fixture(scope="session")
def dovecot_without_move(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dovecot]:
    """A second private Dovecot that does not advertise MOVE."""
    ensure_installed()
    server = Dovecot.start(tmp_path_factory.mktemp("dovecot-nomove"), capability=WITHOUT_MOVE)
    yield server
    server.kill()


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    """A private CA made with openssl for this session."""
    return TestCA.make(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="session")
def localhost_cert(test_ca: TestCA) -> tuple[Path, Path]:
    """(certificate, key) for the name localhost only: 127.0.0.1 is the wrong host for it."""
    return test_ca.issue("localhost", dns=("localhost",))


@pytest.fixture(scope="session")
def token_server() -> Iterator[TokenServer]:
    """The OAuth token and introspection server of this session; tests register their own clients."""
    server = TokenServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def secure_dovecot(tmp_path_factory: pytest.TempPathFactory, localhost_cert: tuple[Path, Path],
                   token_server: TokenServer) -> Iterator[Dovecot]:
    """Dovecot with implicit TLS (tls_port), STARTTLS (port) and XOAUTH2/OAUTHBEARER via token_server."""
    ensure_installed()
    server = Dovecot.start(tmp_path_factory.mktemp("dovecot-secure"), users=("support", "sales"),
                           tls=localhost_cert, introspection_url=f"{token_server.url}/introspect")
    yield server
    server.kill()


@pytest.fixture(params=["move", "no-move"])
def imap_server(request: pytest.FixtureRequest) -> Dovecot:
    """Each kind of IMAP server: with MOVE, and without (COPY, STORE, EXPUNGE)."""
    name = "dovecot" if request.param == "move" else "dovecot_without_move"
    server: Dovecot = request.getfixturevalue(name)
    return server


_FOLDERS = itertools.count(1)
_APPS = itertools.count(1)
OAUTH_SECRET = "a-secret-that-seals-refresh-tokens"  # the `secret` of OAuth test configs


def new_app(token_server: TokenServer, lifetime: float = 3600.0, secret: str | None = "app-secret",
            **extra: Any) -> str:
    """A client id no other test uses, registered with the token server."""
    client_id = f"app-{next(_APPS)}"
    token_server.add_client(client_id, secret, lifetime=lifetime, **extra)
    return client_id


def store_grant(engine: Engine, name: str, oauth: OAuthConfig | None, refresh_token: str) -> None:
    """What `ticketgate auth login NAME` leaves behind (that command is tested in test_auth_cli)."""
    assert oauth is not None
    grants.save_sign_in(engine, name, oauth, endpoints(oauth),
                        vault.seal(OAUTH_SECRET, refresh_token), utcnow())


@pytest.fixture
def folder() -> str:
    """A folder name no other test uses."""
    return f"t{next(_FOLDERS)}"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A capturing SMTP server on loopback for one test."""
    server = SmtpServer().start()
    yield server
    server.stop()


def mailbox_table(server: Dovecot, folder: str, **extra: Any) -> dict[str, Any]:
    """A [[mailbox]] entry for a test folder on the private Dovecot."""
    table: dict[str, Any] = {
        "name": f"box-{folder}",
        "host": server.host,
        "port": server.port,
        "security": "none",
        "username": "support",
        "password": server.password,
        "folder": folder,
        "processed_folder": f"{folder}/done",
        "failed_folder": f"{folder}/failed",
        "poll_seconds": 0.5,
        "timeout_seconds": 10,
    }
    table.update(extra)
    return {k: v for k, v in table.items() if v is not None}  # None: leave the key out


def mail(n: int | str, subject: str | None = None, sender: str = "customer@example.org",
         headers: str = "", body: str | None = None) -> bytes:
    """A small customer mail with a predictable Message-ID <m-N@example.org>."""
    return (
        f"From: Customer <{sender}>\r\n"
        f"To: support@example.com\r\n"
        f"Subject: {subject if subject is not None else f'Question {n}'}\r\n"
        f"Message-ID: <m-{n}@example.org>\r\n"
        f"Date: Mon, 23 Nov 2026 10:00:00 +0100\r\n"
        f"{headers}"
        f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{body if body is not None else f'Body of mail {n}'}\r\n"
    ).encode()


def write_config(path: Path, engine: Engine, dovecot: Dovecot, folder: str, extra: str = "") -> Path:
    """A config file for a `ticketgate run` subprocess on a test folder."""
    box = mailbox_table(dovecot, folder, poll_seconds=1, timeout_seconds=5, batch_size=25)
    lines = [
        "[database]",
        f'url = "{engine.url.render_as_string(hide_password=False)}"',
        "[[channel]]",
        'name = "support"',
        'address = "support@example.com"',
        "[[mailbox]]",
        *(f"{key} = {_toml(value)}" for key, value in box.items()),
    ]
    path.write_text(extra + "\n" + "\n".join(lines) + "\n", encoding="utf-8")
    tomllib.loads(path.read_text("utf-8"))  # the test's own config must be valid
    return path


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def start_service(config: Path, *args: str, log: Path) -> subprocess.Popen[bytes]:
    """`ticketgate run ARGS` as a child process, output appended to log."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "gateway.cli", "--config", str(config),
                                 "run", *args], cwd=ROOT, stdout=out, stderr=out, env=env)


@dataclass(frozen=True)
class Stopped:
    """A service that was stopped: its exit code, what it had started, what outlived it."""

    code: int
    started: frozenset[Proc]
    left: frozenset[Proc]


def stop_service(proc: subprocess.Popen[bytes], sig: signal.Signals = signal.SIGTERM,
                 timeout: float = 60.0) -> Stopped:
    """Signal a service and reap it and everything it started (never raises: assert after).

    For SIGKILL it is frozen first (SIGSTOP), so the list of its processes is complete. A
    service still running after timeout is killed; whatever outlives it is reported in
    `left` (after waiting up to 15 s for it to exit on its own) and then killed.
    """
    if sig == signal.SIGKILL:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGSTOP)
    started = descendants(proc.pid)
    proc.send_signal(sig)
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        started |= descendants(proc.pid)
        proc.kill()
        code = proc.wait()
    left = wait_gone(started, timeout=15)
    kill_all(left)
    return Stopped(code, frozenset(started), frozenset(left))


def wait_service(proc: subprocess.Popen[bytes], timeout: float = 120.0) -> int:
    """Wait for a `run --once` to end by itself; one still running after timeout is killed."""
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return stop_service(proc, signal.SIGKILL).code
