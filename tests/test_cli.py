"""The command line as scripts use it: check, ingest, tickets, quarantine; the corpus run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from gateway.cli import main
from tests.clikit import config_file as _config
from tests.clikit import run_cli as _run

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"
FIXTURES = Path(__file__).parent / "fixtures"
# What `ticketgate ingest ../shared/corpus` makes of it, one count per outcome (the corpus
# holds byte-identical copies: those are the duplicates). When a change to mail parsing
# moves a count on purpose, update this line and say why in the commit. Quarantined: rt/lorem-ipsum.eml
# has no header block at all (not a mail).
CORPUS_OUTCOMES = {"created": 71, "followup": 0, "duplicate": 24, "quarantined": 1}



def test_check_accepts_the_example_config(capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKETGATE_IMAP_PASSWORD", "s3cret-value")
    monkeypatch.setenv("TICKETGATE_SMTP_PASSWORD", "another-value")
    monkeypatch.setenv("TICKETGATE_SECRET", "hmac-secret")
    code, out, _ = _run(capsys, "--config", str(ROOT / "config.example.toml"), "check")
    assert code == 0 and "OK" in out


def test_check_names_file_and_key_and_hides_passwords(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    bad = _config(tmp_path, '[[mailbox]]\nname = "m"\nhost = "h"\nusername = "u"\n'
                            'password = "hunter2"\nsecurity = "ssl"\n')
    code, out, err = _run(capsys, "--config", str(bad), "check")
    assert code == 1
    assert f"{bad}: mailbox[0].security: must be one of tls, starttls, none, got 'ssl'" in err
    assert "hunter2" not in out + err


def test_check_prints_every_problem_and_exits_1(tmp_path: Path) -> None:
    bad = _config(tmp_path, '[tickets]\ntimezone = "Mars/Olympus"\n'
                            '[[mailbox]]\nname = "m"\nhost = "h"\nusername = "u"\npassword = "hunter2"\n'
                            'port = "993"\ncolour = "red"\n')
    done = subprocess.run([sys.executable, "-m", "gateway.cli", "--config", str(bad), "check"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 1 and done.stdout == ""
    assert sorted(done.stderr.splitlines()) == [
        f"config error: {bad}: mailbox[0].colour: unknown key",
        f"config error: {bad}: mailbox[0].port: must be int, got '993'",
        f"config error: {bad}: tickets.timezone: is not a known time zone: 'Mars/Olympus'",
    ]


@pytest.mark.parametrize("url", ["mysql://x", "notaurl", "sqlite:///{outside}/missing/t.db"])
def test_unusable_database_url_is_one_line_for_every_command(
        url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outside = tmp_path / "elsewhere"
    config = tmp_path / "conf" / "config.toml"
    config.parent.mkdir()
    config.write_text(f'[database]\nurl = "{url.format(outside=outside)}"\n', encoding="utf-8")
    for command in (["check"], ["tickets", "list"], ["ingest", str(FIXTURES / "baseline-german-qp.eml")]):
        code, out, err = _run(capsys, "--config", str(config), *command)
        assert code == 1 and out == ""
        assert err.startswith(f"config error: {config}: database.url: ") and err.count("\n") == 1
        assert "Traceback" not in err
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "conf", "conf/config.toml"]  # nothing created, least of all the missing folder


def test_sqlite_folder_is_made_only_under_the_config_folder(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "conf" / "config.toml"
    config.parent.mkdir()
    config.write_text('[database]\nurl = "sqlite:///data/t.db"\n', encoding="utf-8")
    code, out, _ = _run(capsys, "--config", str(config), "check")
    assert code == 0 and "OK" in out
    assert not (tmp_path / "conf" / "data").exists()  # check creates nothing
    code, _, _ = _run(capsys, "--config", str(config), "tickets", "list")
    assert code == 0 and (tmp_path / "conf" / "data" / "t.db").is_file()
    assert not (tmp_path / "data").exists()  # relative to the config's folder, not the working one


def test_ingest_then_show_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = str(_config(tmp_path))
    code, out, _ = _run(capsys, "--config", cfg, "ingest", str(FIXTURES / "outlook-related-inline-image.eml"))
    assert code == 0
    _label, outcome, number, message_id = out.strip().split("\t")[:4]
    assert outcome == "created" and number.startswith("T")
    code, out, _ = _run(capsys, "--config", cfg, "tickets", "show", number, "--json")
    ticket = json.loads(out)
    assert set(ticket) >= {"number", "subject", "status", "priority", "channel", "activity_type",
                           "source", "customer", "watchers", "messages"}
    assert ticket["source"] == "email" and ticket["status"] == "new"
    message = ticket["messages"][0]
    assert set(message) >= {"kind", "public", "from", "to", "cc", "subject", "message_id", "text",
                            "html", "attachments"}
    assert f"<{message['message_id']}>" == message_id
    assert message["attachments"][0]["content_type"] == "image/png"
    code, out, _ = _run(capsys, "--config", cfg, "tickets", "list", "--json")
    assert [t["number"] for t in json.loads(out)] == [number]


def test_quarantine_list_and_retry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    small = str(_config(tmp_path, "[limits]\nmax_message_bytes = 200\n"))
    code, out, _ = _run(capsys, "--config", small, "ingest", str(FIXTURES / "baseline-german-qp.eml"))
    assert "\tquarantined\t" in out
    code, out, _ = _run(capsys, "--config", small, "quarantine", "list", "--json")
    (entry,) = json.loads(out)
    assert "too large" in entry["reason"]
    code, _, err = _run(capsys, "--config", small, "quarantine", "retry", str(entry["id"]))
    assert code == 1 and "still failing" in err
    roomy = str(_config(tmp_path))
    code, out, _ = _run(capsys, "--config", roomy, "quarantine", "retry", str(entry["id"]))
    assert code == 0 and "created" in out
    code, out, _ = _run(capsys, "--config", roomy, "quarantine", "list", "--json")
    assert json.loads(out) == []


@pytest.mark.parametrize("unbuffered", ["", "1"], ids=["buffered", "unbuffered"])
def test_listing_into_a_closed_pipe_ends_quietly(tmp_path: Path, unbuffered: str) -> None:
    """`ticketgate tickets list | head`: the reader is gone before the output is written."""
    cfg = str(_config(tmp_path))
    assert main(["--config", cfg, "ingest", str(FIXTURES / "baseline-german-qp.eml")]) == 0
    read, write = os.pipe()
    os.close(read)  # nobody will read: the first write fails with EPIPE
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": unbuffered}
    try:
        proc = subprocess.run([sys.executable, "-m", "gateway.cli", "--config", cfg, "tickets",
                               "list"], stdout=write, stderr=subprocess.PIPE, env=env, cwd=ROOT,
                              timeout=60, check=False)
    finally:
        os.close(write)
    assert proc.returncode == 128 + signal.SIGPIPE
    assert proc.stderr == b""  # no traceback, no "Exception ignored"
    assert signal.getsignal(signal.SIGPIPE) == signal.SIG_IGN  # main() in-process left it alone


def test_show_unknown_ticket_fails_cleanly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "--config", str(_config(tmp_path)), "tickets", "show", "T1")
    assert code == 1 and "no ticket T1" in err


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"corpus not found at {CORPUS}")
def test_every_corpus_mail_is_stored_or_quarantined(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    cfg = str(_config(tmp_path))
    code, out, err = _run(capsys, "--config", cfg, "ingest", str(CORPUS))
    assert code == 0, err
    lines = [line.split("\t") for line in out.splitlines()]
    files = [p for p in CORPUS.rglob("*") if p.is_file() and p.name != "README.md"]
    assert len(lines) >= len(files)  # an mbox may hold more than one mail
    outcomes = Counter(row[1] for row in lines)
    assert {k: outcomes.get(k, 0) for k in {*CORPUS_OUTCOMES, *outcomes}} == CORPUS_OUTCOMES
    for row in lines:
        if row[1] == "quarantined":
            assert len(row) > 4 and row[4], row  # with a reason
        else:
            assert row[2].startswith("T"), row  # stored on (or already in) a ticket
    stored = {row[3] for row in lines if row[1] != "quarantined"}
    code, out, _ = _run(capsys, "--config", cfg, "tickets", "list", "--json")
    numbers = [t["number"] for t in json.loads(out)]
    messages = 0
    for number in numbers:
        _, shown, _ = _run(capsys, "--config", cfg, "tickets", "show", number, "--json")
        messages += sum(m["direction"] == "in" for m in json.loads(shown)["messages"])
    created = sum(1 for row in lines if row[1] in ("created", "followup"))
    assert messages == created and stored


def _new_tickets(tmp_path: Path, count: int) -> Path:
    """count customer mails as .eml files (each opens a ticket)."""
    folder = tmp_path / "mails"
    folder.mkdir()
    for n in range(count):
        (folder / f"{n:04}.eml").write_bytes(
            f"From: c{n}@acme.example\r\nTo: support@example.com\r\nSubject: Question {n}\r\n"
            f"Message-ID: <page-{n}@acme.example>\r\n\r\nHello\r\n".encode())
    return folder


def test_tickets_list_pages_past_any_fixed_limit(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    cfg = str(_config(tmp_path))
    assert _run(capsys, "--config", cfg, "ingest", str(_new_tickets(tmp_path, 12)))[0] == 0
    code, out, err = _run(capsys, "--config", cfg, "tickets", "list", "--limit", "5", "--json")
    first = [t["number"] for t in json.loads(out)]
    assert code == 0 and len(first) == 5 and "--offset 5" in err
    code, out, err = _run(capsys, "--config", cfg, "tickets", "list", "--limit", "5",
                          "--offset", "10", "--json")
    last = [t["number"] for t in json.loads(out)]
    assert len(last) == 2 and "more tickets" not in err
    code, out, _ = _run(capsys, "--config", cfg, "tickets", "list", "--limit", "0")
    every = [line.split("\t")[0] for line in out.splitlines()[1:]]  # under the header line
    assert len(every) == 12 == len(set(every)) and every[:5] == first and every[10:] == last
    with pytest.raises(SystemExit):
        main(["--config", cfg, "tickets", "list", "--limit", "-1"])
    assert "--limit: must be 0 or more" in capsys.readouterr().err


def test_outbox_list_says_how_much_is_due_and_how_long_it_waits(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = str(_config(tmp_path))
    assert _run(capsys, "--config", cfg, "ingest", str(_new_tickets(tmp_path, 3)))[0] == 0
    code, out, err = _run(capsys, "--config", cfg, "outbox", "list", "--limit", "2")
    assert code == 0 and len(out.splitlines()) == 2
    assert "outbox: 3 due (oldest due" in err and "more mails: see them with --offset 2" in err
