"""The one status vocabulary: internal statuses, their moves, and what customers see of them.

DESIGN section 6. Customers and portal users never see an internal status: they see a label
in their language and a traffic-light colour.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Protocol


class Status(StrEnum):
    """A ticket's internal status."""

    NEW = "new"
    OPEN = "open"
    WAITING_EXTERNAL = "waiting_external"  # waiting for the customer
    WAITING_INTERNAL = "waiting_internal"
    RESOLVED = "resolved"
    CLOSED = "closed"
    POSTPONED = "postponed"


STATUSES: tuple[str, ...] = tuple(s.value for s in Status)
DONE = frozenset({Status.RESOLVED, Status.CLOSED})  # customers see "Closed"
REOPENABLE = frozenset({Status.RESOLVED})  # a customer's message simply reopens these
CLOSED = frozenset({Status.CLOSED})  # a customer's message follows the closed-ticket policy
ALIASES = {"waiting": Status.WAITING_EXTERNAL, "pending": Status.WAITING_EXTERNAL,
           "wait": Status.WAITING_EXTERNAL}

# What customers and portal users see: (portal state, colour).
_VIEW = {
    Status.NEW: ("in_progress", "orange"),
    Status.OPEN: ("in_progress", "orange"),
    Status.WAITING_INTERNAL: ("in_progress", "orange"),
    Status.WAITING_EXTERNAL: ("reply_expected", "red"),
    Status.RESOLVED: ("closed", "green"),
    Status.CLOSED: ("closed", "green"),
    Status.POSTPONED: ("postponed", "grey"),
}
PORTAL_STATES = ("in_progress", "reply_expected", "closed", "postponed")
LABELS = {
    "en": {"in_progress": "In progress", "reply_expected": "Reply expected", "closed": "Closed",
           "postponed": "Postponed"},
    "de": {"in_progress": "In Bearbeitung", "reply_expected": "Antwort erwartet",
           "closed": "Geschlossen", "postponed": "Zurückgestellt"},
}
COLOURS = {"orange": "#e8890c", "red": "#d93025", "green": "#1e8e3e", "grey": "#80868b"}


# The internal status named for agents in their language (the #status word stays English).
AGENT_WORDS = {
    "de": {"new": "neu", "open": "offen", "waiting_external": "wartet auf Kunden",
           "waiting_internal": "wartet intern", "resolved": "gelöst", "closed": "geschlossen",
           "postponed": "zurückgestellt"},
}


def agent_word(status: str, language: str) -> str:
    """An internal status as an agent reads it in a mail of this language.

    >>> agent_word("waiting_external", "de"), agent_word("waiting_external", "en")
    ('wartet auf Kunden', 'waiting_external')
    """
    return AGENT_WORDS.get(language, {}).get(status, status)


def parse_status(word: str) -> Status | None:
    """A status from what an agent or admin typed (aliases such as 'waiting' allowed).

    >>> parse_status("Waiting"), parse_status("closed"), parse_status("done")
    (<Status.WAITING_EXTERNAL: 'waiting_external'>, <Status.CLOSED: 'closed'>, None)
    """
    word = word.strip().lower()
    if word in ALIASES:
        return ALIASES[word]
    return Status(word) if word in STATUSES else None


def customer_status(status: str, language: str) -> dict[str, str]:
    """The portal state, customer label and traffic-light colour of an internal status.

    >>> customer_status("waiting_external", "de")
    {'key': 'reply_expected', 'label': 'Antwort erwartet', 'colour': 'red', 'hex': '#d93025'}
    """
    key, colour = _VIEW[Status(status) if status in STATUSES else Status.OPEN]
    labels = LABELS.get(language, LABELS["en"])
    return {"key": key, "label": labels[key], "colour": colour, "hex": COLOURS[colour]}


def shown_as(state: str) -> frozenset[str]:
    """The internal statuses customers see as this portal state (for filtering by it).

    >>> sorted(shown_as("closed")), sorted(shown_as("nonsense"))
    (['closed', 'resolved'], [])
    """
    return frozenset(str(s) for s, (key, _) in _VIEW.items() if key == state)


def after_customer_message(status: str) -> Status | None:
    """Where a customer's new message moves a ticket that is not closed (None: stays).

    >>> after_customer_message("waiting_external"), after_customer_message("resolved")
    (<Status.OPEN: 'open'>, <Status.OPEN: 'open'>)
    >>> after_customer_message("waiting_internal") is None
    True
    """
    if status == Status.WAITING_EXTERNAL or status in REOPENABLE:
        return Status.OPEN
    return None


class HasStatus(Protocol):
    """A ticket as far as status moves go."""

    status: str
    updated_at: datetime
    resolved_at: datetime | None
    closed_at: datetime | None
    status_changed_at: datetime | None


def move(ticket: HasStatus, status: str, now: datetime) -> bool:
    """Move a ticket to status, keeping the resolved/closed times right; True when it changed."""
    if status == ticket.status:
        return False
    ticket.status, ticket.updated_at, ticket.status_changed_at = str(status), now, now
    if status in DONE:
        ticket.resolved_at = ticket.resolved_at or now
        ticket.closed_at = now if status == Status.CLOSED else None
    else:
        ticket.resolved_at = ticket.closed_at = None
    return True
