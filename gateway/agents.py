"""Agents: signed reply addresses that prove a mail comes from the agent it names."""

from __future__ import annotations

import hashlib
import hmac
import re

from gateway.config import AgentConfig, Config

_SIGNED = re.compile(r"^(?P<local>[^+@]+)\+(?P<ticket>[A-Za-z0-9.]+)\.(?P<mac>[0-9a-f]{16})@(?P<domain>.+)$")


def reply_mac(secret: str, ticket: str, agent: str) -> str:
    """The HMAC that binds a ticket to an agent.

    >>> reply_mac("s3cret", "T20261123.0007", "alice@example.com")
    'd4b5c490b1aa71b4'
    """
    digest = hmac.new(secret.encode(), f"{ticket.upper()}\0{agent.lower()}".encode(), hashlib.sha256)
    return digest.hexdigest()[:16]


def signed_reply_address(config: Config, channel_address: str, ticket: str, agent: AgentConfig) -> str:
    """support+T20261123.0007.<mac>@example.com, or the plain address when no secret is set."""
    if not config.secret:
        return channel_address
    local, _, domain = channel_address.partition("@")
    return f"{local}+{ticket}.{reply_mac(config.secret, ticket, agent.address)}@{domain}"


def verify_reply_address(config: Config, address: str, sender: str) -> str | None:
    """The ticket number a signed address is valid for when sender is the agent it was made
    for; None otherwise."""
    found = _SIGNED.match(address.lower())
    if not config.secret or found is None:
        return None
    ticket = found.group("ticket").upper()
    expected = reply_mac(config.secret, ticket, sender)
    return ticket if hmac.compare_digest(expected, found.group("mac")) else None
