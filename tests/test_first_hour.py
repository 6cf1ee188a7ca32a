"""A new admin's first hour: what the command line says about junk input, queued mail,
slow servers, log noise and its own habits (issue 17)."""

from __future__ import annotations

import json
import logging
import os
import pty
import random
import re
import socket
import subprocess
import sys
import tracemalloc
from datetime import datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import main
from gateway.intake.files import read_mails
from gateway.logsetup import configure_logging
from gateway.outbound.outbox import suppress
from store.db import make_engine, transaction
from store.models import utcnow
from tests.clikit import config_file as _config
from tests.clikit import run_cli as _run
from tests.conftest import mail
from tests.servers.dovecot import Dovecot
from tests.servers.smtp import SmtpServer

ROOT = Path(__file__).resolve().parent.parent

FIXTURES = Path(__file__).parent / "fixtures"



def _junk(tmp_path: Path) -> dict[str, Path]:
    """An empty file, random bytes, a picture's first bytes and a text file with no headers."""
    files = {"empty.eml": b"", "random.bin": random.Random(17).randbytes(8192),
             "picture.png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64),
             "notes.txt": b"Shopping list\nmilk\neggs: 6\n"}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return {name: tmp_path / name for name in files}


def test_ingest_quarantines_input_with_no_header_block_as_not_a_mail(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = str(_config(tmp_path))
    junk = _junk(tmp_path)
    code, out, _ = _run(capsys, "--config", config, "ingest", *map(str, junk.values()))
    assert code == 0
    lines = {line.split("\t")[0]: line.split("\t") for line in out.splitlines()}
    for path in junk.values():
        assert lines[str(path)][1] == "quarantined", lines[str(path)]
        assert lines[str(path)][4].startswith("not a mail: "), lines[str(path)]
    assert lines[str(junk["empty.eml"])][4] == "not a mail: empty input"
    assert lines[str(junk["random.bin"])][4] == "not a mail: binary data, no header block"
    assert "it starts with 'Shopping list'" in lines[str(junk["notes.txt"])][4]
    _run(capsys, "--config", config, "tickets", "list", "--json")
    code, out, _ = _run(capsys, "--config", config, "tickets", "list", "--json")
    assert json.loads(out) == []
    code, out, _ = _run(capsys, "--config", config, "quarantine", "list", "--json")
    assert sorted(row["reason"][:11] for row in json.loads(out)) == ["not a mail:"] * 4


def test_ingest_still_takes_mails_with_junk_before_the_headers(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = str(_config(tmp_path))
    files = [str(FIXTURES / "junk-mbox-from-line.eml"), str(FIXTURES / "junk-gateway-line.eml")]
    code, out, _ = _run(capsys, "--config", config, "ingest", *files)
    assert code == 0 and [line.split("\t")[1] for line in out.splitlines()] == ["created"] * 2


def test_rules_explain_says_not_a_mail_instead_of_explaining(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = str(_config(tmp_path))
    junk = _junk(tmp_path)
    code, out, _ = _run(capsys, "--config", config, "rules", "explain", str(junk["random.bin"]))
    assert code == 1
    assert out.strip() == ("not a mail: binary data, no header block: ingest and run quarantine "
                           "it; no rule runs on it")
    assert "thread" not in out and "sender" not in out
    _code, out, _ = _run(capsys, "--config", config, "rules", "explain", str(junk["empty.eml"]),
                        "--json")
    assert json.loads(out)["not_a_mail"] == "not a mail: empty input"


# --- queued mail in tickets show ------------------------------------------------------------

def _ingested(tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: str = "") -> tuple[str, str]:
    """A config (no SMTP unless extra says so) and the number of one ingested customer mail."""
    config = str(_config(tmp_path, extra))
    eml = tmp_path / "printer.eml"
    eml.write_bytes(b"From: Erika <erika@muster.example>\r\nTo: support@example.com\r\n"
                     b"Subject: Printer jams\r\nMessage-ID: <p-1@muster.example>\r\n\r\nHelp!\r\n")
    code, out, _ = _run(capsys, "--config", config, "ingest", str(eml))
    assert code == 0, out
    return config, out.split("\t")[2]


def _acknowledgement(config: str, number: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code, out, _ = _run(capsys, "--config", config, "tickets", "show", number, "--json")
    assert code == 0
    return next(m for m in json.loads(out)["messages"] if m["kind"] == "acknowledgement")


def test_queued_mail_shows_subject_recipients_and_state_in_text_and_json(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config, number = _ingested(tmp_path, capsys)
    ack = _acknowledgement(config, number, capsys)
    assert ack["outbox"]["state"] == "queued" and ack["outbox"]["preview"] is True
    assert ack["outbox"]["recipients"] == ["erika@muster.example"]
    assert ack["subject"].startswith(f"[#{number}] ") and "Printer jams" in ack["subject"]
    assert number in ack["text"]
    _code, out, _ = _run(capsys, "--config", config, "tickets", "show", number)
    block = re.split(r"--- #\d+ acknowledgement", out, maxsplit=1)[1]
    assert "[outbox] queued to erika@muster.example (customer/acknowledgement), next attempt " in block
    assert f"Subject: [#{number}] " in block and "not sent yet" in block


def test_a_mail_that_failed_to_send_shows_retrying_with_its_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    config, number = _ingested(tmp_path, capsys, f'[smtp]\nhost = "127.0.0.1"\nport = {port}\n'
                                                 'security = "none"\n')
    code, out, _ = _run(capsys, "--config", config, "outbox", "flush")
    assert code == 0 and "1 to retry" in out
    ack = _acknowledgement(config, number, capsys)
    assert ack["outbox"]["state"] == "retrying" and ack["outbox"]["attempts"] == 1
    assert ack["outbox"]["last_error"] and ack["outbox"]["next_attempt_at"]
    _code, out, _ = _run(capsys, "--config", config, "tickets", "show", number)
    assert "[outbox] retrying to erika@muster.example" in out and "last error: " in out


def test_a_sent_mail_shows_sent_with_the_subject_it_went_out_with(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    smtp = SmtpServer().start()
    try:
        config, number = _ingested(tmp_path, capsys, f'[smtp]\nhost = "{smtp.host}"\n'
                                                     f'port = {smtp.port}\nsecurity = "none"\n')
        _run(capsys, "--config", config, "outbox", "flush")
        [delivered] = smtp.handler.delivered
    finally:
        smtp.stop()
    ack = _acknowledgement(config, number, capsys)
    assert ack["outbox"]["state"] == "sent" and ack["outbox"]["preview"] is False
    assert ack["subject"] == delivered.message["Subject"]


def test_a_refused_mail_shows_failed_and_a_bounced_recipient_suppressed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    smtp = SmtpServer().start()
    smtp.handler.refuse.add("erika@muster.example")
    try:
        config, number = _ingested(tmp_path, capsys, f'[smtp]\nhost = "{smtp.host}"\n'
                                                     f'port = {smtp.port}\nsecurity = "none"\n')
        _run(capsys, "--config", config, "outbox", "flush")
    finally:
        smtp.stop()
    ack = _acknowledgement(config, number, capsys)
    assert ack["outbox"]["state"] == "failed" and "550" in ack["outbox"]["last_error"]
    assert "[outbox] failed to erika@muster.example" in _run(
        capsys, "--config", config, "tickets", "show", number)[1]
    second = tmp_path / "second"
    second.mkdir()
    config, number = _ingested(second, capsys)
    engine = make_engine(f"sqlite:///{second}/t.db")
    with transaction(engine) as session:  # what a hard bounce leaves behind
        suppress(session, "erika@muster.example", utcnow() + timedelta(days=1), "DSN 5.1.1", None)
    engine.dispose()
    ack = _acknowledgement(config, number, capsys)
    assert ack["outbox"]["state"] == "suppressed"


# --- run --once against servers that do not answer or refuse ----------------------------------

def _ticketgate(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


def test_run_once_against_a_host_that_never_answers_gives_up_after_one_retry(tmp_path: Path) -> None:
    with socket.socket() as silent:  # accepts connections (the kernel does) but never greets
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        config = _config(tmp_path, f'[[mailbox]]\nname = "box"\nhost = "127.0.0.1"\nport = {port}\n'
                                   'security = "none"\nusername = "u"\npassword = "p"\n'
                                   'connect_timeout_seconds = 0.5\n')
        done = _ticketgate("--config", str(config), "run", "--once")
    assert done.returncode == 1
    why = f"no answer from 127.0.0.1:{port} within 0.5 s (connect_timeout_seconds)"
    assert f"box: error: box: gave up after 2 attempts: box: {why}" in done.stderr
    retries = [line for line in done.stderr.splitlines() if "next attempt at" in line]
    assert len(retries) == 1 and why in retries[0], done.stderr
    assert re.search(r"next attempt at \d\d:\d\d:\d\d \(in 1 s\)", retries[0])


def test_run_once_with_a_wrong_password_says_so_and_what_to_do(
        tmp_path: Path, dovecot: Dovecot) -> None:
    config = _config(tmp_path, f'[[mailbox]]\nname = "box"\nhost = "{dovecot.host}"\n'
                               f'port = {dovecot.port}\nsecurity = "none"\nusername = "support"\n'
                               'password = "not-the-password"\n')
    done = _ticketgate("--config", str(config), "run", "--once")
    assert done.returncode == 1
    assert f"box: error: box: {dovecot.host} refused the login of 'support'" in done.stderr
    assert "wrong user name or password? Fix username and password" in done.stderr
    assert "then try `ticketgate run --once`" in done.stderr
    assert "retrying" not in done.stderr and "next attempt" not in done.stderr
    assert "not-the-password" not in done.stderr


# --- logs --------------------------------------------------------------------------------------

def test_library_logs_are_quiet_by_default_and_shown_with_v(
        tmp_path: Path, dovecot: Dovecot, folder: str) -> None:
    dovecot.seed([mail(1)], folder=folder)
    config = _config(tmp_path, f'[[mailbox]]\nname = "box"\nhost = "{dovecot.host}"\n'
                               f'port = {dovecot.port}\nsecurity = "none"\nusername = "support"\n'
                               f'password = "{dovecot.password}"\nfolder = "{folder}"\n')
    quiet = _ticketgate("--config", str(config), "run", "--once")
    assert quiet.returncode == 0, quiet.stderr
    assert "alembic" not in quiet.stderr and "aioimaplib" not in quiet.stderr
    assert "gateway.service: ticketgate running: 1 mailbox(es) (once)" in quiet.stderr
    assert quiet.stdout.startswith("box:1\tcreated\t")  # run --once: one line per mail
    assert quiet.stdout.endswith("box: 1 fetched (created 1)\n")
    (tmp_path / "t.db").unlink()  # a fresh database: the migrations run again
    loud = _ticketgate("run", "--once", "--config", str(config), "-v")  # options after the command
    assert loud.returncode == 0, loud.stderr
    assert "INFO alembic.runtime.migration: Running upgrade" in loud.stderr


def test_chatty_libraries_are_held_at_warning_unless_verbose() -> None:
    chatty = ("alembic", "aioimaplib", "httpx")
    configure_logging(False, "run")
    assert [logging.getLogger(n).getEffectiveLevel() for n in chatty] == [logging.WARNING] * 3
    configure_logging(True, "run")  # -v: their level is the root's again (DEBUG)
    assert [logging.getLogger(n).level for n in chatty] == [logging.NOTSET] * 3
    configure_logging(False, "run")


# --- command-line habits ---------------------------------------------------------------------

def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as ended:
        main(["--version"])
    assert ended.value.code == 0
    assert capsys.readouterr().out.strip() == f"ticketgate {metadata.version('ticketgate')}"


def test_config_and_v_are_accepted_after_the_subcommand(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = str(_config(tmp_path))
    assert _run(capsys, "tickets", "list", "--config", config)[1] == "no tickets\n"
    assert _run(capsys, "check", "--config", config, "-v")[0] == 0
    assert (tmp_path / "t.db").exists()  # it used this config, not ./config.toml
    code, out, _ = _run(capsys, "--config", "/nonexistent.toml", "tickets", "list", "--config", config)
    assert code == 0 and out == "no tickets\n"  # the later one wins


def test_tickets_list_has_a_header_and_says_no_tickets(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = str(_config(tmp_path))
    assert _run(capsys, "--config", config, "tickets", "list") == (0, "no tickets\n", "")
    config, number = _ingested(tmp_path, capsys)
    _code, out, _ = _run(capsys, "--config", config, "tickets", "list")
    header, row = out.splitlines()
    assert header.split("\t") == ["number", "status", "priority", "channel", "customer",
                                  "created_at", "subject"]
    fields = dict(zip(header.split("\t"), row.split("\t"), strict=True))
    assert fields["number"] == number and fields["subject"] == "Printer jams"
    assert datetime.fromisoformat(fields["created_at"]).utcoffset() == timedelta(0)


def test_created_at_carries_its_time_zone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config, number = _ingested(tmp_path, capsys)
    code, out, _ = _run(capsys, "--config", config, "tickets", "show", number, "--json")
    assert code == 0
    detail = json.loads(out)
    for moment in [detail["created_at"], *(m["created_at"] for m in detail["messages"])]:
        assert moment.endswith("+00:00") and datetime.fromisoformat(moment).tzinfo is not None
    _code, out, _ = _run(capsys, "--config", config, "tickets", "list", "--json")
    assert json.loads(out)[0]["created_at"] == detail["created_at"]


@pytest.mark.parametrize("asked", ["{n}", "{lower}", "[#{n}]", "#{lower}", " {n} "])
def test_tickets_show_finds_a_number_in_any_case_and_form(
        asked: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config, number = _ingested(tmp_path, capsys)
    code, out, _ = _run(capsys, "--config", config, "tickets", "show",
                        asked.format(n=number, lower=number.lower()))
    assert code == 0 and out.startswith(f"{number}  Printer jams")


def test_tickets_show_names_the_expected_format_when_not_found(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = str(_config(tmp_path))
    code, _, err = _run(capsys, "--config", config, "tickets", "show", "printer")
    assert code == 1
    assert re.fullmatch(r"error: 'printer' is not a ticket number: they look like T\d{8}\.0007 "
                        r"\(`ticketgate tickets list` shows them\)\n", err), err
    code, _, err = _run(capsys, "--config", config, "tickets", "show", "t20260101.0001")
    assert code == 1 and err == ("error: no ticket T20260101.0001 (`ticketgate tickets list` "
                                 "shows the numbers)\n")


# --- ingest: progress on a terminal, an mbox read mail by mail ----------------------------------

def _mbox(path: Path, count: int, size: int) -> Path:
    with path.open("wb") as out:
        for n in range(count):
            out.write(f"From sender{n}@example.org Mon Nov 23 10:00:00 2026\n".encode())
            out.write(f"From: s{n}@example.org\nSubject: mail {n}\nMessage-ID: <mb-{n}@example.org>"
                      "\n\n".encode() + b"x" * size + b"\n\n")
    return path


def test_ingest_draws_a_progress_bar_on_a_terminal_only(tmp_path: Path) -> None:
    config = str(_config(tmp_path))
    box = _mbox(tmp_path / "archive.mbox", 30, 2000)
    master, slave = pty.openpty()
    try:
        done = subprocess.run([sys.executable, "-m", "gateway.cli", "--config", config, "ingest",
                               str(box)], stdout=subprocess.PIPE, stderr=slave, cwd=ROOT, timeout=120)
        os.close(slave)
        drawn = _read_all(master)
    finally:
        os.close(master)
    assert done.returncode == 0 and done.stdout.decode().count("\tcreated\t") == 30
    assert "ingesting" in drawn and "kB" in drawn, drawn  # the bar: label and bytes done
    plain = _ticketgate("--config", config, "ingest", str(_mbox(tmp_path / "more.mbox", 3, 10)))
    assert plain.stderr == "ingested: 3 created\n"  # not a terminal: no bar, no escape codes


def _read_all(fd: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the other end is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def test_an_mbox_is_told_by_its_first_line_and_read_mail_by_mail(tmp_path: Path) -> None:
    box = _mbox(tmp_path / "big.mbox", 400, 50_000)  # 20 MB
    tracemalloc.start()
    try:
        count = sum(1 for _ in read_mails([box]))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 400
    assert peak < box.stat().st_size / 4, peak  # never the whole file at once


# --- the README a newcomer reads first ----------------------------------------------------------

def test_readme_use_names_every_variable_the_example_config_reads_and_a_first_try_without_smtp(
        ) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    use = readme.split("\n## Use\n", 1)[1].split("\n### ", 1)[0]
    example = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    variables = re.findall(r'^\w+_env = "(\w+)"', example, re.MULTILINE)
    assert sorted(variables) == ["TICKETGATE_IMAP_PASSWORD", "TICKETGATE_SECRET",
                                 "TICKETGATE_SMTP_PASSWORD"]
    for name in variables:
        assert f"`{name}`" in use and f"{name}=" in use, name
    assert "A first try without SMTP" in use and "leave the `[smtp]` table out" in use
    assert "[outbox] queued to" in use  # what tickets show then prints, as the test above checks
