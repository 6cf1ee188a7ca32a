"""Business-hours maths: tables across weekends, public holidays and daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from gateway.timers.businesshours import (
    Calendar,
    add_business_time,
    business_time_between,
    calendar_for,
)
from tests.conftest import make_config

BERLIN = ZoneInfo("Europe/Berlin")


def local(text: str) -> datetime:
    """A Berlin wall-clock time as an aware UTC moment."""
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN).astimezone(UTC)


def berlin_office(*extra: date) -> Calendar:
    """Mon-Fri 08:00-17:00 in Berlin with the public holidays of Berlin (the holidays package)."""
    config = make_config(tickets={"timezone": "Europe/Berlin"}, business_hours={
        "holidays_country": "DE", "holidays_subdivision": "BE", "extra_holidays": list(extra)})
    return calendar_for(config.business_hours)


ROUND_THE_CLOCK = Calendar(BERLIN, days=frozenset(range(7)), start=time(0), end=None)
SUNDAY_NIGHT = Calendar(BERLIN, days=frozenset({6}), start=time(1), end=time(4))

ADD = [
    # (calendar, start, business hours to add, due) -- all wall-clock times in Berlin
    ("office", "2026-11-23 09:00", 2, "2026-11-23 11:00"),     # Monday, inside the day
    ("office", "2026-11-23 16:00", 2, "2026-11-24 09:00"),     # past closing: next morning
    ("office", "2026-11-27 16:00", 2, "2026-11-30 09:00"),     # Friday: over the weekend
    ("office", "2026-11-28 10:00", 1, "2026-11-30 09:00"),     # starts on a Saturday
    ("office", "2026-11-23 06:00", 1, "2026-11-23 09:00"),     # before opening
    ("office", "2026-11-23 17:00", 9, "2026-11-24 17:00"),     # exactly one working day
    ("office", "2026-04-02 16:00", 2, "2026-04-07 09:00"),     # Good Friday and Easter Monday
    ("office", "2026-12-23 16:00", 2, "2026-12-24 09:00"),     # Christmas Eve is a working day
    ("office+24.12", "2026-12-23 16:00", 2, "2026-12-28 09:00"),  # unless the company says not
    ("office", "2026-09-30 16:00", 2, "2026-10-01 09:00"),     # 3 October 2026 is a Saturday
    ("office", "2026-03-27 16:00", 2, "2026-03-30 09:00"),     # over the spring DST weekend
    ("24/7", "2026-03-28 12:00", 24, "2026-03-29 13:00"),      # the 23-hour day (CET -> CEST)
    ("24/7", "2026-10-24 12:00", 24, "2026-10-25 11:00"),      # the 25-hour day (CEST -> CET)
    ("sun 01-04", "2026-03-29 00:00", 2, "2026-03-29 04:00"),  # 01:00 CET to 04:00 CEST is 2 h
    ("sun 01-04", "2026-10-25 00:00", 3, "2026-10-25 03:00"),  # 3 h past 01:00 CEST lands at 03:00 CET
    ("office", "2026-11-23 10:00", 0, "2026-11-23 10:00"),     # nothing to add
]

BETWEEN = [
    ("office", "2026-11-27 16:00", "2026-11-30 10:00", 3.0),   # Friday 1 h + Monday 2 h
    ("office", "2026-04-02 16:00", "2026-04-07 10:00", 3.0),   # over Easter
    ("office", "2026-11-23 07:00", "2026-11-23 18:00", 9.0),   # a whole day, from outside it
    ("office", "2026-11-28 09:00", "2026-11-29 18:00", 0.0),   # a weekend
    ("office", "2026-11-24 10:00", "2026-11-23 10:00", 0.0),   # end before start
    ("office", "2026-12-18 12:00", "2027-01-04 08:00", 5.0 + 9 * 8),  # 25.12., 1.1. off
    ("office+24.12", "2026-12-18 12:00", "2027-01-04 08:00", 5.0 + 9 * 7),
    ("24/7", "2026-03-29 00:00", "2026-03-30 00:00", 23.0),
    ("24/7", "2026-10-25 00:00", "2026-10-26 00:00", 25.0),
    ("sun 01-04", "2026-03-28 00:00", "2026-03-30 00:00", 2.0),
    ("sun 01-04", "2026-10-24 00:00", "2026-10-26 00:00", 4.0),
]


def pick(name: str) -> Calendar:
    return {"office": berlin_office(), "office+24.12": berlin_office(date(2026, 12, 24)),
            "24/7": ROUND_THE_CLOCK, "sun 01-04": SUNDAY_NIGHT}[name]


@pytest.mark.parametrize(("calendar", "start", "hours", "due"), ADD,
                         ids=[f"{c}:{s}+{h}h" for c, s, h, _ in ADD])
def test_add_business_time(calendar: str, start: str, hours: float, due: str) -> None:
    result = add_business_time(pick(calendar), local(start), timedelta(hours=hours))
    assert result == local(due), result.astimezone(BERLIN)


@pytest.mark.parametrize(("calendar", "start", "end", "hours"), BETWEEN,
                         ids=[f"{c}:{s}..{e}" for c, s, e, _ in BETWEEN])
def test_business_time_between(calendar: str, start: str, end: str, hours: float) -> None:
    assert business_time_between(pick(calendar), local(start), local(end)) == timedelta(hours=hours)


@pytest.mark.parametrize(("calendar", "start", "hours"), [(c, s, h) for c, s, h, _ in ADD if h])
def test_adding_then_measuring_gives_the_amount_back(calendar: str, start: str, hours: float) -> None:
    cal = pick(calendar)
    due = add_business_time(cal, local(start), timedelta(hours=hours))
    assert business_time_between(cal, local(start), due) == timedelta(hours=hours)


def test_a_calendar_without_working_time_is_an_error_not_a_hang() -> None:
    closed = Calendar(BERLIN, days=frozenset({0}), holidays=_every_day())
    with pytest.raises(ValueError, match="no working time"):
        add_business_time(closed, local("2026-11-23 09:00"), timedelta(hours=1))


class _every_day:
    def __contains__(self, day: object) -> bool:
        return True
