"""Mail addresses: the parsed form every stage shares, and one syntax check."""

from __future__ import annotations

import email.utils
import re
from collections.abc import Callable
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email


@dataclass(frozen=True)
class Address:
    """A mailbox: lower-cased address and decoded display name."""

    address: str
    name: str = ""

    @property
    def domain(self) -> str:
        """The part after the @, or empty."""
        return self.address.rpartition("@")[2] if "@" in self.address else ""


def address_problem(text: str) -> str | None:
    """Why text is not a usable mail address (None: it is one); no DNS lookups.

    >>> address_problem("jane@example.org") is None, address_problem("jane at example") is None
    (True, False)
    """
    try:
        validate_email(text.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        return str(exc)
    return None


def valid_address(text: str) -> str | None:
    """The normalised, lower-cased address, or None when text is not a valid one.

    >>> valid_address(" Jane@Example.ORG "), valid_address("a b@example.org")
    ('jane@example.org', None)
    """
    try:
        return validate_email(text.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        return None


# RFC 5322 addr-spec (with RFC 6532 UTF-8): dot-atom or quoted local part, dot-atom or literal domain.
_ATOM = r"[^\s\"(),.:;<>@\[\]\\\x00-\x1f\x7f]+"
_ADDR_SPEC = re.compile(
    rf'(?:{_ATOM}(?:\.{_ATOM})*|"(?:[^"\\\r\n]|\\.)*")@(?:{_ATOM}(?:\.{_ATOM})*|\[[^\[\]\\\s]*\])'
)
_EMPTY_GROUP = re.compile(r"^[^:<>@]*:\s*;?\s*$")  # "undisclosed-recipients:;"
# Senders that write no domain and still matter: the mail system itself.
SYSTEM_SENDERS = frozenset({"mailer-daemon", "postmaster"})


def is_addr_spec(text: str) -> bool:
    """Whether text is an address as RFC 5322 writes one (no deliverability judged).

    >>> is_addr_spec("root@localhost"), is_addr_spec('"#FAX#"@fax.example')
    (True, True)
    >>> is_addr_spec("john smith@example.com"), is_addr_spec("jane@exa mple.com")
    (False, False)
    """
    return _ADDR_SPEC.fullmatch(text) is not None


def mailboxes(value: str, decode: Callable[[str], str]) -> tuple[list[Address], list[str]]:
    """The addresses of one header value, each exactly as written, and what was not one.

    Nothing is repaired: an address the parser would have to change (spaces, a lost
    bracket) is reported and left out, so no mail ever goes to an address nobody wrote.

    >>> mailboxes("Jane <jane@example.org>, John Smith <john smith@example.org>", str)
    ([Address(address='jane@example.org', name='Jane')], ["'john smith@example.org' is not a valid address"])
    """
    found: list[Address] = []
    problems: list[str] = []
    text = decode(value)
    written = text.lower()
    try:
        pairs = email.utils.getaddresses([value])
    except (TypeError, ValueError, IndexError):
        pairs = []
    for display, raw in pairs:
        address = decode(raw).strip()
        if not address:
            continue
        lowered = address.lower()
        if lowered not in written:  # the parser changed it ("jane@exa mple.com")
            problems.append(f"{text.strip()!r} holds no valid address")
        elif is_addr_spec(address) or lowered in SYSTEM_SENDERS:
            found.append(Address(lowered, decode(display)))
        else:
            problems.append(f"{address!r} is not a valid address")
    if not found and "<" not in value:
        bare = _unbracketed(text)
        if bare is not None:
            return [bare], [f"address taken from unbracketed {text.strip()!r}"]
    if not found and not problems and value.strip() and not _EMPTY_GROUP.match(value):
        problems.append(f"{text.strip()!r} holds no address")
    return found, problems


def _unbracketed(text: str) -> Address | None:
    """"Hans Meier hans.meier@example.net": the address, when the words before it name it.

    The words must reappear in the address's local part (or the address stands apart in
    parentheses); otherwise they may be the front of a broken local part
    ("john smith@example.com") and taking the rest would invent an address.

    >>> _unbracketed("Hans Meier hans.meier@example.net"), _unbracketed("john smith@example.com")
    (Address(address='hans.meier@example.net', name='Hans Meier'), None)
    """
    tokens = text.split()
    if len(tokens) < 2:
        return None
    last = tokens[-1]
    wrapped = last[:1] + last[-1:] == "()"  # "Name (jo@example.org)": set apart by the sender
    address = (last[1:-1] if wrapped else last).lower()
    if not is_addr_spec(address):
        return None
    local = address.rpartition("@")[0]
    words = [w.lower() for w in re.findall(r"[^\W\d_]{2,}", " ".join(tokens[:-1]))]
    if not wrapped and not any(w in local for w in words):
        return None
    return Address(address, " ".join(tokens[:-1]).strip(" \t\"'()"))
