"""Ticket numbers and the subject token that carries them."""

from __future__ import annotations

import re
from datetime import datetime

from gateway.config import TicketsConfig


def counter_scope(cfg: TicketsConfig, now: datetime) -> str:
    """The counter a new number is drawn from: one per local day, or one for all time.

    >>> from datetime import UTC
    >>> cfg = TicketsConfig(timezone="Europe/Berlin")
    >>> counter_scope(cfg, datetime(2026, 11, 23, 23, 30, tzinfo=UTC))
    'T20261124'
    """
    if cfg.number_format == "counter":
        return cfg.prefix
    return cfg.prefix + now.astimezone(cfg.zone).strftime("%Y%m%d")


def format_number(cfg: TicketsConfig, scope: str, value: int) -> str:
    """The ticket number for the value-th ticket of a scope.

    >>> format_number(TicketsConfig(), "T20261123", 7)
    'T20261123.0007'
    >>> format_number(TicketsConfig(number_format="counter"), "T", 42)
    'T0042'
    """
    if cfg.number_format == "counter":
        return f"{scope}{value:0{cfg.counter_digits}d}"
    return f"{scope}.{value:0{cfg.counter_digits}d}"


def token(number: str) -> str:
    """The subject token of a ticket.

    >>> token("T20261123.0007")
    '[#T20261123.0007]'
    """
    return f"[#{number}]"


def token_pattern(cfg: TicketsConfig) -> re.Pattern[str]:
    """Matches our token in a subject, in both number formats (admins may switch)."""
    prefix = re.escape(cfg.prefix)
    return re.compile(rf"\[#?\s*({prefix}\d{{8}}\.\d+|{prefix}\d+)\s*\]", re.IGNORECASE)


def find_token(cfg: TicketsConfig, subject: str) -> str | None:
    """The ticket number in a subject, if it carries our token.

    >>> find_token(TicketsConfig(), "AW: Drucker [#T20261123.0007] kaputt")
    'T20261123.0007'
    """
    found = token_pattern(cfg).search(subject)
    return found.group(1).upper() if found else None


_PREFIX = re.compile(
    r"^\s*(?:(?:re|fwd?|aw|wg|sv|vs|antw|antwort|rif|r|tr|réf|ref|enc|res|odp|pd|ynt|fs|vl|"
    r"rv|i|doorst|vb|ats|πρθ|απ|на|回复|答复|转发|轉寄|回覆|返信|転送)\s*(?:\[\d+\]|\(\d+\))?\s*[:：]"
    r"|\[(?:ext|external|extern)\])\s*",
    re.IGNORECASE,
)


def strip_prefixes(subject: str) -> str:
    """A subject without reply/forward prefixes in many languages, however often repeated.

    >>> strip_prefixes("AW: WG: Re[2]: SV: Drucker")
    'Drucker'
    >>> strip_prefixes("回复: 答复：打印机")
    '打印机'
    """
    previous = None
    while previous != subject:
        previous, subject = subject, _PREFIX.sub("", subject, count=1)
    return subject.strip()


def ticket_subject(cfg: TicketsConfig, subject: str) -> str:
    """A new ticket's subject: prefixes and any of our tokens removed."""
    return strip_prefixes(token_pattern(cfg).sub(" ", subject)).strip() or "(no subject)"
