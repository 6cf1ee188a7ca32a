"""Demo of the main job, told as a story: a support mailbox on Monday 23 November 2026.

A private Dovecot receives customer mail, `ticketgate run --once` turns it into tickets, an
agent answers from her mail client, replies thread in. Every command runs on a fixed clock
(time-machine), so the output is the same on every run: tests/test_demo.py holds it as the
expected transcript. English by default; `--lang de` tells it with German mails and templates.

    .venv/bin/python .ci/demo.py [--lang en|de]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers.dovecot import Dovecot, ensure_installed  # noqa: E402
from tests.servers.smtp import SmtpServer  # noqa: E402

VAR = ROOT / "var" / "demo"
DAY = "2026-11-23"  # a Monday; the clock of each step is this day at the step's time, in Berlin
# Runs one ticketgate command with the clock stopped at argv[1] (ISO time with its zone).
CLOCKED = ("import sys, time_machine\nfrom datetime import datetime\n"
           "time_machine.travel(datetime.fromisoformat(sys.argv[1]), tick=False).start()\n"
           "from gateway.cli.app import main\nsys.exit(main(sys.argv[2:]))\n")


@dataclass(frozen=True)
class Words:
    """What the people of the story write, in one language."""

    printer: tuple[str, str]  # subject, body
    vpn: tuple[str, str]
    password: tuple[str, str]
    agent: str  # Alice's reply below her commands
    remind: str
    thanks: tuple[str, str]  # reply prefix, body
    again: str
    away: tuple[str, str]
    stranger: str
    news: tuple[str, str]


ENGLISH = Words(
    printer=("Printer on the 2nd floor does not print",
             "Hello,\r\nthe printer on the second floor says \"paper jam\", but it is empty.\r\n"
             "Regards, Erika"),
    vpn=("VPN drops every 10 minutes", "Hi, since Monday my VPN connection drops every ten "
                                       "minutes. Thanks, John"),
    password=("Forgot my password", "I cannot get into my account any more."),
    agent="Hello Ms Muster,\r\nplease open tray B once and close it again.\r\n-- \r\n"
          "Alice, phone 030 1234567\r\n\r\n> the printer on the second floor ...\r\n",
    remind="ask about tray B",
    thanks=("Re", "It was tray B, thank you!"),
    again="It happened again at 10:40.",
    away=("Out of office", "I am out of the office until Friday."),
    stranger="I am not part of this ticket.",
    news=("Offers of the week", "Today only!"),
)
GERMAN = Words(
    printer=("Drucker im 2. OG druckt nicht",
             "Hallo,\r\nder Drucker im zweiten Stock zeigt „Papierstau“, ist aber leer.\r\n"
             "Grüße, Erika"),
    vpn=("VPN bricht alle 10 Minuten ab", "Hallo, seit Montag bricht mein VPN alle zehn Minuten "
                                          "ab. Danke, John"),
    password=("Passwort vergessen", "Ich komme nicht mehr in mein Konto."),
    agent="Hallo Frau Muster,\r\nbitte öffnen Sie einmal Klappe B und schließen sie wieder.\r\n"
          "-- \r\nAlice, Tel. 030 1234567\r\n\r\n> der Drucker im zweiten Stock ...\r\n",
    remind="Klappe B nachfragen",
    thanks=("AW", "Klappe B war es, danke!"),
    again="Es ist um 10:40 wieder passiert.",
    away=("Abwesend", "Ich bin bis Freitag nicht im Büro."),
    stranger="Ich gehöre nicht zu diesem Ticket.",
    news=("Angebote der Woche", "Nur heute!"),
)
ERIKA = "Erika Muster <erika@muster-gmbh.example>"


def customer_mail(n: int, sender: str, subject: str, body: str, at: str, extra: str = "") -> bytes:
    """A plain customer mail as a mail client would send it."""
    return (
        f"From: {sender}\r\nTo: Support <support@example.com>\r\nSubject: {subject}\r\n"
        f"Message-ID: <demo-{n}@customer.example>\r\nDate: Mon, 23 Nov 2026 {at}:00 +0100\r\n"
        f"{extra}MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n"
    ).encode()


class Story:
    """The CLI on a fixed clock, and what the SMTP sink received, printed as the story goes."""

    def __init__(self, config: Path, smtp: SmtpServer) -> None:
        self.config, self.smtp, self.seen = config, smtp, 0
        self.mails: dict[str, tuple[str, str]] = {}  # Message-ID: who wrote it, subject

    def ticketgate(self, at: str, *args: str) -> str:
        """Run the real CLI at DAY, at (HH:MM, Berlin); its output with paths from the checkout."""
        done = subprocess.run([sys.executable, "-c", CLOCKED, f"{DAY}T{at}:00+01:00",
                               "--config", str(self.config), *args],
                              capture_output=True, text=True, check=False, cwd=ROOT)
        if done.returncode != 0:
            sys.exit(f"ticketgate {' '.join(args)} failed:\n{done.stderr}")
        return done.stdout.replace(f"{ROOT}/", "")

    def arrive(self, server: Dovecot, mails: list[bytes]) -> None:
        """Deliver mails to the mailbox, remembering who wrote what for the story lines."""
        import email

        for raw in mails:
            parsed = email.message_from_bytes(raw)
            name = email.utils.parseaddr(parsed["From"])[0] or parsed["From"]
            self.mails[parsed["Message-ID"].strip("<>")] = (name, parsed["Subject"])
        server.seed(mails)

    def run_once(self, at: str) -> None:
        """`run --once`: one story line per mail (outcome, reason, reply), then what was sent."""
        print(f"{at}  ticketgate run --once")
        out = self.ticketgate(at, "run", "--once")
        for line in out.splitlines():
            fields = line.split("\t")
            if len(fields) < 4:
                print(f"      {line}")  # the mailbox's summary line
                continue
            outcome, number, message_id = fields[1], fields[2], fields[3].strip("<>")
            detail = fields[4] if len(fields) > 4 else ""
            who, subject = self.mails.get(message_id, ("?", "?"))
            told = detail if detail.startswith(outcome) else " ".join(
                x for x in (outcome, number if number != "-" else "", f"({detail})" if detail else "") if x)
            print(f"      {who}: \"{subject}\" -> {told}; "
                  f"{self.answer(at, outcome, number, message_id, detail)}")
        self.show_sent()

    def answer(self, at: str, outcome: str, number: str, message_id: str, detail: str) -> str:
        """Which automatic reply the sender got, or why none."""
        if outcome != "created":
            if "automatic mail" in detail:
                return "no acknowledgement: it is an automatic mail"
            return "no acknowledgement: " + ("dropped" if outcome == "dropped" else "a follow-up")
        detail_json: dict[str, Any] = json.loads(self.ticketgate(at, "tickets", "show", number,
                                                                 "--json"))
        fired = [hit["rule"] for hit in detail_json["rule_hits"] if "auto_reply" in hit["actions"]]
        by = f" (rule {', '.join(map(repr, fired))})" if fired else ""
        for message in detail_json["messages"]:
            if message["kind"] == "acknowledgement" and message["in_reply_to"] == message_id:
                return f"acknowledged with {message['outbox']['template']}{by}"
        return f"no acknowledgement{by}"

    def show_sent(self) -> None:
        """The mails the SMTP sink received since the last call, by ticket: the mailer's parallel
        connections keep each recipient's order, not the order across recipients."""
        rank = {"no": 0, "auto-replied": 1, "auto-generated": 2}
        fresh = sorted(self.smtp.handler.delivered[self.seen:], key=lambda d: (
            re.findall(r"\[#([^\]]+)\]", str(d.message["Subject"]))[:1],
            rank.get(str(d.message["Auto-Submitted"]), 3), d.rcpt_tos))
        for delivered in fresh:
            msg = delivered.message
            print(f"      sent to {', '.join(delivered.rcpt_tos)}: \"{msg['Subject']}\" "
                  f"(Auto-Submitted: {msg['Auto-Submitted']})")
        self.seen = len(self.smtp.handler.delivered)


