"""Outbound templates: one Jinja environment, a registry of names, text and HTML from one context.

Templates live in ``templates/<language>/<audience>/<purpose>.{txt,html}.j2``; an admin's
folder (``[templates] folder``) with the same layout overrides any of them. The text
template sets ``subject``; HTML is autoescaped, text is not (it is never shown as HTML).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
)

BUILTIN = Path(__file__).resolve().parents[2] / "templates"

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

# DESIGN section 6: what customers and portal users see of an internal status.
STATUS_VIEW = {
    "new": ("progress", "orange"),
    "open": ("progress", "orange"),
    "waiting_internal": ("progress", "orange"),
    "waiting_external": ("reply", "red"),
    "resolved": ("closed", "green"),
    "closed": ("closed", "green"),
    "postponed": ("postponed", "grey"),
}
STATUS_LABELS = {
    "en": {"progress": "In progress", "reply": "Reply expected", "closed": "Closed",
           "postponed": "Postponed"},
    "de": {"progress": "In Bearbeitung", "reply": "Antwort erwartet", "closed": "Geschlossen",
           "postponed": "Zurückgestellt"},
}
COLOURS = {"orange": "#e8890c", "red": "#d93025", "green": "#1e8e3e", "grey": "#80868b"}


def customer_status(status: str, language: str) -> dict[str, str]:
    """The customer/portal label and traffic-light colour of an internal status.

    >>> customer_status("waiting_external", "de")
    {'label': 'Antwort erwartet', 'colour': 'red', 'hex': '#d93025'}
    """
    key, colour = STATUS_VIEW.get(status, ("progress", "orange"))
    labels = STATUS_LABELS.get(language, STATUS_LABELS["en"])
    return {"label": labels[key], "colour": colour, "hex": COLOURS[colour]}


@dataclass(frozen=True)
class Rendered:
    """One mail's content: subject, text part, HTML part."""

    subject: str
    text: str
    html: str


def _autoescape(name: str | None) -> bool:
    return bool(name) and not str(name).endswith(".txt.j2")


class Renderer:
    """The one Jinja environment: admin overrides first, then the shipped templates."""

    def __init__(self, override_folder: Path | None = None) -> None:
        loaders = [FileSystemLoader(str(override_folder))] if override_folder else []
        loaders.append(FileSystemLoader(str(BUILTIN)))
        self.env = Environment(
            loader=ChoiceLoader(loaders),
            autoescape=_autoescape,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )

    def render(self, name: str, language: str, context: dict[str, Any]) -> Rendered:
        """Render name in language (English when that language lacks the template)."""
        for lang in dict.fromkeys((language, "en")):
            try:
                text_template = self.env.get_template(f"{lang}/{name}.txt.j2")
                html_template = self.env.get_template(f"{lang}/{name}.html.j2")
            except TemplateNotFound:
                continue
            values = {**context, "language": lang}
            module = text_template.make_module(values)
            subject = " ".join(str(getattr(module, "subject", "")).split())
            return Rendered(subject=subject, text=str(module).strip() + "\n",
                            html=html_template.render(values))
        raise TemplateNotFound(f"{language}/{name}")


def template_names(override_folder: Path | None) -> frozenset[str]:
    """Registered names plus any an admin added in the override folder."""
    names = set(TEMPLATE_NAMES)
    if override_folder is not None and override_folder.is_dir():
        for path in override_folder.glob("*/*/*.txt.j2"):
            names.add(path.relative_to(override_folder).as_posix().split("/", 1)[1]
                      .removesuffix(".txt.j2"))
    return frozenset(names)
