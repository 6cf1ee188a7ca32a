"""Configuration errors name the key and the bad value; defaults are sensible."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.config import parse_config
from gateway.errors import ConfigError
from store.db import make_engine

BOX = {"name": "m", "host": "imap.example.com", "username": "u", "password": "pw"}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"databse": {}}, "unknown key databse"),
        ({"database": {"url": 5}}, "database.url must be str, got 5"),
        ({"mailbox": [{**BOX, "port": "993"}]}, "mailbox[0].port must be int, got '993'"),
        ({"mailbox": [{**BOX, "security": "ssl"}]}, "mailbox[0].security must be one of tls, none"),
        ({"mailbox": [{k: v for k, v in BOX.items() if k != "host"}]}, "mailbox[0].host is required"),
        ({"mailbox": [{**BOX, "password": None}]}, "mailbox[0].password must be str"),
        ({"mailbox": [{**BOX, "batch_size": 500}]}, "mailbox[0].batch_size must be at most 200"),
        ({"mailbox": [{**BOX, "channel": "sales"}]}, "mailbox[0].channel names unknown channel 'sales'"),
        ({"mailbox": [BOX, BOX]}, "mailbox[1].name 'm' is used twice"),
        ({"mailbox": [{**BOX, "colour": "red"}]}, "unknown key mailbox[0].colour"),
        ({"tickets": {"timezone": "Mars/Olympus"}}, "tickets.timezone is not a known time zone"),
        ({"tickets": {"number_format": "uuid"}}, "tickets.number_format must be one of date, counter"),
        ({"limits": {"max_message_bytes": 0}}, "limits.max_message_bytes must be > 0"),
        ({"agent": [{"name": "bob"}]}, "agent[0].address is required"),
    ],
)
def test_errors_name_key_and_value(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, "config.toml")
    assert str(caught.value).startswith("config.toml: ")
    assert message in str(caught.value)


def test_password_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAP_PW", "from-env")
    box = {k: v for k, v in BOX.items() if k != "password"} | {"password_env": "IMAP_PW"}
    config = parse_config({"mailbox": [box]}, "c")
    assert config.mailboxes[0].password == "from-env"
    assert "from-env" not in repr(config.mailboxes[0])


def test_missing_password_env_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOPE", raising=False)
    box = {k: v for k, v in BOX.items() if k != "password"} | {"password_env": "NOPE"}
    with pytest.raises(ConfigError, match=r"mailbox\[0\]\.password_env names environment variable 'NOPE'"):
        parse_config({"mailbox": [box]}, "c")


def test_defaults() -> None:
    config = parse_config({}, "c")
    assert config.database_url == "sqlite:///var/ticketgate.db"
    assert config.tickets.number_format == "date" and config.tickets.timezone == "UTC"
    assert config.mailboxes == ()
    assert config.limits.max_message_bytes == 25 * 1024 * 1024


def test_postgresql_password_reaches_the_engine() -> None:
    config = parse_config({"database": {"url": "postgresql://tg:db-pw@db.example/t"}}, "c")
    assert make_engine(config.database_url).url.password == "db-pw"
