"""The configuration's typed parts: one frozen pydantic model per TOML table, strict and closed.

Each model rejects unknown keys and wrong types (``"993"`` is not a port) and checks its own
values; ``gateway.config`` turns pydantic's errors into ``FILE: KEY: message`` lines.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gateway.configmodels.fields import (
    DEFAULT_DATABASE_URL,
    LANGUAGES,
    SECRET_KEYS,
    SMTP_GRANT,
    SOURCES,
    WEBHOOK_EVENTS,
    Invalid,
    Lower,
    Secret,
    Section,
    is_loopback,
    masked_url,
    one_of,
    show,
    with_env,
)
from gateway.configmodels.people import (
    AgentConfig,
    ChannelConfig,
    OrganisationConfig,
    TicketsConfig,
)
from gateway.configmodels.servers import (
    LimitsConfig,
    MailboxConfig,
    OAuthConfig,
    OutboundConfig,
    SmtpConfig,
)
from gateway.configmodels.timers import (
    WEEKDAY_NAMES,
    BusinessHoursConfig,
    RetentionConfig,
    SlaConfig,
    TimersConfig,
)
from gateway.configmodels.web import (
    HttpConfig,
    PortalConfig,
    WebhookConfig,
)

__all__ = [
    "DEFAULT_DATABASE_URL",
    "LANGUAGES",
    "SECRET_KEYS",
    "SMTP_GRANT",
    "SOURCES",
    "WEBHOOK_EVENTS",
    "WEEKDAY_NAMES",
    "AgentConfig",
    "BusinessHoursConfig",
    "ChannelConfig",
    "Config",
    "HttpConfig",
    "Invalid",
    "LimitsConfig",
    "Lower",
    "MailboxConfig",
    "OAuthConfig",
    "OrganisationConfig",
    "OutboundConfig",
    "PortalConfig",
    "RetentionConfig",
    "Secret",
    "Section",
    "SlaConfig",
    "SmtpConfig",
    "TicketsConfig",
    "TimersConfig",
    "WebhookConfig",
    "is_loopback",
    "masked_url",
    "one_of",
    "show",
    "with_env",
]


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
    html_sanitizer: str = "nh3"  # nh3 | bleach, "+remote-images": remote images kept
    parse_workers: int = 0  # processes that parse ahead of the store (0: parse in place)
    http: HttpConfig | None = None  # the HTTP server; None: off
    webhooks: tuple[WebhookConfig, ...] = ()
    organisations: tuple[OrganisationConfig, ...] = ()
    business_hours: BusinessHoursConfig = BusinessHoursConfig()
    slas: tuple[SlaConfig, ...] = ()
    timers: TimersConfig = TimersConfig()
    portal: PortalConfig | None = None  # the customer portal; None: off
    retention: RetentionConfig = RetentionConfig()

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
