"""IMAP folder names on the wire: modified UTF-7 (RFC 3501 5.1.3) in a quoted string.

aioimaplib sends a mailbox argument as given, so "Erledigt 2026" or "Gelöst" would break the
command or name another folder; every folder name goes through `wire_name` first.
"""

from __future__ import annotations

import base64


def modified_utf7(name: str) -> str:
    """The folder name in IMAP's modified UTF-7.

    >>> modified_utf7("Gelöst")
    'Gel&APY-st'
    >>> modified_utf7("R&D/Done")
    'R&-D/Done'
    >>> modified_utf7("~peter/mail/台北/日本語")  # RFC 3501's own example
    '~peter/mail/&U,BTFw-/&ZeVnLIqe-'
    """
    out: list[str] = []
    pending: list[str] = []
    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            out.append(_shifted(pending) + ("&-" if char == "&" else char))
        else:
            pending.append(char)
    out.append(_shifted(pending))
    return "".join(out)


def wire_name(name: str) -> str:
    """The folder name as an IMAP quoted string, ready to pass to aioimaplib.

    >>> wire_name('Done "old"')
    '"Done \\\\"old\\\\""'
    >>> wire_name("INBOX")
    '"INBOX"'
    """
    encoded = modified_utf7(name).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{encoded}"'


def _shifted(pending: list[str]) -> str:
    """A run of other characters as &base64-, emptying the run."""
    if not pending:
        return ""
    packed = base64.b64encode("".join(pending).encode("utf-16-be")).decode("ascii")
    pending.clear()
    return "&" + packed.rstrip("=").replace("/", ",") + "-"
