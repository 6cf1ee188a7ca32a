"""What a queued mail will say: its subject and text rendered now, for `tickets show`.

A mail is rendered when it is sent; until then its stored subject and text are empty. An
admin looking at a ticket before SMTP is set up sees what will go out, marked as a preview.
"""

from __future__ import annotations

import json
from typing import Any

from jinja2 import TemplateError
from sqlmodel import Session

from gateway.config import Config
from gateway.outbound.outbox import subject_with_token
from gateway.outbound.render import Renderer
from store.models import OutboxMail


def fill_previews(session: Session, config: Config, detail: dict[str, Any]) -> None:
    """Give every not yet sent message of a ticket detail its rendered subject and text."""
    renderer: Renderer | None = None
    for message in detail["messages"]:
        entry = message.get("outbox")
        if entry is None or message["subject"] or message["text"]:
            continue
        row = session.get(OutboxMail, entry["id"])
        if row is None:
            continue
        renderer = renderer or Renderer(config.templates_folder)
        context = json.loads(row.context)
        context.pop("_meta", None)
        try:
            rendered = renderer.render(row.template, row.language, context)
        except (TemplateError, KeyError, ValueError) as exc:
            message["text"] = f"(cannot render {row.template}: {exc})"
            continue
        message["subject"] = subject_with_token(rendered.subject, detail["number"])
        message["text"] = rendered.text
        entry["preview"] = True
