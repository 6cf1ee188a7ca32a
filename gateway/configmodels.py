"""The configuration's typed parts: one frozen pydantic model per TOML table, strict and closed.

Each model rejects unknown keys and wrong types (``"993"`` is not a port) and checks its own
values; ``gateway.config`` turns pydantic's errors into ``FILE: KEY: message`` lines.
"""

from __future__ import annotations

import ipaddress
import os
import re
import ssl
from collections.abc import Iterator
from datetime import date, time
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

__all__ = [
    "DEFAULT_DATABASE_URL", "LANGUAGES", "SECRET_KEYS", "SMTP_GRANT", "SOURCES", "WEBHOOK_EVENTS",
    "AgentConfig", "BusinessHoursConfig", "ChannelConfig", "Config", "HttpConfig", "Invalid",
    "LimitsConfig", "Lower", "MailboxConfig", "OAuthConfig", "OrganisationConfig", "OutboundConfig",
    "Secret", "Section", "SlaConfig", "SmtpConfig", "TicketsConfig", "TimersConfig", "WebhookConfig",
    "is_loopback", "masked_url", "one_of", "show", "with_env",
]

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


def _letters(value: str) -> str:
    """Ticket prefixes must survive subject mangling: ASCII letters only, upper case."""
    if not (value.isascii() and value.isalpha()):
        raise Invalid(f"must be letters only, got {show(value)}")
    return value.upper()


def _time_zone(value: str) -> str:
    """Ticket dates are taken in this zone; an unknown name would fail only at the first mail."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise Invalid(f"is not a known time zone: {show(value)}") from None
    return value


def _imap_batch(value: int) -> int:
    """aioimaplib cannot take more UIDs in one command."""
    if value > 200:
        raise Invalid(f"must be at most 200 (aioimaplib limit), got {value}")
    return value


def _portal_link(value: str) -> str:
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


def _with_defaults(data: Any, security: str, ports: dict[str, int]) -> Any:
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
    gateway.configmodels.Invalid: must be an https:// URL (http:// only to a loopback host), got 'http://auth.example.com/token'
    """
    parts = urlsplit(value)
    if not parts.hostname or not (parts.scheme == "https" or (
            parts.scheme == "http" and is_loopback(parts.hostname))):
        raise Invalid(f"must be an https:// URL (http:// only to a loopback host), got {show(value)}")
    return value.rstrip("/")


def _ca_file(value: str, info: ValidationInfo) -> str:
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


class OAuthConfig(Section):
    """[mailbox.oauth] / [smtp.oauth]: where the access tokens for SASL XOAUTH2/OAUTHBEARER come from."""

    provider: Annotated[str, one_of("microsoft", "google", "generic")]
    client_id: Annotated[str, StringConstraints(min_length=1)]
    client_secret: Secret | None = Field(default=None, repr=False)
    grant: Annotated[str, one_of("refresh_token", "client_credentials")] = "refresh_token"
    tenant: Annotated[str, StringConstraints(min_length=1)] = "organizations"  # microsoft only
    authority: Endpoint = "https://login.microsoftonline.com"  # microsoft only (national clouds)
    token_url: Endpoint | None = None  # generic: required; others: the provider's
    device_url: Endpoint | None = None  # device authorization endpoint (RFC 8628)
    authorize_url: Endpoint | None = None  # authorization endpoint (code flow, localhost redirect)
    scopes: tuple[str, ...] | None = Field(default=None, strict=False)  # None: the provider's

    @model_validator(mode="before")
    @classmethod
    def _file_defaults(cls, data: Any) -> Any:
        """client_secret_env may stand in for client_secret."""
        return with_env(data, "client_secret")

    @model_validator(mode="after")
    def _consistent(self) -> OAuthConfig:
        """Settings that only make sense together; each error names the key to change."""
        given = self.model_fields_set
        for key in ("tenant", "authority"):
            if key in given and self.provider != "microsoft":
                raise Invalid("is only used with provider = \"microsoft\"", below=key)
        if self.provider == "generic" and self.token_url is None:
            raise Invalid("is required with provider = \"generic\"", below="token_url")
        if self.grant == "client_credentials":
            if self.provider == "google":
                raise Invalid("Google has no client-credentials grant for mail; use "
                              "\"refresh_token\" (ticketgate auth login)", below="grant")
            if self.client_secret is None:
                raise Invalid("is required (or client_secret_env) with grant = \"client_credentials\"",
                              below="client_secret")
            if self.provider == "microsoft" and self.tenant in ("organizations", "common", "consumers"):
                raise Invalid("must be your tenant's id or domain with grant = \"client_credentials\", "
                              f"got {show(self.tenant)}", below="tenant")
        if self.provider == "google" and self.client_secret is None:
            raise Invalid("is required (or client_secret_env) with provider = \"google\"",
                          below="client_secret")
        return self


