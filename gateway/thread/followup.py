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
    via: str  # references | token | stranger-references | stranger-token | new
    linked: TicketRef | None = None


def find_thread(mail: ParsedMail, index: ThreadIndex, tickets: TicketsConfig, *,
                bounce: bool = False) -> ThreadMatch:
    """Our Message-IDs first, then our subject token; either only for a participant.

    One rule for both ways in: a mail joins a ticket only when its sender takes part in it
    (customer, watcher, agent, the customer's organisation). Anyone else who refers to a
    ticket, by quoting its token or by replying to a forwarded mail of ours, opens a new
    ticket linked to it: never theirs to write into. A delivery report (bounce) threads by
    the Message-ID it returns, whoever sent it: MAILER-DAEMON takes part in nothing.
    """
    ids = mail.thread_ids()
    if ids:
        found = index.ticket_for_message_ids(ids)
        if found is not None:
            if bounce or _takes_part(mail, index, found):
                return ThreadMatch(found, "references")
            return ThreadMatch(None, "stranger-references", linked=found)
    number = find_token(tickets, mail.subject)
    if number is not None:
        found = index.ticket_by_number(number)
        if found is not None:
            if _takes_part(mail, index, found):
                return ThreadMatch(found, "token")
            return ThreadMatch(None, "stranger-token", linked=found)
    return ThreadMatch(None, "new")


def _takes_part(mail: ParsedMail, index: ThreadIndex, ticket: TicketRef) -> bool:
    return mail.from_ is not None and index.is_participant(ticket, mail.from_)
