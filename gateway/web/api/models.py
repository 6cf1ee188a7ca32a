"""The API's request and response documents (pydantic): closed, typed, and the OpenAPI schema."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from gateway.intake.addresses import valid_address
from store.queries import FREEMAIL_DOMAINS

_MEDIA_TYPE = re.compile(r"^[A-Za-z0-9][\w.+-]{0,126}/[A-Za-z0-9][\w.+-]{0,126}$")
_DOMAIN = re.compile(r"^(?=.{4,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{1,62}$")


def _address(value: str) -> str:
    found = valid_address(value)
    if found is None:
        raise ValueError("is not a valid mail address")
    return found


def _domain(value: str) -> str:
    value = value.strip().lower()
    if not _DOMAIN.match(value):
        raise ValueError("must be a mail domain such as acme.example")
    if value in FREEMAIL_DOMAINS:
        raise ValueError(f"{value} is a freemail provider, not an organisation")
    return value


def media_type(value: str) -> str:
    """A media type as sent (lower-cased), checked: type/subtype in token characters."""
    if not _MEDIA_TYPE.match(value):
        raise ValueError("must be a media type such as application/pdf")
    return value.lower()


def _base64(value: str) -> str:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("is not valid base64") from None
    return value


Email = Annotated[str, StringConstraints(max_length=320), AfterValidator(_address)]
Domain = Annotated[str, StringConstraints(max_length=253), AfterValidator(_domain)]
Line = Annotated[str, StringConstraints(max_length=255)]
Source = Literal["portal", "api", "phone", "web"]


class _Closed(BaseModel):
    """Unknown fields are errors: a typo never silently drops what a client meant to send."""

    model_config = ConfigDict(extra="forbid")


class Customer(_Closed):
    """The person a ticket or message is from."""

    email: Email = Field(description="The customer's mail address; they get the mails about the ticket.")
    name: Line = ""
    language: Literal["de", "en"] | None = Field(
        default=None, description="The customer's language for mails and labels, if not known yet.")


class FileIn(_Closed):
    """An attachment sent inside JSON (multipart requests send files as parts instead)."""

    filename: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    content_type: Annotated[str, AfterValidator(media_type)] = "application/octet-stream"
    content_base64: Annotated[str, AfterValidator(_base64)]


class TicketIn(_Closed):
    """A new ticket."""

    source: Source = Field(default="api", description="Where it comes from; rules see it as when.source.")
    customer: Customer
    organisation: Domain | None = Field(
        default=None, description="The organisation's mail domain; default: the customer's.")
    subject: Annotated[str, StringConstraints(min_length=1, max_length=1000)]
    text: str = Field(default="", description="Plain text; derived from html when empty.")
    html: str = Field(default="", description="HTML, sanitised like inbound mail.")
    category: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    asset: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = Field(
        default=None, description="The asset or object the ticket is about.")
    channel: Annotated[str, StringConstraints(max_length=100)] | None = Field(
        default=None, description="A configured channel; default: the first.")
    attachments: list[FileIn] = Field(default_factory=list)


class MessageIn(_Closed):
    """A customer's message on an existing ticket."""

    customer: Customer
    text: str = ""
    html: str = ""
    attachments: list[FileIn] = Field(default_factory=list)


class CloseIn(_Closed):
    """The customer closes their ticket, optionally with a last word."""

    customer: Customer
    text: str = ""


class OrganisationPatch(_Closed):
    """Change an organisation."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = None
    share_tickets: bool | None = Field(
        default=None, description="Every contact of the organisation sees all its tickets.")


class StatusOut(BaseModel):
    """A status in the portal vocabulary."""

    key: Literal["in_progress", "reply_expected", "closed", "postponed"]
    label: str
    colour: Literal["orange", "red", "green", "grey"]
    hex: str


class PersonOut(BaseModel):
    """A customer."""

    email: str
    name: str


class AuthorOut(BaseModel):
    """Who wrote a message; agents by display name only."""

    role: Literal["customer", "agent", "support"]
    name: str
    email: str | None


class AttachmentOut(BaseModel):
    """A file of a public message."""

    id: int
    filename: str
    content_type: str
    size: int
    href: str


class MessageOut(BaseModel):
    """A public message."""

    id: int
    author: AuthorOut
    subject: str
    text: str
    html: str
    created_at: str
    attachments: list[AttachmentOut]


class TicketOut(BaseModel):
    """A ticket as customers see it."""

    number: str
    subject: str
    status: StatusOut
    source: str
    categories: list[str]
    asset: str | None
    organisation: str | None
    customer: PersonOut | None
    created_at: str
    updated_at: str
    closed_at: str | None
    url: str | None = Field(description="The ticket's page in the customer portal, if configured.")
    href: str


class TicketDetail(TicketOut):
    """A ticket with its public messages."""

    messages: list[MessageOut]


class TicketPage(BaseModel):
    """One page of tickets."""

    items: list[TicketOut]
    total: int
    limit: int
    offset: int
    next: str | None


class Submitted(BaseModel):
    """What became of a submission."""

    outcome: Literal["created", "followup", "duplicate", "dropped", "closed"]
    ticket: TicketOut | None
    message: MessageOut | None
    detail: str = ""


class OrganisationOut(BaseModel):
    """An organisation."""

    domain: str
    name: str
    share_tickets: bool
