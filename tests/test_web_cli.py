"""Tokens and organisations on the command line; the HTTP door's configuration keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlmodel import select

from gateway.cli import main
from gateway.config import parse_config
from gateway.errors import ConfigError
from store.db import make_engine, transaction
from store.models import ApiToken


def _config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "sqlite:///{tmp_path}/t.db"\n' + extra, encoding="utf-8")
    return path


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_token_is_shown_once_stored_hashed_listed_and_revoked(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = str(_config(tmp_path))
    code, out, err = _run(capsys, "--config", config, "tokens", "create", "shop",
                          "--scope", "tickets:write", "--scope", "tickets:read")
    token = out.strip()
    assert code == 0 and token.startswith("tg_") and len(token) > 40 and "shown only now" in err
    with transaction(make_engine(f"sqlite:///{tmp_path}/t.db")) as session:
        (row,) = session.exec(select(ApiToken)).all()
        assert token not in (row.token_hash, row.scopes) and len(row.token_hash) == 64
    code, out, _ = _run(capsys, "--config", config, "tokens", "list", "--json")
    (listed,) = json.loads(out)
    assert listed["scopes"] == ["tickets:read", "tickets:write"] and listed["revoked_at"] is None
    assert token not in out
    assert _run(capsys, "--config", config, "tokens", "create", "shop", "--scope", "tickets:read")[0] == 1
    assert _run(capsys, "--config", config, "tokens", "revoke", "shop")[0] == 0
    code, out, _ = _run(capsys, "--config", config, "tokens", "list")
    assert "revoked" in out
    code, _, err = _run(capsys, "--config", config, "tokens", "revoke", "shop")
    assert code == 1 and "no active token named 'shop'" in err
    with pytest.raises(SystemExit):  # argparse: an unknown scope is a usage error
        main(["--config", config, "tokens", "create", "x", "--scope", "tickets:delete"])


def test_organisations_are_set_and_listed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = str(_config(tmp_path))
    code, out, _ = _run(capsys, "--config", config, "organisations", "set", "acme.example",
                        "--name", "ACME", "--share-tickets")
    assert code == 0 and "shares tickets: yes" in out
    code, out, _ = _run(capsys, "--config", config, "organisations", "list", "--json")
    assert json.loads(out) == [{"domain": "acme.example", "name": "ACME", "share_tickets": True,
                                "contacts": 0}]
    code, _, err = _run(capsys, "--config", config, "organisations", "set", "gmail.com", "--share-tickets")
    assert code == 1 and "freemail" in err


BASE = {"database": {"url": "sqlite:///:memory:"}}


@pytest.mark.parametrize(("extra", "line"), [
    ({"http": {"listen": "8080"}}, "http.listen: must be HOST:PORT"),
    ({"http": {"listen": "127.0.0.1:99999"}}, "http.listen: must be HOST:PORT"),
    ({"http": {"listen": "127.0.0.1:8080", "max_attachments": 0}}, "http.max_attachments"),
    ({"webhook": [{"url": "ftp://x", "events": ["*"], "secret": "s"}]}, "webhook[0].url"),
    ({"webhook": [{"url": "https://x.example/h", "events": ["ticket.deleted"], "secret": "s"}]},
     "webhook[0].events: unknown event 'ticket.deleted'"),
    ({"webhook": [{"url": "https://x.example/h", "events": [], "secret": "s"}]}, "webhook[0].events"),
    ({"webhook": [{"url": "https://x.example/h", "events": ["*"]}]}, "webhook[0].secret: is required"),
    ({"webhook": [{"url": "https://x.example/h", "events": ["*"], "secret_env": "TG_NOPE_UNSET"}]},
     "webhook[0].secret_env: names environment variable 'TG_NOPE_UNSET', which is not set"),
    ({"webhook": [{"url": "https://x.example/h", "events": ["*"], "secret": "s"},
                  {"url": "https://x.example/h", "events": ["*"], "secret": "t"}]},
     "webhook[1].name: 'https://x.example/h' is used twice"),
    ({"organisation": [{"domain": "acme.example"}, {"domain": "ACME.example"}]},
     "organisation[1].domain: 'ACME.example' is used twice"),
    ({"organisation": [{"domain": "not a domain"}]}, "organisation[0].domain"),
    ({"mailbox": [{"name": "m", "host": "h", "username": "u", "password": "p", "source": "fax"}]},
     "mailbox[0].source: must be one of email, portal, api, phone, web"),
])
def test_bad_http_webhook_and_organisation_keys_are_named(extra: dict[str, object], line: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(BASE | extra, "config.toml")
    assert f"config.toml: {line}" in str(caught.value)
    assert "'s'" not in str(caught.value) and "'t'" not in str(caught.value)  # secrets stay unprinted


def test_http_webhook_and_organisation_keys_load() -> None:
    config = parse_config(BASE | {
        "http": {"listen": "[::1]:8080"},
        "webhook": [{"url": "https://crm.example/hook", "events": ["ticket.created"],
                     "secret": "hook-secret-1"}],
        "organisation": [{"domain": "ACME.example", "share_tickets": True}]}, "config.toml")
    assert config.http is not None and (config.http.host, config.http.port) == ("::1", 8080)
    (hook,) = config.webhooks
    assert hook.name == "https://crm.example/hook" and hook.wants("ticket.created")
    assert not hook.wants("message.sent") and "hook-secret-1" not in repr(hook)
    assert config.organisations[0].domain == "acme.example"
