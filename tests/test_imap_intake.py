"""Intake from a real Dovecot: every mail stored exactly once, replies threaded, nothing lost."""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import func, select

from gateway.config import Config
from gateway.intake.imap import ImapMailbox
from gateway.intake.mailboxnames import modified_utf7
from gateway.pipeline import RawMail, process
from gateway.service import run_service
from store.db import transaction
from store.models import LedgerEntry, Message, QuarantinedMail, Ticket
from tests.conftest import WITHOUT_MOVE, mail, mailbox_table, make_config
from tests.servers.dovecot import Dovecot


def _config(engine: Engine, dovecot: Dovecot, folder: str, **extra: Any) -> Config:
    limits = extra.pop("limits", None)
    sections: dict[str, Any] = {"mailbox": [mailbox_table(dovecot, folder, **extra)]}
    if limits:
        sections["limits"] = limits
    return make_config(str(engine.url.render_as_string(hide_password=False)), **sections)


def _stored_ids(engine: Engine) -> list[str]:
    with transaction(engine) as session:
        return sorted(session.exec(select(Message.message_id).where(Message.direction == "in")).all())


async def test_200_mails_become_200_messages_exactly_once(engine: Engine, dovecot: Dovecot,
                                                         folder: str) -> None:
    dovecot.seed((mail(f"{folder}-{n}") for n in range(200)), folder=folder)
    config = _config(engine, dovecot, folder, batch_size=50)
    results = await run_service(engine, config, once=True)
    assert results[f"box-{folder}"].outcomes == {"created": 200}
    assert _stored_ids(engine) == sorted(f"m-{folder}-{n}@example.org" for n in range(200))
    assert dovecot.count(folder=folder) == 0
    assert dovecot.count(folder=f"{folder}/done") == 200
    again = await run_service(engine, config, once=True)
    assert again[f"box-{folder}"].fetched == 0
    assert len(_stored_ids(engine)) == 200


async def test_replies_over_imap_land_in_the_right_ticket(engine: Engine, dovecot: Dovecot,
                                                         folder: str) -> None:
    config = _config(engine, dovecot, folder)
    dovecot.append(mail("q1", "Printer broken", "anna@acme.example"), folder=folder)
    await run_service(engine, config, once=True)
    with transaction(engine) as session:
        number = session.exec(select(Ticket.number)).one()
    token = f"[#{number}]"
    replies = [
        mail("r1", f"Re: {token} Printer broken", "anna@acme.example"),
        mail("r2", "no token here", "anna@acme.example", headers="In-Reply-To: <m-q1@example.org>\r\n"),
        mail("r3", "still none", "anna@acme.example",
             headers="References: <x@y.example> <m-q1@example.org>\r\n"),
        mail("r4", f"AW: {token} Drucker", "anna@acme.example"),
        mail("r5", f"WG: {token} Drucker", "bert@acme.example"),
        mail("r6", f"SV: {token} Skrivare", "anna@acme.example"),
        mail("r7", f"Re: {token} I found this token", "mallory@evil.example"),
    ]
    dovecot.seed(replies, folder=folder)
    await run_service(engine, config, once=True)
    with transaction(engine) as session:
        rows = session.exec(
            select(Message.message_id, Ticket.number).join(Ticket)
        ).all()
    where = dict(rows)
    for n in range(1, 7):
        assert where[f"m-r{n}@example.org"] == number, n
    assert where["m-r7@example.org"] != number


async def test_keep_mode_marks_seen_and_never_refetches(engine: Engine, dovecot: Dovecot,
                                                       folder: str) -> None:
    config = _config(engine, dovecot, folder, processed_folder=None, failed_folder=None)
    dovecot.seed((mail(f"{folder}-k{n}") for n in range(5)), folder=folder)
    first = await run_service(engine, config, once=True)
    assert first[f"box-{folder}"].outcomes == {"created": 5}
    dovecot.append(mail(f"{folder}-k5"), folder=folder)
    second = await run_service(engine, config, once=True)
    assert second[f"box-{folder}"].outcomes == {"created": 1}
    assert dovecot.count(folder=folder) == 6  # kept in place
    assert len(_stored_ids(engine)) == 6


async def test_uidvalidity_change_dedupes_by_message_id(engine: Engine, dovecot: Dovecot,
                                                       folder: str) -> None:
    config = _config(engine, dovecot, folder, processed_folder=None, failed_folder=None)
    mails = [mail(f"{folder}-u{n}") for n in range(3)]
    dovecot.seed(mails, folder=folder)
    await run_service(engine, config, once=True)
    dovecot.delete_folder(folder)  # recreated below: a new UIDVALIDITY, UIDs start again
    dovecot.seed([*mails, mail(f"{folder}-u3")], folder=folder)
    result = await run_service(engine, config, once=True)
    assert result[f"box-{folder}"].outcomes == {"duplicate": 3, "created": 1}
    assert len(_stored_ids(engine)) == 4


async def test_oversized_mail_is_quarantined_and_moved_to_failed(engine: Engine, dovecot: Dovecot,
                                                                folder: str) -> None:
    config = _config(engine, dovecot, folder, limits={"max_message_bytes": 2000})
    dovecot.append(mail("big", body="x" * 5000), folder=folder)
    dovecot.append(mail("small"), folder=folder)
    result = await run_service(engine, config, once=True)
    assert result[f"box-{folder}"].outcomes == {"quarantined": 1, "created": 1}
    assert dovecot.message_ids(folder=f"{folder}/failed") == ["<m-big@example.org>"]
    assert dovecot.message_ids(folder=f"{folder}/done") == ["<m-small@example.org>"]
    with transaction(engine) as session:
        entry = session.exec(select(QuarantinedMail)).one()
        assert "too large" in entry.reason and b"xxxxx" in entry.raw
        assert session.exec(select(func.count()).select_from(LedgerEntry)).one() == 2


