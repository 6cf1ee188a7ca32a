"""Every mail fixture parses to what its .expected.json says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gateway.intake.guard import inspect
from gateway.intake.htmltext import SANITIZERS
from gateway.intake.parse import parse_mail

FIXTURES = Path(__file__).parent / "fixtures"
CASES = sorted(p.stem for p in FIXTURES.glob("*.eml"))


def test_every_fixture_has_expectations() -> None:
    assert len(CASES) >= 20
    for name in CASES:
        assert (FIXTURES / f"{name}.expected.json").exists(), name


@pytest.mark.parametrize("sanitizer", sorted(SANITIZERS))
@pytest.mark.parametrize("name", CASES)
def test_fixture(name: str, sanitizer: str) -> None:
    expected: dict[str, Any] = json.loads((FIXTURES / f"{name}.expected.json").read_text("utf-8"))
    mail = parse_mail((FIXTURES / f"{name}.eml").read_bytes(), SANITIZERS[sanitizer])
    verdict = inspect(mail, frozenset({"support@example.com"}))
    if "subject" in expected:
        assert mail.subject == expected["subject"]
    if "from" in expected:
        if expected["from"] is None:  # no valid address: none taken, none made up
            assert mail.from_ is None, mail.from_
        else:
            assert mail.from_ is not None and mail.from_.address == expected["from"]
    if "from_raw" in expected:
        assert mail.from_raw == expected["from_raw"]
    if "from_name" in expected:
        assert mail.from_ is not None and mail.from_.name == expected["from_name"]
    for key in ("to", "cc"):
        if key in expected:
            assert [a.address for a in getattr(mail, key)] == expected[key]
    if "message_id" in expected:
        if expected["message_id"] is None:
            assert mail.message_id_synthetic
        else:
            assert mail.message_id == expected["message_id"]
    for needle in expected.get("text_contains", []):
        assert needle in mail.text, f"{needle!r} missing from text {mail.text[:300]!r}"
    for needle in expected.get("text_not_contains", []):
        assert needle not in mail.text
    for needle in expected.get("html_contains", []):
        assert needle in mail.html
    _assert_in_order(mail.text, expected.get("text_in_order", []))
    _assert_in_order(mail.html, expected.get("html_in_order", []))
    for needle in expected.get("html_not_contains", []):
        assert needle.lower() not in mail.html.lower()
    if "has_html" in expected:
        assert bool(mail.html) == expected["has_html"]
    if "attachments" in expected:
        got = [{"filename": a.filename, "content_type": a.content_type, "size": a.size}
               for a in mail.attachments]
        assert len(got) == len(expected["attachments"]), got
        for want, have in zip(expected["attachments"], got, strict=True):
            for key, value in want.items():
                assert have[key] == value, (key, have)
    if "delivery_status" in expected:
        assert [r.as_dict() for r in mail.delivery_reports] == expected["delivery_status"]
    for needle in expected.get("defects_contain", []):
        assert any(needle in defect for defect in mail.defects), (needle, mail.defects)
    if "auto_submitted" in expected:
        assert verdict.automatic == expected["auto_submitted"], verdict.classes
    if "is_bounce" in expected:
        assert ("bounce" in verdict.classes) == expected["is_bounce"]
    for where in (mail.text, mail.subject, mail.from_raw, *(a.filename for a in mail.attachments)):
        assert "\ufffd" not in where, f"replacement characters in {where!r}: charset repair failed"
        assert "\x1b" not in where, f"raw escape sequences in {where!r}: ISO-2022 not decoded"


def _assert_in_order(haystack: str, needles: list[str]) -> None:
    """Each needle appears in haystack, after the one before it."""
    position = 0
    for needle in needles:
        found = haystack.find(needle, position)
        assert found >= 0, f"{needle!r} missing (in this order) from {haystack[:500]!r}"
        position = found + len(needle)
