"""Typed configuration loaded once from one TOML file; every problem is named with file and key.

``parse_config`` validates the whole file in one pass and raises one ``ConfigError`` whose text
has one ``FILE: KEY: message`` line per problem, so an admin fixes them all after one run.
The models themselves live in ``gateway.configmodels``; this module reads the file, checks
what spans tables (channel names, the database URL, folders) and words the errors.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from gateway.configmodels import (
    DEFAULT_DATABASE_URL,
    LANGUAGES,
    SECRET_KEYS,
    SMTP_GRANT,
    AgentConfig,
    BusinessHoursConfig,
    ChannelConfig,
    Config,
    HttpConfig,
    Invalid,
    LimitsConfig,
    Lower,
    MailboxConfig,
    OAuthConfig,
    OrganisationConfig,
    OutboundConfig,
    PortalConfig,
    RetentionConfig,
    Secret,
    Section,
    SlaConfig,
    SmtpConfig,
    TicketsConfig,
    TimersConfig,
    WebhookConfig,
    is_loopback,
    masked_url,
    one_of,
    show,
    with_env,
)
from gateway.errors import ConfigError

__all__ = [
    "DEFAULT_CONFIG_PATH", "DEFAULT_DATABASE_URL", "LANGUAGES", "SMTP_GRANT", "AgentConfig",
    "BusinessHoursConfig", "ChannelConfig", "Config", "HttpConfig", "LimitsConfig",
    "MailboxConfig", "OAuthConfig", "OrganisationConfig", "OutboundConfig", "PortalConfig",
    "RetentionConfig", "SlaConfig", "SmtpConfig", "TicketsConfig", "TimersConfig", "WebhookConfig",
    "config_folder", "is_loopback", "load_config", "parse_config",
]

DEFAULT_CONFIG_PATH = Path("config.toml")
_DEFAULT_CHANNEL = ChannelConfig(name="support", address="support@localhost")
_URL_FORMS = "use sqlite:///PATH or postgresql://USER@HOST/DB"
_DRIVERS = {  # URL scheme -> the module that must be importable for it
    "sqlite": "sqlite3", "sqlite+pysqlite": "sqlite3",
    "postgresql": "psycopg", "postgresql+psycopg": "psycopg",
}


def config_folder(path: Path | None) -> Path:
    """The folder relative paths in the config start from: the file's own, else the working one."""
    return path.parent if path is not None else Path.cwd()


