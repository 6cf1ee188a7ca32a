"""The thread stage's look-ups, answered from the database on the mail's session.

A merged ticket answers for the ticket it was merged into: its token and Message-IDs
keep threading there.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session

from gateway.intake.addresses import Address
from gateway.thread.followup import TicketRef
from store.keys import message_key
from store.models import Ticket
from store.queries import takes_part, ticket_by_number, ticket_for_message_keys
from store.timers import merge_target


def _ref(session: Session, ticket: Ticket | None) -> TicketRef | None:
    if ticket is None:
        return None
    ticket = merge_target(session, ticket)
    assert ticket.id is not None
    return TicketRef(ticket.id, ticket.number, ticket.status)


class SessionThreadIndex:
    """ThreadIndex on a session: Message-IDs, numbers and participants from the store."""

    def __init__(self, session: Session, agent_addresses: frozenset[str]) -> None:
        self.session = session
        self.agents = agent_addresses

    def ticket_for_message_ids(self, message_ids: Sequence[str]) -> TicketRef | None:
        """The newest ticket holding a message with one of these Message-IDs."""
        keys = [message_key(m) for m in message_ids[:100]]
        return _ref(self.session, ticket_for_message_keys(self.session, keys))

    def ticket_by_number(self, number: str) -> TicketRef | None:
        """The ticket with this number."""
        return _ref(self.session, ticket_by_number(self.session, number))

    def is_participant(self, ticket: TicketRef, sender: Address) -> bool:
        """Customer, watcher, agent, or a colleague from the customer's organisation."""
        return sender.address in self.agents or takes_part(self.session, ticket.id, sender.address)
