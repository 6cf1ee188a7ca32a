"""Thread stage: find the ticket a mail belongs to (DESIGN section 4)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from gateway.config import TicketsConfig
from gateway.intake.addresses import Address
from gateway.intake.parse import ParsedMail
from gateway.thread.numbers import find_token


@dataclass(frozen=True)
class TicketRef:
    """Just enough of a ticket to decide threading."""

    id: int
    number: str
    status: str


class ThreadIndex(Protocol):
    """Look-ups the thread stage needs; the store implements it on a session."""

    def ticket_for_message_ids(self, message_ids: Sequence[str]) -> TicketRef | None:
        """The newest ticket holding a message with one of these Message-IDs."""
        ...

    def ticket_by_number(self, number: str) -> TicketRef | None:
        """The ticket with this number."""
        ...

    def is_participant(self, ticket: TicketRef, sender: Address) -> bool:
        """Whether sender takes part in the ticket (customer, watcher, agent, organisation)."""
        ...


@dataclass(frozen=True)
class ThreadMatch:
    """The ticket a mail joins (None: open a new one) and how that was decided."""

    ticket: TicketRef | None
    via: str  # references | token | stranger-token | new
    linked: TicketRef | None = None


def find_thread(mail: ParsedMail, index: ThreadIndex, tickets: TicketsConfig) -> ThreadMatch:
    """References first, then our subject token from a participant, else a new ticket."""
    ids = mail.thread_ids()
    if ids:
        found = index.ticket_for_message_ids(ids)
        if found is not None:
            return ThreadMatch(found, "references")
    number = find_token(tickets, mail.subject)
    if number is not None:
        found = index.ticket_by_number(number)
        if found is not None:
            if mail.from_ is not None and index.is_participant(found, mail.from_):
                return ThreadMatch(found, "token")
            return ThreadMatch(None, "stranger-token", linked=found)
    return ThreadMatch(None, "new")
