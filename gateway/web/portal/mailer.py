"""The sign-in mail: the single-use link, rendered from portal/signin_link and sent over [smtp].

It is sent after the answer went out (a background task), so the answer takes as long for
an unknown address as for a customer's. A failed send is logged; the customer asks again.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

from sqlalchemy.engine import Engine

from gateway.auth.signin import SignIns
from gateway.config import Config
from gateway.errors import SendError
from gateway.outbound.outbox import header_safe
from gateway.outbound.render import Renderer
from gateway.outbound.smtp import MailSender, SmtpSender, outgoing

log = logging.getLogger("gateway.portal")
TEMPLATE = "portal/signin_link"


class LinkMailer:
    """Sends sign-in links through the configured SMTP server (or the sender given)."""

    def __init__(self, engine: Engine, config: Config, sender: Callable[[], MailSender] | None = None,
                 signins: SignIns | None = None) -> None:
        if sender is None:
            smtp = config.smtp
            if smtp is None:
                raise ValueError("the portal needs [smtp] to mail sign-in links")
            signin = (signins or SignIns(engine, config)).for_smtp(smtp)  # the service's token cache
            sender = lambda: SmtpSender(smtp, signin)  # noqa: E731
        self.config, self.sender = config, sender
        self.renderer = Renderer(config.templates_folder)

    def compose(self, address: str, link: str, language: str, minutes: int) -> EmailMessage:
        """The mail with the link, from the first channel's address."""
        channel = self.config.channels[0]
        rendered = self.renderer.render(TEMPLATE, language, {
            "link": link, "minutes": minutes, "recipient": {"address": address},
            "channel": {"name": channel.name, "display_name": channel.display_name or channel.name,
                        "address": channel.address}})
        mail = EmailMessage()
        mail["From"] = formataddr((header_safe(channel.display_name or ""), channel.address))
        mail["To"] = address
        mail["Subject"] = header_safe(rendered.subject)
        mail["Message-ID"] = f"<{uuid.uuid4().hex}@portal.{self.config.outbound.message_id_domain}>"
        mail["Date"] = format_datetime(datetime.now(UTC))
        mail["Auto-Submitted"] = "auto-generated"
        mail["X-Auto-Response-Suppress"] = "All"
        mail.set_content(rendered.text)
        mail.add_alternative(rendered.html, subtype="html")
        return mail

    async def send(self, address: str, link: str, language: str, minutes: int) -> None:
        """Send one link; log (never raise) when the server refuses or cannot be reached."""
        mail = self.compose(address, link, language, minutes)
        try:
            async with self.sender() as sender:
                await sender.send(outgoing(mail))
        except SendError as exc:
            log.warning("%s sign-in link not sent: %s", mail["Message-ID"], exc)