def write_config(server: Dovecot, smtp: SmtpServer, language: str) -> Path:
    """The demo's config: one mailbox, an SMTP sink, the shipped rules, Berlin time."""
    config = VAR / "config.toml"
    config.write_text(
        'secret = "demo-secret-change-me"\n\n'
        f'[database]\nurl = "sqlite:///{VAR}/ticketgate.db"\n\n'
        '[tickets]\ntimezone = "Europe/Berlin"\n\n'
        f'[rules]\nfolder = "{ROOT / "rules"}"\n\n'
        f'[smtp]\nhost = "{smtp.host}"\nport = {smtp.port}\nsecurity = "none"\n\n'
        f'[outbound]\nlanguage = "{language}"\n\n'
        '[[channel]]\nname = "support"\naddress = "support@example.com"\n'
        'display_name = "Muster Support"\n\n'
        '[[channel]]\nname = "hotline"\naddress = "hotline@example.com"\n\n'
        '[[agent]]\naddress = "alice@example.com"\nname = "alice"\ndisplay_name = "Alice"\n\n'
        f'[[mailbox]]\nname = "demo"\nhost = "{server.host}"\nport = {server.port}\n'
        f'security = "none"\nusername = "support"\npassword = "{server.password}"\n'
        'processed_folder = "Processed"\nfailed_folder = "Failed"\n',
        encoding="utf-8",
    )
    return config


