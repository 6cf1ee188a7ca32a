"""Reply trimming: the exact text a customer receives of an agent's reply, client by client."""

from __future__ import annotations

import pytest

from gateway.agents.commands import find_commands
from gateway.agents.quoting import split_leading_quote, trim_reply
from tests.reply_samples import Sample, all_samples

SAMPLES = all_samples()
CLIENTS = ("Thunderbird", "Apple Mail", "Outlook", "Gmail", "iPhone", "Yahoo", "AOL")
LANGUAGES = ("en", "de", "fr", "es", "nl", "it", "da", "no", "sv", "pl", "ja", "ru", "pt", "cs",
             "fi", "tr", "zh", "ko")


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.name for s in SAMPLES])
def test_the_customer_gets_exactly_the_agents_text(sample: Sample) -> None:
    assert trim_reply(sample.text) == sample.expected


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.name for s in SAMPLES])
def test_windows_line_endings_change_nothing(sample: Sample) -> None:
    assert trim_reply(sample.text.replace("\n", "\r\n")) == sample.expected


def test_the_table_covers_every_client_style_and_language() -> None:
    styles = {(s.client, s.style) for s in SAMPLES}
    assert styles >= {(client, style) for client in CLIENTS for style in ("top", "bottom", "inline")}
    assert {s.language for s in SAMPLES} >= set(LANGUAGES)
    assert {s.language for s in SAMPLES if s.client == "Outlook"} >= set(LANGUAGES)  # header blocks
    assert len({s.name for s in SAMPLES}) == len(SAMPLES)


@pytest.mark.parametrize("sample", [s for s in SAMPLES if s.style in ("bottom", "inline")],
                         ids=lambda s: s.name)
def test_bottom_posted_and_inline_answers_are_never_lost(sample: Sample) -> None:
    got = trim_reply(sample.text)
    answers = [line for line in sample.expected.splitlines() if line and not line.startswith(">")]
    assert answers and all(line in got.splitlines() for line in answers)


def test_inline_answers_keep_the_quoted_lines_they_answer_as_quotes() -> None:
    text = ("Am 23.11.2026 um 10:00 schrieb Anna Kunde <anna@acme.example>:\n"
            ">Frage eins?\n"
            ">> ältere Zeile\n"
            "Antwort eins.\n"
            ">\n"
            "> Frage zwei?\n"
            "Antwort zwei.\n"
            "> Gruß Anna\n")
    assert trim_reply(text) == "> Frage eins?\n> > ältere Zeile\nAntwort eins.\n> Frage zwei?\nAntwort zwei."


def test_a_quoted_signature_is_not_relayed_with_an_inline_answer() -> None:
    text = "Hi Anna,\n\n> Is it fixed?\n> --\n> Ticket T1 · priority 5 · channel support\n\nYes.\n"
    assert trim_reply(text) == "Hi Anna,\n\n> Is it fixed?\n\nYes."


def test_only_quoted_history_and_signatures_trim_to_nothing() -> None:
    for text in ("", "\n\n", "-- \nAlice", "> old", "Sent from my iPhone\n\n> old",
                 "-----Original Message-----\nold", "On Mon, 23 Nov 2026 at 10:00 Anna wrote:\nold"):
        assert trim_reply(text) == "", text


def test_odd_input_never_crashes() -> None:
    for text in ("\r", "\r\r>", ">" * 10000, ":\n" * 5000 + "> x", "wrote:\n> x\n" * 1000,
                 "On " + "x" * 100_000 + " wrote:\n> y\nz", "\x00\u2028>\u00a0x", "—\n" * 50):
        assert isinstance(trim_reply(text), str)


def test_the_text_below_a_leading_quote_is_where_a_bottom_poster_writes_commands() -> None:
    head, below = split_leading_quote("Anna Kunde <anna@acme.example> wrote:\n> Close it?\n\n#close\nDone.")
    assert (head, below) == ("Anna Kunde <anna@acme.example> wrote:\n> Close it?\n", "#close\nDone.")
    commands, rest = find_commands("> Close it?\n\n#status resolved\n#internal\nCustomer is happy.")
    assert [c.name for c in commands] == ["status", "internal"]
    assert trim_reply(rest) == "Customer is happy."


def test_commands_are_only_read_at_the_top_of_the_agents_text() -> None:
    for text in ("Hi,\n> Close it?\n#close", "> Close it?\nYes.\n#close", "> only a quote"):
        assert find_commands(text) == ([], text)
