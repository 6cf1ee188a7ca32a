"""Typed configuration loaded once from one TOML file; errors name the key and the bad value."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("config.toml")
DEFAULT_DATABASE_URL = "sqlite:///var/ticketgate.db"


@dataclass(frozen=True)
class MailboxConfig:
    """One IMAP mailbox the service watches."""

    name: str
    host: str
    port: int
    security: str  # "tls" (implicit TLS) or "none"
    username: str
    password: str = field(repr=False)
    folder: str = "INBOX"
    processed_folder: str | None = None
    failed_folder: str | None = None
    channel: str = "support"
    idle: bool = True
    poll_seconds: float = 60.0
    batch_size: int = 100
    timeout_seconds: float = 30.0


@dataclass(frozen=True)
class TicketsConfig:
    """How ticket numbers and subject tokens look."""

    number_format: str = "date"  # "date" -> T20261123.0007, "counter" -> T1234
    prefix: str = "T"
    counter_digits: int = 4
    timezone: str = "UTC"
    closed_followup: str = "reopen"  # reopen | new | reject

    @property
    def zone(self) -> ZoneInfo:
        """The configured time zone (validated at load)."""
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class ChannelConfig:
    """A team queue with its own address."""

    name: str
    address: str
    closed_followup: str | None = None
    display_name: str = "Support"
    language: str | None = None  # "de" / "en"; default [outbound] language


@dataclass(frozen=True)
class AgentConfig:
    """An agent who works tickets from a mail client."""

    address: str
    name: str
    display_name: str
    channels: tuple[str, ...] = ()  # empty: every channel

    def works(self, channel: str) -> bool:
        """Whether this agent hears about tickets of the channel."""
        return not self.channels or channel in self.channels


@dataclass(frozen=True)
class LimitsConfig:
    """Guards against oversized input."""

    max_message_bytes: int = 25 * 1024 * 1024


@dataclass(frozen=True)
class SmtpConfig:
    """Where outbound mail is handed over."""

    host: str
    port: int
    security: str  # tls | starttls | none
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout_seconds: float = 30.0


@dataclass(frozen=True)
class OutboundConfig:
    """Outbound mail policy: ids, language, loop limits, retries."""

    message_id_domain: str = "ticketgate.localhost"
    language: str = "en"
    portal_url: str = ""  # e.g. "https://portal.example.com/tickets/{number}"
    ack_limit_per_recipient_hour: int = 3
    ack_limit_per_ticket: int = 2
    bounce_suppress_days: int = 7
    retry_base_seconds: float = 30.0
    retry_max_attempts: int = 10
    batch_size: int = 50
    flush_seconds: float = 5.0


LANGUAGES = ("de", "en")


@dataclass(frozen=True)
class Config:
    """The whole service configuration."""

    path: Path | None
    database_url: str
    mailboxes: tuple[MailboxConfig, ...]
    tickets: TicketsConfig
    channels: tuple[ChannelConfig, ...]
    agents: tuple[AgentConfig, ...]
    limits: LimitsConfig
    own_domains: tuple[str, ...]
    rules_folder: Path | None = None
    templates_folder: Path | None = None
    smtp: SmtpConfig | None = None
    outbound: OutboundConfig = OutboundConfig()
    secret: str = field(default="", repr=False)
    trusted_authservers: tuple[str, ...] = ()  # Authentication-Results ids we believe
    html_sanitizer: str = "nh3"  # nh3 | bleach
    parse_workers: int = 0  # processes that parse ahead of the store (0: parse in place)

    def channel(self, name: str) -> ChannelConfig | None:
        """The channel called name, if configured."""
        return next((c for c in self.channels if c.name == name), None)

    def own_addresses(self) -> frozenset[str]:
        """Addresses that belong to us (channels and mailboxes): never watchers, never replied to."""
        found = {c.address.lower() for c in self.channels}
        found |= {m.username.lower() for m in self.mailboxes if "@" in m.username}
        return frozenset(found)


class _Section:
    """Reads typed values out of one TOML table, naming the full key on error."""

    def __init__(self, source: str, prefix: str, table: Any, known: set[str]) -> None:
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: [{prefix}] must be a table, got {_show(table)}")
        unknown = sorted(set(table) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown key {prefix}.{unknown[0]}")
        self.source, self.prefix, self.table = source, prefix, table

    def _fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: {self.prefix}.{key} {message}")

    def get(self, key: str, kind: type, default: Any = None, *, required: bool = False) -> Any:
        """The value at key, checked against kind."""
        if key not in self.table:
            if required:
                raise self._fail(key, "is required")
            return default
        value = self.table[key]
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            raise self._fail(key, f"must be {kind.__name__}, got {_show(value)}")
        return value

    def choice(self, key: str, options: tuple[str, ...], default: str) -> str:
        """A string value restricted to options."""
        value: str = self.get(key, str, default)
        if value not in options:
            raise self._fail(key, f"must be one of {', '.join(options)}, got {value!r}")
        return value

    def positive(self, key: str, kind: type, default: Any) -> Any:
        """A number that must be above zero."""
        value = self.get(key, kind, default)
        if value <= 0:
            raise self._fail(key, f"must be > 0, got {value!r}")
        return value


def _show(value: Any) -> str:
    """A short, safe rendering of a bad value for an error message."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _password(s: _Section) -> str | None:
    """password, or the environment variable password_env names (which must be set)."""
    password: str | None = s.get("password", str)
    env_name: str | None = s.get("password_env", str)
    if env_name is not None:
        password = os.environ.get(env_name)
        if password is None:
            raise s._fail("password_env", f"names environment variable {env_name!r}, which is not set")
    return password


