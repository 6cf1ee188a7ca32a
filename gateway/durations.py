"""Durations and moments as agents and admins type them: '30m', '2d', '2026-12-01 09:00'.

One parser for ``#remind``, ``#time`` and the rules' ``then.remind``; local times are read
in the configured time zone and answered in UTC. Time is a parameter: nothing here reads
the clock.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_UNITS = {
    "w": 7 * 24 * 60, "wk": 7 * 24 * 60, "week": 7 * 24 * 60, "weeks": 7 * 24 * 60,
    "d": 24 * 60, "day": 24 * 60, "days": 24 * 60, "t": 24 * 60, "tag": 24 * 60, "tage": 24 * 60,
    "h": 60, "hr": 60, "hrs": 60, "hour": 60, "hours": 60, "std": 60, "stunde": 60, "stunden": 60,
    "m": 1, "min": 1, "mins": 1, "minute": 1, "minutes": 1, "minuten": 1,
}
_PART = re.compile(r"(\d{1,6}(?:[.,]\d{1,3})?)\s*([a-zA-Z]+)")
_WHOLE = re.compile(r"^(?:\s*\d{1,6}(?:[.,]\d{1,3})?\s*[a-zA-Z]+)+\s*$")
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_DE_DATE = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$")
MAX_AHEAD = timedelta(days=3660)  # a reminder further out than ten years is a typo


def parse_duration(text: str) -> timedelta | None:
    """A duration such as '30m', '2d', '1h30m', '1.5h', '2 Tage'; None when it is not one.

    >>> parse_duration("30m"), parse_duration("1h30m"), parse_duration("1,5h")
    (datetime.timedelta(seconds=1800), datetime.timedelta(seconds=5400), datetime.timedelta(seconds=5400))
    >>> parse_duration("2d") == timedelta(days=2), parse_duration("2 Tage") == timedelta(days=2)
    (True, True)
    >>> parse_duration("soon"), parse_duration("5"), parse_duration("3x")
    (None, None, None)
    """
    if not _WHOLE.match(text):
        return None
    minutes = 0.0
    for number, unit in _PART.findall(text):
        factor = _UNITS.get(unit.lower())
        if factor is None:
            return None
        minutes += float(number.replace(",", ".")) * factor
    return timedelta(minutes=round(minutes))


def format_minutes(minutes: int) -> str:
    """Booked time as people read it.

    >>> format_minutes(30), format_minutes(90), format_minutes(120), format_minutes(0)
    ('30m', '1h 30m', '2h', '0m')
    """
    hours, rest = divmod(int(minutes), 60)
    if not hours:
        return f"{rest}m"
    return f"{hours}h {rest}m" if rest else f"{hours}h"


def local_moment(day: date, clock: time, zone: ZoneInfo) -> datetime | None:
    """The UTC moment of a local date and time; None when the clock skips it (DST gap).

    An hour that happens twice (DST end) means its first occurrence.

    >>> berlin = ZoneInfo("Europe/Berlin")
    >>> local_moment(date(2026, 3, 29), time(2, 30), berlin) is None
    True
    >>> local_moment(date(2026, 10, 25), time(2, 30), berlin).isoformat()
    '2026-10-25T00:30:00+00:00'
    """
    moment = datetime.combine(day, clock, tzinfo=zone)
    back = moment.astimezone(UTC).astimezone(zone)
    if (back.date(), back.time()) != (day, clock):
        return None
    return moment.astimezone(UTC)


def _after(now: datetime, duration: timedelta, zone: ZoneInfo) -> datetime:
    """now + duration; whole days keep the local clock time over a daylight-saving change.

    >>> berlin = ZoneInfo("Europe/Berlin")
    >>> saturday = datetime(2026, 3, 28, 9, 0, tzinfo=UTC)  # 10:00 in Berlin
    >>> _after(saturday, timedelta(days=2), berlin).astimezone(berlin).hour
    10
    >>> _after(saturday, timedelta(hours=48), berlin) == _after(saturday, timedelta(days=2), berlin)
    True
    >>> _after(saturday, timedelta(hours=47), berlin).isoformat()
    '2026-03-30T08:00:00+00:00'
    """
    if duration % timedelta(days=1):
        return now + duration
    return (now.astimezone(zone) + duration).astimezone(UTC)


def _date(word: str) -> date | None:
    found = _ISO_DATE.match(word)
    try:
        if found:
            return date(int(found.group(1)), int(found.group(2)), int(found.group(3)))
        found = _DE_DATE.match(word)
        if found:
            return date(int(found.group(3)), int(found.group(2)), int(found.group(1)))
    except ValueError:
        return None
    return None


def _clock(word: str) -> time | None:
    found = _CLOCK.match(word)
    if found is None or int(found.group(1)) > 23 or int(found.group(2)) > 59:
        return None
    return time(int(found.group(1)), int(found.group(2)))


def parse_when(text: str, zone: ZoneInfo, now: datetime,
               default_clock: time = time(9, 0)) -> tuple[datetime, str]:
    """When a reminder falls due and its note: '2d call back', '2026-12-01 09:00 call back'.

    A date may be ISO (2026-12-01) or German (01.12.2026); its time defaults to
    default_clock, in zone. Raises ValueError with a message for the agent.

    >>> now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    >>> parse_when("2d call back", ZoneInfo("UTC"), now)
    (datetime.datetime(2026, 11, 25, 9, 0, tzinfo=datetime.timezone.utc), 'call back')
    >>> due, note = parse_when("01.12.2026 14:30 Angebot", ZoneInfo("Europe/Berlin"), now)
    >>> due.isoformat(), note
    ('2026-12-01T13:30:00+00:00', 'Angebot')
    """
    words = text.split()
    if not words:
        raise ValueError("needs a time: #remind 2d call back, or #remind 2026-12-01 09:00 call back")
    duration = parse_duration(words[0])
    if duration is not None:
        if duration <= timedelta(0):
            raise ValueError(f"{words[0]!r} is not a time in the future")
        due, rest = _after(now, duration, zone), words[1:]
    else:
        day = _date(words[0])
        if day is None:
            raise ValueError(f"{words[0]!r} is neither a duration (30m, 4h, 2d, 1w) nor a date "
                             "(2026-12-01 or 01.12.2026)")
        clock = _clock(words[1]) if len(words) > 1 else None
        rest = words[2:] if clock is not None else words[1:]
        moment = local_moment(day, clock or default_clock, zone)
        if moment is None:
            raise ValueError(f"{day} {clock or default_clock} does not exist in {zone.key} "
                             "(the clocks skip it)")
        due = moment
        if due <= now:
            raise ValueError(f"{due.astimezone(zone):%Y-%m-%d %H:%M} {zone.key} is in the past")
    if due - now > MAX_AHEAD:
        raise ValueError("is more than ten years ahead")
    return due, " ".join(rest)
