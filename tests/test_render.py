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