def _mailbox(source: str, index: int, table: Any) -> MailboxConfig:
    known = {
        "name", "host", "port", "security", "username", "password", "password_env", "folder",
        "processed_folder", "failed_folder", "channel", "idle", "poll_seconds", "batch_size",
        "timeout_seconds",
    }
    s = _Section(source, f"mailbox[{index}]", table, known)
    security = s.choice("security", ("tls", "none"), "tls")
    password = _password(s)
    if password is None:
        raise s._fail("password", "is required (or password_env)")
    batch = s.positive("batch_size", int, 100)
    if batch > 200:
        raise s._fail("batch_size", f"must be at most 200 (aioimaplib limit), got {batch}")
    return MailboxConfig(
        name=s.get("name", str, required=True),
        host=s.get("host", str, required=True),
        port=s.positive("port", int, 993 if security == "tls" else 143),
        security=security,
        username=s.get("username", str, required=True),
        password=password,
        folder=s.get("folder", str, "INBOX"),
        processed_folder=s.get("processed_folder", str),
        failed_folder=s.get("failed_folder", str),
        channel=s.get("channel", str, "support"),
        idle=s.get("idle", bool, True),
        poll_seconds=s.positive("poll_seconds", float, 60.0),
        batch_size=batch,
        timeout_seconds=s.positive("timeout_seconds", float, 30.0),
    )


def _tickets(source: str, table: Any) -> TicketsConfig:
    known = {"number_format", "prefix", "counter_digits", "timezone", "closed_followup"}
    s = _Section(source, "tickets", table, known)
    zone = s.get("timezone", str, "UTC")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise s._fail("timezone", f"is not a known time zone: {zone!r}") from None
    prefix = s.get("prefix", str, "T").upper()
    if not (prefix.isascii() and prefix.isalpha()):
        raise s._fail("prefix", f"must be letters only, got {prefix!r}")
    digits = s.positive("counter_digits", int, 4)
    return TicketsConfig(
        number_format=s.choice("number_format", ("date", "counter"), "date"),
        prefix=prefix,
        counter_digits=digits,
        timezone=zone,
        closed_followup=s.choice("closed_followup", ("reopen", "new", "reject"), "reopen"),
    )


