"""#merge: a duplicate ticket moves into another; replies to either keep landing in the target."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import select

from gateway.pipeline import RawMail, process
from store.db import transaction
from store.models import Message, Ticket
from store.views import ticket_detail
from tests.timerkit import T0, agent_writes, customer_writes, queued, ticket, timer_config


def with_attachment(n: str, subject: str, sender: str) -> bytes:
    return (f"From: {sender}\r\nTo: support@example.com\r\nSubject: {subject}\r\n"
            f"Message-ID: <m-{n}@example.org>\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
            "--b\r\nContent-Type: text/plain\r\n\r\nSee the photo.\r\n"
            "--b\r\nContent-Type: image/png\r\nContent-Disposition: attachment; filename=\"printer.png\"\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--b--\r\n").encode()


def acknowledgement_id(engine: Engine, number: str) -> str:
    with transaction(engine) as session:
        return session.exec(select(Message.message_id).join(Ticket).where(
            Ticket.number == number, Message.kind == "acknowledgement")).one()


def test_merge_moves_everything_and_keeps_threading(engine: Engine) -> None:
    config = timer_config(engine)
    first = process(engine, config, RawMail(with_attachment("a1", "Drucker kaputt",
                                                            "Bert <bert@acme.example>"), "in"),
                    now=T0).ticket_number
    second = customer_writes(engine, config, "b1", T0, subject="Printer broken",
                             headers="Cc: carla@acme.example\r\n").ticket_number
    assert first and second and first != second
    ack_of_first = acknowledgement_id(engine, first)
    agent_writes(engine, config, first, "#time 30m Diagnosis\n#remind 3d check toner\n#internal", T0)
    result = agent_writes(engine, config, first, f"#merge {second}", T0, n="merge")
    assert result.ticket_number == second  # the agent's mail lands on the target
    merged, target = ticket(engine, first), ticket(engine, second)
    assert (merged.status, merged.merged_into_id) == ("closed", target.id)
    detail = ticket_detail_of(engine, second)
    ids = [m["message_id"] for m in detail["messages"]]
    assert "m-a1@example.org" in ids and "m-b1@example.org" in ids
    (photo,) = [a for m in detail["messages"] if m["direction"] == "in" for a in m["attachments"]]
    assert photo["filename"] == "printer.png"
    assert {"bert@acme.example", "anna@acme.example", "carla@acme.example",
            "alice@example.com"} <= set(detail["watchers"])
    assert detail["time_booked_minutes"] == 30
    assert [t["kind"] for t in detail["timers"]] == ["reminder"]
    assert ticket_detail_of(engine, first)["merged_into"] == second
    assert ticket_detail_of(engine, first)["messages"] == []
    told = queued(engine, "customer/merged")
    assert [to for to, _ in told] == [["bert@acme.example"]]  # told once, and only them
    assert told[0][1]["merged"]["number"] == first and told[0][1]["ticket"]["number"] == second
    assert queued(engine, "customer/closed") == []  # no second mail about the closing
    results = queued(engine, "agent/command_result")[-1][1]["results"]
    assert results == [f"#merge {second}: done, {first} is closed and merged into {second}"]

    # replies to either ticket land in the target, over the whole pipeline
    by_reference = customer_writes(engine, config, "r1", T0, subject="Re: Drucker kaputt",
                                   sender="bert@acme.example",
                                   headers=f"In-Reply-To: <{ack_of_first}>\r\n")
    by_token = customer_writes(engine, config, "r2", T0, subject=f"Re: [#{first}] Drucker",
                               sender="bert@acme.example")
    by_other_token = customer_writes(engine, config, "r3", T0, subject=f"Re: [#{second}]",
                                     sender="anna@acme.example")
    by_old_agent_address = agent_writes(engine, config, first, "#priority 8\nStill on it.", T0,
                                        n="late")
    assert [d.ticket_number for d in (by_reference, by_token, by_other_token,
                                      by_old_agent_address)] == [second] * 4
    assert [d.outcome for d in (by_reference, by_token, by_other_token)] == ["followup"] * 3
    assert "unproven" not in by_old_agent_address.detail
    assert ticket(engine, second).priority == 8  # the old signed address still proves alice


def test_merges_that_cannot_be(engine: Engine) -> None:
    config = timer_config(engine)
    first = customer_writes(engine, config, "x1", T0).ticket_number
    second = customer_writes(engine, config, "x2", T0).ticket_number
    assert first and second
    agent_writes(engine, config, first, "#merge T20991231.9999\n#internal", T0, n="unknown")
    agent_writes(engine, config, first, f"#merge {first}\n#internal", T0, n="self")
    agent_writes(engine, config, first, "#merge tomorrow\n#internal", T0, n="word")
    assert ticket(engine, first).merged_into_id is None
    agent_writes(engine, config, first, f"#merge [#{second}]\n#internal", T0, n="ok")
    agent_writes(engine, config, second, f"#merge {first}\n#internal", T0, n="back")
    results = [c["results"][0] for _, c in queued(engine, "agent/command_result")]
    assert "no ticket T20991231.9999" in results[0]
    assert "cannot be merged into itself" in results[1]
    assert "is not a ticket number" in results[2]
    assert "done" in results[3]
    assert "was merged into this ticket already" in results[4]
    assert ticket(engine, second).status != "closed"


def test_a_customer_ticket_never_goes_into_an_internal_one(engine: Engine) -> None:
    config = timer_config(engine)
    customer = customer_writes(engine, config, "c1", T0).ticket_number
    internal = process(engine, config, RawMail(
        (b"From: Alice <alice@example.com>\r\nTo: support+new." +
         _new_mac(config).encode() + b"@example.com\r\nSubject: infra\r\n"
         b"Message-ID: <int-1@laptop.example.com>\r\n\r\n#internal\nRenew certs\r\n"), "in"),
        now=T0).ticket_number
    assert customer and internal and ticket(engine, internal).type == "internal"
    agent_writes(engine, config, customer, f"#merge {internal}\n#internal", T0)
    assert ticket(engine, customer).merged_into_id is None
    assert "internal ticket" in queued(engine, "agent/command_result")[-1][1]["results"][0]


def _new_mac(config) -> str:  # type: ignore[no-untyped-def]
    from gateway.agents.identity import reply_mac

    return reply_mac(config.secret, "NEW", "alice@example.com")


def ticket_detail_of(engine: Engine, number: str) -> dict:  # type: ignore[type-arg]
    with transaction(engine) as session:
        detail = ticket_detail(session, number)
    assert detail is not None
    return detail
