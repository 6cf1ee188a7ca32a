"""The report's figures: per group, what was opened and resolved, how fast, within SLA, time booked.

Definitions (the README repeats them):
- a period is [since, until): local midnight of --since in [tickets] timezone to local
  midnight after --until (default: now); merged tickets count only in their target;
- opened: created in the period; resolved: resolved (or closed) in the period;
- first response: business hours from creation to the first public agent reply, for
  non-internal tickets opened in the period; resolution: business hours from creation to
  resolution, for tickets resolved in the period; median and p90 (nearest rank);
- SLA attainment: of the non-internal tickets opened in the period that an [[sla]] covers,
  the share met among those decided (met: answered or resolved within the target; missed:
  answered or resolved late, or still open past the target at the period's end);
- booked time: time entries booked in the period (by --by activity_type: the entry's activity).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session, col, or_, select

from gateway.config import Config
from gateway.statuses import DONE
from gateway.timers.businesshours import Calendar, business_time_between, calendar_for
from gateway.timers.policy import aware
from store.models import Ticket, TimeEntry

GROUPINGS = ("channel", "priority", "activity_type")
NONE = "(none)"
TOTAL = "all"


def nearest_rank(values: Sequence[float], share: float) -> float | None:
    """The nearest-rank percentile (share 0.9: p90); None for no values.

    >>> nearest_rank([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9), nearest_rank([4.0], 0.9)
    (9, 4.0)
    """
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(share * len(ordered)) - 1, 0)]


@dataclass
class Times:
    """Durations in business hours: how many, median and p90."""

    hours: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, float | int | None]:
        """count, median and p90 (None without values)."""
        median = statistics.median(self.hours) if self.hours else None
        return {"count": len(self.hours), "median": median, "p90": nearest_rank(self.hours, 0.9)}


@dataclass
class Attainment:
    """SLA targets met and missed (tickets still within their target are left out)."""

    met: int = 0
    missed: int = 0

    def percent(self) -> float | None:
        """Share met, in percent (None when nothing was decided)."""
        decided = self.met + self.missed
        return 100.0 * self.met / decided if decided else None


@dataclass
class Group:
    """The figures of one group (a channel, a priority, an activity type, or all)."""

    name: str
    opened: int = 0
    resolved: int = 0
    first_response: Times = field(default_factory=Times)
    resolution: Times = field(default_factory=Times)
    sla_first_response: Attainment = field(default_factory=Attainment)
    sla_resolution: Attainment = field(default_factory=Attainment)
    booked_minutes: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The group as plain data (JSON, CSV)."""
        return {"group": self.name, "opened": self.opened, "resolved": self.resolved,
                "first_response_hours": self.first_response.summary(),
                "resolution_hours": self.resolution.summary(),
                "sla_first_response": {"met": self.sla_first_response.met,
                                       "missed": self.sla_first_response.missed,
                                       "percent": self.sla_first_response.percent()},
                "sla_resolution": {"met": self.sla_resolution.met,
                                   "missed": self.sla_resolution.missed,
                                   "percent": self.sla_resolution.percent()},
                "booked_minutes": self.booked_minutes}


@dataclass
class Report:
    """Figures by group, with the total last."""

    since: datetime
    until: datetime
    by: str
    groups: list[Group]
    timezone: str
    label: str = ""  # the period in local dates: "2026-11-01 to 2026-11-29"

    def as_dict(self) -> dict[str, Any]:
        """The report as plain data."""
        return {"since": self.since.isoformat(), "until": self.until.isoformat(),
                "period": self.label, "by": self.by, "timezone": self.timezone,
                "groups": [g.as_dict() for g in self.groups]}


def group_of(ticket: Ticket, by: str) -> str:
    """The group a ticket counts in."""
    value = getattr(ticket, by)
    return str(value) if value not in (None, "") else NONE


def _hours(calendar: Calendar, start: datetime, end: datetime) -> float:
    return business_time_between(calendar, aware(start), aware(end)).total_seconds() / 3600


def build_report(session: Session, config: Config, since: datetime, until: datetime,
                 by: str = "channel") -> Report:
    """The figures of the period [since, until), grouped by channel, priority or activity type."""
    calendar = calendar_for(config.business_hours)
    groups: dict[str, Group] = {}
    total = Group(TOTAL)

    def touch(name: str) -> Iterable[Group]:
        return (groups.setdefault(name, Group(name)), total)

    tickets = session.exec(select(Ticket).where(
        col(Ticket.merged_into_id).is_(None),
        or_(col(Ticket.created_at).between(since, until),
            col(Ticket.resolved_at).between(since, until)))).all()
    for ticket in tickets:
        _count(ticket, touch(group_of(ticket, by)), config, calendar, since, until)
    entries = session.exec(select(TimeEntry, Ticket).join(Ticket, col(Ticket.id) == col(
        TimeEntry.ticket_id)).where(col(TimeEntry.created_at) >= since,
                                    col(TimeEntry.created_at) < until)).all()
    for entry, ticket in entries:
        name = (entry.activity or NONE) if by == "activity_type" else group_of(ticket, by)
        for group in touch(name):
            group.booked_minutes += entry.minutes
    ordered = sorted(groups.values(), key=lambda g: _order(g.name, by))
    zone = config.tickets.zone
    label = (f"{since.astimezone(zone):%Y-%m-%d} to "
             f"{(until - timedelta(microseconds=1)).astimezone(zone):%Y-%m-%d %H:%M}")
    return Report(since, until, by, [*ordered, total], config.business_hours.timezone or "UTC",
                  label.removesuffix(" 23:59"))


def _order(name: str, by: str) -> tuple[int, float, str]:
    if name == NONE:
        return (1, 0.0, name)
    return (0, -float(name) if by == "priority" else 0.0, name.casefold())


def _count(ticket: Ticket, groups: Iterable[Group], config: Config, calendar: Calendar,
           since: datetime, until: datetime) -> None:
    """Add one ticket's figures to its groups."""
    created = aware(ticket.created_at)
    opened = since <= created < until
    resolved_at = aware(ticket.resolved_at) if ticket.resolved_at is not None else None
    resolved = ticket.status in DONE and resolved_at is not None and since <= resolved_at < until
    customer_facing = ticket.type != "internal"
    first = resolution = None
    if opened and customer_facing and ticket.first_response_at is not None:
        first = _hours(calendar, created, ticket.first_response_at)
    if resolved and resolved_at is not None:
        resolution = _hours(calendar, created, resolved_at)
    sla = config.sla_for(ticket.channel, ticket.priority) if opened and customer_facing else None
    for group in groups:
        group.opened += opened
        group.resolved += resolved
        if first is not None:
            group.first_response.hours.append(first)
        if resolution is not None:
            group.resolution.hours.append(resolution)
        if sla is not None:
            _attain(group.sla_first_response, sla.first_response_hours, calendar, created,
                    ticket.first_response_at, until)
            done = resolved_at if ticket.status in DONE else None
            _attain(group.sla_resolution, sla.resolution_hours, calendar, created, done, until)


def _attain(into: Attainment, target: float | None, calendar: Calendar, created: datetime,
            done: datetime | None, until: datetime) -> None:
    """Count one SLA target as met, missed, or (still running) not at all."""
    if not target:
        return
    if done is not None and aware(done) <= until:
        if _hours(calendar, created, done) <= target + 1e-9:
            into.met += 1
        else:
            into.missed += 1
    elif _hours(calendar, created, until) > target:
        into.missed += 1


def period(config: Config, since: str, until: str | None, now: datetime) -> tuple[datetime, datetime]:
    """[since, until) from dates as typed (YYYY-MM-DD), in [tickets] timezone; until: now."""
    zone = config.tickets.zone
    try:
        start = datetime.fromisoformat(since).replace(tzinfo=zone) if "T" not in since else None
        end = (datetime.fromisoformat(until).replace(tzinfo=zone) + timedelta(days=1)
               if until else now)
    except ValueError as exc:
        raise ValueError(f"dates must be YYYY-MM-DD: {exc}") from None
    if start is None or (until and "T" in until):
        raise ValueError("dates must be YYYY-MM-DD")
    if end <= start:
        raise ValueError(f"the period is empty: --until must not be before --since {since}")
    return start.astimezone(UTC), end.astimezone(UTC)  # the store keeps UTC
