"""Commands on the configuration alone: check it, show the agents' signed addresses."""

from __future__ import annotations

import argparse
import sys

from gateway.agents.identity import NEW_TICKET, signed_reply_address
from gateway.cli.common import Subcommands, command
from gateway.config import Config
from gateway.rules.loader import load_rules, vocabulary


def register(sub: Subcommands) -> None:
    """`check` and `agents`."""
    command(sub, "check", "validate the configuration", config_only=_check)
    command(sub, "agents", "agents and their personal addresses for new tickets", config_only=_agents)


def _check(args: argparse.Namespace, config: Config) -> int:
    """Validate config, then every rule file; print every problem with file, line and key."""
    count = 0
    if config.rules_folder is not None:
        rules, errors = load_rules(config.rules_folder, vocabulary(config))
        for error in errors:
            print(f"rule error: {error}", file=sys.stderr)
        if errors:
            return 1
        count = len(rules)
    print(f"{config.path or '<defaults>'}: OK ({len(config.mailboxes)} mailbox(es), "
          f"{len(config.channels)} channel(s), {len(config.agents)} agent(s), {count} rule(s))")
    return 0


def _agents(args: argparse.Namespace, config: Config) -> int:
    """Each agent with the signed address that proves a new mail (#customer, #internal) is theirs."""
    if not config.secret:
        print("note: no secret configured: signed addresses are off; agents prove themselves "
              "only through trusted_authservers (DKIM/SPF)", file=sys.stderr)
    for agent in config.agents:
        channels = ", ".join(agent.channels) or "all channels"
        address = signed_reply_address(config, config.channels[0].address, NEW_TICKET, agent)
        print(f"{agent.name}\t{agent.display_name} <{agent.address}>\t{channels}\tnew tickets: {address}")
    return 0
