"""The pipeline on its own: dedupe, concurrency, synthetic ids, watchers, quarantine."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import func, select

from gateway.pipeline import RawMail, process
from store import blobs
from store.db import transaction
from store.models import Attachment, LedgerEntry, Message, QuarantinedMail, Watcher
from store.queries import next_counter
from tests.conftest import mail, make_config


def _count(engine: Engine, table: type) -> int:
    with transaction(engine) as session:
        query = select(func.count()).select_from(table)
        if table is Message:
            query = query.where(Message.direction == "in")
        return int(session.exec(query).one())


def test_same_mail_twice_is_stored_once(engine: Engine) -> None:
    config = make_config()
    first = process(engine, config, RawMail(mail(1), "ingest"))
    second = process(engine, config, RawMail(mail(1), "other-mailbox", 7, 42))
    assert (first.outcome, second.outcome) == ("created", "duplicate")
    assert second.ticket_number == first.ticket_number
    assert _count(engine, Message) == 1
    assert _count(engine, LedgerEntry) == 2  # both copies are accounted for


def test_reused_message_id_with_other_content_is_kept(engine: Engine) -> None:
    config = make_config()
    first = process(engine, config, RawMail(mail(1, body="first text"), "ingest"))
    other = process(engine, config, RawMail(mail(1, body="a different mail"), "ingest"))
    # Nothing in it refers to the first mail (no In-Reply-To, no token): a ticket of its own.
    assert (other.outcome, other.message_id) == ("created", first.message_id)
    assert other.ticket_number != first.ticket_number
    with transaction(engine) as session:
        texts = session.exec(select(Message.text).where(Message.direction == "in")).all()
    assert sorted(t.strip() for t in texts) == ["a different mail", "first text"]


def test_concurrent_processing_of_one_mail_stores_it_once(engine: Engine) -> None:
    config = make_config()
    raws = [RawMail(mail("race"), f"box{i}", 1, 1) for i in range(4)]
    outcomes: list[str] = []
    barrier = threading.Barrier(len(raws))

    def work(raw: RawMail) -> None:
        barrier.wait()
        outcomes.append(process(engine, config, raw).outcome)

    threads = [threading.Thread(target=work, args=(raw,)) for raw in raws]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["created", "duplicate", "duplicate", "duplicate"]
    assert _count(engine, Message) == 1


def test_mail_without_message_id_gets_a_stable_synthetic_one(engine: Engine) -> None:
    raw = b"From: x@example.org\r\nSubject: no id\r\n\r\nhello\r\n"
    config = make_config()
    first = process(engine, config, RawMail(raw, "ingest"))
    again = process(engine, config, RawMail(raw, "ingest"))
    assert first.message_id.endswith("@synthetic.ticketgate.invalid")
    assert (first.outcome, again.outcome) == ("created", "duplicate")
    assert again.message_id == first.message_id


def test_cc_addresses_become_watchers_but_not_our_own(engine: Engine) -> None:
    raw = mail("cc", headers="Cc: Boss <boss@acme.example>, support@example.com, not an address\r\n")
    result = process(engine, make_config(), RawMail(raw, "ingest"))
    with transaction(engine) as session:
        watchers = set(session.exec(select(Watcher.address)).all())
    assert result.outcome == "created"
    assert watchers == {"customer@example.org", "boss@acme.example"}


def test_attachments_are_stored_with_their_bytes(engine: Engine) -> None:
    raw = (b"From: a@example.org\r\nSubject: file\r\nMessage-ID: <att@example.org>\r\n"
           b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n"
           b"--XX\r\nContent-Type: text/plain\r\n\r\nsee file\r\n"
           b"--XX\r\nContent-Type: application/pdf; name=\"../r.pdf\"\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--XX--\r\n")
    process(engine, make_config(), RawMail(raw, "ingest"))
    with transaction(engine) as session:
        item = session.exec(select(Attachment).join(Message).where(Message.direction == "in")).one()
        data = blobs.read(session, item.blob)
    assert (item.filename, item.content_type, data) == ("r.pdf", "application/pdf", b"%PDF-1.4\n")


def test_oversized_mail_is_quarantined_with_its_bytes(engine: Engine) -> None:
    config = make_config(limits={"max_message_bytes": 100})
    result = process(engine, config, RawMail(mail("big"), "ingest"))
    assert result.outcome == "quarantined" and "too large" in result.detail
    with transaction(engine) as session:
        entry = session.exec(select(QuarantinedMail)).one()
    assert entry.raw == mail("big")


def test_the_highest_imap_uids_are_recorded_for_a_ticket_and_for_quarantine(engine: Engine) -> None:
    top = 2**32 - 1  # UIDVALIDITY and UID are unsigned 32-bit in IMAP: past PostgreSQL's INTEGER
    config = make_config()
    stored = process(engine, config, RawMail(mail(1), "box", top, top))
    again = process(engine, config, RawMail(mail(1), "box", top, top))
    failed = process(engine, config, RawMail(b"\x89PNG\r\n\x1a\n", "box", top, top - 1))
    assert (stored.outcome, again.outcome, failed.outcome) == ("created", "duplicate", "quarantined")
    with transaction(engine) as session:
        ledger = session.exec(select(LedgerEntry.uidvalidity, LedgerEntry.uid)).all()
        assert sorted(ledger) == [(top, top - 1), (top, top)]
        kept = session.exec(select(QuarantinedMail)).one()
        assert (kept.uidvalidity, kept.uid) == (top, top - 1)


def test_a_ticket_number_never_waits_for_another_mails_commit_on_postgresql(engine: Engine) -> None:
    if engine.dialect.name == "sqlite":  # one writer at a time: drawn in the mail's transaction
        with pytest.raises(RuntimeError), transaction(engine) as session:
            assert next_counter(session, "T") == 1
            raise RuntimeError("the mail failed")
        with transaction(engine) as session:
            assert next_counter(session, "T") == 1  # given back with the rollback: no gap
        return
    drawn: list[int] = []
    done = threading.Event()

    def another_mail() -> None:
        with transaction(engine) as session:
            drawn.append(next_counter(session, "T"))
        done.set()

    with pytest.raises(RuntimeError), transaction(engine) as session:
        assert next_counter(session, "T") == 1
        other = threading.Thread(target=another_mail)
        other.start()
        # drawn inside this transaction, the row would stay locked until it ends
        assert done.wait(10), "the second number waited for the first mail's commit"
        raise RuntimeError("the first mail failed")
    other.join()
    with transaction(engine) as session:
        assert (drawn, next_counter(session, "T")) == ([2], 3)  # the rolled-back 1 is a gap
