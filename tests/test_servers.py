"""Tests for the test servers: a private Dovecot and PostgreSQL databases."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests.conftest import PG_REQUIRED, ROOT, require_postgres
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
    require_postgres()
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


@pytest.mark.slow
@pytest.mark.parametrize("required", ["1", ""], ids=["ci", "developer"])
def test_missing_postgres_fails_in_ci_and_skips_for_a_developer(required: str) -> None:
    """The switch .ci/test sets turns the skip of the PostgreSQL variants into a failure."""
    env = {**os.environ, "TICKETGATE_TEST_PG": "postgresql://postgres@127.0.0.2:1/test",
           PG_REQUIRED: required}  # 127.0.0.2 is not set up as a local server: just unreachable
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
         "tests/test_migrations.py"], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=300, check=False)
    summary = proc.stdout.strip().splitlines()[-1]
    if required:
        # each test runs on SQLite (passes) and on PostgreSQL (errors): as many of each
        assert proc.returncode == 1 and re.fullmatch(r"(\d+) passed, \1 errors? in .*", summary), \
            proc.stdout
        assert f"PostgreSQL unavailable, and {PG_REQUIRED} is set" in proc.stdout
    else:
        assert proc.returncode == 0 and re.fullmatch(r"(\d+) passed, \1 skipped in .*", summary), \
            proc.stdout
        assert "SKIPPED" in proc.stdout and "PostgreSQL unavailable: PostgreSQL at 127.0.0.2" in proc.stdout
