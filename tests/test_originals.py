"""Raw originals kept compressed, printed byte for byte, reprocessed without doubling; files
stored once per content."""

from __future__ import annotations

import base64
import random
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, func, select

from gateway import record
from gateway.cli import main
from gateway.intake.parsepool import parse_in_worker
from gateway.pipeline import RawMail, process
from store import blobs
from store.db import make_engine, transaction
from store.models import Attachment, Blob, Message, OutboxMail, Ticket
from store.packing import Packed, pack
from tests.conftest import make_config

LOGO = bytes(range(256)) * 40  # the same file in several mails


def _mail(n: int, body: str = "Printer on fire") -> bytes:
    logo = base64.encodebytes(LOGO).decode().replace("\n", "\r\n")
    return (f"From: Carla <carla@example.org>\r\nTo: support@example.com\r\n"
            f"Subject: Case {n}\r\nMessage-ID: <orig-{n}@example.org>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body} {n}.\r\n"
            + "word " * 400 + "\r\n--B\r\nContent-Type: image/png; name=logo.png\r\n"
            f"Content-Transfer-Encoding: base64\r\n\r\n{logo}--B--\r\n").encode()


def _config(tmp_path: Path, db_url: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "{db_url}"\n[[channel]]\nname = "support"\n'
                    'address = "support@example.com"\n', encoding="utf-8")
    return path


@pytest.fixture
def ingested(tmp_path: Path, db_url: str) -> Iterator[tuple[Path, Engine, list[bytes]]]:
    """Two mails carrying the same logo, ingested through the command line."""
    raws = [_mail(1), _mail(2)]
    for n, raw in enumerate(raws, 1):
        (tmp_path / f"{n}.eml").write_bytes(raw)
    config = _config(tmp_path, db_url)
    assert main(["--config", str(config), "ingest", str(tmp_path / "1.eml"),
                 str(tmp_path / "2.eml")]) == 0
    engine = make_engine(db_url)
    yield config, engine, raws
    engine.dispose()


def _number(engine: Engine, n: int) -> str:
    with transaction(engine) as session:
        message = session.exec(select(Message).where(Message.message_id == f"orig-{n}@example.org")).one()
        ticket = session.get(Ticket, message.ticket_id)
        assert ticket is not None
        return ticket.number


