"""Configuration errors name the key and the bad value, all of them at once; defaults are sensible."""

from __future__ import annotations

import importlib.util
import uuid
from pathlib import Path
from typing import Any

import pytest

from gateway.config import parse_config
from gateway.errors import ConfigError
from store.db import make_engine

BOX = {"name": "m", "host": "imap.example.com", "username": "u", "password": "pw"}


OAUTH = {"provider": "generic", "client_id": "app", "token_url": "https://login.example.com/token"}
OBOX = {"name": "m", "host": "imap.example.com", "username": "u@example.com", "auth": "oauth2",
        "oauth": OAUTH}
SEALS = {"secret": "s"}  # refresh tokens need a secret to be sealed with


BAD = [  # (TOML data, the one line it gives after "FILE: ")
    ({"databse": {}}, "databse: unknown key"),
    ({"database": {"url": 5}}, "database.url: must be str, got 5"),
    ({"mailbox": [{**BOX, "port": "993"}]}, "mailbox[0].port: must be int, got '993'"),
    ({"mailbox": [{**BOX, "security": "ssl"}]},
     "mailbox[0].security: must be one of tls, starttls, none, got 'ssl'"),
    ({"mailbox": [{k: v for k, v in BOX.items() if k != "host"}]}, "mailbox[0].host: is required"),
    ({"mailbox": [{k: v for k, v in BOX.items() if k != "password"}]},
     "mailbox[0].password: is required (or password_env)"),
    ({"mailbox": [{**BOX, "password": 5}]}, "mailbox[0].password: must be str"),
    ({"mailbox": [{**BOX, "batch_size": 500}]},
     "mailbox[0].batch_size: must be at most 200 (aioimaplib limit), got 500"),
    ({"mailbox": [{**BOX, "channel": "sales"}]},
     "mailbox[0].channel: names unknown channel 'sales' (known: support)"),
    ({"mailbox": [BOX, BOX]}, "mailbox[1].name: 'm' is used twice"),
    ({"mailbox": [{**BOX, "colour": "red"}]}, "mailbox[0].colour: unknown key"),
    ({"mailbox": {"name": "m"}}, "mailbox: must be an array, got a table"),
    ({"tickets": {"timezone": "Mars/Olympus"}},
     "tickets.timezone: is not a known time zone: 'Mars/Olympus'"),
    ({"tickets": {"number_format": "uuid"}},
     "tickets.number_format: must be one of date, counter, got 'uuid'"),
    ({"tickets": "date"}, "tickets: must be a table, got 'date'"),
    ({"limits": {"max_message_bytes": 0}}, "limits.max_message_bytes: must be > 0, got 0"),
    ({"limits": {"watchers_per_mail": 0}}, "limits.watchers_per_mail: must be > 0, got 0"),
    ({"limits": {"recipients_per_event": "50"}}, "limits.recipients_per_event: must be int, got '50'"),
    ({"agent": [{"name": "bob"}]}, "agent[0].address: is required"),
    ({"agent": [{"name": "bob", "address": "b@x", "channels": ["sales"]}]},
     "agent[0].channels: names unknown channel 'sales' (known: support)"),
    ({"channel": [{"name": "s", "address": "s@x"}, {"name": "s", "address": "t@x"}]},
     "channel[1].name: 's' is used twice"),
    ({"trusted_authservers": [""]}, "trusted_authservers[0]: must not be empty"),
    ({"trusted_relays": "imap.example.com"}, "trusted_relays: must be an array, got 'imap.example.com'"),
    ({"performance": {"parse_workers": 17}}, "performance.parse_workers: must be 0 to 16, got 17"),
    # sign-in: OAuth settings, TLS and plain text
    ({**SEALS, "mailbox": [{**OBOX, "oauth": {**OAUTH, "provider": "yahoo"}}]},
     "mailbox[0].oauth.provider: must be one of microsoft, google, generic, got 'yahoo'"),
    ({**SEALS, "mailbox": [{**OBOX, "oauth": {"provider": "generic", "client_id": "app"}}]},
     'mailbox[0].oauth.token_url: is required with provider = "generic"'),
    ({**SEALS, "mailbox": [{**OBOX, "oauth": {**OAUTH, "token_url": "http://auth.example.com/t"}}]},
     "mailbox[0].oauth.token_url: must be an https:// URL (http:// only to a loopback host), "
     "got 'http://auth.example.com/t'"),
    ({**SEALS, "mailbox": [{**OBOX, "oauth": {"provider": "google", "client_id": "a", "client_secret": "x",
                                              "grant": "client_credentials"}}]},
     'mailbox[0].oauth.grant: Google has no client-credentials grant for mail; use "refresh_token" '
     "(ticketgate auth login)"),
    ({**SEALS, "mailbox": [{**OBOX, "oauth": {"provider": "google", "client_id": "a"}}]},
     'mailbox[0].oauth.client_secret: is required (or client_secret_env) with provider = "google"'),
    ({**SEALS, "mailbox": [{**OBOX, "oauth": {"provider": "microsoft", "client_id": "a",
                                              "client_secret": "x", "grant": "client_credentials"}}]},
     'mailbox[0].oauth.tenant: must be your tenant\'s id or domain with grant = "client_credentials", '
     "got 'organizations'"),
    ({**SEALS, "mailbox": [{**OBOX, "oauth": {**OAUTH, "tenant": "contoso"}}]},
     'mailbox[0].oauth.tenant: is only used with provider = "microsoft"'),
    ({**SEALS, "mailbox": [{**OBOX, "oauth": {**OAUTH, "client_secret_env": "NOT_SET_ANYWHERE"}}]},
     "mailbox[0].oauth.client_secret_env: names environment variable 'NOT_SET_ANYWHERE', which is not set"),
    ({**SEALS, "mailbox": [{k: v for k, v in OBOX.items() if k != "oauth"}]},
     'mailbox[0].oauth: is required with auth = "oauth2" (a [mailbox.oauth] table)'),
    ({**SEALS, "mailbox": [{**OBOX, "password": "pw"}]},
     'mailbox[0].password: is not used with auth = "oauth2"; remove it'),
    ({"mailbox": [{**BOX, "oauth": OAUTH}]}, 'mailbox[0].oauth: is only used with auth = "oauth2"'),
    ({"mailbox": [OBOX]}, "secret: is required (or secret_env): it encrypts the stored OAuth refresh "
                          "tokens (mailbox 'm')"),
    ({"mailbox": [{**BOX, "security": "none"}]},
     'mailbox[0].security: "none" would send the password or token in plain text over the network; '
     'use "tls" or "starttls" (or set allow_insecure = true to insist)'),
    ({"smtp": {"host": "smtp.example.com", "security": "none"}},
     'smtp.security: "none" would send the password or token in plain text over the network; '
     'use "tls" or "starttls" (or set allow_insecure = true to insist)'),
    ({"mailbox": [{**BOX, "ca_file": "no-such-ca.pem"}]},
     "mailbox[0].ca_file: file 'no-such-ca.pem' not found (relative to the config file's folder)"),
    ({"smtp": {"host": "smtp.example.com", "auth": "oauth2", "username": "u"}},
     'smtp.oauth: give either a [smtp.oauth] table or oauth_mailbox = "NAME" with auth = "oauth2"'),
    ({"mailbox": [BOX], "smtp": {"host": "smtp.example.com", "auth": "oauth2", "username": "u",
                                 "oauth_mailbox": "m"}},
     "smtp.oauth_mailbox: names no mailbox with auth = \"oauth2\": 'm' (known: none)"),
    ({**SEALS, "mailbox": [{**OBOX, "name": "smtp"}],
      "smtp": {"host": "smtp.example.com", "auth": "oauth2", "username": "u", "oauth": OAUTH}},
     "mailbox[0].name: 'smtp' is the name of [smtp]'s OAuth grant; rename the mailbox"),
]


