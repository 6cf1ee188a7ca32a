"""Agents' replies as mail clients write them, with the exact text the customer must receive.

Written for ticketgate (no other project's samples are copied): each client style
(Thunderbird, Apple Mail, Outlook, Gmail, iPhone, Yahoo, AOL), bottom-posted, inline and
top-posted, and quote headers and Outlook header blocks in each language we support. Shared
by ``tests/test_quoting.py`` and ``bench/reply_trim_bench.py`` (which measures
mail-parser-reply on the same table).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass


@dataclass(frozen=True)
class Sample:
    """One agent reply body (commands already removed) and what the customer must get."""

    name: str
    client: str
    language: str
    style: str  # top | bottom | inline | none (nothing of the agent's)
    text: str
    expected: str


def body(text: str) -> str:
    """A sample body written indented in the source; '␣' marks a significant trailing space."""
    return textwrap.dedent(text).lstrip("\n").replace("␣", " ")


def sample(name: str, client: str, language: str, style: str, text: str, expected: str) -> Sample:
    """A Sample from indented source text."""
    return Sample(name, client, language, style, body(text), body(expected).rstrip("\n"))


def all_samples() -> list[Sample]:
    """Every sample, client styles first, then languages."""
    from tests.reply_samples.clients import CLIENTS
    from tests.reply_samples.languages import LANGUAGES

    return [*CLIENTS, *LANGUAGES]