def tell(story: Story, server: Dovecot, words: Words) -> None:
    """The day at the support desk, step by step."""
    number = morning(story, server, words)
    evening(story, server, words, number)
    print("\n19:20  ticketgate tickets list")
    print(story.ticketgate("19:20", "tickets", "list"), end="")
    print(f"\n19:20  ticketgate tickets show {number}")
    print(story.ticketgate("19:20", "tickets", "show", number), end="")
    print(f"\n19:20  ticketgate report --since {DAY} (business hours, booked time)")
    print(story.ticketgate("19:20", "report", "--since", DAY), end="")
    print(f"\nTry it yourself: .venv/bin/ticketgate --config {story.config.relative_to(ROOT)} "
          "tickets show NUMBER --json")


def morning(story: Story, server: Dovecot, words: Words) -> str:
    """Three customers write, Alice answers the first from her mail client; its ticket number."""
    print(f"Monday {DAY}, Europe/Berlin. A private Dovecot holds the support mailbox, an SMTP "
          "sink on loopback takes what ticketgate sends; the rules are the shipped rules/*.toml.\n")
    print("09:30  three customer mails arrive")
    story.arrive(server, [
        customer_mail(1, ERIKA, *words.printer, "09:12", "Cc: Jörg Muster <joerg@muster-gmbh.example>\r\n"),
        customer_mail(2, "John Smith <john@smith-ltd.example>", *words.vpn, "09:20"),
        customer_mail(3, "Ana <ana@freemail.example>", *words.password, "09:25"),
    ])
    story.run_once("09:30")
    printer = story.ticketgate("09:31", "tickets", "list", "--json")
    number = next(t["number"] for t in json.loads(printer) if t["subject"] == words.printer[0])
    note = next(d.message for d in story.smtp.handler.to("alice@example.com")
                if number in d.message["Subject"])
    print(f"\n10:15  agent Alice hits Reply on the notification (its Reply-To {note['Reply-To']} "
          "proves it is her), with commands on the first lines, a signature and quoted text")
    server.append(
        f"From: Alice <alice@example.com>\r\nTo: {note['Reply-To']}\r\n"
        f"Subject: Re: {note['Subject']}\r\nIn-Reply-To: {note['Message-ID']}\r\n"
        "Message-ID: <demo-agent-1@laptop.example.com>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n#priority 7\r\n"
        f"#time 20m Remote support\r\n#remind 2d {words.remind}\r\n{words.agent}".encode())
    story.mails["demo-agent-1@laptop.example.com"] = ("Alice", f"Re: {note['Subject']}")
    story.run_once("10:15")
    answer = next(d.message for d in story.smtp.handler.to("erika@muster-gmbh.example")
                  if d.message["Auto-Submitted"] == "no")
    print("      what Erika gets (the commands, quote and private signature are gone):\n         "
          + answer.get_body(("plain",)).get_content().strip().replace("\n", "\n         "))
    return number


def evening(story: Story, server: Dovecot, words: Words, number: str) -> None:
    """After hours: replies of every kind, a stranger, a newsletter; then a second pass."""
    print(f"\n19:10  after hours, replies arrive: by subject token, by In-Reply-To, an "
          f"out-of-office, a stranger quoting {number}, a newsletter")
    prefix, thanks = words.thanks
    story.arrive(server, [
        customer_mail(4, ERIKA, f"{prefix}: [#{number}] {words.printer[0]}", thanks, "18:40"),
        customer_mail(5, "John Smith <john@smith-ltd.example>", f"{prefix}: {words.vpn[0]}",
                      words.again, "18:50", "In-Reply-To: <demo-2@customer.example>\r\n"),
        customer_mail(6, ERIKA, f"{words.away[0]}: [#{number}]", words.away[1], "18:55",
                      "Auto-Submitted: auto-replied\r\n"),
        customer_mail(7, "Mallory <mallory@elsewhere.example>",
                      f"{prefix}: [#{number}] {words.printer[0]}", words.stranger, "19:00"),
        customer_mail(8, "Shop <news@shop.example>", *words.news, "19:05",
                      "List-Unsubscribe: <mailto:off@shop.example>\r\n"),
    ])
    story.run_once("19:10")
    print("\n19:15  run again: nothing is fetched twice")
    story.run_once("19:15")


def main() -> None:
    """Start Dovecot and an SMTP sink, tell the story, stop them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lang", choices=("en", "de"), default="en",
                        help="language of the mails and templates (default: en)")
    words = GERMAN if parser.parse_args().lang == "de" else ENGLISH
    ensure_installed()
    shutil.rmtree(VAR, ignore_errors=True)
    VAR.mkdir(parents=True)
    server = Dovecot.start(VAR / "dovecot")
    smtp = SmtpServer().start()
    try:
        config = write_config(server, smtp, "de" if words is GERMAN else "en")
        tell(Story(config, smtp), server, words)
    finally:
        smtp.stop()
        server.kill()


if __name__ == "__main__":
    main()