def _check_database_url(url: str, path: Path | None) -> str:
    """url if it names a database we can open; a relative SQLite path is taken from the config's folder."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise Invalid(f"is not a database URL, got {show(masked_url(url))}; {_URL_FORMS}") from None
    module = _DRIVERS.get(parsed.drivername)
    if module is None:
        raise Invalid(f"scheme {parsed.drivername!r} is not supported; {_URL_FORMS}")
    if importlib.util.find_spec(module) is None:
        raise Invalid(f"scheme {parsed.drivername!r} needs the Python package {module!r}, "
                      "which is not installed")
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:") \
            or parsed.query.get("uri"):
        return url
    file = Path(parsed.database)
    if path is not None and not file.is_absolute() and path.parent / file != file:
        file = path.parent / file
        url = parsed.set(database=str(file)).render_as_string(hide_password=False)
    _check_sqlite_folder(file.parent, config_folder(path))
    return url


def _check_sqlite_folder(folder: Path, root: Path) -> None:
    """The SQLite file's folder exists, or can be made under the config's folder (never elsewhere)."""
    try:
        if folder.is_dir():
            return
        target, root = folder.resolve(), root.resolve()
        if not target.is_relative_to(root):
            raise Invalid(f"folder {str(folder)!r} of the SQLite file does not exist; create it "
                          f"(only folders under the config's folder {str(root)!r} are made)")
        existing = next(p for p in (target, *target.parents) if p.exists())
        if not existing.is_dir() or not os.access(existing, os.W_OK):
            raise Invalid(f"folder {str(folder)!r} of the SQLite file cannot be made: "
                          f"{str(existing)!r} is not a writable folder")
    except OSError as exc:
        raise Invalid(f"folder {str(folder)!r} of the SQLite file cannot be checked: "
                      f"{exc.strerror or exc}") from None


def _workers_default() -> int:
    """Parsing ahead pays only when there is a second core."""
    return 1 if (os.cpu_count() or 1) > 1 else 0


def _workers(value: int) -> int:
    """A bound on parse_workers: each worker is a whole Python process."""
    if not 0 <= value <= 16:
        raise Invalid(f"must be 0 to 16, got {value}")
    return value


class _Database(Section):
    """[database]: the URL is checked (driver, SQLite folder) even when left at its default."""

    url: str = Field(default=DEFAULT_DATABASE_URL, validate_default=True)

    @field_validator("url")
    @classmethod
    def _usable(cls, url: str, info: ValidationInfo) -> str:
        """Fail at check time, not with a traceback at the first command."""
        return _check_database_url(url, (info.context or {}).get("path"))


class _Folder(Section):
    """[rules] or [templates]: a folder relative to the config file."""

    folder: str | None = None

    @field_validator("folder")
    @classmethod
    def _exists(cls, folder: str, info: ValidationInfo) -> str:
        """A missing folder would silently mean no rules or no template overrides."""
        base = config_folder((info.context or {}).get("path"))
        if not (base / folder).is_dir():
            raise Invalid(f"{folder!r} is not a folder (relative to {base})")
        return folder


class _Html(Section):
    """[html]: which library cleans inbound HTML before it is stored or quoted; remote images."""

    sanitizer: Annotated[str, one_of("nh3", "bleach")] = "nh3"
    # block: a remote image (a tracking pixel) is stored as a placeholder naming its host
    remote_images: Annotated[str, one_of("block", "allow")] = "block"


class _Performance(Section):
    """[performance]: how much parsing runs ahead of the store."""

    parse_workers: Annotated[int, AfterValidator(_workers)] = Field(default_factory=_workers_default)


class _File(Section):
    """The TOML file as an admin writes it; _build turns it into the Config the service reads."""

    database: _Database
    mailbox: tuple[MailboxConfig, ...] = Field(default=(), strict=False)
    tickets: TicketsConfig = TicketsConfig()
    channel: tuple[ChannelConfig, ...] = Field(default=(), strict=False)
    agent: tuple[AgentConfig, ...] = Field(default=(), strict=False)
    limits: LimitsConfig = LimitsConfig()
    own_domains: tuple[Lower, ...] = Field(default=(), strict=False)
    rules: _Folder = _Folder()
    templates: _Folder = _Folder()
    smtp: SmtpConfig | None = None
    outbound: OutboundConfig = OutboundConfig()
    secret: Secret = Field(default="", repr=False)
    trusted_authservers: tuple[Annotated[str, StringConstraints(min_length=1, to_lower=True)], ...] = (
        Field(default=(), strict=False))
    trusted_relays: tuple[Annotated[str, StringConstraints(min_length=1, to_lower=True)], ...] = (
        Field(default=(), strict=False))
    html: _Html = _Html()
    performance: _Performance = _Performance()
    http: HttpConfig | None = None
    webhook: tuple[WebhookConfig, ...] = Field(default=(), strict=False)
    organisation: tuple[OrganisationConfig, ...] = Field(default=(), strict=False)
    business_hours: BusinessHoursConfig = BusinessHoursConfig()
    sla: tuple[SlaConfig, ...] = Field(default=(), strict=False)
    timers: TimersConfig = TimersConfig()
    portal: PortalConfig | None = None
    retention: RetentionConfig = RetentionConfig()

    @model_validator(mode="after")
    def _portal_needs(self) -> _File:
        """The portal is served by [http] and mails its sign-in links over [smtp]."""
        portal = self.portal
        if portal is None:
            return self
        if self.http is None or self.smtp is None:
            raise Invalid(f"needs {'[http]' if self.http is None else '[smtp]'} "
                          f"({'it is served there' if self.http is None else 'it mails sign-in links'})",
                          below="portal")
        names = [c.name for c in self.channel] or [_DEFAULT_CHANNEL.name]
        if portal.channel and portal.channel not in names:
            raise Invalid(f"unknown channel {portal.channel!r}; known: {', '.join(names)}",
                          below="portal.channel")
        return self

    @model_validator(mode="before")
    @classmethod
    def _file_defaults(cls, data: Any) -> Any:
        """secret_env may stand in for secret; [database] is always validated."""
        data = with_env(data, "secret")
        return {"database": {}} | data if isinstance(data, dict) else data


def _build(file: _File, path: Path | None) -> Config:
    """The Config the service reads, with the defaults that depend on other tables filled in."""
    base = config_folder(path)
    channels = file.channel or (_DEFAULT_CHANNEL,)
    outbound = file.outbound
    if "message_id_domain" not in outbound.model_fields_set:
        domain = channels[0].address.rpartition("@")[2]
        outbound = outbound.model_copy(update={"message_id_domain": domain})
    if file.portal is not None and not outbound.portal_url:  # notification links open the portal
        outbound = outbound.model_copy(update={"portal_url": file.portal.url + "/tickets/{number}"})
    return Config(
        path=path,
        database_url=file.database.url,
        mailboxes=file.mailbox,
        tickets=file.tickets,
        channels=channels,
        agents=file.agent,
        limits=file.limits,
        own_domains=file.own_domains or tuple(sorted({c.address.split("@")[-1] for c in channels})),
        rules_folder=base / file.rules.folder if file.rules.folder else None,
        templates_folder=base / file.templates.folder if file.templates.folder else None,
        smtp=file.smtp,
        outbound=outbound,
        secret=file.secret,
        trusted_authservers=file.trusted_authservers,
        trusted_relays=file.trusted_relays,
        html_sanitizer=file.html.sanitizer + (
            "+remote-images" if file.html.remote_images == "allow" else ""),
        parse_workers=file.performance.parse_workers,
        http=file.http,
        webhooks=file.webhook,
        organisations=file.organisation,
        business_hours=file.business_hours if file.business_hours.timezone else
        file.business_hours.model_copy(update={"timezone": file.tickets.timezone}),
        slas=file.sla,
        timers=file.timers,
        portal=file.portal,
        retention=file.retention,
    )


_WORDING = {  # pydantic error type -> our message; {got} is ", got VALUE" unless the key is secret
    "missing": "is required",
    "extra_forbidden": "unknown key",
    "string_type": "must be str{got}",
    "int_type": "must be int{got}",
    "float_type": "must be float{got}",
    "bool_type": "must be bool{got}",
    "greater_than": "must be > {gt}{got}",
    "model_type": "must be a table{got}",
    "dict_type": "must be a table{got}",
    "tuple_type": "must be an array{got}",
    "list_type": "must be an array{got}",
    "string_too_short": "must not be empty",
}


def _key(loc: Sequence[int | str]) -> str:
    """A pydantic location as the key an admin finds in the file.

    >>> _key(("mailbox", 0, "port")), _key(("agent", 1, "channels", 2)), _key(("databse",))
    ('mailbox[0].port', 'agent[1].channels[2]', 'databse')
    """
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")


def _problem(error: ErrorDetails) -> tuple[str, str]:
    """One pydantic error as (key, message) in our words: no pydantic jargon, links or secrets."""
    loc = list(error["loc"])
    ctx = error.get("ctx", {})
    cause = ctx.get("error")
    if isinstance(cause, Invalid) and cause.key and loc:
        loc[-1] = cause.key
    if isinstance(cause, Invalid) and cause.below:
        loc.append(cause.below)
    secret = bool(loc) and loc[-1] in SECRET_KEYS
    got = "" if secret else f", got {show(error['input'])}"
    if isinstance(cause, ValueError):
        message = str(cause)
    elif error["type"] in _WORDING:
        message = _WORDING[error["type"]].format(got=got, **ctx)
    else:
        message = error["msg"][:1].lower() + error["msg"][1:] + got
    if error["type"] == "missing" and secret:
        message += f" (or {loc[-1]}_env)"
    return _key(loc), message


_Named = TypeVar("_Named", MailboxConfig, ChannelConfig, AgentConfig, WebhookConfig, SlaConfig)


def _valid_entries(raw: dict[str, Any], key: str, model: type[_Named],
                   path: Path | None = None) -> tuple[list[tuple[int, _Named]], bool]:
    """The entries of an array of tables that validate on their own, and whether all of them do."""
    entries = raw.get(key, [])
    if not isinstance(entries, list):
        return [], False
    valid = []
    for index, entry in enumerate(entries):
        with contextlib.suppress(ValidationError):  # reported by the validation of the whole file
            valid.append((index, model.model_validate(entry, context={"path": path})))
    return valid, len(valid) == len(entries)


def _used_twice(kind: str, entries: Sequence[tuple[int, _Named]]) -> list[tuple[str, str]]:
    """Entries named like an earlier one: names key the mail ledger, #assign and the rules."""
    seen: set[str] = set()
    found = []
    for index, entry in entries:
        if entry.name in seen:
            found.append((f"{kind}[{index}].name", f"{entry.name!r} is used twice"))
        seen.add(entry.name)
    return found


