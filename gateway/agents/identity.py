"""Agents: who wrote a mail, and the proof that an agent's mail really is the agent's.

A From header is typed by anyone. An agent's mail counts as the agent's only with proof:
it was sent to the signed reply address our notification gave that agent
(``support+T20261123.0007.<hmac>@example.com``; ``support+new.<hmac>@…`` for new tickets),
or a mail server the admin trusts says DKIM or SPF passed for the agent's domain.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from gateway.agents.authres import trusted_results
from gateway.config import AgentConfig, Config
from gateway.intake.parse import ParsedMail

_SIGNED = re.compile(r"^[^+@]+\+(?P<ticket>[a-z0-9.]+)\.(?P<mac>[0-9a-f]{16})@.+$")
NEW_TICKET = "NEW"


def reply_mac(secret: str, ticket: str, agent: str) -> str:
    """The HMAC that binds a ticket (or NEW) to an agent.

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
    return f"{local}+{ticket.lower()}.{reply_mac(config.secret, ticket, agent.address)}@{domain}"


def verify_reply_address(config: Config, address: str, sender: str) -> str | None:
    """The ticket number (or NEW) a signed address was made for, when it was made for sender."""
    found = _SIGNED.match(address.lower())
    if not config.secret or found is None:
        return None
    ticket = found.group("ticket").upper()
    expected = reply_mac(config.secret, ticket, sender)
    return ticket if hmac.compare_digest(expected, found.group("mac")) else None


def authenticated(config: Config, mail: ParsedMail, sender: str) -> str | None:
    """'dkim' or 'spf' when a trusted server's Authentication-Results vouch for sender.

    Only headers our own servers added count: above the first Received header added by a
    host outside them (``gateway.agents.authres``); a header the sender wrote proves nothing.
    SPF must name the address itself; DKIM, which signs for a domain, the address's domain.
    """
    if not config.trusted_authservers:
        return None
    domain = sender.rpartition("@")[2]
    for results in trusted_results(mail.header_fields, config.trusted_authservers,
                                   config.trusted_relays):
        for part in (p.strip().lower() for p in results.split(";")):
            dkim = re.search(r"^dkim=pass\b.*?header\.(?:d|i)=@?([^\s;]+)", part)
            if dkim and dkim.group(1).rpartition("@")[2] == domain:
                return "dkim"
            spf = re.search(r"^spf=pass\b.*?smtp\.mailfrom=([^\s;]+)", part)
            if spf and spf.group(1) == sender:
                return "spf"
    return None


@dataclass(frozen=True)
class Author:
    """Who wrote a mail: an agent (proven or not) or a customer."""

    agent: AgentConfig | None
    proof: str | None  # "signed address", "dkim", "spf"; None: unproven
    signed_ticket: str | None = None  # the ticket (or NEW) a signed address names

    def proven_for(self, ticket_number: str | None) -> AgentConfig | None:
        """The agent, when the proof covers this ticket (None: a new ticket).

        A signed address is made for one ticket (or for new tickets): used on another
        ticket it proves nothing, so a leaked address opens no other ticket to commands.
        """
        if self.proof is None:
            return None
        if self.proof == "signed address":
            wanted = NEW_TICKET if ticket_number is None else ticket_number.upper()
            if self.signed_ticket != wanted:
                return None
        return self.agent


def identify_author(config: Config, mail: ParsedMail) -> Author:
    """Identify stage: match the sender to an agent and look for the proof."""
    sender = mail.sender
    agent = next((a for a in config.agents if a.address == sender), None)
    if agent is None:
        return Author(None, None)
    recipients = [a.address for a in [*mail.to, *mail.cc]]
    recipients += [v.strip().strip("<>").lower() for name in ("delivered-to", "x-original-to")
                   for v in mail.headers.get(name, [])]
    for address in recipients:
        ticket = verify_reply_address(config, address, sender)
        if ticket is not None:
            return Author(agent, "signed address", ticket)
    method = authenticated(config, mail, sender)
    return Author(agent, method)
