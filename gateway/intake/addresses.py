"""Mail addresses: the parsed form every stage shares, and one syntax check."""

from __future__ import annotations

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
