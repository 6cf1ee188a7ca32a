"""Rule patterns run in linear time (RE2), are refused at check time when RE2 cannot take them,
and never run while the mail's transaction holds the database."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from gateway.pipeline import RawMail, process
from gateway.rules.loader import RuleBook, vocabulary
from gateway.rules.patterns import MAX_PROGRAM, Pattern, PatternError, compile_pattern
from store.db import transaction
from store.models import LedgerEntry, QuarantinedMail, Ticket
from tests.conftest import ROOT, mail, make_config, write_config
from tests.servers.dovecot import Dovecot

CATASTROPHIC = """
[[rule]]
name = "nested quantifiers"
on = "message.received"
when.body = { matches = "(a+)+$" }
then.tag = "all-a"

[[rule]]
name = "printer keyword"
on = "ticket.created"
when.subject = { matches = "(?i)drucker|printer" }
then.priority = 8
"""


@pytest.mark.parametrize(("pattern", "fragment"), [
    ("(?=urgent)", "look-ahead (?=...) is not supported"),
    ("(?!spam)x", "look-ahead (?!...) is not supported"),
    ("(?<=Re: )x", "look-behind (?<=...) is not supported"),
    ("(?<!no )x", "look-behind (?<!...) is not supported"),
    (r"(\w)\1", r"back-references (\1) are not supported"),
    ("a++", "possessive or doubled quantifiers"),
    ("x{1001}", "repetition count above 1000"),
    ("(.{0,200}){3}z", f"at most {MAX_PROGRAM}"),
    ("([a-z", "not an RE2 pattern: missing ]"),
])
def test_patterns_re2_cannot_take_are_refused_with_a_reason(pattern: str, fragment: str) -> None:
    with pytest.raises(PatternError) as refused:
        compile_pattern(pattern)
    assert fragment in str(refused.value)


@pytest.mark.parametrize(("pattern", "text", "found"), [
    ("(?i)urgent|dringend", "Bitte DRINGEND", True),
    (r"(?i)\b(outage|störung)\b", "Netz-Störung seit heute", True),
    (r"\pL+straße", "Hauptstraße 1", True),
    (r"^\[#T\d{8}\.\d{4}\]", "[#T20261123.0007] Drucker", True),
    ("(a+)+$", "a" * 100_000 + "!", False),
    ("(x+x+)+y", "x" * 100_000, False),
])
def test_patterns_search_anywhere(pattern: str, text: str, found: bool) -> None:
    assert compile_pattern(pattern).search(text) is found


def test_check_names_file_line_and_key_of_a_pattern_re2_cannot_take(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    rule_file = rules / "20-keywords.toml"
    rule_file.write_text('[[rule]]\nname = "reply prefix"\non = "ticket.created"\n'
                         'then.priority = 7\n'
                         'when.subject = { matches = "(?<=Re: )urgent" }\n', encoding="utf-8")
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path}/t.db"\n[rules]\nfolder = "rules"\n',
                      encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "gateway.cli", "--config", str(config), "check"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert lines == [
        f"rule error: {rule_file}:5: rule 'reply prefix' when.subject.matches: bad regular "
        "expression '(?<=Re: )urgent': look-behind (?<=...) is not supported "
        "(RE2: invalid perl operator: (?<=)"], done.stderr  # and no RE2 log noise


def test_patterns_run_before_the_transaction_takes_the_database(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "10-rules.toml").write_text(CATASTROPHIC, encoding="utf-8")
    config = make_config()
    rules = RuleBook(tmp_path, vocabulary(config)).current()
    connections_held: list[int] = []
    search = Pattern.search

    def watching(self: Pattern, text: str) -> bool:
        connections_held.append(engine.pool.checkedout())  # an open transaction holds one
        return search(self, text)

    monkeypatch.setattr(Pattern, "search", watching)
    result = process(engine, config, RawMail(mail(1, "Drucker kaputt"), "in"), rules=rules)
    assert result.outcome == "created"
    assert connections_held == [0, 0]  # both patterns ran, with no connection (no lock) held
    with transaction(engine) as session:
        assert session.exec(select(Ticket.priority)).one() == 8


def test_catastrophic_pattern_cannot_stall_the_mailbox(
    engine: Engine, dovecot: Dovecot, folder: str, tmp_path: Path
) -> None:
    """With backtracking, `(a+)+$` on this body runs for ages: the subprocess timeout would hit."""
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "10-rules.toml").write_text(CATASTROPHIC, encoding="utf-8")
    config = write_config(tmp_path / "config.toml", engine, dovecot, folder,
                          extra=f'[rules]\nfolder = "{rules}"\n')
    crafted = mail(f"{folder}-bomb", "aaaa", body="a" * 50_000 + "!")
    after = [mail(f"{folder}-{n}", f"Drucker {n}") for n in range(3)]
    dovecot.seed([crafted, *after], folder=folder)
    done = subprocess.run([sys.executable, "-m", "gateway.cli", "--config", str(config), "run", "--once"],
                          capture_output=True, text=True, cwd=ROOT, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert dovecot.count(folder=folder) == 0
    with transaction(engine) as session:
        outcomes = session.exec(select(LedgerEntry.outcome)).all()
        priorities = sorted(session.exec(select(Ticket.priority)).all())
        assert session.exec(select(QuarantinedMail)).first() is None
    assert outcomes == ["created"] * 4
    assert priorities == [5, 8, 8, 8]  # the rules still work on the mails after it