class _Server(Section):
    """What every mail server connection has: where, how secured, how we sign in."""

    host: str
    port: PositiveInt
    security: Annotated[str, one_of("tls", "starttls", "none")]
    username: str | None = None
    password: Secret | None = Field(default=None, repr=False)
    auth: Annotated[str, one_of("password", "oauth2")] = "password"
    oauth: OAuthConfig | None = None
    ca_file: str | None = None  # a private CA's PEM bundle, trusted instead of the system's
    allow_insecure: bool = False  # security = "none" to a host that is not this machine
    timeout_seconds: PositiveFloat = 30.0

    @field_validator("ca_file")
    @classmethod
    def _trusted_ca(cls, value: str, info: ValidationInfo) -> str:
        """The file must exist and load, so `check` finds a typo before the first connect."""
        return _ca_file(value, info)

    @model_validator(mode="after")
    def _sign_in(self) -> _Server:
        """The sign-in settings agree with auth and security; plain text only where it stays local."""
        if self.security == "none" and not self.allow_insecure and not is_loopback(self.host):
            raise Invalid("\"none\" would send the password or token in plain text over the network; "
                          "use \"tls\" or \"starttls\" (or set allow_insecure = true to insist)",
                          below="security")
        if self.ca_file is not None and self.security == "none":
            raise Invalid("has no effect with security = \"none\"", below="ca_file")
        if self.auth == "oauth2":
            if self.password is not None:
                raise Invalid("is not used with auth = \"oauth2\"; remove it", below="password")
            if self.username is None:
                raise Invalid("is required with auth = \"oauth2\" (the mailbox address)",
                              below="username")
        elif self.oauth is not None:
            raise Invalid("is only used with auth = \"oauth2\"", below="oauth")
        return self


class MailboxConfig(_Server):
    """One IMAP mailbox the service watches."""

    name: str
    username: str
    folder: str = "INBOX"
    processed_folder: str | None = None
    failed_folder: str | None = None
    channel: str = "support"
    source: Annotated[str, one_of(*SOURCES)] = "email"  # a portal delivering its form by mail: "portal"
    idle: bool = True
    poll_seconds: PositiveFloat = 60.0
    batch_size: Annotated[PositiveInt, AfterValidator(_imap_batch)] = 100

    @model_validator(mode="before")
    @classmethod
    def _file_defaults(cls, data: Any) -> Any:
        """The file may give password_env instead of password, and leave security and port out."""
        ports = {"tls": 993, "starttls": 143, "none": 143}
        return _with_defaults(with_env(data, "password"), "tls", ports)

    @model_validator(mode="after")
    def _oauth_needed(self) -> MailboxConfig:
        """A mailbox signs in somehow: with a password, or with an [mailbox.oauth] table."""
        if self.auth == "oauth2" and self.oauth is None:
            raise Invalid("is required with auth = \"oauth2\" (a [mailbox.oauth] table)", below="oauth")
        if self.auth == "password" and self.password is None:
            raise Invalid("is required (or password_env)", below="password")
        return self


class TicketsConfig(Section):
    """How ticket numbers and subject tokens look."""

    number_format: Annotated[str, one_of("date", "counter")] = "date"  # T20261123.0007 / T1234
    prefix: Annotated[str, AfterValidator(_letters)] = "T"
    counter_digits: PositiveInt = 4
    timezone: Annotated[str, AfterValidator(_time_zone)] = "UTC"
    closed_followup: Followup = "reopen"

    @property
    def zone(self) -> ZoneInfo:
        """The configured time zone (validated at load)."""
        return ZoneInfo(self.timezone)


class ChannelConfig(Section):
    """A team queue with its own address."""

    name: str
    address: Lower
    closed_followup: Followup | None = None
    display_name: str = "Support"
    language: Language | None = None  # default: [outbound] language
    # Waiting on the customer: a reminder after auto_close_remind_days, then resolved
    # auto_close_days later (see gateway.timers.policy); None: never.
    auto_close_remind_days: PositiveInt | None = None
    auto_close_days: PositiveInt | None = None
    idle_days: PositiveInt | None = None  # rule event ticket.idle after this long untouched


