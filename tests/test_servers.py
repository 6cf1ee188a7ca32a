"""Tests for the test servers: a private Dovecot and PostgreSQL databases."""

from __future__ import annotations

import socket
from pathlib import Path

import psycopg
import pytest

from tests.servers import postgres
from tests.servers.dovecot import Dovecot


def _mail(n: int) -> bytes:
    """Build a small raw mail with a predictable Message-ID."""
    return (
        f"From: Customer {n} <customer{n}@example.com>\r\n"
        f"To: support@example.com\r\n"
        f"Subject: Help {n}\r\n"
        f"Message-ID: <mail-{n}@example.com>\r\n"
        f"\r\n"
        f"Body {n}\r\n"
    ).encode()


def _accepts(host: str, port: int) -> bool:
    """Tell whether host:port accepts a TCP connection."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def test_dovecot_append_restart_stop(tmp_path: Path) -> None:
    server = Dovecot.start(tmp_path / "dovecot", users=("support", "sales"))
    try:
        expected = [f"<mail-{n}@example.com>" for n in range(3)]
        for n in range(3):
            server.append(_mail(n))
        assert server.message_ids() == expected
        assert server.count() == 3
        assert server.seed([_mail(7)], user="sales", folder="Processed") == 1
        assert "Processed" in server.folders(user="sales")
        assert server.message_ids(folder="Missing") == []
        assert server.count(folder="Missing") == 0
        assert server.maildir().is_dir()

        port = server.port
        server.restart()
        assert server.port == port
        assert server.message_ids() == expected
        assert server.message_ids(user="sales", folder="Processed") == ["<mail-7@example.com>"]

        server.stop()
        assert not _accepts(server.host, server.port)
        server.stop()  # idempotent
    finally:
        server.kill()


def test_postgres_create_drop() -> None:
    reason = postgres.ensure_running()
    if reason is not None:
        pytest.skip(reason)
    url = postgres.create_database("servers_test")
    assert url.startswith("postgresql+psycopg://")
    libpq_url = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(libpq_url) as conn:
        row = conn.execute("SELECT current_database()").fetchone()
        assert row is not None
        assert url.endswith("/" + str(row[0]))
    postgres.drop_database(url)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(libpq_url, connect_timeout=3).close()
