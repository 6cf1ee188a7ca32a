"""Business hours, SLAs and timers."""

from __future__ import annotations

import re
from datetime import date, time
from typing import Annotated

from pydantic import (
    AfterValidator,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationInfo,
    field_validator,
)

from gateway.configmodels.fields import (
    Invalid,
    Lower,
    Section,
    known_time_zone,
    show,
)

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

    timezone: Annotated[str, AfterValidator(known_time_zone)] | None = None  # default: [tickets]
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


class RetentionConfig(Section):
    """[retention]: after how many days data is purged (0: kept for ever), and how often."""

    closed_ticket_days: NonNegativeInt = 0  # resolved/closed tickets untouched that long, whole
    quarantine_resolved_days: NonNegativeInt = 0  # quarantine entries retried or resolved
    outbox_sent_days: NonNegativeInt = 0  # the outbox rows of sent mail (the message stays)
    originals_days: NonNegativeInt = 0  # raw originals of stored mails
    interval_minutes: PositiveInt = 60  # how often the service purges

    @property
    def enabled(self) -> bool:
        """Whether anything is ever purged."""
        return any((self.closed_ticket_days, self.quarantine_resolved_days,
                    self.outbox_sent_days, self.originals_days))
