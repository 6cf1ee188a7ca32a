"""`ticketgate auth login` (device code and browser flows against the local token server),
`auth status`, the refresh token sealed at rest, and `run --once` with a revoked grant."""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy.engine import Engine

from gateway.auth import vault
from gateway.cli import main
from gateway.config import load_config
from gateway.service import run_service
from store.db import transaction
from store.models import OAuthGrant
from tests.conftest import OAUTH_SECRET, ROOT, _toml, mail, store_grant
from tests.servers.dovecot import Dovecot
from tests.servers.oauth import TokenServer

SECRET = OAUTH_SECRET
_CLIENTS = itertools.count(1)


def _write(path: Path, engine: Engine, boxes: list[dict[str, Any]]) -> Path:
    """A config file with these mailboxes (each with an optional "oauth" table)."""
    lines = [f"secret = {_toml(SECRET)}", "[database]",
             f"url = {_toml(engine.url.render_as_string(hide_password=False))}",
             "[[channel]]", 'name = "support"', 'address = "support@example.com"']
    for box in boxes:
        lines.append("[[mailbox]]")
        lines += [f"{k} = {_toml(v)}" for k, v in box.items() if k != "oauth"]
        if "oauth" in box:
            lines.append("[mailbox.oauth]")
            lines += [f"{k} = {_toml(v)}" for k, v in box["oauth"].items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _box(server: Dovecot, name: str, user: str, folder: str, oauth: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "host": server.host, "port": server.port, "security": "none",
            "username": user, "auth": "oauth2", "folder": folder,
            "processed_folder": f"{folder}/done", "timeout_seconds": 10, "oauth": oauth}


def _cli(config: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "gateway.cli", "--config", str(config), *args],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


async def _line_with(proc: subprocess.Popen[str], words: str) -> str:
    """The first line of the command's output containing words."""
    assert proc.stdout is not None
    while True:
        line = await asyncio.to_thread(proc.stdout.readline)
        assert line, f"the command ended without printing {words!r}: {proc.stderr and proc.stderr.read()}"
        if words in line:
            return line.strip()


def _sealed(engine: Engine, name: str) -> str:
    with transaction(engine) as session:
        row = session.get(OAuthGrant, name)
    assert row is not None and row.sealed_refresh_token is not None
    return row.sealed_refresh_token


async def test_device_login_then_the_service_signs_in_with_the_stored_grant(
        engine: Engine, secure_dovecot: Dovecot, token_server: TokenServer, folder: str,
        tmp_path: Path) -> None:
    client_id = f"ms-app-{next(_CLIENTS)}"
    token_server.add_client(client_id)  # a public client, as Entra ID apps for device code are
    oauth = {"provider": "microsoft", "client_id": client_id, "tenant": "contoso.example",
             "authority": token_server.url}
    config = _write(tmp_path / "config.toml", engine, [_box(secure_dovecot, "ms", "support", folder, oauth)])
    login = _cli(config, "auth", "login", "ms")
    prompt = await _line_with(login, "enter")
    token_server.approve(prompt.rstrip(".").split()[-1], "support")  # the user types the code
    out, err = await asyncio.to_thread(login.communicate, timeout=60)
    assert login.returncode == 0, err
    assert "ms: signed in; the refresh token is stored encrypted" in out
    sealed = _sealed(engine, "ms")
    refresh = vault.unseal(SECRET, sealed)
    assert token_server.grants[refresh].username == "support" and refresh not in sealed
    device_poll = next(f for f in token_server.forms if f.get("client_id") == client_id)
    assert device_poll["grant_type"] == "urn:ietf:params:oauth:grant-type:device_code"
    secure_dovecot.append(mail(f"{folder}-1"), "support", folder)
    run = _cli(config, "run", "--once")
    out, err = await asyncio.to_thread(run.communicate, timeout=120)
    assert run.returncode == 0, err
    assert "ms: 1 fetched (created 1)" in out
    scopes = [f.get("scope", "") for f in token_server.forms
              if f.get("client_id") == client_id and f["grant_type"] == "refresh_token"]
    assert scopes and all("https://outlook.office.com/IMAP.AccessAsUser.All" in s for s in scopes)
    status = _cli(config, "auth", "status")
    out, _ = await asyncio.to_thread(status.communicate, timeout=60)
    assert out.startswith("ms\toauth2\tmicrosoft\trefresh_token\tsigned in\t20")


async def test_browser_login_with_pkce_and_a_localhost_redirect(
        engine: Engine, secure_dovecot: Dovecot, token_server: TokenServer, folder: str,
        tmp_path: Path) -> None:
    client_id = f"google-app-{next(_CLIENTS)}"
    token_server.add_client(client_id, "google-secret")
    token_server.authorize_as = "sales"
    oauth = {"provider": "google", "client_id": client_id, "client_secret": "google-secret",
             "token_url": f"{token_server.url}/token", "authorize_url": f"{token_server.url}/authorize"}
    config = _write(tmp_path / "config.toml", engine, [_box(secure_dovecot, "gm", "sales", folder, oauth)])
    login = _cli(config, "auth", "login", "gm")
    url = await _line_with(login, "/authorize?")
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert query["scope"] == "https://mail.google.com/" and query["access_type"] == "offline"
    assert query["code_challenge_method"] == "S256" and query["redirect_uri"].startswith("http://localhost:")
    page = await asyncio.to_thread(httpx.get, url, follow_redirects=True, timeout=30)  # the browser
    assert page.status_code == 200 and "Signed in" in page.text
    _, err = await asyncio.to_thread(login.communicate, timeout=60)
    assert login.returncode == 0, err
    assert token_server.grants[vault.unseal(SECRET, _sealed(engine, "gm"))].username == "sales"


def test_wrong_client_secret_and_missing_sign_in_name_the_fix(
        engine: Engine, token_server: TokenServer, tmp_path: Path, secure_dovecot: Dovecot,
        capsys: pytest.CaptureFixture[str]) -> None:
    client_id = f"app-{next(_CLIENTS)}"
    token_server.add_client(client_id, "right", app_user="support")
    oauth = {"provider": "microsoft", "client_id": client_id, "client_secret": "wrong",
             "tenant": "contoso.example", "authority": token_server.url, "grant": "client_credentials"}
    generic = {"provider": "generic", "client_id": client_id, "token_url": f"{token_server.url}/token"}
    config = _write(tmp_path / "config.toml", engine, [
        _box(secure_dovecot, "app", "support", "INBOX", oauth),
        _box(secure_dovecot, "new", "support", "INBOX", generic)])
    assert main(["--config", str(config), "auth", "login", "app"]) == 1
    err = capsys.readouterr().err
    assert f"error: app: the token endpoint refused the client '{client_id}' (invalid_client" in err
    assert "check client_id and client_secret" in err and "run `ticketgate auth login app`" in err
    assert main(["--config", str(config), "auth", "status"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("app\toauth2\tmicrosoft\tclient_credentials\tapp-only (client credentials)")
    assert lines[1] == ("new\toauth2\tgeneric\trefresh_token\tnot signed in: "
                        "run `ticketgate auth login new`\t-")
    assert main(["--config", str(config), "auth", "login", "nobody"]) == 1
    assert "no mailbox named 'nobody' with auth = \"oauth2\" (known: app, new)" in capsys.readouterr().err


async def test_run_once_reports_a_revoked_mailbox_and_still_drains_the_others(
        engine: Engine, secure_dovecot: Dovecot, token_server: TokenServer, folder: str,
        tmp_path: Path) -> None:
    apps = [f"app-{next(_CLIENTS)}" for _ in range(2)]
    for app in apps:
        token_server.add_client(app, "s")
    users = ("support", "sales")
    boxes = [_box(secure_dovecot, f"{user}-box", user, folder,
                  {"provider": "generic", "client_id": app, "client_secret": "s",
                   "token_url": f"{token_server.url}/token"}) for user, app in zip(users, apps, strict=True)]
    config = load_config(_write(tmp_path / "config.toml", engine, boxes))
    for box, user, app in zip(config.mailboxes, users, apps, strict=True):
        store_grant(engine, box.name, box.oauth, token_server.issue_grant(user, app))
    token_server.revoke(apps[1], "sales")
    secure_dovecot.append(mail(f"{folder}-s"), "support", folder)
    secure_dovecot.append(mail(f"{folder}-t"), "sales", folder)
    results = await run_service(engine, config, once=True)
    assert results["support-box"].outcomes == {"created": 1}
    assert "run `ticketgate auth login sales-box`" in results["sales-box"].error
    assert secure_dovecot.count(user="sales", folder=folder) == 1  # left where it was