@pytest.mark.parametrize(("raw", "message"), BAD)
def test_errors_name_key_and_value(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, "config.toml")
    assert str(caught.value) == f"config.toml: {message}"


def test_password_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAP_PW", "from-env")
    box = {k: v for k, v in BOX.items() if k != "password"} | {"password_env": "IMAP_PW"}
    config = parse_config({"mailbox": [box]}, "c")
    assert config.mailboxes[0].password == "from-env"
    assert "from-env" not in repr(config.mailboxes[0])


def test_missing_password_env_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOPE", raising=False)
    box = {k: v for k, v in BOX.items() if k != "password"} | {"password_env": "NOPE"}
    with pytest.raises(ConfigError) as caught:
        parse_config({"mailbox": [box]}, "c")
    assert str(caught.value) == ("c: mailbox[0].password_env: names environment variable 'NOPE', "
                                 "which is not set")


def test_defaults() -> None:
    config = parse_config({}, "c")
    assert config.database_url == "sqlite:///var/ticketgate.db"
    assert config.tickets.number_format == "date" and config.tickets.timezone == "UTC"
    assert config.mailboxes == ()
    assert config.limits.max_message_bytes == 50 * 1024 * 1024
    limits = config.limits
    assert (limits.watchers_per_mail, limits.watchers_per_ticket, limits.recipients_per_mail,
            limits.recipients_per_event) == (20, 30, 30, 60)
    assert config.trusted_authservers == config.trusted_relays == ()


