"""Guard stage: loop / auto-submitted / bulk / list / bounce classification."""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway.intake.addresses import SYSTEM_SENDERS
from gateway.intake.parse import ParsedMail

_NO_REPLY = re.compile(
    r"^(mailer-daemon|postmaster|no[-_.]?reply|do[-_.]?not[-_.]?reply|bounces?|"
    r"notifications?|auto[-_.]?reply)(\+[^@]*)?(@|$)",  # "MAILER-DAEMON" may come without a domain
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Verdict:
    """What the guard found: the classes of a mail (empty for a person's mail)."""

    classes: tuple[str, ...]

    @property
    def automatic(self) -> bool:
        """Sent by a machine: never answer it automatically."""
        return bool(self.classes)

    @property
    def label(self) -> str:
        """Comma-separated classes, as stored on the message."""
        return ",".join(self.classes)


def inspect(mail: ParsedMail, own_addresses: frozenset[str]) -> Verdict:
    """Classify a parsed mail; the caller decides what each class means."""
    classes: list[str] = []
    auto = mail.header("auto-submitted").strip().lower()
    if auto and not auto.startswith("no"):
        classes.append("auto-replied" if auto.startswith("auto-replied") else "auto-generated")
    precedence = mail.header("precedence").strip().lower()
    if precedence in ("bulk", "junk"):
        classes.append("bulk")
    if precedence == "list" or any(
        mail.header(h) for h in ("list-id", "list-unsubscribe", "list-post")
    ):
        classes.append("list")
    if mail.header("x-autoreply") or mail.header("x-autorespond"):
        classes.append("auto-replied")
    if is_bounce(mail):
        classes.append("bounce")
    sender = mail.sender
    if sender and _NO_REPLY.match(sender):
        classes.append("no-reply")
    loops = {v.strip().lower() for v in mail.headers.get("x-loop", [])}
    if sender in own_addresses or loops & own_addresses:
        classes.append("loop")
    return Verdict(tuple(dict.fromkeys(classes)))


def is_bounce(mail: ParsedMail) -> bool:
    """A delivery status notification (RFC 3464) or a classic MAILER-DAEMON bounce."""
    ctype = mail.header("content-type").lower()
    if ("multipart/report" in ctype and "delivery-status" in ctype) or mail.delivery_reports:
        return True
    sender = mail.sender
    system = sender.partition("@")[0] in SYSTEM_SENDERS
    return system and bool(
        re.search(r"(?i)undeliver|returned mail|delivery (status|fail)|failure notice",
                  mail.subject)
    )
