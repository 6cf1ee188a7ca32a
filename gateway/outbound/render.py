"""Outbound templates: one Jinja environment, text and HTML from one context.

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

from gateway.templates import BUILTIN


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
