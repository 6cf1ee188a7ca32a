"""A seeded month of tickets for the report: test data and the README screenshot's data.

Times are whole half hours in November 2026, Europe/Berlin (no DST change, no public
holiday in Berlin), so a test can count business time in half-hour slots by hand.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine

from store.db import transaction
from store.models import Ticket, TimeEntry

BERLIN = ZoneInfo("Europe/Berlin")
SLOT = timedelta(minutes=30)
SLA_TOML = """
[business_hours]
days = ["mon", "tue", "wed", "thu", "fri"]
start = "08:00"
end = "17:00"
holidays_country = "DE"
holidays_subdivision = "BE"

[[sla]]
name = "hotline urgent"
channels = ["hotline"]
priorities = [7, 8, 9]
first_response_hours = 1
resolution_hours = 8

[[sla]]
name = "standard"
first_response_hours = 4
resolution_hours = 24
"""
ACTIVITIES = (None, "Remote support", "On-site visit", "Consulting")


@dataclass
class Seeded:
    """One seeded ticket as the test knows it."""

    number: str
    channel: str
    priority: int
    activity_type: str | None
    type: str
    created: datetime
    first_response: datetime | None
    resolved: datetime | None
    status: str
    merged: bool = False
    bookings: list[tuple[datetime, int, str]] = field(default_factory=list)


def _local(day: int, slot: int, month: int = 11) -> datetime:
    """A local half-hour slot of a day in 2026, as UTC."""
    return (datetime(2026, month, day, tzinfo=BERLIN) + slot * SLOT).astimezone(UTC)


def seed_specs(count: int = 80, seed: int = 7) -> list[Seeded]:
    """The tickets: mostly in November, a few from October (resolved or not in November)."""
    rnd = random.Random(seed)
    found: list[Seeded] = []
    for n in range(count):
        october = n % 16 == 0
        created = _local(rnd.randint(5, 30) if october else rnd.randint(2, 27),
                         rnd.randint(14, 36), month=10 if october else 11)
        channel = rnd.choice(("support", "support", "hotline"))
        internal = n % 19 == 5
        first = None if internal or rnd.random() < 0.15 else created + rnd.randint(0, 24) * SLOT
        resolved = None if rnd.random() < 0.25 else created + rnd.randint(1, 160) * SLOT
        if resolved is not None and first is not None and resolved < first:
            resolved = first + SLOT
        status = ("closed" if rnd.random() < 0.3 else "resolved") if resolved else rnd.choice(
            ("open", "waiting_external", "new"))
        spec = Seeded(f"T{n + 1:04d}", channel, rnd.randint(3, 9), rnd.choice(ACTIVITIES),
                      "internal" if internal else "mail", created, first, resolved, status,
                      merged=n % 23 == 11)
        for _ in range(rnd.randint(0, 3)):
            spec.bookings.append((created + rnd.randint(1, 40) * SLOT, rnd.choice((15, 30, 45, 60, 90)),
                                  rnd.choice(("Remote support", "On-site visit", ""))))
        found.append(spec)
    return found


def seed(engine: Engine, specs: list[Seeded]) -> None:
    """Write the tickets and their bookings into the store."""
    with transaction(engine) as session:
        ids: dict[str, int] = {}
        for spec in specs:
            ticket = Ticket(number=spec.number, subject=f"Seeded {spec.number}", status=spec.status,
                            priority=spec.priority, channel=spec.channel,
                            activity_type=spec.activity_type, type=spec.type,
                            created_at=spec.created, updated_at=spec.created,
                            first_response_at=spec.first_response, resolved_at=spec.resolved,
                            closed_at=spec.resolved if spec.status == "closed" else None)
            session.add(ticket)
            session.flush()
            assert ticket.id is not None
            ids[spec.number] = ticket.id
        first = specs[0].number
        for spec in specs:  # a merged ticket's time moved to the target with it
            for at, minutes, activity in spec.bookings:
                owner = ids[first] if spec.merged else ids[spec.number]
                session.add(TimeEntry(ticket_id=owner, agent="alice", minutes=minutes,
                                      activity=activity, created_at=at))
        for spec in specs:
            if spec.merged:
                row = session.get(Ticket, ids[spec.number])
                assert row is not None
                row.merged_into_id = ids[first]
