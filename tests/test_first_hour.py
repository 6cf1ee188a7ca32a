"""A new admin's first hour: what the command line says about junk input, queued mail,
slow servers, log noise and its own habits (issue 17)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from gateway.cli import main

FIXTURES = Path(__file__).parent / "fixtures"


def _config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path}/t.db"\n'
        '[[channel]]\nname = "support"\naddress = "support@example.com"\n' + extra,
        encoding="utf-8",
    )
    return path


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


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
    assert out.strip() == ("not a mail: binary data, no header block: ingest and run quarantine "
                           "it; no rule runs on it")
    assert "thread" not in out and "sender" not in out
    code, out, _ = _run(capsys, "--config", config, "rules", "explain", str(junk["empty.eml"]),
                        "--json")
    assert json.loads(out)["not_a_mail"] == "not a mail: empty input"