class AgentConfig(Section):
    """An agent who works tickets from a mail client."""

    address: Lower
    name: str
    display_name: str
    channels: tuple[str, ...] = Field(default=(), strict=False)  # empty: every channel

    @model_validator(mode="before")
    @classmethod
    def _file_defaults(cls, data: Any) -> Any:
        """An agent without a display name signs with their name."""
        if isinstance(data, dict) and data.get("display_name", "") == "" and isinstance(
                data.get("name"), str):
            data = data | {"display_name": data["name"]}
        return data

    def works(self, channel: str) -> bool:
        """Whether this agent hears about tickets of the channel."""
        return not self.channels or channel in self.channels


class LimitsConfig(Section):
    """Guards against oversized input and against the support address as a broadcaster."""

    max_message_bytes: PositiveInt = 25 * 1024 * 1024
    watchers_per_mail: PositiveInt = 20  # people copied on one customer mail who become watchers
    watchers_per_ticket: PositiveInt = 30  # no copied person joins a ticket with this many watchers
    recipients_per_mail: PositiveInt = 30  # To and Cc of one outbound mail to customers
    recipients_per_event: PositiveInt = 60  # customer-side recipients of all mails one event causes


class SmtpConfig(_Server):
    """Where outbound mail is handed over."""

    oauth_mailbox: str | None = None  # auth = "oauth2": use this mailbox's grant instead of [smtp.oauth]

    @model_validator(mode="after")
    def _oauth_source(self) -> SmtpConfig:
        """OAuth for SMTP needs a grant: its own [smtp.oauth], or a mailbox's (oauth_mailbox)."""
        if self.auth == "oauth2" and (self.oauth is None) == (self.oauth_mailbox is None):
            raise Invalid("give either a [smtp.oauth] table or oauth_mailbox = \"NAME\" with "
                          "auth = \"oauth2\"", below="oauth")
        if self.auth != "oauth2" and self.oauth_mailbox is not None:
            raise Invalid("is only used with auth = \"oauth2\"", below="oauth_mailbox")
        return self

    @property
    def grant_name(self) -> str | None:
        """The name of the OAuth grant SMTP signs in with (None: no OAuth)."""
        if self.auth != "oauth2":
            return None
        return self.oauth_mailbox or SMTP_GRANT

    @model_validator(mode="before")
    @classmethod
    def _file_defaults(cls, data: Any) -> Any:
        """The file may give password_env instead of password, and leave security and port out."""
        ports = {"tls": 465, "starttls": 587, "none": 25}
        return _with_defaults(with_env(data, "password"), "starttls", ports)


class OutboundConfig(Section):
    """Outbound mail policy: ids, language, loop limits, retries."""

    message_id_domain: str = "ticketgate.localhost"  # from a file: the first channel's domain
    language: Language = "en"
    portal_url: Annotated[str, AfterValidator(_portal_link)] = ""  # "https://…/tickets/{number}"
    ack_limit_per_recipient_hour: PositiveInt = 3
    ack_limit_per_ticket: PositiveInt = 2
    bounce_suppress_days: PositiveInt = 7
    retry_base_seconds: PositiveFloat = 30.0
    retry_max_attempts: PositiveInt = 10
    batch_size: PositiveInt = 50
    flush_seconds: PositiveFloat = 5.0


