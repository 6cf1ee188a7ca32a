"""Tickets, channels, agents and organisations."""

from __future__ import annotations

from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    Field,
    PositiveInt,
    model_validator,
)

from gateway.configmodels.fields import (
    Followup,
    Invalid,
    Language,
    Lower,
    Section,
    known_time_zone,
    one_of,
    show,
)


def _letters(value: str) -> str:
    """Ticket prefixes must survive subject mangling: ASCII letters only, upper case."""
    if not (value.isascii() and value.isalpha()):
        raise Invalid(f"must be letters only, got {show(value)}")
    return value.upper()


def _domain(value: str) -> str:
    """An organisation is keyed by its mail domain."""
    if "." not in value or "@" in value or any(c.isspace() for c in value):
        raise Invalid(f"must be a mail domain such as \"acme.example\", got {show(value)}")
    return value

class TicketsConfig(Section):
    """How ticket numbers and subject tokens look."""

    number_format: Annotated[str, one_of("date", "counter")] = "date"  # T20261123.0007 / T1234
    prefix: Annotated[str, AfterValidator(_letters)] = "T"
    counter_digits: PositiveInt = 4
    timezone: Annotated[str, AfterValidator(known_time_zone)] = "UTC"
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


class OrganisationConfig(Section):
    """[[organisation]]: an organisation's name and whether its contacts see all its tickets."""

    domain: Annotated[Lower, AfterValidator(_domain)]
    name: str = ""  # default: the domain
    share_tickets: bool = False
