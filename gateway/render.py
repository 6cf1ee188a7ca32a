"""Outbound templates: the registry of names (audience/purpose) rules and the mailer refer to."""

from __future__ import annotations

from pathlib import Path

TEMPLATE_NAMES = frozenset({
    "customer/acknowledgement",
    "customer/agent_reply",
    "customer/status_changed",
    "customer/closed",
    "customer/rejected_followup",
    "customer/out_of_hours",
    "agent/new_ticket",
    "agent/new_message",
    "agent/command_result",
    "portal/ticket_update",
    "watcher/update",
})


def template_names(override_folder: Path | None) -> frozenset[str]:
    """Registered names plus any an admin added in the override folder."""
    names = set(TEMPLATE_NAMES)
    if override_folder is not None and override_folder.is_dir():
        for path in override_folder.rglob("*.txt.j2"):
            names.add(path.relative_to(override_folder).as_posix().removesuffix(".txt.j2"))
    return frozenset(names)