def _listen(value: str) -> str:
    """HOST:PORT for the HTTP server; an IPv6 host in brackets ([::1]:8080)."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise Invalid(f"must be HOST:PORT, e.g. \"127.0.0.1:8080\", got {show(value)}")
    return value


def _hook_url(value: str) -> str:
    """Webhooks go to an http(s) URL with a host."""
    scheme, sep, rest = value.partition("://")
    if scheme.lower() not in ("http", "https") or not sep or not rest.split("/")[0]:
        raise Invalid(f"must be an http:// or https:// URL, got {show(value)}")
    return value


def _events(value: tuple[str, ...]) -> tuple[str, ...]:
    """Known event names only: a typo would silently subscribe to nothing."""
    for name in value:
        if name != "*" and name not in WEBHOOK_EVENTS:
            raise Invalid(f"unknown event {show(name)}; known: {', '.join(WEBHOOK_EVENTS)} or \"*\"")
    if not value:
        raise Invalid("must name at least one event")
    return value


def _domain(value: str) -> str:
    """An organisation is keyed by its mail domain."""
    if "." not in value or "@" in value or any(c.isspace() for c in value):
        raise Invalid(f"must be a mail domain such as \"acme.example\", got {show(value)}")
    return value


class HttpConfig(Section):
    """[http]: the API, health and metrics server inside `ticketgate run` (off when absent)."""

    listen: Annotated[str, AfterValidator(_listen)]
    max_attachments: PositiveInt = 20  # files on one API request
    docs: bool = True  # serve /api/docs and /api/v1/openapi.json

    @property
    def host(self) -> str:
        """The address to bind (brackets of an IPv6 address removed)."""
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        """The port to bind."""
        return int(self.listen.rpartition(":")[2])


class WebhookConfig(Section):
    """[[webhook]]: signed POSTs of ticket events to a subscriber."""

    name: str = ""  # default: the URL; names the subscriber in logs and the webhook outbox
    url: Annotated[str, AfterValidator(_hook_url)]
    events: Annotated[tuple[str, ...], AfterValidator(_events)] = Field(strict=False)
    secret: Secret = Field(repr=False)
    timeout_seconds: PositiveFloat = 10.0
    retry_base_seconds: PositiveFloat = 30.0
    retry_max_attempts: PositiveInt = 15

    @model_validator(mode="before")
    @classmethod
    def _file_defaults(cls, data: Any) -> Any:
        """secret_env may stand in for secret; the name defaults to the URL."""
        data = with_env(data, "secret")
        if isinstance(data, dict) and not data.get("name") and isinstance(data.get("url"), str):
            data = data | {"name": data["url"]}
        return data

    def wants(self, event: str) -> bool:
        """Whether this subscriber gets the event."""
        return "*" in self.events or event in self.events


class OrganisationConfig(Section):
    """[[organisation]]: an organisation's name and whether its contacts see all its tickets."""

    domain: Annotated[Lower, AfterValidator(_domain)]
    name: str = ""  # default: the domain
    share_tickets: bool = False
WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _clock(value: str) -> str:
    """HH:MM, or 24:00 for the end of a day."""
    found = re.fullmatch(r"(\d{1,2}):(\d{2})", value)
    if found is None or int(found.group(2)) > 59 or int(found.group(1)) > 24 or (
            int(found.group(1)) == 24 and found.group(2) != "00"):
        raise Invalid(f"must be a time HH:MM (00:00 to 24:00), got {show(value)}")
    return f"{int(found.group(1)):02d}:{found.group(2)}"


def _weekdays(value: tuple[str, ...]) -> tuple[str, ...]:
    """Working days by their short English names; at least one, or no SLA could ever be met."""
    bad = [d for d in value if d not in WEEKDAY_NAMES]
    if bad:
        raise Invalid(f"unknown day {bad[0]!r} (use {', '.join(WEEKDAY_NAMES)})")
    if not value:
        raise Invalid("needs at least one working day")
    return value


class BusinessHoursConfig(Section):
    """[business_hours]: when the SLA clock runs: zone, working days and hours, public holidays."""

    timezone: Annotated[str, AfterValidator(_time_zone)] | None = None  # default: [tickets]
    days: Annotated[tuple[Lower, ...], AfterValidator(_weekdays)] = Field(
        default=("mon", "tue", "wed", "thu", "fri"), strict=False)
    start: Annotated[str, AfterValidator(_clock)] = "08:00"
    end: Annotated[str, AfterValidator(_clock)] = "17:00"
    holidays_country: str | None = None  # ISO 3166 code for the holidays package: "DE"
    holidays_subdivision: str | None = None  # "BE", "BY", ...
    extra_holidays: tuple[date, ...] = Field(default=(), strict=False)  # company days off

    @field_validator("end")
    @classmethod
    def _after_start(cls, end: str, info: ValidationInfo) -> str:
        """A working day must have hours."""
        start = info.data.get("start")
        if start is not None and end != "24:00" and start >= end:
            raise Invalid(f"must be after start {start!r}, got {end!r}")
        return end

    @field_validator("holidays_country")
    @classmethod
    def _known_country(cls, country: str | None) -> str | None:
        """The holiday calendar must exist, or holidays would silently be working days."""
        if country is not None and country not in _holiday_calendars():
            raise Invalid(f"unknown country {country!r} (ISO 3166 code, e.g. DE, AT, CH, US)")
        return country

    @field_validator("holidays_subdivision")
    @classmethod
    def _known_subdivision(cls, subdivision: str | None, info: ValidationInfo) -> str | None:
        """A subdivision belongs to a country the holidays package knows."""
        if subdivision is None:
            return None
        country = info.data.get("holidays_country")
        if country is None:
            raise Invalid("needs holidays_country (or holidays_country is invalid)")
        known = _holiday_calendars()[country]
        if subdivision not in known:
            raise Invalid(f"unknown subdivision {subdivision!r} of {country} "
                          f"(known: {', '.join(known)})")
        return subdivision

    def opening(self) -> tuple[time, time | None]:
        """Start and end of a working day (end None: midnight, the day's end)."""
        start = time.fromisoformat(self.start)
        end = None if self.end == "24:00" else time.fromisoformat(self.end)
        return start, end


