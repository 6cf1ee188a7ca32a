"""A composed mail as the bytes that go on the wire, written directly.

What ``email.generator.BytesGenerator`` writes for our compat32 mails (CRLF line ends,
headers folded by the same policy), without its generic machinery, which took a third of
the mailer's time, and without its ``mangle_from_``: compat32 turned every body line
starting with "From " into ">From ", a change the customer saw. Our bodies are
quoted-printable or base64 and go over SMTP, where such lines need no escaping.
"""

from __future__ import annotations

import re
from email.message import Message
from email.policy import compat32

_POLICY = compat32.clone(linesep="\r\n", cte_type="8bit", mangle_from_=False)
_MAX_LINE = 78
_NEWLINE = re.compile(r"\r\n|\r|\n")


def wire_bytes(message: Message, utf8: bool = False) -> bytes:
    """The mail's bytes; a mail not built on compat32 parts goes through the generator.

    utf8: the mail goes with SMTPUTF8 (an address outside ASCII), so a generated mail's
    headers are written in UTF-8 (RFC 6532) instead of encoded words, which would break
    such an address.
    """
    out: list[bytes] = []
    if not _write(message, out):
        return _generated(message, utf8)
    return b"".join(out)


def _generated(message: Message, utf8: bool) -> bytes:
    """The stdlib generator's bytes, From lines left alone."""
    from email.generator import BytesGenerator
    from email.policy import EmailPolicy
    from io import BytesIO

    buffer = BytesIO()
    policy = message.policy.clone(linesep="\r\n", cte_type="8bit", mangle_from_=False)
    if utf8 and isinstance(policy, EmailPolicy):  # compat32 knows no UTF-8 headers
        policy = policy.clone(utf8=True)
    BytesGenerator(buffer, policy=policy).flatten(message)
    return buffer.getvalue()


def _write(part: Message, out: list[bytes]) -> bool:
    """Append one part (headers, then body or subparts); False when it is not ours to write."""
    if part.policy is not compat32 or part.preamble is not None or part.epilogue is not None:
        return False
    for name, value in part.raw_items():
        if not isinstance(value, str):  # compose's folded value: compat32 asks it the same way
            text = value.encode(linesep="\r\n", maxlinelen=_MAX_LINE)
            out.append(f"{name}: {text}\r\n".encode())  # UTF-8 only in a SMTPUTF8 mail
        elif value.isascii() and "\r" not in value and "\n" not in value \
                and len(name) + 2 + len(value) <= _MAX_LINE:
            out.append(f"{name}: {value}\r\n".encode("ascii"))
        else:
            out.append(_POLICY.fold_binary(name, value))
    out.append(b"\r\n")
    payload = part.get_payload()
    if part.is_multipart():
        boundary = part.get_boundary()
        if boundary is None or not isinstance(payload, list):
            return False
        for index, sub in enumerate(payload):
            opening = "--" if index == 0 else "\r\n--"
            out.append(f"{opening}{boundary}\r\n".encode("ascii"))
            if not _write(sub, out):
                return False
        out.append(f"\r\n--{boundary}--\r\n".encode("ascii"))
        return True
    if payload is None:
        return True
    if not isinstance(payload, str) or not payload.isascii():
        return False  # 8-bit or surrogate-escaped payloads: the generator knows their rules
    lines = _NEWLINE.split(payload)
    out.append("\r\n".join(lines).encode("ascii"))
    return True
