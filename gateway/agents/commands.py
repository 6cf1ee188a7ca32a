"""Commands: '#status waiting' and friends on the first lines of a mail body (DESIGN 6)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.agents.quoting import split_leading_quote
from gateway.config import Config
from gateway.durations import format_minutes, parse_duration, parse_when
from gateway.intake.addresses import valid_address
from gateway.statuses import STATUSES, Status, parse_status
from gateway.thread.numbers import find_token

KNOWN = ("status", "priority", "assign", "channel", "category", "activity", "watch", "internal",
         "close", "customer", "remind", "time", "merge")
MAX_BOOKING_MINUTES = 24 * 60
LATER = ""  # a command whose result the apply step reports (it needs the store)
_LINE = re.compile(r"^#([a-z_]+)(?:[ \t]+(.*?))?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Command:
    """One command line as written."""

    name: str
    argument: str
    line: str


def split_commands(text: str) -> tuple[list[Command], str]:
    """Commands from the top of text (blank lines allowed between them) and the rest.

    >>> cmds, rest = split_commands("#status waiting\\n#priority 7\\n\\nHello!")
    >>> [(c.name, c.argument) for c in cmds], rest
    ([('status', 'waiting'), ('priority', '7')], 'Hello!')
    >>> split_commands("#hashtag is not a command\\nHi")[0]
    []
    """
    lines = text.replace("\r\n", "\n").split("\n")
    commands: list[Command] = []
    index = 0
    while index < len(lines):
        line = lines[index].strip()
        if not line:
            index += 1
            continue
        found = _LINE.match(line)
        if found is None or found.group(1).lower() not in KNOWN:
            break
        commands.append(Command(found.group(1).lower(), (found.group(2) or "").strip(), line))
        index += 1
    if not commands:
        return [], text
    return commands, "\n".join(lines[index:]).strip()


def find_commands(text: str) -> tuple[list[Command], str]:
    """Commands at the top of a mail, or at the top of a bottom poster's text below the quote.

    The rest keeps the quote (without the command lines), so trimming still sees the reply.

    >>> cmds, rest = find_commands("On Mon, 23 Nov 2026 Bob wrote:\\n> Hi\\n\\n#internal\\nNote.")
    >>> [c.name for c in cmds], rest
    (['internal'], 'On Mon, 23 Nov 2026 Bob wrote:\\n> Hi\\n\\nNote.')
    """
    commands, rest = split_commands(text)
    if commands:
        return commands, rest
    quote, below = split_leading_quote(text)
    commands, rest = split_commands(below) if quote else ([], text)
    if not commands:
        return [], text
    return commands, f"{quote.rstrip()}\n\n{rest}"


@dataclass
class Plan:
    """What valid commands ask for; problems with invalid ones, in words for the agent."""

    status: str | None = None
    priority: int | None = None
    owner: str | None = None
    channel: str | None = None
    categories: tuple[str, ...] = ()
    activity_type: str | None = None
    watchers: tuple[str, ...] = ()
    internal: bool = False
    customer: tuple[str, str] | None = None  # (name, address) for a ticket on their behalf
    reminders: tuple[tuple[datetime, str, str], ...] = ()  # (due, note, command line)
    bookings: tuple[tuple[int, str, str], ...] = ()  # (minutes, activity, command line)
    merge_into: tuple[str, str] | None = None  # (ticket number, command line)
    results: tuple[str, ...] = ()


def plan_commands(config: Config, commands: list[Command], by_agent: bool,
                  now: datetime | None = None) -> Plan:
    """Check every command; valid ones go into the plan, invalid ones only into results."""
    plan = Plan()
    results: list[str] = []
    for command in commands:
        if not by_agent and command.name != "close":
            continue  # customers may only close; anything else is plain text
        problem = _apply(config, plan, command, now or datetime.now(UTC))
        # A command the store carries out keeps its place; the apply step fills its result in.
        results.append(command.line if problem == LATER else f"{command.line}: {problem or 'done'}")
    plan.results = tuple(results)
    return plan


def _apply(config: Config, plan: Plan, command: Command, now: datetime) -> str | None:
    """Put one command into the plan; the reason it is invalid otherwise."""
    name, arg = command.name, command.argument
    if name in ("remind", "time", "merge"):
        return _apply_timed(config, plan, command, now)
    if name == "status":
        status = parse_status(arg)
        if status is None:
            return f"unknown status {arg!r} (use one of {', '.join(STATUSES)})"
        plan.status = status
    elif name == "close":
        plan.status = Status.CLOSED
    elif name == "priority":
        if not arg.isdigit() or not 1 <= int(arg) <= 9:
            return f"priority must be a number from 1 to 9, got {arg!r}"
        plan.priority = int(arg)
    elif name == "assign":
        agent = next((a for a in config.agents if arg.lower() in (a.name.lower(), a.address)), None)
        if agent is None:
            return f"unknown agent {arg!r} (known: {', '.join(a.name for a in config.agents)})"
        plan.owner = agent.name
    elif name == "channel":
        if config.channel(arg) is None:
            return f"unknown channel {arg!r} (known: {', '.join(c.name for c in config.channels)})"
        plan.channel = arg
    elif name in ("category", "activity"):
        if not arg:
            return f"#{name} needs a name"
        if name == "category":
            plan.categories += (arg,)
        else:
            plan.activity_type = arg
    elif name == "watch":
        address = valid_address(arg)
        if address is None:
            return f"{arg!r} is not a valid address"
        plan.watchers += (address,)
    elif name == "internal":
        plan.internal = True
    elif name == "customer":
        found = re.match(r"^(.*?)\s*<([^>]+)>$", arg) or re.match(r"^()(\S+@\S+)$", arg)
        address = valid_address(found.group(2)) if found else None
        if address is None or found is None:
            return "needs a name and an address: #customer Jane Doe <jane@example.org>"
        plan.customer = (found.group(1).strip().strip('"'), address)
    return None


def _apply_timed(config: Config, plan: Plan, command: Command, now: datetime) -> str | None:
    """#remind, #time and #merge into the plan (the store reports their results)."""
    name, arg = command.name, command.argument
    if name == "remind":
        try:
            due, note = parse_when(arg, config.tickets.zone, now)
        except ValueError as exc:
            return str(exc)
        plan.reminders += ((due, note, command.line),)
        return LATER
    if name == "time":
        word, _, activity = arg.partition(" ")
        spent = parse_duration(word)
        if spent is None:
            return f"{word!r} is not a duration: #time 30m, #time 1h30m, #time 1.5h [activity]"
        minutes = int(spent.total_seconds() // 60)
        if not 1 <= minutes <= MAX_BOOKING_MINUTES:
            return f"{format_minutes(minutes)} is not a booking (1 minute to 24 hours)"
        plan.bookings += ((minutes, activity.strip(), command.line),)
        return LATER
    word = arg.split()[0].strip("[]#") if arg.split() else ""
    number = find_token(config.tickets, f"[#{word}]")
    if number is None:
        return f"{arg!r} is not a ticket number: #merge T20261123.0007 merges this ticket into it"
    plan.merge_into = (number, command.line)
    return LATER
