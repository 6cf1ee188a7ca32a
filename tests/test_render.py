"""Every registered template renders in both languages, with the token, both parts, no leaks."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.outbound.render import Renderer
from gateway.statuses import customer_status
from gateway.templates import TEMPLATE_NAMES, template_names

CONTEXT = {
    "ticket": {"number": "T20261123.0007", "subject": "Drucker <b>kaputt</b>", "status": "open",
               "priority": 5, "channel": "support", "source": "email",
               "url": "https://portal.example.com/t/T20261123.0007"},
    "token": "[#T20261123.0007]",
    "recipient": {"address": "anna@acme.example", "name": "Anna"},
    "channel": {"name": "support", "display_name": "ACME Support", "address": "support@example.com"},
    "message": {"author": "Anna", "text": "Es geht nicht <script>x</script>", "subject": "x"},
    "agent": {"display_name": "Alice"},
    "results": ["#priority 7: done"],
    "reason": "",
    "not_relayed": False,
    "timer": {"kind": "sla_first_response_breach", "note": "call back <b>now</b>", "by": "alice",
              "due": "2026-11-24 09:00", "zone": "Europe/Berlin", "target": "first_response",
              "step": "breach", "sla": "standard", "hours": 8, "close_days": 7},
    "merged": {"number": "T20261122.0003", "subject": "Drucker <i>defekt</i>"},
    "files": [{"filename": "log<b>.txt", "size": 10, "size_text": "10 B", "attached": True},
              {"filename": "big.zip", "size": 9 << 20, "size_text": "9.0 MB", "attached": False}],
    "inline_images": [{"cid": "img1@x", "filename": "shot.png"}],
}


@pytest.mark.parametrize("language", ["de", "en"])
@pytest.mark.parametrize("name", sorted(TEMPLATE_NAMES))
def test_every_template_renders(name: str, language: str) -> None:
    context = {**CONTEXT, "status": customer_status("open", language)}
    out = Renderer().render(name, language, context)
    assert out.subject.startswith("[#T20261123.0007]")
    assert out.text.strip() and out.html.strip().startswith("<!DOCTYPE html>")
    assert "<script>" not in out.html and "<b>now" not in out.html  # autoescaped
    assert f'lang="{language}"' in out.html


@pytest.mark.parametrize(
    ("status", "language", "label", "colour"),
    [("new", "en", "In progress", "orange"), ("open", "de", "In Bearbeitung", "orange"),
     ("waiting_external", "en", "Reply expected", "red"), ("waiting_internal", "en", "In progress", "orange"),
     ("resolved", "de", "Geschlossen", "green"), ("closed", "en", "Closed", "green"),
     ("postponed", "en", "Postponed", "grey")],
)
def test_customer_status_vocabulary(status: str, language: str, label: str, colour: str) -> None:
    shown = customer_status(status, language)
    assert (shown["label"], shown["colour"]) == (label, colour)


def test_admin_override_wins(tmp_path: Path) -> None:
    target = tmp_path / "en" / "customer"
    target.mkdir(parents=True)
    (target / "acknowledgement.txt.j2").write_text(
        "{% set subject %}{{ token }} Custom{% endset %}Our own words.\n", "utf-8")
    (target / "acknowledgement.html.j2").write_text("<p>Our own words.</p>\n", "utf-8")
    (target / "extra.txt.j2").write_text("{% set subject %}{{ token }}{% endset %}x", "utf-8")
    out = Renderer(tmp_path).render("customer/acknowledgement", "en", {**CONTEXT, "status": {}})
    assert out.subject == "[#T20261123.0007] Custom" and out.text == "Our own words.\n"
    assert "customer/extra" in template_names(tmp_path)


def test_queued_rows_from_before_files_still_render() -> None:
    """Rows queued by an older version carry no files or inline_images in their context."""
    old = {k: v for k, v in CONTEXT.items() if k not in ("files", "inline_images")}
    for name in ("agent/new_ticket", "agent/new_message", "customer/agent_reply"):
        out = Renderer().render(name, "en", {**old, "status": customer_status("open", "en")})
        assert "Files" not in out.text and "cid:" not in out.html


def test_agent_notification_lists_files_and_says_which_are_attached() -> None:
    out = Renderer().render("agent/new_message", "en", {**CONTEXT, "status": customer_status("open", "en")})
    assert "- log<b>.txt (10 B, attached)" in out.text
    assert "big.zip (9.0 MB, not attached" in out.text
    assert "log&lt;b&gt;.txt" in out.html
    reply = Renderer().render("customer/agent_reply", "en",
                              {**CONTEXT, "status": customer_status("open", "en")})
    assert 'src="cid:img1@x"' in reply.html