async def test_without_move_mail_is_copied_flagged_and_expunged(
    engine: Engine, dovecot_without_move: Dovecot, folder: str
) -> None:
    server = dovecot_without_move
    assert "MOVE" not in server.capabilities() and "MOVE" not in WITHOUT_MOVE.split()
    config = _config(engine, server, folder, limits={"max_message_bytes": 2000}, batch_size=10)
    server.seed([mail(f"{folder}-{n}") for n in range(25)], folder=folder)
    server.append(mail(f"{folder}-big", body="x" * 5000), folder=folder)
    result = await run_service(engine, config, once=True)
    assert result[f"box-{folder}"].outcomes == {"created": 25, "quarantined": 1}
    assert server.count(folder=folder) == 0  # expunged after the copy, nothing left flagged
    assert server.message_ids(folder=f"{folder}/done") == [
        f"<m-{folder}-{n}@example.org>" for n in range(25)]  # each copied once, in order
    assert server.message_ids(folder=f"{folder}/failed") == [f"<m-{folder}-big@example.org>"]


async def test_without_move_our_expunge_spares_mail_another_client_flagged_deleted(
    engine: Engine, dovecot_without_move: Dovecot, folder: str
) -> None:
    server = dovecot_without_move
    assert "UIDPLUS" in server.capabilities()
    cfg = _config(engine, server, folder).mailboxes[0]
    server.seed([mail(f"{folder}-{n}") for n in range(2)], folder=folder)
    box = ImapMailbox(cfg)
    await box.connect()
    try:
        ours = await box.search(None)
        other = imaplib.IMAP4(server.host, server.port)  # flags its own mail, expunges later
        try:
            other.login("support", server.password)
            typ, _ = other.append(folder, r"(\Deleted)", None, mail(f"{folder}-theirs"))
            assert typ == "OK"
        finally:
            other.logout()
        await box.settle(ours, cfg.processed_folder)
    finally:
        await box.close()
    assert server.message_ids(folder=folder) == [f"<m-{folder}-theirs@example.org>"]
    assert server.message_ids(folder=f"{folder}/done") == [
        f"<m-{folder}-{n}@example.org>" for n in range(2)]


async def test_mail_committed_before_a_crash_is_moved_after_it_quarantined_to_failed(
    engine: Engine, imap_server: Dovecot, folder: str
) -> None:
    """A pass stored both mails and died before it moved them: the next pass only moves them."""
    config = _config(engine, imap_server, folder, limits={"max_message_bytes": 2000})
    imap_server.append(mail(f"{folder}-ok"), folder=folder)
    imap_server.append(mail(f"{folder}-big", body="x" * 5000), folder=folder)
    cfg = config.mailboxes[0]
    box = ImapMailbox(cfg)
    await box.connect()
    try:  # the crashed pass: fetched and committed, never settled
        for uid, data in await box.fetch(await box.search(None)):
            raw = RawMail(data, cfg.name, box.uidvalidity, uid, cfg.channel, "email")
            assert process(engine, config, raw).outcome in {"created", "quarantined"}
    finally:
        await box.close()
    result = (await run_service(engine, config, once=True))[cfg.name]
    assert (result.fetched, result.settled_again) == (0, 2)  # nothing fetched or stored again
    assert imap_server.count(folder=folder) == 0
    assert imap_server.message_ids(folder=f"{folder}/done") == [f"<m-{folder}-ok@example.org>"]
    assert imap_server.message_ids(folder=f"{folder}/failed") == [f"<m-{folder}-big@example.org>"]
    assert len(_stored_ids(engine)) == 1


async def test_idle_picks_up_new_mail_while_running(engine: Engine, dovecot: Dovecot,
                                                   folder: str) -> None:
    config = _config(engine, dovecot, folder, poll_seconds=300)  # only IDLE can be this quick
    dovecot.append(mail(f"{folder}-i0"), folder=folder)
    service = asyncio.create_task(run_service(engine, config))
    try:
        await _until(lambda: len(_stored_ids(engine)) == 1)
        await asyncio.to_thread(dovecot.append, mail(f"{folder}-i1"), "support", folder)
        await _until(lambda: len(_stored_ids(engine)) == 2)
        # Mail arriving while earlier mail is being fetched and moved must not be stranded
        # until the next poll (the server's notice of it comes during other commands).
        for n in range(2, 8):
            await asyncio.to_thread(dovecot.append, mail(f"{folder}-i{n}"), "support", folder)
        await _until(lambda: len(_stored_ids(engine)) == 8)
    finally:
        service.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await service


async def _until(condition: Any, timeout: float = 20.0) -> None:
    """Wait for an observable condition (the database), failing after timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await asyncio.to_thread(condition):
        if loop.time() > deadline:
            pytest.fail("condition not reached in time")
        await asyncio.sleep(0.05)


async def test_folder_names_with_spaces_quotes_and_umlauts_are_selected_and_filed(
        engine: Engine, dovecot: Dovecot, folder: str) -> None:
    inbox, done = f'{folder} Eingang "Support"', f"{folder} Gelöst"
    dovecot.seed((mail(f"{folder}-s{n}") for n in range(3)), folder=modified_utf7(inbox))
    config = _config(engine, dovecot, inbox, processed_folder=done, failed_folder=None)
    results = await run_service(engine, config, once=True)
    assert results[f"box-{inbox}"].outcomes == {"created": 3}
    assert dovecot.count(folder=modified_utf7(inbox)) == 0
    assert dovecot.count(folder=modified_utf7(done)) == 3