def _domains_twice(raw: dict[str, Any]) -> list[tuple[str, str]]:
    """[[organisation]] entries for a domain named before: which one would win is a guess."""
    entries = raw.get("organisation", [])
    seen: set[str] = set()
    found = []
    for index, entry in enumerate(entries if isinstance(entries, list) else []):
        domain = entry.get("domain") if isinstance(entry, dict) else None
        if isinstance(domain, str) and domain.lower() in seen:
            found.append((f"organisation[{index}].domain", f"{domain!r} is used twice"))
        if isinstance(domain, str):
            seen.add(domain.lower())
    return found


def _oauth_checks(raw: dict[str, Any], mailboxes: Sequence[tuple[int, MailboxConfig]],
                  path: Path | None) -> list[tuple[str, str]]:
    """OAuth settings that span tables: the secret that seals refresh tokens, SMTP's grant."""
    problems: list[tuple[str, str]] = []
    smtp: SmtpConfig | None = None
    with contextlib.suppress(ValidationError):  # reported by the validation of the whole file
        smtp = SmtpConfig.model_validate(raw["smtp"], context={"path": path}) if "smtp" in raw else None
    sealed = [f"mailbox {m.name!r}" for _, m in mailboxes
              if m.oauth is not None and m.oauth.grant == "refresh_token"]
    if smtp is not None and smtp.oauth is not None and smtp.oauth.grant == "refresh_token":
        sealed.append("[smtp]")
    if sealed and not (raw.get("secret") or raw.get("secret_env")):
        problems.append(("secret", "is required (or secret_env): it encrypts the stored OAuth "
                                   f"refresh tokens ({', '.join(sealed)})"))
    oauth_boxes = {m.name for _, m in mailboxes if m.auth == "oauth2"}
    if smtp is not None and smtp.oauth_mailbox is not None and smtp.oauth_mailbox not in oauth_boxes:
        known = ", ".join(sorted(oauth_boxes)) or "none"
        problems.append(("smtp.oauth_mailbox", f"names no mailbox with auth = \"oauth2\": "
                                               f"{smtp.oauth_mailbox!r} (known: {known})"))
    if smtp is not None and smtp.oauth is not None:
        problems += [(f"mailbox[{i}].name", f"{SMTP_GRANT!r} is the name of [smtp]'s OAuth grant; "
                                            "rename the mailbox") for i, m in mailboxes
                     if m.name == SMTP_GRANT]
    return problems


