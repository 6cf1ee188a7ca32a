"""What every request handler shares: the engine, the configuration, the rules in force."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from sqlalchemy.engine import Engine

from gateway.config import Config
from gateway.rules.loader import RuleBook


@dataclass(frozen=True)
class WebContext:
    """The service's parts the HTTP door uses (one per app)."""

    engine: Engine
    config: Config
    rules: RuleBook

    @property
    def max_files(self) -> int:
        """Attachments on one request."""
        return self.config.http.max_attachments if self.config.http else 20

    @property
    def max_request_bytes(self) -> int:
        """Largest request body: a mail's size limit plus room for base64 and JSON."""
        return self.config.limits.max_message_bytes * 4 // 3 + 1024 * 1024


def context(request: Request) -> WebContext:
    """The app's context."""
    found: WebContext = request.app.state.web
    return found