def test_derived_defaults() -> None:
    config = parse_config({
        "channel": [{"name": "support", "address": "Support@Example.COM"}],
        "agent": [{"address": "Bob@example.com", "name": "bob"}],
        "mailbox": [{**BOX, "security": "none", "allow_insecure": True},
                    {**BOX, "name": "n", "security": "starttls"}],
        "smtp": {"host": "smtp.example.com", "security": "tls"},
    }, "c")
    assert config.mailboxes[0].port == 143 and config.mailboxes[1].port == 143
    assert config.smtp is not None and config.smtp.port == 465
    assert config.agents[0].display_name == "bob" and config.agents[0].address == "bob@example.com"
    assert config.outbound.message_id_domain == "example.com"
    assert config.own_domains == ("example.com",)


def test_every_problem_is_reported_at_once() -> None:
    raw = {
        "databse": {"url": "sqlite:///x.db"},
        "mailbox": [{**BOX, "port": "993"}, {**BOX, "name": "n", "channel": "sales"}],
        "tickets": {"timezone": "Mars/Olympus"},
    }
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, "config.toml")
    assert sorted(str(caught.value).splitlines()) == [
        "config.toml: databse: unknown key",
        "config.toml: mailbox[0].port: must be int, got '993'",
        "config.toml: mailbox[1].channel: names unknown channel 'sales' (known: support)",
        "config.toml: tickets.timezone: is not a known time zone: 'Mars/Olympus'",
    ]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://x", "scheme 'mysql' is not supported; use sqlite:///PATH or postgresql://USER@HOST/DB"),
        ("notaurl", "is not a database URL, got 'notaurl'; use sqlite:///PATH or postgresql://USER@HOST/DB"),
        ("postgresql+asyncpg://tg@db/t", "scheme 'postgresql+asyncpg' is not supported"),
        ("postgresql://tg:pw@db:port/t", "is not a database URL, got 'postgresql://tg:***@db:port/t'"),
    ],
)
def test_unusable_database_url_is_one_line(url: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"database": {"url": url}}, "config.toml")
    assert str(caught.value).startswith(f"config.toml: database.url: {message}")
    assert "\n" not in str(caught.value)


def test_database_driver_must_be_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "psycopg" else real(name))
    with pytest.raises(ConfigError) as caught:
        parse_config({"database": {"url": "postgresql://tg@db/t"}}, "c")
    assert str(caught.value) == (
        "c: database.url: scheme 'postgresql' needs the Python package 'psycopg', which is not installed")


def test_sqlite_folder_must_exist_outside_the_config_folder(tmp_path: Path) -> None:
    root = Path(f"/ticketgate-missing-{uuid.uuid4().hex}")
    for folder in (tmp_path / "elsewhere" / "deeper", root):
        raw = {"database": {"url": f"sqlite:///{folder}/t.db"}}
        with pytest.raises(ConfigError) as caught:
            parse_config(raw, "c", tmp_path / "conf" / "c.toml")
        assert str(caught.value).startswith(
            f"c: database.url: folder '{folder}' of the SQLite file does not exist; create it")
        assert "\n" not in str(caught.value)
        assert not folder.exists() and not folder.parent.joinpath("t.db").exists()