def test_original_is_kept_compressed_and_printed_byte_for_byte(
        ingested: tuple[Path, Engine, list[bytes]], capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    config, engine, raws = ingested
    capsysbinary.readouterr()
    number = _number(engine, 2)
    assert main(["--config", str(config), "tickets", "original", number, "1"]) == 0
    assert capsysbinary.readouterr().out == raws[1]
    assert main(["--config", str(config), "tickets", "original", number, "<orig-2@example.org>"]) == 0
    assert capsysbinary.readouterr().out == raws[1]
    with transaction(engine) as session:
        sha = session.exec(select(Message.original).where(Message.message_id == "orig-2@example.org")).one()
        assert sha is not None
        stored = session.get(Blob, sha)
        assert stored is not None
        assert stored.encoding == "zlib" and len(stored.data) < len(raws[1]) // 2


def test_identical_files_are_stored_once(ingested: tuple[Path, Engine, list[bytes]]) -> None:
    _, engine, _ = ingested
    with transaction(engine) as session:
        files = session.exec(select(Attachment)).all()
        assert len(files) == 2 and files[0].blob == files[1].blob == blobs.digest(LOGO)
        assert blobs.read(session, files[0].blob) == LOGO
        # two originals and one logo
        assert session.exec(select(func.count()).select_from(Blob)).one() == 3


def test_reprocess_makes_a_new_message_on_the_same_ticket_without_doubling(
        ingested: tuple[Path, Engine, list[bytes]], capsys: pytest.CaptureFixture[str]) -> None:
    config, engine, _ = ingested
    number = _number(engine, 1)
    with transaction(engine) as session:
        blobs_before = session.exec(select(func.count()).select_from(Blob)).one()
        mails_before = session.exec(select(func.count()).select_from(Message)).one()
        queued_before = session.exec(select(func.count()).select_from(OutboxMail)).one()
    capsys.readouterr()
    assert main(["--config", str(config), "tickets", "reprocess", number, "1"]) == 0
    assert f"reprocessed into a new message on {number}" in capsys.readouterr().out
    assert main(["--config", str(config), "tickets", "reprocess", number, "1"]) == 0  # again
    with transaction(engine) as session:
        again = session.exec(select(Message).where(Message.message_id == "orig-1@example.org")
                             .order_by(col(Message.id))).all()
        assert session.exec(select(func.count()).select_from(Blob)).one() == blobs_before
        assert session.exec(select(func.count()).select_from(Message)).one() == mails_before + 2
        assert session.exec(select(func.count()).select_from(OutboxMail)).one() == queued_before
    assert len(again) == 3 and len({m.ticket_id for m in again}) == 1
    assert len({m.original for m in again}) == 1 and len({m.message_key for m in again}) == 3
    assert "Printer on fire 1." in again[-1].text


def test_original_of_an_unknown_message_names_it(
        ingested: tuple[Path, Engine, list[bytes]], capsys: pytest.CaptureFixture[str]) -> None:
    config, engine, _ = ingested
    number = _number(engine, 1)
    capsys.readouterr()
    assert main(["--config", str(config), "tickets", "original", number, "9"]) == 1
    assert f"ticket {number} has no message 9" in capsys.readouterr().err
    assert main(["--config", str(config), "tickets", "original", "T-NOPE", "1"]) == 1


@pytest.mark.parametrize("kind", ["text", "random"])
def test_large_originals_round_trip_compressed_when_it_pays(engine: Engine, kind: str) -> None:
    data = (b"Line of a long mail, said again and again.\r\n" * 60000 if kind == "text"
            else random.Random(7).randbytes(3 * 1024 * 1024))
    with transaction(engine) as session:
        sha = blobs.put(session, data, compress=True)
    with transaction(engine) as session:
        row = session.get(Blob, sha)
        assert row is not None and row.size == len(data)
        assert row.encoding == ("zlib" if kind == "text" else "identity")
        assert (len(row.data) < len(data) // 10) if kind == "text" else len(row.data) == len(data)
        assert blobs.read(session, sha) == data


def test_an_original_packed_by_the_parse_worker_is_stored_without_packing_again(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _mail(1, body="Printer on fire. " * 400)
    parsed = parse_in_worker(data, "nh3")
    assert parsed is not None and parsed.packed_original is not None
    assert parsed.packed_original.encoding == "zlib"  # the worker compressed it

    def files_only(data: bytes, *, compress: bool = True, sha: str | None = None) -> Packed:
        if compress:  # only originals are compressed
            raise AssertionError("the main process packed the original again")
        return pack(data, compress=False, sha=sha)

    monkeypatch.setattr(blobs, "pack", files_only)
    raw = RawMail(data, "box", 1, 1)
    assert process(engine, make_config(), raw, parsed=parsed).outcome == "created"
    with transaction(engine) as session:
        message = session.exec(select(Message).where(Message.direction == "in")).one()
        assert message.original == blobs.digest(data)
        assert blobs.read(session, message.original) == data


def test_a_large_original_parsed_in_place_is_packed_in_a_thread_meanwhile(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _mail(1, body="A long report line.\r\n" * 120_000)  # over 2 MB: packed beside
    threads: list[str] = []

    def watched(packer: Callable[..., Packed]) -> Callable[..., Packed]:
        def run(value: bytes, **kwargs: Any) -> Packed:
            if value == data:
                threads.append(threading.current_thread().name)
            return packer(value, **kwargs)
        return run

    monkeypatch.setattr(record, "pack_to_file", watched(record.pack_to_file))
    monkeypatch.setattr(record, "pack", watched(record.pack))
    assert process(engine, make_config(), RawMail(data, "box", 1, 1)).outcome == "created"
    assert len(threads) == 1 and threads[0].startswith("pack-original")
    with transaction(engine) as session:
        message = session.exec(select(Message).where(Message.direction == "in")).one()
        assert message.original is not None
        blob = session.get(Blob, message.original)
        assert blob is not None and blob.encoding == "zlib" and len(blob.data) < len(data) // 10
        assert blobs.read(session, message.original) == data


def test_an_original_packed_ahead_is_not_packed_again(engine: Engine,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    data = _mail(1, body="A long report line.\r\n" * 120_000)
    calls: list[int] = []

    def counted(packer: Callable[..., Packed]) -> Callable[..., Packed]:
        def run(value: bytes, **kwargs: Any) -> Packed:
            calls.append(len(value))
            return packer(value, **kwargs)
        return run

    monkeypatch.setattr(record, "pack_to_file", counted(record.pack_to_file))
    monkeypatch.setattr(record, "pack", counted(record.pack))
    ahead = record.pack_ahead(engine, data)  # as the service starts it when a batch arrives
    assert ahead is not None and record.pack_ahead(engine, b"small") is None
    outcome = process(engine, make_config(), RawMail(data, "box", 1, 1), packing=ahead)
    assert outcome.outcome == "created" and calls == [len(data)]
    with transaction(engine) as session:
        message = session.exec(select(Message).where(Message.direction == "in")).one()
        assert message.original is not None and blobs.read(session, message.original) == data
