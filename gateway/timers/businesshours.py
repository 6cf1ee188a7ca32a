"""Business-hours maths: SLA clocks that run only on working days, in working hours.

Pure functions over a ``Calendar`` (zone, working days, opening hours, holidays): the time
a target falls due, and the business time between two moments. Windows are built from
local dates and clocks, then compared in UTC, so a daylight-saving change shortens or
lengthens the day it falls on exactly as a wall clock does.
"""

from __future__ import annotations

from collections.abc import Container, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from gateway.configmodels import WEEKDAY_NAMES, BusinessHoursConfig

MAX_DAYS = 3660  # a target further out than ten years of working days is a misconfiguration


@dataclass(frozen=True)
class Calendar:
    """When the clock runs: working days (0 = Monday), opening hours, days off."""

    zone: ZoneInfo
    days: frozenset[int] = frozenset(range(5))
    start: time = time(8, 0)
    end: time | None = time(17, 0)  # None: until midnight
    holidays: Container[date] = field(default_factory=frozenset)

    def window(self, day: date) -> tuple[datetime, datetime] | None:
        """The working hours of a local date in UTC, or None on a day off."""
        if day.weekday() not in self.days or day in self.holidays:
            return None
        opens = datetime.combine(day, self.start, tzinfo=self.zone).astimezone(UTC)
        closing = (datetime.combine(day, self.end, tzinfo=self.zone) if self.end is not None
                   else datetime.combine(day + timedelta(days=1), time(0), tzinfo=self.zone))
        closes = closing.astimezone(UTC)
        return (opens, closes) if closes > opens else None

    def windows(self, since: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Working windows that end after since, in order (at most MAX_DAYS days ahead)."""
        day = since.astimezone(self.zone).date() - timedelta(days=1)
        for offset in range(MAX_DAYS):
            found = self.window(day + timedelta(days=offset))
            if found is not None and found[1] > since:
                yield found


def add_business_time(calendar: Calendar, start: datetime, amount: timedelta) -> datetime:
    """The moment when amount of business time has passed since start.

    >>> berlin = ZoneInfo("Europe/Berlin")
    >>> friday_4pm = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
    >>> add_business_time(Calendar(berlin), friday_4pm, timedelta(hours=2)).isoformat()
    '2026-11-30T08:00:00+00:00'
    """
    left = amount
    if left <= timedelta(0):
        return start
    for opens, closes in calendar.windows(start):
        begin = max(opens, start)
        if closes - begin >= left:
            return begin + left
        left -= closes - begin
    raise ValueError(f"no working time within {MAX_DAYS} days: check [business_hours]")


def business_time_between(calendar: Calendar, start: datetime, end: datetime) -> timedelta:
    """How much business time lies between two moments (zero when end is not after start).

    >>> berlin = ZoneInfo("Europe/Berlin")
    >>> fri = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
    >>> business_time_between(Calendar(berlin), fri, fri + timedelta(days=3))
    datetime.timedelta(seconds=32400)
    """
    total = timedelta(0)
    if end <= start:
        return total
    for opens, closes in calendar.windows(start):
        if opens >= end:
            break
        total += min(closes, end) - max(opens, start)
    return total


def calendar_for(config: BusinessHoursConfig) -> Calendar:
    """The calendar of [business_hours], with its public holidays (built once per config)."""
    return _calendar(config)


@lru_cache(maxsize=8)
def _calendar(config: BusinessHoursConfig) -> Calendar:
    start, end = config.opening()
    days_off: Container[date] = frozenset(config.extra_holidays)
    if config.holidays_country:
        import holidays  # a large package: only when configured

        public = holidays.country_holidays(config.holidays_country,
                                           subdiv=config.holidays_subdivision)
        extra = frozenset(config.extra_holidays)
        days_off = _Holidays(public, extra)
    return Calendar(zone=ZoneInfo(config.timezone or "UTC"),
                    days=frozenset(WEEKDAY_NAMES.index(d) for d in config.days),
                    start=start, end=end, holidays=days_off)


@dataclass(frozen=True)
class _Holidays:
    """Public holidays (years filled in as asked) plus the company's own days off."""

    public: Container[date]
    extra: frozenset[date]

    def __contains__(self, day: object) -> bool:
        return day in self.extra or day in self.public
