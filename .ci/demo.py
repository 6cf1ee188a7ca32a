"""Demo of the main job: a real local IMAP mailbox turns into tickets, replies thread in."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers.dovecot import Dovecot, ensure_installed  # noqa: E402
from tests.servers.smtp import SmtpServer  # noqa: E402

VAR = ROOT / "var" / "demo"


def customer_mail(n: str, sender: str, subject: str, body: str, extra: str = "") -> bytes:
    """A plain customer mail as a mail client would send it."""
    return (
        f"From: {sender}\r\nTo: Support <support@example.com>\r\nSubject: {subject}\r\n"
        f"Message-ID: <demo-{n}@customer.example>\r\nDate: Mon, 23 Nov 2026 09:0{len(n)}:00 +0100\r\n"
        f"{extra}MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n"
    ).encode()


FIRST_ROUND = [
    customer_mail("1", "Erika Muster <erika@muster-gmbh.example>", "Drucker im 2. OG druckt nicht",
                  "Hallo,\r\nder Drucker im zweiten Stock zeigt „Papierstau“, ist aber leer.\r\n"
                  "Grüße, Erika", "Cc: Jörg Muster <joerg@muster-gmbh.example>\r\n"),
    customer_mail("2", "John Smith <john@smith-ltd.example>", "VPN drops every 10 minutes",
                  "Hi, since Monday my VPN connection drops every ten minutes. Thanks, John"),
    customer_mail("3", "Ana <ana@freemail.example>", "Passwort vergessen",
                  "Ich komme nicht mehr in mein Konto."),
]


def ticketgate(config: Path, *args: str) -> str:
    """Run the real CLI and return what it printed."""
    result = subprocess.run([str(ROOT / ".venv" / "bin" / "ticketgate"), "--config", str(config),
                             *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"ticketgate {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def show_sent(smtp: SmtpServer, since: int) -> int:
    """Print the mails the SMTP server received since index since; return the new count."""
    for delivered in smtp.handler.delivered[since:]:
        msg = delivered.message
        print(f"   -> {', '.join(delivered.rcpt_tos)}: {msg['Subject']}  (From: {msg['From']}, "
              f"Auto-Submitted: {msg['Auto-Submitted']})")
    return len(smtp.handler.delivered)


def main() -> None:
    """Start Dovecot and an SMTP sink, deliver sample mail, let an agent answer, print tickets."""
    ensure_installed()
    shutil.rmtree(VAR, ignore_errors=True)
    VAR.mkdir(parents=True)
    server = Dovecot.start(VAR / "dovecot")
    smtp = SmtpServer().start()
    try:
        config = VAR / "config.toml"
        config.write_text(
            'secret = "demo-secret-change-me"\n\n'
            f'[database]\nurl = "sqlite:///{VAR}/ticketgate.db"\n\n'
            '[tickets]\ntimezone = "Europe/Berlin"\n\n'
            f'[rules]\nfolder = "{ROOT / "rules"}"\n\n'
            f'[smtp]\nhost = "{smtp.host}"\nport = {smtp.port}\nsecurity = "none"\n\n'
            '[outbound]\nlanguage = "de"\n\n'
            '[[channel]]\nname = "support"\naddress = "support@example.com"\n'
            'display_name = "Muster Support"\n\n'
            '[[channel]]\nname = "hotline"\naddress = "hotline@example.com"\n\n'
            '[[agent]]\naddress = "alice@example.com"\nname = "alice"\ndisplay_name = "Alice"\n\n'
            f'[[mailbox]]\nname = "demo"\nhost = "{server.host}"\nport = {server.port}\n'
            f'security = "none"\nusername = "support"\npassword = "{server.password}"\n'
            'processed_folder = "Processed"\nfailed_folder = "Failed"\n',
            encoding="utf-8",
        )
        print(f"== a private Dovecot on {server.host}:{server.port}, an SMTP sink on port {smtp.port}; "
              f"{len(FIRST_ROUND)} customer mails arrive")
        server.seed(FIRST_ROUND)
        print(ticketgate(config, "run", "--once"), end="")
        sent = show_sent(smtp, 0)
        printer = next(line.split("\t")[0] for line in ticketgate(config, "tickets", "list").splitlines()
                       if "Drucker" in line)
        note = next(d.message for d in smtp.handler.to("alice@example.com")
                    if printer in d.message["Subject"])
        print(f"== agent Alice hits Reply on the notification (Reply-To {note['Reply-To']}), "
              "with commands (#priority, #time, #remind), quoted text and a signature")
        server.append(
            f"From: Alice <alice@example.com>\r\nTo: {note['Reply-To']}\r\n"
            f"Subject: Re: {note['Subject']}\r\nIn-Reply-To: {note['Message-ID']}\r\n"
            "Message-ID: <demo-agent-1@laptop.example.com>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\n#priority 7\r\n"
            "#time 20m Remote support\r\n#remind 2d Klappe B nachfragen\r\n"
            "Hallo Frau Muster,\r\nbitte öffnen Sie einmal Klappe B und schließen sie wieder.\r\n"
            "-- \r\nAlice, Tel. 030 1234567\r\n\r\n> der Drucker im zweiten Stock ...\r\n".encode())
        print(ticketgate(config, "run", "--once"), end="")
        sent = show_sent(smtp, sent)
        answer = next(d.message for d in smtp.handler.to("erika@muster-gmbh.example")
                      if d.message["Auto-Submitted"] == "no")
        print("   what Erika gets:\n      " + answer.get_body(("plain",)).get_content().strip()
              .replace("\n", "\n      "))
        print(f"== replies arrive: by subject token, by In-Reply-To, an out-of-office, a stranger "
              f"quoting {printer}, a newsletter")
        server.seed([
            customer_mail("4", "Erika Muster <erika@muster-gmbh.example>", f"AW: [#{printer}] Drucker",
                          "Klappe B war es, danke!"),
            customer_mail("5", "John Smith <john@smith-ltd.example>", "Re: VPN",
                          "It happened again at 10:40.", "In-Reply-To: <demo-2@customer.example>\r\n"),
            customer_mail("6", "Erika Muster <erika@muster-gmbh.example>", f"Abwesend: [#{printer}]",
                          "Ich bin bis Freitag nicht im Büro.", "Auto-Submitted: auto-replied\r\n"),
            customer_mail("7", "Mallory <mallory@elsewhere.example>", f"Re: [#{printer}] Drucker",
                          "I am not part of this ticket."),
            customer_mail("8", "Shop <news@shop.example>", "Angebote der Woche", "Nur heute!",
                          "List-Unsubscribe: <mailto:off@shop.example>\r\n"),
        ])
        print(ticketgate(config, "run", "--once"), end="")
        show_sent(smtp, sent)
        print("== run again: nothing is fetched twice")
        print(ticketgate(config, "run", "--once"), end="")
        print("== ticketgate tickets list")
        print(ticketgate(config, "tickets", "list"), end="")
        print(f"== ticketgate tickets show {printer}")
        print(ticketgate(config, "tickets", "show", printer))
        today = datetime.now(ZoneInfo("Europe/Berlin")).date().isoformat()
        print(f"== ticketgate report --since {today} (business hours, booked time)")
        print(ticketgate(config, "report", "--since", today))
        print(f"(config: {config}; try: .venv/bin/ticketgate --config {config} tickets show NUMBER --json)")
    finally:
        smtp.stop()
        server.kill()


if __name__ == "__main__":
    main()
