"""The HTTP server, webhooks and the customer portal."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    Field,
    PositiveFloat,
    PositiveInt,
    StringConstraints,
    model_validator,
)

from gateway.configmodels.fields import (
    WEBHOOK_EVENTS,
    Invalid,
    Secret,
    Section,
    is_loopback,
    show,
    with_env,
)


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


def _portal_base(value: str) -> str:
    """Where customers reach /portal: https (plain http only on this machine, for trying it out)."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise Invalid(f"must be the portal's address, e.g. \"https://support.example.com/portal\", "
                      f"got {show(value)}")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise Invalid(f"must be https:// (the session cookie is Secure), got {show(value)}")
    return value.strip().rstrip("/")


class PortalConfig(Section):
    """[portal]: the customer portal under /portal on the [http] server (off when absent)."""

    url: Annotated[str, AfterValidator(_portal_base)]  # where customers reach /portal (links in mails)
    link_minutes: Annotated[int, Field(ge=1, le=1440)] = 15  # a sign-in link works this long, once
    session_hours: Annotated[int, Field(ge=1, le=2160)] = 12  # a session ends this long after sign-in
    links_per_address_hour: PositiveInt = 5  # sign-in link requests per mail address and hour
    links_per_client_hour: PositiveInt = 30  # sign-in link requests per client IP address and hour
    max_attachments: Annotated[int, Field(ge=0, le=50)] = 5  # files on one portal form
    max_file_mb: Annotated[int, Field(ge=1, le=100)] = 10  # size of one file
    categories: tuple[Annotated[str, StringConstraints(min_length=1, max_length=100)], ...] = Field(
        default=(), strict=False)  # offered on the new-ticket form; empty: free text
    channel: str = ""  # the channel of portal tickets; empty: the first
    secure_cookies: bool = True  # false only to try the portal over plain http on this machine
