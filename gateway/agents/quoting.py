"""Reply trimming: keep what an agent wrote, drop the quoted history and the signature."""

from __future__ import annotations

import re

# A line that starts the quoted history, in the languages and clients we meet.
_HISTORY = re.compile(
    r"^\s*("
    r"-{2,}\s*(original message|ursprüngliche nachricht|message d'origine|mensaje original|"
    r"messaggio originale|oorspronkelijk bericht|forwarded message|weitergeleitete nachricht)\s*-{2,}"
    r"|on .{4,200} wrote:"
    r"|am .{4,200} schrieb .{0,200}:"
    r"|le .{4,200} a écrit\s*:"
    r"|el .{4,200} escribió:"
    r"|op .{4,200} schreef .{0,200}:"
    r"|il .{4,200} ha scritto:"
    r"|_{10,}"
    r")\s*$",
    re.IGNORECASE,
)
# Outlook's header block: From/Von, then Sent/Gesendet within the next lines.
_OUTLOOK_FROM = re.compile(r"^\s*\*?(from|von|de|da|van)\s*:\*?\s", re.IGNORECASE)
_OUTLOOK_SENT = re.compile(r"^\s*\*?(sent|gesendet|date|datum|envoyé|enviado|inviato|verzonden)\s*:",
                           re.IGNORECASE)
_OUTLOOK_TO = re.compile(r"^\s*\*?(to|an|à|para|a|aan|subject|betreff|objet|asunto|oggetto|"
                         r"onderwerp|cc)\s*:", re.IGNORECASE)
_SIGNATURE = re.compile(r"^(-- ?|—|__)\s*$")


def _outlook_block(lines: list[str], index: int) -> bool:
    """From:, then Sent:/Date: and To:/Subject: right below it: a quoted header block."""
    below = lines[index + 1:index + 5]
    return (bool(_OUTLOOK_FROM.match(lines[index])) and any(_OUTLOOK_SENT.match(x) for x in below)
            and any(_OUTLOOK_TO.match(x) for x in below))


def trim_reply(text: str) -> str:
    """The new part of a reply: up to the quoted history, without the signature ('' if none).

    >>> trim_reply("Thanks, fixed.\\n\\n-- \\nAlice\\n\\nOn Mon, 23 Nov 2026 Bob wrote:\\n> old")
    'Thanks, fixed.'
    >>> trim_reply("Erledigt.\\n\\nVon: Kunde <k@example.org>\\nGesendet: Montag\\nBetreff: x")
    'Erledigt.'
    >>> trim_reply("Logged:\\nFrom: billing@example.com\\nDate: today\\n\\nCheck spam.")
    'Logged:\\nFrom: billing@example.com\\nDate: today\\n\\nCheck spam.'
    >>> trim_reply("On Mon, Bob wrote:\\n> only history")
    ''
    """
    lines = text.replace("\r\n", "\n").split("\n")
    cut = len(lines)
    for index, line in enumerate(lines):
        joined = f"{line} {lines[index + 1]}" if index + 1 < len(lines) else line
        if _HISTORY.match(line) or _SIGNATURE.match(line) or _HISTORY.match(joined):
            cut = index
            break
        if _outlook_block(lines, index):
            cut = index
            break
        if line.startswith(">") and all(not x.strip() or x.startswith(">") for x in lines[index:]):
            cut = index
            break
    return "\n".join(lines[:cut]).strip()
