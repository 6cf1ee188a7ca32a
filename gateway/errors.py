"""The one exception tree of ticketgate.

    TicketgateError
    ├── ConfigError                  bad admin input (config file); names file and key
    ├── TemporaryError               try again later: the service backs off, the CLI says so
    │   ├── StoreUnavailable             the database cannot be reached
    │   ├── TemporarySourceError         IMAP network fault or timeout (also a SourceError)
    │   ├── TemporarySendError           SMTP 4xx or network fault (also a SendError)
    │   └── TokenEndpointUnavailable     the OAuth token endpoint is down (network, 5xx, 429)
    ├── SourceError                  a mail source refused us (login, select): retrying won't fix it
    │   └── SignInError                  sign-in refused for good: revoked grant, wrong client
    │                                    secret, rejected token, untrusted certificate; says the fix
    └── SendError                    an outbound mail was not handed over
        └── PermanentSendError           5xx: give up, record

Expected mail outcomes (new ticket, follow-up, duplicate, quarantined) are values of
``Disposition``, never exceptions. Library errors are translated where the library is used.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError


class TicketgateError(Exception):
    """Base of every error ticketgate raises on purpose."""


class ConfigError(TicketgateError):
    """The configuration is invalid; the message names file, key and value."""


class TemporaryError(TicketgateError):
    """Something outside us is down for now; the same work will be tried again."""


class StoreUnavailable(TemporaryError):
    """The database could not be reached; the mail stays where it is and is tried again."""


class SourceError(TicketgateError):
    """A mail source failed in a way retrying will not fix."""


class TemporarySourceError(TemporaryError, SourceError):
    """A mail source failed in a way a reconnect may fix (network, timeout)."""


class SignInError(SourceError):
    """A mailbox (or SMTP) sign-in failed in a way only the admin can fix; the message names
    the mailbox and the fix (usually `ticketgate auth login NAME`)."""


class TokenEndpointUnavailable(TemporaryError):
    """The OAuth token endpoint could not be reached or answered 5xx/429; tried again later."""


class SendError(TicketgateError):
    """A mail could not be handed over."""


class TemporarySendError(TemporaryError, SendError):
    """Try again later (4xx reply, network fault, timeout).

    ``connection_lost`` means the rest of the batch was not attempted.
    """

    def __init__(self, message: str, connection_lost: bool = False) -> None:
        super().__init__(message)
        self.connection_lost = connection_lost


class PermanentSendError(SendError):
    """The server refused the mail for good (5xx)."""


@contextmanager
def store_errors(kinds: tuple[type[DBAPIError], ...] = (OperationalError, InterfaceError)
                 ) -> Iterator[None]:
    """Database outages (connection lost, locked, unreachable) become StoreUnavailable."""
    try:
        yield
    except kinds as exc:
        raise StoreUnavailable(str(exc.orig) if exc.orig is not None else str(exc)) from exc