class SlaConfig(Section):
    """[[sla]]: response and resolution targets in business hours for some channels/priorities."""

    name: str
    channels: tuple[str, ...] = Field(default=(), strict=False)  # empty: every channel
    priorities: tuple[Annotated[int, AfterValidator(lambda p: _priority(p))], ...] = Field(
        default=(), strict=False)  # empty: every priority
    first_response_hours: PositiveFloat | None = None
    resolution_hours: PositiveFloat | None = Field(default=None, validate_default=True)
    warn_percent: Annotated[NonNegativeFloat, AfterValidator(lambda p: _percent(p))] = 80.0

    @field_validator("resolution_hours")
    @classmethod
    def _has_target(cls, hours: float | None, info: ValidationInfo) -> float | None:
        """An SLA without a target would silently do nothing."""
        if hours is None and "first_response_hours" in info.data \
                and info.data["first_response_hours"] is None:  # absent, not invalid
            raise Invalid("needs first_response_hours or resolution_hours (or both)")
        return hours

    def covers(self, channel: str, priority: int) -> bool:
        """Whether a ticket of this channel and priority falls under this SLA."""
        return ((not self.channels or channel in self.channels)
                and (not self.priorities or priority in self.priorities))


def _holiday_calendars() -> dict[str, list[str]]:
    """Countries and their subdivisions in the holidays package (imported only when used)."""
    import holidays

    return dict(holidays.list_supported_countries())


def _priority(value: int) -> int:
    if not 1 <= value <= 9:
        raise Invalid(f"must be 1 to 9, got {value}")
    return value


def _percent(value: float) -> float:
    if not 0 < value < 100:
        raise Invalid(f"must be between 0 and 100 (exclusive), got {value}")
    return value


class TimersConfig(Section):
    """[timers]: how often due timers are looked for, and how many fire in one pass."""

    interval_seconds: PositiveFloat = 30.0
    batch_size: PositiveInt = 200


class Config(BaseModel):
    """The whole service configuration, built by ``gateway.config`` from validated parts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

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
    secret: str = Field(default="", repr=False)
    trusted_authservers: tuple[str, ...] = ()  # Authentication-Results ids we believe
    trusted_relays: tuple[str, ...] = ()  # our hosts in Received "by" between them and us
    html_sanitizer: str = "nh3"  # nh3 | bleach
    parse_workers: int = 0  # processes that parse ahead of the store (0: parse in place)
    http: HttpConfig | None = None  # the HTTP server; None: off
    webhooks: tuple[WebhookConfig, ...] = ()
    organisations: tuple[OrganisationConfig, ...] = ()
    business_hours: BusinessHoursConfig = BusinessHoursConfig()
    slas: tuple[SlaConfig, ...] = ()
    timers: TimersConfig = TimersConfig()

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """The fields for repr and str, with the database password masked."""
        for name, value in super().__repr_args__():
            yield name, masked_url(value) if name == "database_url" else value

    def channel(self, name: str) -> ChannelConfig | None:
        """The channel called name, if configured."""
        return next((c for c in self.channels if c.name == name), None)

    def sla_for(self, channel: str, priority: int) -> SlaConfig | None:
        """The first [[sla]] that covers a ticket of this channel and priority."""
        return next((s for s in self.slas if s.covers(channel, priority)), None)

    def own_addresses(self) -> frozenset[str]:
        """Addresses that belong to us (channels and mailboxes): never watchers, never replied to."""
        found = {c.address.lower() for c in self.channels}
        found |= {m.username.lower() for m in self.mailboxes if "@" in m.username}
        return frozenset(found)
