"""Authentication-Results prove an agent only from inside the trust boundary (RFC 8601 section 5):
the position of the header decides, never what it claims."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from gateway.pipeline import RawMail, process
from gateway.service import run_service
from tests.conftest import mailbox_table
from tests.servers.dovecot import Dovecot
from tests.servers.smtp import SmtpServer
from tests.test_agents import T0, agent_config, agent_mail, flush, open_ticket, smtp, ticket

__all__ = ["smtp"]  # the fixture, shared with test_agents

GENUINE = "Authentication-Results: mx.example.com; dkim=pass header.d=example.com\r\n"
FAILED = "Authentication-Results: mx.example.com; dkim=fail header.d=example.com\r\n"
OUR_MX = "Received: from mail.example.com (mail.example.com [192.0.2.10]) by mx.example.com " \
         "(Postfix) with ESMTPS id 4A1; Mon, 23 Nov 2026 10:00:02 +0100\r\n"
OUR_LMTP = "Received: from mx.example.com by imap.example.com (Dovecot) with LMTP id x1; " \
           "Mon, 23 Nov 2026 10:00:03 +0100\r\n"
ISP_HOP = "Received: from [10.1.2.3] (dsl.isp.example [198.51.100.4]) by smtp.isp.example " \
          "with ESMTPSA id 77; Mon, 23 Nov 2026 10:00:01 +0100\r\n"
WRITTEN = "Received: from localhost by laptop.evil.example with SMTP; Mon, 23 Nov 2026 10:00:00 +0100\r\n"
FAKE_BY_US = "Received: from (by mx.example.com) laptop.evil.example with SMTP; Mon, 23 Nov 2026\r\n"

# (name, header fields from the top down, trusted_relays, proven)
CASES = [
    ("genuine header on top", GENUINE + OUR_MX, [], True),
    ("genuine header below our own LMTP hop", OUR_LMTP + GENUINE + OUR_MX, ["imap.example.com"], True),
    ("our LMTP hop not declared: nothing counts", OUR_LMTP + GENUINE + OUR_MX, [], False),
    ("trusted-looking header below an untrusted hop", OUR_MX + ISP_HOP + GENUINE, [], False),
    ("below a Received the sender wrote", WRITTEN + GENUINE, [], False),
    ("below a written Received whose comment names our MX", FAKE_BY_US + GENUINE, [], False),
    ("our verdict on top says fail; a pass below it is the sender's", FAILED + OUR_MX + GENUINE, [],
     False),
    ("an untrusted authserv-id on top", GENUINE.replace("mx.example.com", "mx.evil.example"), [],
     False),
]


@pytest.mark.parametrize(("name", "headers", "relays", "proven"), CASES, ids=[c[0] for c in CASES])
async def test_authentication_results_count_only_inside_the_trust_boundary(
    engine: Engine, smtp: SmtpServer, name: str, headers: str, relays: list[str], proven: bool
) -> None:
    config = agent_config(engine, smtp, trusted_relays=relays)
    created, _ = await open_ticket(engine, config, smtp)
    reply = agent_mail("ar", "support@example.com", "#priority 8\nDone.",
                       subject=f"Re: [#{created.ticket_number}]", headers=headers)
    result = process(engine, config, RawMail(reply, "in"), now=T0)
    assert result.ticket_number == created.ticket_number
    assert ("unproven" in result.detail) is not proven, result.detail
    assert (ticket(engine, created.ticket_number).priority == 8) is proven


async def test_forged_proof_over_imap_relays_nothing(engine: Engine, smtp: SmtpServer, dovecot: Dovecot,
                                                     folder: str) -> None:
    config = agent_config(engine, smtp, mailbox=[mailbox_table(dovecot, folder)])
    created, _ = await open_ticket(engine, config, smtp)
    forged = agent_mail(folder, "support@example.com", "#status closed\nWe are done here.",
                        subject=f"Re: [#{created.ticket_number}]", headers=ISP_HOP + GENUINE)
    dovecot.append(forged, folder=folder)
    await run_service(engine, config, once=True)
    await flush(engine, config)
    assert ticket(engine, created.ticket_number).status == "new"
    assert [d for d in smtp.handler.to("anna@acme.example") if d.message["Auto-Submitted"] == "no"] == []
    report = smtp.handler.to("alice@example.com")[-1].message.get_body(("plain",)).get_content()
    assert "#status closed: not executed" in report