def _cross_checks(raw: dict[str, Any], path: Path | None = None) -> list[tuple[str, str]]:
    """Problems between tables, found among the valid entries even when others are invalid."""
    mailboxes, _ = _valid_entries(raw, "mailbox", MailboxConfig, path)
    channels, complete = _valid_entries(raw, "channel", ChannelConfig)
    agents, _ = _valid_entries(raw, "agent", AgentConfig)
    webhooks, _ = _valid_entries(raw, "webhook", WebhookConfig)
    slas, _ = _valid_entries(raw, "sla", SlaConfig)
    problems = [*_used_twice("mailbox", mailboxes), *_used_twice("channel", channels),
                *_used_twice("agent", agents), *_used_twice("webhook", webhooks),
                *_used_twice("sla", slas), *_domains_twice(raw),
                *_oauth_checks(raw, mailboxes, path)]
    if not complete:
        return problems  # an invalid channel would make every mention of it look unknown
    names = {c.name for _, c in channels} or {_DEFAULT_CHANNEL.name}
    known = f"(known: {', '.join(sorted(names))})"
    problems += [(f"mailbox[{i}].channel", f"names unknown channel {m.channel!r} {known}")
                 for i, m in mailboxes if m.channel not in names]
    problems += [(f"agent[{i}].channels", f"names unknown channel {name!r} {known}")
                 for i, a in agents for name in a.channels if name not in names]
    problems += [(f"sla[{i}].channels", f"names unknown channel {name!r} {known}")
                 for i, s in slas for name in s.channels if name not in names]
    return problems


def _lines(source: str, problems: list[tuple[str, str]]) -> str:
    """One `FILE: KEY: message` line per problem."""
    return "\n".join(f"{source}: {key}: {message}" if key else f"{source}: {message}"
                     for key, message in problems)


def parse_config(raw: dict[str, Any], source: str, path: Path | None = None) -> Config:
    """Build a Config from parsed TOML; one ConfigError names every problem, one per line."""
    problems = _cross_checks(raw, path)
    try:
        file = _File.model_validate(raw, context={"path": path})
    except ValidationError as exc:
        found = [_problem(error) for error in exc.errors(include_url=False)]
        raise ConfigError(_lines(source, found + problems)) from None
    if problems:
        raise ConfigError(_lines(source, problems))
    return _build(file, path)


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