def load_config(path: Path | None = None) -> Config:
    """Read and validate the config file; a missing default file means built-in defaults."""
    if path is None and DEFAULT_CONFIG_PATH.exists():
        path = DEFAULT_CONFIG_PATH
    raw: dict[str, Any] = {}
    source = str(path) if path else "<defaults>"
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: not UTF-8 text") from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return parse_config(raw, source, path)


def parse_config(raw: dict[str, Any], source: str, path: Path | None = None) -> Config:
    """Build a Config from already-parsed TOML data."""
    top = {"database", "mailbox", "tickets", "channel", "agent", "limits", "own_domains", "rules",
           "templates", "smtp", "outbound", "secret", "secret_env", "trusted_authservers",
           "html", "performance"}
    unknown = sorted(set(raw) - top)
    if unknown:
        raise ConfigError(f"{source}: unknown key {unknown[0]}")
    db = _Section(source, "database", raw.get("database", {}), {"url"})
    limits = _Section(source, "limits", raw.get("limits", {}), {"max_message_bytes"})
    mailboxes = tuple(_mailbox(source, i, t) for i, t in enumerate(_array(source, raw, "mailbox")))
    channels = tuple(
        ChannelConfig(
            name=s.get("name", str, required=True),
            address=s.get("address", str, required=True).lower(),
            closed_followup=s.get("closed_followup", str),
            display_name=s.get("display_name", str, "Support"),
            language=(s.choice("language", LANGUAGES, "en") if "language" in s.table else None),
        )
        for s in (
            _Section(source, f"channel[{i}]", t,
                     {"name", "address", "closed_followup", "display_name", "language"})
            for i, t in enumerate(_array(source, raw, "channel"))
        )
    )
    if not channels:
        channels = (ChannelConfig(name="support", address="support@localhost"),)
    agents = tuple(
        AgentConfig(
            address=s.get("address", str, required=True).lower(),
            name=s.get("name", str, required=True),
            display_name=s.get("display_name", str, "") or s.get("name", str, ""),
            channels=tuple(s.get("channels", list, [])),
        )
        for s in (
            _Section(source, f"agent[{i}]", t, {"address", "name", "display_name", "channels"})
            for i, t in enumerate(_array(source, raw, "agent"))
        )
    )
    names = {c.name for c in channels}
    for i, a in enumerate(agents):
        for channel in a.channels:
            if channel not in names:
                raise ConfigError(f"{source}: agent[{i}].channels names unknown channel {channel!r}")
    for i, m in enumerate(mailboxes):
        if m.channel not in names:
            raise ConfigError(
                f"{source}: mailbox[{i}].channel names unknown channel {m.channel!r} "
                f"(known: {', '.join(sorted(names))})"
            )
    seen: set[str] = set()
    for i, m in enumerate(mailboxes):
        if m.name in seen:
            raise ConfigError(f"{source}: mailbox[{i}].name {m.name!r} is used twice")
        seen.add(m.name)
    base = path.parent if path is not None else Path.cwd()
    rules = _Section(source, "rules", raw.get("rules", {}), {"folder"})
    rules_folder = rules.get("folder", str)
    templates = _Section(source, "templates", raw.get("templates", {}), {"folder"})
    templates_folder = templates.get("folder", str)
    for key, folder in (("rules.folder", rules_folder), ("templates.folder", templates_folder)):
        if folder is not None and not (base / folder).is_dir():
            raise ConfigError(f"{source}: {key} {folder!r} is not a folder (relative to {base})")
    own_domains = raw.get("own_domains", [])
    if not isinstance(own_domains, list) or not all(isinstance(d, str) for d in own_domains):
        raise ConfigError(f"{source}: own_domains must be a list of domain names")
    return Config(
        path=path,
        database_url=db.get("url", str, DEFAULT_DATABASE_URL),
        mailboxes=mailboxes,
        tickets=_tickets(source, raw.get("tickets", {})),
        channels=channels,
        agents=agents,
        limits=LimitsConfig(max_message_bytes=limits.positive("max_message_bytes", int, 25 << 20)),
        own_domains=tuple(d.lower() for d in own_domains)
        or tuple(sorted({c.address.split("@")[-1] for c in channels})),
        rules_folder=(base / rules_folder) if rules_folder else None,
        templates_folder=(base / templates_folder) if templates_folder else None,
        smtp=_smtp(source, raw["smtp"]) if "smtp" in raw else None,
        outbound=_outbound(source, raw.get("outbound", {}), channels),
        secret=_secret(source, raw),
        trusted_authservers=_names(source, raw, "trusted_authservers"),
        html_sanitizer=_Section(source, "html", raw.get("html", {}), {"sanitizer"})
        .choice("sanitizer", ("nh3", "bleach"), "nh3"),
        parse_workers=_parse_workers(source, raw.get("performance", {})),
    )


