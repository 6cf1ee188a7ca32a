"""Delivery reports (RFC 3464): the machine-readable part kept, each recipient's verdict read."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from email.message import Message

_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
_BLOCK_GAP = re.compile(r"\r?\n[ \t]*\r?\n")
_FIELD = re.compile(r"^([!-9;-~]+):[ \t]*(.*)$")


@dataclass(frozen=True)
class DeliveryReport:
    """One recipient of a delivery report: what happened to the mail sent there, and why."""

    recipient: str  # the address after "rfc822;", lower-cased (as written when it has no @)
    action: str = ""  # failed | delayed | delivered | relayed | expanded
    status: str = ""  # RFC 3463 code, e.g. 5.1.1
    diagnostic_code: str = ""  # the remote server's words, e.g. "smtp; 550 5.1.1 no such user"
    remote_mta: str = ""

    def as_dict(self) -> dict[str, str]:
        """For storage and JSON output."""
        return asdict(self)


def status_text(part: Message) -> str:
    """The readable text of a message/delivery-status part, however the parser split it.

    The stdlib reads the part as a list of header blocks; we give the blocks back as the
    text they were, so the report is kept word for word.
    """
    payload = part.get_payload()
    if isinstance(payload, list):
        blocks = []
        for block in payload:
            if isinstance(block, Message):
                blocks.append("\n".join(f"{name}: {_clean(str(value))}"
                                        for name, value in block.raw_items()))
        return "\n\n".join(b for b in blocks if b) + "\n"
    data = part.get_payload(decode=True)
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return str(payload or "")


def read_reports(text: str) -> list[DeliveryReport]:
    """Each recipient block of a delivery-status text (the per-message block is skipped).

    >>> (report,) = read_reports("Reporting-MTA: dns; mx.example.org\\n\\n"
    ...     "Final-Recipient: rfc822; <Jo@Example.org>\\nAction: failed\\n"
    ...     "Status: 5.1.1 (user unknown)\\nDiagnostic-Code: smtp; 550 5.1.1\\n  no such user\\n")
    >>> report.recipient, report.action, report.status, report.diagnostic_code
    ('jo@example.org', 'failed', '5.1.1', 'smtp; 550 5.1.1 no such user')
    """
    found = []
    for block in _BLOCK_GAP.split(text):
        fields = _fields(block)
        recipient = fields.get("final-recipient") or fields.get("original-recipient")
        if recipient is None:
            continue
        status = _STATUS.search(fields.get("status", ""))
        found.append(DeliveryReport(
            recipient=recipient.rpartition(";")[2].strip().strip("<>").lower(),
            action=fields.get("action", "").strip().lower()[:40],
            status=status.group(1) if status else "",
            diagnostic_code=fields.get("diagnostic-code", "")[:2000],
            remote_mta=fields.get("remote-mta", "")[:500],
        ))
    return found


def _fields(block: str) -> dict[str, str]:
    """The fields of one block, unfolded, first value of each name."""
    fields: dict[str, str] = {}
    name = None
    for line in block.splitlines():
        if line[:1] in (" ", "\t") and name is not None:
            fields[name] = f"{fields[name]} {line.strip()}".strip()
            continue
        match = _FIELD.match(line)
        name = match.group(1).lower() if match else None
        if name is not None and match is not None:
            if name in fields:
                name = None  # a repeated field: keep the first
            else:
                fields[name] = match.group(2).strip()
    return fields


def _clean(value: str) -> str:
    """A raw header value as text: 8-bit bytes kept by the parser read as UTF-8."""
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