def test_sqlite_path_is_relative_to_the_config_folder(tmp_path: Path) -> None:
    config = parse_config({"database": {"url": "sqlite:///data/t.db"}}, "c", tmp_path / "c.toml")
    assert config.database_url == f"sqlite:///{tmp_path}/data/t.db"
    assert not (tmp_path / "data").exists()  # made when a command opens the store, not by check
    default = parse_config({}, "c", tmp_path / "c.toml")
    assert default.database_url == f"sqlite:///{tmp_path}/var/ticketgate.db"
    assert parse_config({"database": {"url": "sqlite:///:memory:"}}, "c").database_url == "sqlite:///:memory:"


def test_postgresql_password_reaches_the_engine() -> None:
    config = parse_config({"database": {"url": "postgresql://tg:db-pw@db.example/t"}}, "c")
    assert make_engine(config.database_url).url.password == "db-pw"


def test_secrets_never_in_repr_or_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_PW", "smtp-pw")
    config = parse_config({
        "database": {"url": "postgresql://tg:db-pw@db.example/t"},
        "secret": "hmac-pw",
        "mailbox": [{**BOX, "password": "imap-pw"}],
        "smtp": {"host": "smtp.example.com", "password_env": "SMTP_PW"},
    }, "c")
    shown = repr(config) + str(config) + repr(config.mailboxes) + repr(config.smtp)
    assert config.secret == "hmac-pw" and config.smtp is not None and config.smtp.password == "smtp-pw"
    for secret in ("db-pw", "hmac-pw", "imap-pw", "smtp-pw"):
        assert secret not in shown
    with pytest.raises(ConfigError) as caught:
        parse_config({"mailbox": [{**BOX, "password": 271828, "pasword": "typo-pw"}], "secret": 314159,
                      "database": {"url": "postgresql://tg:db-pw@db:port/t"}}, "c")
    text = str(caught.value)
    assert "mailbox[0].password: must be str" in text and "secret: must be str" in text
    for secret in ("271828", "typo-pw", "314159", "db-pw"):
        assert secret not in text
    assert "pydantic" not in text and "Input should" not in text


def test_oauth_settings_and_their_secret_stay_out_of_errors_and_repr(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_SECRET", "very-secret-client-value")
    oauth = {"provider": "microsoft", "client_id": "app", "client_secret_env": "APP_SECRET",
             "tenant": "contoso.example", "grant": "client_credentials"}
    config = parse_config({"mailbox": [{**OBOX, "oauth": oauth}]}, "c")
    box = config.mailboxes[0]
    assert box.oauth is not None and box.oauth.client_secret == "very-secret-client-value"
    assert box.port == 993 and box.security == "tls"
    assert "very-secret-client-value" not in repr(config)
    wrong = {k: v for k, v in oauth.items() if k != "client_secret_env"} | {"client_secret": 12345}
    with pytest.raises(ConfigError) as caught:
        parse_config({"mailbox": [{**OBOX, "oauth": wrong}]}, "c")
    assert str(caught.value) == "c: mailbox[0].oauth.client_secret: must be str"


def test_ca_file_is_loaded_relative_to_the_config(tmp_path: Path, test_ca: Any) -> None:
    (tmp_path / "ca.pem").write_bytes(test_ca.cert.read_bytes())
    (tmp_path / "notes.txt").write_text("not a certificate")
    table = {**BOX, "ca_file": "ca.pem"}
    config = parse_config({"mailbox": [table]}, "c", tmp_path / "config.toml")
    assert config.mailboxes[0].ca_file == str(tmp_path / "ca.pem")
    with pytest.raises(ConfigError) as caught:
        parse_config({"mailbox": [{**table, "ca_file": "notes.txt"},
                                  {**table, "name": "n", "host": "127.0.0.1", "security": "none"}]},
                     "c", tmp_path / "config.toml")
    lines = str(caught.value).splitlines()
    assert lines[0].startswith("c: mailbox[0].ca_file: file 'notes.txt' holds no usable PEM certificate")
    assert lines[1] == 'c: mailbox[1].ca_file: has no effect with security = "none"'