def _parse_workers(source: str, table: Any) -> int:
    s = _Section(source, "performance", table, {"parse_workers"})
    default = 1 if (os.cpu_count() or 1) > 1 else 0
    workers: int = s.get("parse_workers", int, default)
    if not 0 <= workers <= 16:
        raise s._fail("parse_workers", f"must be 0 to 16, got {workers}")
    return workers


def _names(source: str, raw: dict[str, Any], key: str) -> tuple[str, ...]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{source}: {key} must be a list of names, got {_show(value)}")
    return tuple(v.lower() for v in value)


def _smtp(source: str, table: Any) -> SmtpConfig:
    s = _Section(source, "smtp", table, {"host", "port", "security", "username", "password",
                                          "password_env", "timeout_seconds"})
    security = s.choice("security", ("tls", "starttls", "none"), "starttls")
    password = _password(s)
    return SmtpConfig(
        host=s.get("host", str, required=True),
        port=s.positive("port", int, {"tls": 465, "starttls": 587, "none": 25}[security]),
        security=security,
        username=s.get("username", str),
        password=password,
        timeout_seconds=s.positive("timeout_seconds", float, 30.0),
    )


def _outbound(source: str, table: Any, channels: tuple[ChannelConfig, ...]) -> OutboundConfig:
    defaults = OutboundConfig()
    keys = set(OutboundConfig.__dataclass_fields__)
    s = _Section(source, "outbound", table, keys)
    domain = channels[0].address.rpartition("@")[2] if channels else defaults.message_id_domain
    portal_url = s.get("portal_url", str, "")
    if portal_url and "{number}" not in portal_url:
        raise s._fail("portal_url", f"must contain {{number}}, got {portal_url!r}")
    return OutboundConfig(
        message_id_domain=s.get("message_id_domain", str, domain),
        language=s.choice("language", LANGUAGES, "en"),
        portal_url=portal_url,
        ack_limit_per_recipient_hour=s.positive("ack_limit_per_recipient_hour", int, 3),
        ack_limit_per_ticket=s.positive("ack_limit_per_ticket", int, 2),
        bounce_suppress_days=s.positive("bounce_suppress_days", int, 7),
        retry_base_seconds=s.positive("retry_base_seconds", float, 30.0),
        retry_max_attempts=s.positive("retry_max_attempts", int, 10),
        batch_size=s.positive("batch_size", int, 50),
        flush_seconds=s.positive("flush_seconds", float, 5.0),
    )


def _secret(source: str, raw: dict[str, Any]) -> str:
    """The HMAC secret for signed reply addresses (secret_env names an environment variable)."""
    if "secret_env" in raw:
        name = raw["secret_env"]
        value = os.environ.get(str(name))
        if value is None:
            raise ConfigError(f"{source}: secret_env names environment variable {name!r}, which is not set")
        return value
    value = raw.get("secret", "")
    if not isinstance(value, str):
        raise ConfigError(f"{source}: secret must be a string")
    return value


def _array(source: str, raw: dict[str, Any], key: str) -> list[Any]:
    value = raw.get(key, [])
    if not isinstance(value, list):
        raise ConfigError(f"{source}: {key} must be an array of tables ([[{key}]])")
    return value
