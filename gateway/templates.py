"""The template registry: every mail template by audience and purpose, and where they live.

Rules refer to templates by name (``auto_reply``, ``notify``), so the names are known below
the rules and outbound stages; ``gateway.outbound.render`` renders them.
"""

from __future__ import annotations

from pathlib import Path

BUILTIN = Path(__file__).resolve().parents[1] / "templates"

TEMPLATE_NAMES = frozenset({
    "customer/acknowledgement",
    "customer/agent_reply",
    "customer/status_changed",
    "customer/closed",
    "customer/rejected_followup",
    "customer/out_of_hours",
    "customer/waiting_reminder",
    "customer/merged",
    "agent/new_ticket",
    "agent/new_message",
    "agent/command_result",
    "agent/reminder",
    "agent/sla_warning",
    "agent/sla_breached",
    "portal/ticket_update",
    "watcher/update",
})


def template_names(override_folder: Path | None) -> frozenset[str]:
    """Registered names plus any an admin added in the override folder."""
    names = set(TEMPLATE_NAMES)
    if override_folder is not None and override_folder.is_dir():
        for path in override_folder.glob("*/*/*.txt.j2"):
            names.add(path.relative_to(override_folder).as_posix().split("/", 1)[1]
                      .removesuffix(".txt.j2"))
    return frozenset(names)
