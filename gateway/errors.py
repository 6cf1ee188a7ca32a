"""The one exception tree of ticketgate.

    TicketgateError
    ├── ConfigError          bad admin input (config file); names file and key
    ├── SourceError          a mail source failed
    │   └── TemporarySourceError   network fault or timeout: reconnect and retry
    └── SendError            (gateway.outbound.smtp) an outbound mail was not handed over
        ├── TemporarySendError     4xx, network: retry later
        └── PermanentSendError     5xx: give up, record

Expected mail outcomes (new ticket, follow-up, duplicate, quarantined) are values of
``Disposition``, never exceptions.
"""

from __future__ import annotations


class TicketgateError(Exception):
    """Base of every error ticketgate raises on purpose."""


class ConfigError(TicketgateError):
    """The configuration is invalid; the message names file, key and value."""


class SourceError(TicketgateError):
    """A mail source failed in a way retrying will not fix."""


class TemporarySourceError(SourceError):
    """A mail source failed in a way a reconnect may fix (network, timeout)."""
