"""PostgreSQL for tests: find or start a server, create and drop throwaway databases."""

from __future__ import annotations

import glob
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote, urlencode

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ADMIN_URL = os.environ.get("TICKETGATE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
_SQLALCHEMY_PREFIX = re.compile(r"^postgresql\+\w+://")
_TRUST_LINES = (
    "local   all   all                  trust",
    "host    all   all   127.0.0.1/32   trust",
    "host    all   all   ::1/128        trust",
)


def _params(url: str) -> dict[str, str]:
    """Parse a libpq URL or conninfo string (a SQLAlchemy driver suffix is dropped)."""
    url = _SQLALCHEMY_PREFIX.sub("postgresql://", url)
    return {key: str(value) for key, value in conninfo_to_dict(url).items() if value is not None}


def _connect(params: dict[str, str], timeout: int = 3) -> psycopg.Connection[tuple[object, ...]]:
    """Open an autocommit connection."""
    conninfo = make_conninfo("", **{"connect_timeout": str(timeout), **params})
    return psycopg.connect(conninfo, autocommit=True)


def _try_connect(url: str) -> str | None:
    """Connect once to url; return None on success or the error text."""
    try:
        with _connect(_params(url)) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return str(exc).strip() or type(exc).__name__
    return None


def _run(args: list[str], env: dict[str, str] | None = None) -> str | None:
    """Run a command with output to a file (daemons may inherit it); return None or why not."""
    with tempfile.NamedTemporaryFile("w+", prefix="pg-setup-", suffix=".log") as out:
        try:
            proc = subprocess.run(
                args,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                check=False,
                timeout=600,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{' '.join(args)}: {exc}"
        if proc.returncode == 0:
            return None
        out.seek(0)
        tail = "\n".join(out.read().splitlines()[-20:])
        return f"{' '.join(args)} failed ({proc.returncode}):\n{tail}"


def _installed_versions() -> list[str]:
    """Return installed Debian PostgreSQL server versions, newest first."""
    found = glob.glob("/usr/lib/postgresql/*/bin/postgres")
    versions = [Path(path).parts[-3] for path in found]
    return sorted(versions, key=lambda v: [int(p) for p in v.split(".") if p.isdigit()])[::-1]


def _trust_local(hba: Path) -> bool:
    """Put trust rules for local and loopback connections first in pg_hba.conf; tell if changed."""
    text = hba.read_text()
    if text.startswith(_TRUST_LINES[0]):
        return False
    hba.write_text("\n".join(_TRUST_LINES) + "\n" + text)
    return True


def _install_and_start(params: dict[str, str]) -> str | None:
    """Install (if needed), configure and start Debian's PostgreSQL; return None or why not."""
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if not _installed_versions():
        for args in (["apt-get", "update"], ["apt-get", "install", "-y", "postgresql"]):
            failure = _run(args, env)
            if failure is not None:
                return failure
    versions = _installed_versions()
    if not versions or shutil.which("pg_ctlcluster") is None:
        return "apt-get installed postgresql but no server binaries or pg_ctlcluster were found"
    version = versions[0]
    conf_dir = Path("/etc/postgresql") / version / "main"
    if not conf_dir.is_dir():
        port = params.get("port", "5432")
        failure = _run(["pg_createcluster", "--port", port, version, "main"], env)
        if failure is not None:
            return failure
    changed = _trust_local(conf_dir / "pg_hba.conf")
    ctl = ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main"]
    if _run([*ctl, "status"], env) is not None:
        action = "start"
    elif changed:
        action = "reload"
    else:
        return None
    return _run([*ctl, action], env)


def _create_admin_database(params: dict[str, str]) -> str | None:
    """Create the database named in ADMIN_URL (via the `postgres` database) if it is missing."""
    name = params.get("dbname", "postgres")
    try:
        with _connect({**params, "dbname": "postgres"}) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if exists.fetchone() is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        return f"cannot create database {name!r}: {exc}"
    return None


def ensure_running() -> str | None:
    """Return None when PostgreSQL answers at ADMIN_URL, else set it up or say why to skip."""
    # Setting up (local ADMIN_URL, root and apt only): install Debian's postgresql if no
    # server is installed, trust local and loopback logins, start the cluster, create the db.
    error = _try_connect(ADMIN_URL)
    if error is None:
        return None
    params = _params(ADMIN_URL)
    host = params.get("host", "localhost")
    if host not in LOCAL_HOSTS and not host.startswith("/"):
        return f"PostgreSQL at {host} is unreachable: {error}"
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return f"PostgreSQL is unreachable ({error}) and cannot be installed (needs root and apt)"
    failure = _install_and_start(params)
    if failure is not None:
        return f"PostgreSQL is unreachable ({error}) and setting it up failed: {failure}"
    deadline = time.monotonic() + 30
    while True:
        failure = _create_admin_database(params)
        if failure is None:
            error = _try_connect(ADMIN_URL)
            if error is None:
                return None
        if time.monotonic() > deadline:
            return f"PostgreSQL still unreachable after setup: {error or failure}"
        time.sleep(0.5)


def _sqlalchemy_url(params: dict[str, str]) -> str:
    """Build a postgresql+psycopg:// SQLAlchemy URL from libpq parameters."""
    rest = dict(params)
    user = quote(rest.pop("user", ""), safe="")
    password = rest.pop("password", None)
    host = rest.pop("host", "")
    port = rest.pop("port", None)
    dbname = quote(rest.pop("dbname", ""), safe="")
    rest.pop("connect_timeout", None)
    auth = user + (":" + quote(password, safe="") if password is not None else "")
    netloc = (f"[{host}]" if ":" in host else host) + (f":{port}" if port else "")
    if host.startswith("/"):  # unix socket directory: goes in the query string
        rest["host"], netloc = host, (f":{port}" if port else "")
    query = f"?{urlencode(rest)}" if rest else ""
    return f"postgresql+psycopg://{auth}{'@' if auth else ''}{netloc}/{dbname}{query}"


def create_database(prefix: str = "ticketgate") -> str:
    """Create a fresh uniquely named database and return its SQLAlchemy (psycopg) URL."""
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}".lower()
    params = _params(ADMIN_URL)
    with _connect(params) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return _sqlalchemy_url({**params, "dbname": name})


def drop_database(url: str) -> None:
    """Drop a database created by create_database, closing its open connections."""
    params = _params(url)
    name = params["dbname"]
    admin_db = _params(ADMIN_URL).get("dbname", "postgres")
    if name == admin_db:
        raise ValueError(f"refusing to drop the admin database {name!r}")
    with _connect({**params, "dbname": admin_db}) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
