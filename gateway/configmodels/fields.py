"""Shared parts of the configuration models: constants, checks, secrets from the environment."""

from __future__ import annotations

import ipaddress
import os
import re
import ssl
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StringConstraints,
    ValidationInfo,
)

DEFAULT_DATABASE_URL = "sqlite:///var/ticketgate.db"
LANGUAGES = ("de", "en")
SECRET_KEYS = frozenset({"password", "secret", "client_secret"})  # never in errors or repr
SMTP_GRANT = "smtp"  # the name `ticketgate auth login` knows [smtp]'s own OAuth grant by
SOURCES = ("email", "portal", "api", "phone", "web")  # where a ticket came from (rules: when.source)
WEBHOOK_EVENTS = ("ticket.created", "ticket.status_changed", "message.received", "message.sent")


class Invalid(ValueError):
    """A value fails a check; key names the input key to blame when it is not the field itself,
    below the key inside the table to blame when a whole-table check fails."""

    def __init__(self, message: str, key: str | None = None, below: str | None = None) -> None:
        super().__init__(message)
        self.key, self.below = key, below


def show(value: Any) -> str:
    """A short rendering of a bad value; never a whole table, which may hold a password.

    >>> show("993"), show({"password": "x"}), show([1, 2])
    ("'993'", 'a table', 'an array')
    """
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list | tuple):
        return "an array"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def masked_url(url: str) -> str:
    """The URL with its password replaced, so it can be printed.

    >>> masked_url("postgresql://tg:hunter2@db/tickets")
    'postgresql://tg:***@db/tickets'
    """
    return re.sub(r"(://[^/@:]*:)[^/@]*@", r"\1***@", url)


def one_of(*options: str) -> AfterValidator:
    """A check that a text is one of options, naming them all when it is not."""

    def check(value: str) -> str:
        if value not in options:
            raise Invalid(f"must be one of {', '.join(options)}, got {show(value)}")
        return value

    return AfterValidator(check)




def known_time_zone(value: str) -> str:
    """Ticket dates are taken in this zone; an unknown name would fail only at the first mail."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise Invalid(f"is not a known time zone: {show(value)}") from None
    return value


def checked_imap_batch(value: int) -> int:
    """aioimaplib cannot take more UIDs in one command."""
    if value > 200:
        raise Invalid(f"must be at most 200 (aioimaplib limit), got {value}")
    return value


def checked_portal_link(value: str) -> str:
    """A portal link without the ticket number would send every customer to the same page."""
    if value and "{number}" not in value:
        raise Invalid(f"must contain {{number}}, got {show(value)}")
    return value


class _FromEnv:
    """A secret to read from the environment variable that KEY_env names."""

    def __init__(self, key: str, name: object) -> None:
        self.key, self.name = key, name


def with_env(data: Any, key: str) -> Any:
    """Table data with KEY_env (when given) standing in for KEY, so the secret stays out of files."""
    env_key = f"{key}_env"
    if isinstance(data, dict) and env_key in data:
        rest = {k: v for k, v in data.items() if k != env_key}
        return rest | {key: _FromEnv(env_key, data[env_key])}
    return data


def _from_env(value: Any) -> Any:
    """The secret itself: read from the environment when the file named a variable."""
    if not isinstance(value, _FromEnv):
        return value
    if not isinstance(value.name, str) or not value.name:
        raise Invalid(f"must be the name of an environment variable, got {show(value.name)}", value.key)
    found = os.environ.get(value.name)
    if found is None:
        raise Invalid(f"names environment variable {value.name!r}, which is not set", value.key)
    return found


def with_server_defaults(data: Any, security: str, ports: dict[str, int]) -> Any:
    """Table data with security and the port that fits it filled in where the file left them out."""
    if not isinstance(data, dict):
        return data
    data = {"security": security} | data
    chosen = data["security"]
    if "port" not in data:
        data["port"] = ports.get(chosen if isinstance(chosen, str) else security, ports[security])
    return data


def is_loopback(host: str) -> bool:
    """Whether host names this machine: plain text to it never crosses a network.

    >>> [is_loopback(h) for h in ("127.0.0.1", "127.9.0.1", "::1", "[::1]", "localhost", "LocalHost.")]
    [True, True, True, True, True, True]
    >>> [is_loopback(h) for h in ("10.0.0.1", "imap.example.com", "localhost.example.com", "")]
    [False, False, False, False]
    """
    name = host.strip().rstrip(".").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name.strip("[]")).is_loopback
    except ValueError:
        return False


def _endpoint(value: str) -> str:
    """Tokens and client secrets travel to this URL: HTTPS, or plain HTTP to this machine only.

    >>> _endpoint("https://login.example.com/token"), _endpoint("http://127.0.0.1:8080/token")
    ('https://login.example.com/token', 'http://127.0.0.1:8080/token')
    >>> _endpoint("http://auth.example.com/token")
    Traceback (most recent call last):
    ...
    gateway.configmodels.fields.Invalid: must be an https:// URL (http:// only to a loopback host), got 'http://auth.example.com/token'
    """
    parts = urlsplit(value)
    if not parts.hostname or not (parts.scheme == "https" or (
            parts.scheme == "http" and is_loopback(parts.hostname))):
        raise Invalid(f"must be an https:// URL (http:// only to a loopback host), got {show(value)}")
    return value.rstrip("/")


def checked_ca_file(value: str, info: ValidationInfo) -> str:
    """The PEM bundle of a private CA, relative to the config's folder; loaded now, not at connect."""
    path = Path(value)
    base = (info.context or {}).get("path")
    if not path.is_absolute() and base is not None:
        path = base.parent / path
    try:
        ssl.create_default_context(cafile=str(path))
    except FileNotFoundError:
        raise Invalid(f"file {value!r} not found (relative to the config file's folder)") from None
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise Invalid(f"file {value!r} holds no usable PEM certificate: {exc}") from None
    return str(path.resolve())


Secret = Annotated[str, BeforeValidator(_from_env)]
Endpoint = Annotated[str, AfterValidator(_endpoint)]
Lower = Annotated[str, StringConstraints(to_lower=True)]  # addresses and domains: folded once
Followup = Annotated[str, one_of("reopen", "new", "reject")]
Language = Annotated[str, one_of(*LANGUAGES)]


class Section(BaseModel):
    """A TOML table: strict types, unknown keys rejected, immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
