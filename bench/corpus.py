"""Deterministic generator of a realistic mixed support mailbox, as raw mails or an mbox."""

from __future__ import annotations

import argparse
import base64
import hashlib
import quopri
import random
import statistics
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

SUPPORT = "support@example.com"
FREEMAIL = ("gmail.com", "gmx.de", "web.de", "outlook.com", "hotmail.com", "yahoo.com",
            "t-online.de", "icloud.com", "mail.ru", "yandex.ru", "yahoo.co.jp", "orange.fr")
TLDS = ("de", "com", "at", "ch", "fr", "nl", "co.uk", "ru", "jp", "it", "eu", "net")
STEMS = ("mueller", "schmidt", "acme", "nordwind", "alpen", "becker", "rhein", "hansa", "kraft",
         "sonnen", "tech", "logistik", "bau", "medi", "data", "stahl", "elektro", "auto", "agrar",
         "print", "holz", "glas", "fin", "versand", "optik", "klinik", "hotel", "shop", "soft")
SUFFIXES = ("-gmbh", "-ag", "-group", "-tools", "-systems", "-werke", "", "-online", "-service")

# Sentences per language; each is encodable in the charsets that language is sent in.
GERMAN = (
    "Seit dem Update auf Version 4.2 startet das Programm nicht mehr.",
    "Beim Drucken der Rechnung erscheint die Fehlermeldung „Zugriff verweigert“.",
    "Könnten Sie uns bitte mitteilen, wann der Techniker vorbeikommt?",
    "Die Lieferung ist unvollständig, es fehlen zwei Kartons.",
    "Wir bitten um Rückruf, die Sache ist dringend.",
    "Der Zugang für unsere neue Mitarbeiterin Frau Größer funktioniert nicht.",
    "Im Anhang finden Sie den Screenshot der Störung.",
    "Die Rechnung über 1.234,56 € wurde doppelt abgebucht.",
    "Vielen Dank für die schnelle Hilfe, jetzt läuft alles wieder.",
    "Leider besteht das Problem weiterhin, auch nach dem Neustart.",
    "Bitte prüfen Sie, ob die Schnittstelle zum Lager noch Daten überträgt.",
    "Unser Drucker im Büro meldet seit heute früh einen Papierstau.",
)
ENGLISH = (
    "Since this morning none of our users can log in to the portal.",
    "The export to CSV stops at about 80 percent with a timeout.",
    "Could you please send us a copy of the last invoice?",
    "We ordered three licences but only received two activation keys.",
    "The mobile app crashes when I open the settings page.",
    "Please find attached the log file from the affected machine.",
    "Thank you, the issue is resolved on our side.",
    "Unfortunately the problem came back after the weekend.",
    "Is there a workaround until the fix is released?",
    "Our VPN connection drops every few minutes since the firmware update.",
    "Can you confirm the maintenance window for Saturday night?",
    "The password reset mail never arrives in my inbox.",
)
FRENCH = (
    "Depuis la mise à jour, l'application ne démarre plus.",
    "Pourriez-vous nous envoyer la facture du mois dernier ?",
    "Le problème persiste malgré le redémarrage du serveur.",
    "Merci beaucoup pour votre aide rapide, tout fonctionne à nouveau.",
    "Veuillez trouver ci-joint une capture d'écran de l'erreur.",
)
RUSSIAN = (
    "После обновления программа больше не запускается.",
    "Просим срочно перезвонить, проблема критическая.",
    "Во вложении скриншот ошибки.",
    "Спасибо за быструю помощь, теперь всё работает.",
    "Счёт был списан дважды, просим вернуть деньги.",
    "Проблема сохраняется и после перезагрузки сервера.",
)
JAPANESE = (
    "アップデート後、プログラムが起動しなくなりました。",
    "至急ご連絡をお願いいたします。",
    "エラー画面のスクリーンショットを添付いたします。",
    "迅速なご対応ありがとうございました。",
    "請求書が二重に引き落とされています。",
    "再起動しても問題が解決しません。",
)
LANGUAGES: dict[str, tuple[tuple[str, ...], str, str, str]] = {
    # language: sentences, greeting, closing, subject stem
    "de": (GERMAN, "Sehr geehrte Damen und Herren,", "Mit freundlichen Grüßen", "Störung"),
    "en": (ENGLISH, "Hello support team,", "Best regards", "Problem"),
    "fr": (FRENCH, "Bonjour,", "Cordialement", "Problème"),
    "ru": (RUSSIAN, "Здравствуйте,", "С уважением", "Проблема"),
    "ja": (JAPANESE, "サポートご担当者様", "よろしくお願いいたします。", "不具合"),
}
SUBJECTS = {
    "de": ("Störung {n}", "Frage zur Rechnung {n}", "Drucker im Büro {n} druckt nicht",
           "Zugang gesperrt ({n})", "Lieferung unvollständig – Auftrag {n}", "Dringend: Ausfall {n}"),
    "en": ("Login problem {n}", "Question about invoice {n}", "Export fails ({n})",
           "URGENT: outage at site {n}", "Licence keys missing for order {n}", "App crash {n}"),
    "fr": ("Problème de connexion {n}", "Facture {n}", "Erreur à l'export {n}"),
    "ru": ("Ошибка при запуске {n}", "Вопрос по счёту {n}"),
    "ja": ("起動しない問題 {n}", "請求書について {n}"),
}
FIRST = {"de": ("Jürgen", "Anna", "Sören", "Käthe", "Lukas", "Marie", "Björn", "Jörg"),
         "en": ("John", "Mary", "Peter", "Linda", "James", "Susan", "Oliver", "Emma"),
         "fr": ("Amélie", "François", "Hélène", "Jérôme"),
         "ru": ("Иван", "Ольга", "Сергей", "Наталья"),
         "ja": ("太郎", "花子", "健一", "美咲")}
LAST = {"de": ("Müller", "Schmidt", "Weiß", "Großmann", "Becker", "Schäfer", "Krüger"),
        "en": ("Smith", "Johnson", "Brown", "Taylor", "Wilson", "Davies"),
        "fr": ("Lefèvre", "Dubois", "Moreau", "Laurent"),
        "ru": ("Иванов", "Петрова", "Смирнов", "Кузнецова"),
        "ja": ("山田", "佐藤", "鈴木", "高橋")}
ASCII_NAMES = {"ru": "ivanov", "ja": "yamada"}
# Charsets each language is sent in, with weights; ISO-8859-1 text really is windows-1252.
CHARSETS = {"de": (("utf-8", 55), ("iso-8859-1", 25), ("windows-1252", 20)),
            "en": (("utf-8", 70), ("us-ascii", 20), ("windows-1252", 10)),
            "fr": (("utf-8", 60), ("iso-8859-1", 40)),
            "ru": (("koi8-r", 50), ("utf-8", 50)),
            "ja": (("iso-2022-jp", 70), ("utf-8", 30))}
LANGUAGE_WEIGHTS = (("de", 55), ("en", 30), ("fr", 5), ("ru", 5), ("ja", 5))
ATTACHMENT_KINDS = (  # name pattern, content type, size range in KB, magic bytes
    ("Rechnung_{n}.pdf", "application/pdf", (30, 300), b"%PDF-1.7\n"),
    ("screenshot_{n}.png", "image/png", (40, 400), b"\x89PNG\r\n\x1a\n"),
    ("Fehlerprotokoll_{n}.txt", "text/plain", (2, 60), b""),
    ("Angebot_{n}.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
     (20, 120), b"PK\x03\x04"),
    ("Liste_{n}.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
     (15, 90), b"PK\x03\x04"),
    ("IMG_{n}.JPG", "image/jpeg", (150, 900), b"\xff\xd8\xff\xe0"),
)
BIG_KINDS = (("Handbuch_komplett_{n}.pdf", "application/pdf", b"%PDF-1.5\n"),
             ("Aufnahme_{n}.mp4", "video/mp4", b"\x00\x00\x00\x18ftypmp42"),
             ("Logs_{n}.zip", "application/zip", b"PK\x03\x04"))
KINDS = (  # kind, weight (per 1000)
    ("new", 500), ("reply", 250), ("subject-reply", 50), ("auto-reply", 70),
    ("bounce", 40), ("newsletter", 35), ("forward", 25), ("no-message-date", 30),
)


@dataclass
class Mail:
    """One generated mail and what went into it (for the summary)."""

    raw: bytes
    kind: str
    message_id: str
    charset: str
    html: bool
    attachments: int = 0
    big_attachment: bool = False
    threaded: bool = False
    sender: str = ""
    extras: list[str] = field(default_factory=list)


@dataclass
class _Thread:
    subject: str
    language: str
    charset: str
    sender: tuple[str, str]
    ids: list[str]
    paragraphs: list[str]


class _Generator:
    """State of one deterministic run."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.now = datetime(2026, 11, 2, 7, 30, tzinfo=UTC)
        self.domains = self._domains(420)
        self.senders = [self._person() for _ in range(1600)]
        self.threads: list[_Thread] = []
        self.sent_ids: list[str] = []

    # -- people -------------------------------------------------------------------------
    def _domains(self, count: int) -> list[str]:
        found: dict[str, None] = {}
        while len(found) < count:
            stem = self.rng.choice(STEMS) + self.rng.choice(STEMS)
            found[f"{stem}{self.rng.choice(SUFFIXES)}.{self.rng.choice(TLDS)}"] = None
        return list(found)

    def _person(self) -> tuple[str, str, str]:
        language = self._weighted(LANGUAGE_WEIGHTS)
        first, last = self.rng.choice(FIRST[language]), self.rng.choice(LAST[language])
        local = ASCII_NAMES.get(language) or _ascii(f"{first}.{last}").lower()
        local = f"{local}{self.rng.randrange(1, 999)}" if self.rng.random() < 0.3 else local
        domain = self.rng.choice(FREEMAIL) if self.rng.random() < 0.3 else self.rng.choice(self.domains)
        return f"{first} {last}", f"{local}@{domain}", language

    def _weighted(self, pairs: tuple[tuple[str, int], ...]) -> str:
        names = [p[0] for p in pairs]
        return self.rng.choices(names, weights=[p[1] for p in pairs])[0]

    # -- headers ------------------------------------------------------------------------
    def _tick(self) -> str:
        self.now += timedelta(seconds=self.rng.randrange(20, 400))
        return format_datetime(self.now.astimezone(_zone(self.rng)))

    def _message_id(self, domain: str) -> str:
        token = hashlib.sha1(self.rng.randbytes(16)).hexdigest()
        if domain in ("outlook.com", "hotmail.com") or self.rng.random() < 0.3:
            box = (f"AM{self.rng.randrange(0, 9)}PR{self.rng.randrange(10, 99)}"
                   f"MB{self.rng.randrange(1000, 9999)}")
            return f"{box}{token[:24].upper()}@{box}.eurprd0{self.rng.randrange(1, 9)}.prod.outlook.com"
        if domain == "gmail.com" or self.rng.random() < 0.3:
            return f"CA{base64.urlsafe_b64encode(self.rng.randbytes(30)).decode()}@mail.gmail.com"
        return f"{token}.{self.rng.randrange(10**6)}@{domain}"

    def _head(self, sender: tuple[str, str], subject: str, charset: str, message_id: str,
              extra: list[str], date: bool = True) -> list[str]:
        name, address = sender
        lines = [
            f"Return-Path: <{address}>",
            f"Received: from mx{self.rng.randrange(1, 9)}.{address.split('@')[1]} "
            f"([198.51.100.{self.rng.randrange(1, 254)}]) by mx.example.com with ESMTPS id "
            f"{self.rng.randbytes(6).hex()}; {format_datetime(self.now)}",
            f"From: {_address_header(name, address, charset)}",
            f"To: Support <{SUPPORT}>",
            f"Subject: {_encode_word(subject, charset)}",
            f"Message-ID: <{message_id}>",
        ]
        if date:
            lines.append(f"Date: {self._tick()}")
        else:
            self._tick()
        lines += extra
        lines.append("MIME-Version: 1.0")
        return lines

    # -- bodies -------------------------------------------------------------------------
    def _paragraphs(self, language: str, count: int) -> list[str]:
        sentences = LANGUAGES[language][0]
        return [" ".join(self.rng.choice(sentences) for _ in range(self.rng.randrange(1, 5)))
                for _ in range(count)]

    def _text(self, language: str, paragraphs: list[str], name: str, quoted: list[str]) -> str:
        _, greeting, closing, _ = LANGUAGES[language]
        body = [greeting, ""]
        for paragraph in paragraphs:
            body += [paragraph, ""]
        body += [closing, name]
        if self.rng.random() < 0.5:
            body += ["", "--", name, f"Tel. +49 {self.rng.randrange(100, 999)} "
                                     f"{self.rng.randrange(100000, 999999)}"]
        if quoted:
            body += ["", "-----Original Message-----", *("> " + q for q in quoted)]
        return "\n".join(body)

    def _html(self, style: str, language: str, paragraphs: list[str], name: str,
              quoted: list[str], target: int, charset: str) -> str:
        if style == "outlook":
            return _outlook_html(self.rng, language, paragraphs, name, quoted, target, charset)
        return _gmail_html(self.rng, language, paragraphs, name, quoted, target)

    def _attachment(self, index: int, big: bool) -> tuple[str, bytes]:
        if big:
            pattern, ctype, magic = self.rng.choice(BIG_KINDS)
            size = self.rng.randrange(2_000_000, 8_000_000)
        else:
            pattern, ctype, (low, high), magic = self.rng.choice(ATTACHMENT_KINDS)
            size = int(1024 * low * (high / low) ** self.rng.random())
        filename = pattern.format(n=index)
        if ctype == "text/plain":
            line = "2026-11-23 10:00:00 ERROR [worker-3] connection reset by peer (retry 3/5)\n"
            data = (line * (size // len(line) + 1))[:size].encode()
        else:
            data = magic + self.rng.randbytes(size - len(magic))
        disposition = f'attachment; filename="{filename}"'
        if self.rng.random() < 0.1:  # RFC 2231 name with umlauts
            disposition = f"attachment; filename*=utf-8''{_pct('Übersicht ' + filename)}"
        part = (f"Content-Type: {ctype}; name=\"{filename}\"\r\nContent-Disposition: {disposition}\r\n"
                f"Content-Transfer-Encoding: base64\r\n\r\n").encode() + _b64(data)
        return filename, part

    # -- whole mails --------------------------------------------------------------------
    def mail(self, index: int) -> Mail:
        kind = self._weighted(KINDS)
        if kind in ("reply", "subject-reply") and not self.threads:
            kind = "new"
        if kind == "auto-reply":
            return self._auto_reply(index)
        if kind == "bounce":
            return self._bounce(index)
        if kind == "newsletter":
            return self._newsletter(index)
        return self._human(index, kind)

    def _human(self, index: int, kind: str) -> Mail:
        threaded = kind == "reply"
        thread: _Thread | None = None
        extras: list[str] = []
        if kind in ("reply", "subject-reply"):
            thread = self.rng.choice(self.threads[-400:])
            language, charset = thread.language, thread.charset
            if self.rng.random() < 0.8:
                name, address = thread.sender
            else:  # a colleague from the same domain answers
                name = f"{self.rng.choice(FIRST[language])} {self.rng.choice(LAST[language])}"
                address = f"kollege{self.rng.randrange(1, 50)}@{thread.sender[1].split('@')[1]}"
                extras.append("colleague")
            prefix = self.rng.choice(("Re: ", "AW: ", "RE: ", "Aw: ", "Antw: ", "WG: ", "SV: "))
            subject = prefix + thread.subject
        else:
            name, address, language = self.rng.choice(self.senders)
            charset = self._weighted(CHARSETS[language])
            subject = self.rng.choice(SUBJECTS[language]).format(n=self.rng.randrange(100, 99999))
        if charset == "us-ascii":
            language, subject = "en", _ascii(subject)
        domain = address.split("@")[1]
        message_id = self._message_id(domain)
        head_extra: list[str] = []
        if thread is not None and threaded:
            parent = thread.ids[-1]
            refs = thread.ids[-10:]
            head_extra += [f"In-Reply-To: <{parent}>",
                           "References: " + "\r\n ".join(f"<{r}>" for r in refs)]
            if self.rng.random() < 0.3:
                head_extra.append(f"Thread-Index: {base64.b64encode(self.rng.randbytes(22)).decode()}")
        if self.rng.random() < 0.25:
            colleague = f"{self.rng.choice(('it', 'einkauf', 'buchhaltung', 'chef'))}@{domain}"
            head_extra.append(f"Cc: {colleague}")
        if kind == "forward":
            subject = "WG: " + subject
        paragraphs = self._paragraphs(language, self.rng.randrange(1, 6))
        quoted = thread.paragraphs[-12:] if thread is not None else []
        body_text = self._text(language, paragraphs, name, quoted)
        html = self.rng.random() < 0.55
        style = "outlook" if self.rng.random() < 0.6 else "gmail"
        big = self.rng.random() < 0.006
        attachments = 1 + (self.rng.random() < 0.3) if self.rng.random() < 0.2 else 0
        attachments = max(attachments, 1) if big else attachments
        parts: list[bytes] = []
        if html:
            target = int(20_000 * 4 ** self.rng.random())  # 20-80 KB of HTML, log-uniform
            html_body = self._html(style, language, paragraphs, name, quoted, target, charset)
            alternative = _alternative(self.rng, body_text, html_body, charset)
            if style == "outlook" and self.rng.random() < 0.5:  # signature logo, inline
                alternative = _related(self.rng, alternative)
                extras.append("inline-image")
            parts.append(alternative)
        else:
            parts.append(_text_part(self.rng, body_text, charset))
        for number in range(attachments):
            _, part = self._attachment(index * 10 + number, big and number == 0)
            parts.append(part)
        if kind == "forward":
            parts.append(self._forwarded())
        if kind == "no-message-date":  # a few clients send no Date; the mail is still new
            extras.append("no-date")
        head = self._head((name, address), subject, charset, message_id, head_extra,
                          date=kind != "no-message-date")
        raw = _join(head, parts[0] if len(parts) == 1 else _multipart(self.rng, "mixed", parts))
        if thread is None:
            self.threads.append(_Thread(subject, language, charset, (name, address), [message_id],
                                        paragraphs))
        else:
            thread.ids.append(message_id)
            thread.paragraphs += paragraphs
        self.sent_ids.append(message_id)
        return Mail(raw, "reply" if threaded else ("new" if kind == "no-message-date" else kind),
                    message_id, charset, html, attachments, big, threaded, address, extras)

    def _forwarded(self) -> bytes:
        name, address, language = self.rng.choice(self.senders)
        inner = (f"From: {_address_header(name, address, 'utf-8')}\r\nTo: {SUPPORT}\r\n"
                 f"Subject: {_encode_word(self.rng.choice(SUBJECTS[language]).format(n=1), 'utf-8')}\r\n"
                 f"Date: {format_datetime(self.now - timedelta(days=3))}\r\n"
                 f"Message-ID: <fwd-{self.rng.randbytes(8).hex()}@{address.split('@')[1]}>\r\n"
                 "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                 "Content-Transfer-Encoding: 8bit\r\n\r\n").encode()
        inner += "\r\n".join(self._paragraphs(language, 3)).encode("utf-8") + b"\r\n"
        return b"Content-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n" + inner

    def _auto_reply(self, index: int) -> Mail:
        name, address, language = self.rng.choice(self.senders)
        charset = "utf-8" if language not in ("de", "en") else self._weighted(CHARSETS[language])
        if charset == "us-ascii":
            language = "en"
        subject = {"de": "Abwesenheitsnotiz: ", "en": "Automatic reply: ", "fr": "Réponse automatique : ",
                   "ru": "Автоответ: ", "ja": "自動応答: "}[language] + "[#T20261102.0001] Ihre Anfrage"
        if charset == "us-ascii":
            subject = _ascii(subject)
        message_id = self._message_id(address.split("@")[1])
        extra = [self.rng.choice(("Auto-Submitted: auto-replied", "Auto-Submitted: auto-generated",
                                  "X-Auto-Response-Suppress: All"))]
        if self.rng.random() < 0.5:
            extra.append("Precedence: bulk")
        if self.sent_ids and self.rng.random() < 0.5:
            extra.append(f"In-Reply-To: <{self.rng.choice(self.sent_ids[-300:])}>")
        body = self._text(language, ["Ich bin bis zum 30.11. nicht im Büro." if language == "de" else
                                     self.rng.choice(LANGUAGES[language][0])], name, [])
        head = self._head((name, address), subject, charset, message_id, extra)
        return Mail(_join(head, _text_part(self.rng, body, charset)), "auto-reply", message_id,
                    charset, False, sender=address)

    def _bounce(self, index: int) -> Mail:
        _, address, _ = self.rng.choice(self.senders)
        domain = address.split("@")[1]
        message_id = f"{self.rng.randbytes(10).hex()}@mx{self.rng.randrange(1, 9)}.example.com"
        failed = self.rng.random() < 0.8
        status = self.rng.choice(("5.1.1", "5.2.2", "5.7.1")) if failed else "4.4.1"
        returned = f"{self.rng.randbytes(16).hex()}@example.com"
        report = (f"Reporting-MTA: dns; mx.example.com\r\nArrival-Date: {format_datetime(self.now)}\r\n\r\n"
                  f"Final-Recipient: rfc822; {address}\r\nOriginal-Recipient: rfc822;{address}\r\n"
                  f"Action: {'failed' if failed else 'delayed'}\r\nStatus: {status}\r\n"
                  f"Remote-MTA: dns; mx.{domain}\r\n"
                  f"Diagnostic-Code: smtp; {'550' if failed else '451'} {status} "
                  f"{'user unknown' if failed else 'try again later'}\r\n")
        original = (f"From: Support <{SUPPORT}>\r\nTo: {address}\r\nSubject: [#T20261102.{index % 9999:04d}] "
                    f"Ihre Anfrage\r\nMessage-ID: <{returned}>\r\nAuto-Submitted: auto-replied\r\n"
                    "Content-Type: text/plain; charset=utf-8\r\n\r\nWir haben Ihre Anfrage erhalten.\r\n")
        notice = (f"This is the mail system at host mx.example.com.\r\n\r\nI'm sorry to have to inform you "
                  f"that your message could not be delivered to one or more recipients.\r\n\r\n"
                  f"<{address}>: host mx.{domain} said: 550 {status} user unknown\r\n")
        parts = [b"Content-Description: Notification\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
                 + notice.encode(),
                 b"Content-Description: Delivery report\r\nContent-Type: message/delivery-status\r\n\r\n"
                 + report.encode()]
        if self.rng.random() < 0.6:
            parts.append(b"Content-Description: Undelivered Message\r\nContent-Type: message/rfc822\r\n\r\n"
                         + original.encode())
        else:
            headers = original.split("\r\n\r\n")[0]
            parts.append(b"Content-Type: text/rfc822-headers\r\n\r\n" + headers.encode() + b"\r\n")
        boundary = f"{self.rng.randbytes(6).hex()}.{index}/mx.example.com"
        body = _multipart(self.rng, "report", parts, boundary=boundary,
                          params="; report-type=delivery-status")
        title = "Undelivered Mail Returned to Sender" if failed else "Delayed Mail (still being retried)"
        head = ["Return-Path: <>", "From: MAILER-DAEMON@mx.example.com (Mail Delivery System)",
                f"To: {SUPPORT}", f"Subject: {title}",
                f"Message-ID: <{message_id}>", f"Date: {self._tick()}", "Auto-Submitted: auto-replied",
                "MIME-Version: 1.0"]
        return Mail(_join(head, body), "bounce", message_id, "us-ascii", False, sender="mailer-daemon")

    def _newsletter(self, index: int) -> Mail:
        domain = self.rng.choice(self.domains)
        message_id = self._message_id(domain)
        html = _gmail_html(self.rng, "de", self._paragraphs("de", 6), "Newsletter-Team", [],
                           int(20_000 * 2 ** self.rng.random()))
        extra = [f"List-Unsubscribe: <https://{domain}/unsubscribe?u={self.rng.randbytes(8).hex()}>",
                 f"List-Id: <news.{domain}>", "Precedence: bulk"]
        head = self._head(("Newsletter", f"newsletter@{domain}"), f"Neuigkeiten im November ({index})",
                          "utf-8", message_id, extra)
        body = _alternative(self.rng, "Neuigkeiten im November", html, "utf-8")
        return Mail(_join(head, body), "newsletter", message_id, "utf-8", True, sender=f"newsletter@{domain}")


# -- MIME helpers --------------------------------------------------------------------------

def _ascii(text: str) -> str:
    table = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue",
                           "é": "e", "è": "e", "ç": "c", "–": "-", "„": '"', "“": '"', "€": "EUR"})
    return text.translate(table).encode("ascii", "replace").decode().replace("?", "")


def _pct(text: str) -> str:
    return "".join(c if (c.isalnum() and c.isascii()) or c in "._-" else
                   "".join(f"%{b:02X}" for b in c.encode()) for c in text)


def _codec(charset: str) -> str:
    return "cp1252" if charset == "iso-8859-1" else charset


def _encode_word(text: str, charset: str) -> str:
    """RFC 2047 encoded words (B), each short enough for a 78-column line."""
    if text.isascii():
        return text
    if charset == "us-ascii":
        charset = "utf-8"
    words = []
    for start in range(0, len(text), 12):
        chunk = text[start:start + 12].encode(_codec(charset), "replace")
        words.append(f"=?{charset}?B?{base64.b64encode(chunk).decode()}?=")
    return "\r\n ".join(words)


def _address_header(name: str, address: str, charset: str) -> str:
    if name.isascii():
        return f'"{name}" <{address}>'
    return f"{_encode_word(name, charset)} <{address}>"


def _zone(rng: random.Random) -> timezone:
    return rng.choice(ZONES)


def _b64(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


def _encoded_body(rng: random.Random, text: str, charset: str) -> tuple[bytes, str]:
    data = text.encode(_codec(charset), "xmlcharrefreplace" if charset != "utf-8" else "strict")
    if charset in ("us-ascii", "iso-2022-jp"):
        return data.replace(b"\n", b"\r\n"), "7bit"
    if charset == "koi8-r" and rng.random() < 0.5:
        return data.replace(b"\n", b"\r\n"), "8bit"
    if rng.random() < 0.25:
        return _b64(data), "base64"
    return quopri.encodestring(data).replace(b"\n", b"\r\n"), "quoted-printable"


def _text_part(rng: random.Random, text: str, charset: str, subtype: str = "plain") -> bytes:
    body, cte = _encoded_body(rng, text, charset)
    fmt = "; format=flowed" if subtype == "plain" and rng.random() < 0.2 else ""
    return (f"Content-Type: text/{subtype}; charset=\"{charset}\"{fmt}\r\n"
            f"Content-Transfer-Encoding: {cte}\r\n\r\n").encode() + body + b"\r\n"


def _alternative(rng: random.Random, text: str, html: str, charset: str) -> bytes:
    return _multipart(rng, "alternative", [_text_part(rng, text, charset),
                                           _text_part(rng, html, charset, "html")])


def _related(rng: random.Random, alternative: bytes) -> bytes:
    size = rng.randrange(3_000, 20_000)
    image = (b'Content-Type: image/png; name="image001.png"\r\nContent-Description: image001.png\r\n'
             b'Content-Disposition: inline; filename="image001.png"\r\n'
             b"Content-ID: <image001.png@01DB3C2A.5E6F7A80>\r\nContent-Transfer-Encoding: base64\r\n\r\n"
             + _b64(b"\x89PNG\r\n\x1a\n" + rng.randbytes(size)))
    return _multipart(rng, "related", [alternative, image], params='; type="multipart/alternative"')


def _multipart(rng: random.Random, subtype: str, parts: list[bytes], boundary: str | None = None,
               params: str = "") -> bytes:
    boundary = boundary or f"_{rng.randrange(10**6):06d}_{rng.randbytes(8).hex()}_"
    out = [f'Content-Type: multipart/{subtype}; boundary="{boundary}"{params}\r\n\r\n'.encode()]
    if subtype == "mixed" and rng.random() < 0.3:
        out.append(b"This is a multi-part message in MIME format.\r\n\r\n")
    for part in parts:
        out.append(f"--{boundary}\r\n".encode() + part + b"\r\n")
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out)


def _join(head: list[str], body: bytes) -> bytes:
    return ("\r\n".join(head) + "\r\n").encode() + body


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


OUTLOOK_STYLE = """<style><!--
/* Font Definitions */
@font-face
	{font-family:"Cambria Math";
	panose-1:2 4 5 3 5 4 6 3 2 4;}
@font-face
	{font-family:Calibri;
	panose-1:2 15 5 2 2 2 4 3 2 4;}
@font-face
	{font-family:Aptos;}
/* Style Definitions */
p.MsoNormal, li.MsoNormal, div.MsoNormal
	{margin:0cm;
	font-size:11.0pt;
	font-family:"Calibri",sans-serif;
	mso-fareast-language:EN-US;}
a:link, span.MsoHyperlink
	{mso-style-priority:99;
	color:#0563C1;
	text-decoration:underline;}
span.E-MailFormatvorlage17
	{mso-style-type:personal-compose;
	font-family:"Calibri",sans-serif;
	color:windowtext;}
.MsoChpDefault
	{mso-style-type:export-only;
	font-family:"Calibri",sans-serif;
	mso-fareast-language:EN-US;}
@page WordSection1
	{size:612.0pt 792.0pt;
	margin:70.85pt 70.85pt 2.0cm 70.85pt;}
div.WordSection1
	{page:WordSection1;}
--></style><!--[if gte mso 9]><xml>
<o:shapedefaults v:ext="edit" spidmax="1026" />
</xml><![endif]--><!--[if gte mso 9]><xml>
<o:shapelayout v:ext="edit">
<o:idmap v:ext="edit" data="1" />
</o:shapelayout></xml><![endif]-->"""
SPAN = ('<span style="font-size:11.0pt;font-family:&quot;Calibri&quot;,sans-serif;'
        'color:#1F497D;mso-fareast-language:EN-US">')


def _outlook_html(rng: random.Random, language: str, paragraphs: list[str], name: str,
                  quoted: list[str], target: int, charset: str) -> str:
    _, greeting, closing, _ = LANGUAGES[language]
    head = ('<html xmlns:v="urn:schemas-microsoft-com:vml" '
            'xmlns:o="urn:schemas-microsoft-com:office:office" '
            'xmlns:w="urn:schemas-microsoft-com:office:word" xmlns:m="http://schemas.microsoft.com/office/2004/'
            f'12/omml" xmlns="http://www.w3.org/TR/REC-html40"><head><meta http-equiv="Content-Type" '
            f'content="text/html; charset={charset}"><meta name="Generator" content="Microsoft Word 15 '
            f'(filtered medium)">{OUTLOOK_STYLE}</head><body lang="DE" link="#0563C1" vlink="#954F72" '
            f'style="word-wrap:break-word"><div class="WordSection1">')
    out = [head]

    def para(text: str) -> str:
        return f'<p class="MsoNormal">{SPAN}{_escape(text)}<o:p></o:p></span></p>\n'

    out += [para(greeting), para("\u00a0"), *(para(p) for p in paragraphs), para(closing), para(name)]
    out.append('<table class="MsoNormalTable" border="0" cellspacing="0" cellpadding="0" '
               'style="border-collapse:collapse"><tr><td width="120" valign="top" style="width:90.0pt;'
               'padding:0cm 5.4pt 0cm 5.4pt"><p class="MsoNormal"><img width="110" height="40" '
               'style="width:1.1458in;height:.4166in" id="Bild_x0020_1" '
               'src="cid:image001.png@01DB3C2A.5E6F7A80" '
               f'alt="Logo"></p></td><td valign="top" style="padding:0cm 5.4pt 0cm 5.4pt">{para(name)}'
               f'{para("Tel. +49 30 1234567")}<p class="MsoNormal"><a href="https://www.example.org/">'
               '<span style="color:#0563C1">www.example.org</span></a></p></td></tr></table>\n')
    history = quoted or paragraphs
    depth = 0
    while sum(len(x) for x in out) < target:
        depth += 1
        out.append('<div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm">'
                   f'<p class="MsoNormal"><b><span style="font-size:11.0pt">Von:</span></b>{SPAN} '
                   f'{_escape(name)} &lt;kunde@example.org&gt; <br><b>Gesendet:</b> Montag, {depth}. '
                   'November 2026 10:12<br><b>An:</b> Support &lt;support@example.com&gt;<br>'
                   f'<b>Betreff:</b> AW: Anfrage {depth}<o:p></o:p></span></p></div>\n')
        for text in history:
            out.append(para(text))
            out.append(f'<p class="MsoNormal">{SPAN}<o:p>&nbsp;</o:p></span></p>\n')
        out.append(para(rng.choice(LANGUAGES[language][0])))
    out.append("</div></body></html>")
    return "".join(out)


def _gmail_html(rng: random.Random, language: str, paragraphs: list[str], name: str,
                quoted: list[str], target: int) -> str:
    _, greeting, closing, _ = LANGUAGES[language]
    out = ['<div dir="ltr"><div>', _escape(greeting), "</div><div><br></div>"]
    out += [f"<div>{_escape(p)}</div><div><br></div>" for p in paragraphs]
    out.append(f'<div>{_escape(closing)}</div><div>{_escape(name)}</div><div><br></div>-- <br>'
               '<div dir="ltr" class="gmail_signature"><div dir="ltr"><span style="color:rgb(102,102,102);'
               'font-family:arial,helvetica,sans-serif;font-size:small">'
               f"{_escape(name)} | Example Org</span></div></div></div>")
    history = quoted or paragraphs
    depth = 0
    closers = []
    while sum(len(x) for x in out) < target:
        depth += 1
        out.append(f'<br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">Am Mo., {depth}. Nov. '
                   f'2026 um 10:{depth % 60:02d} Uhr schrieb Support &lt;'
                   '<a href="mailto:support@example.com">'
                   'support@example.com</a>&gt;:<br></div><blockquote class="gmail_quote" style="margin:0px '
                   '0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);padding-left:1ex">')
        out += [f'<div dir="ltr"><div><span style="font-family:arial,sans-serif">{_escape(t)}</span>'
                f"</div></div>" for t in history]
        out.append(f"<div>{_escape(rng.choice(LANGUAGES[language][0]))}</div>")
        closers.append("</blockquote></div>")
    out += reversed(closers)
    return "".join(out)


ZONES = tuple(timezone(timedelta(hours=h)) for h in (1, 1, 1, 0, -5, 3, 9))


# -- public API ----------------------------------------------------------------------------

def generate_mails(n: int = 5000, seed: int = 20261123) -> list[Mail]:
    """n mails with what went into each, the same for the same (n, seed)."""
    gen = _Generator(seed)
    return [gen.mail(i) for i in range(n)]


def generate(n: int = 5000, seed: int = 20261123) -> list[bytes]:
    """n raw mails (CRLF line ends), the same for the same (n, seed)."""
    return [m.raw for m in generate_mails(n, seed)]


def summary(mails: list[Mail]) -> str:
    """A markdown table of the mix."""
    sizes = [len(m.raw) for m in mails]
    kinds = Counter(m.kind for m in mails)
    charsets = Counter(m.charset for m in mails)
    senders = {m.sender for m in mails}
    domains = {s.split("@")[-1] for s in senders}
    freemail = sum(1 for m in mails if m.sender.split("@")[-1] in FREEMAIL)
    rows = [
        ("mails", f"{len(mails)}"),
        ("total size", f"{sum(sizes) / 1e6:.1f} MB (median {statistics.median(sizes) / 1e3:.1f} KB, "
                       f"max {max(sizes) / 1e6:.1f} MB)"),
        ("kinds", ", ".join(f"{k} {v}" for k, v in kinds.most_common())),
        ("threaded by In-Reply-To/References", f"{sum(m.threaded for m in mails)}"),
        ("HTML (multipart/alternative, 20–80 KB HTML)", f"{sum(m.html for m in mails)}"),
        ("with attachments / of several MB", f"{sum(m.attachments > 0 for m in mails)} / "
                                              f"{sum(m.big_attachment for m in mails)}"),
        ("charsets", ", ".join(f"{k} {v}" for k, v in charsets.most_common())),
        ("senders / domains / from freemail", f"{len(senders)} / {len(domains)} / {freemail} mails"),
    ]
    return "| corpus | |\n|---|---|\n" + "\n".join(f"| {a} | {b} |" for a, b in rows)


def write_mbox(mails: list[bytes], path: Path) -> None:
    """An mboxrd file (">From " escaping) of the mails."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        for raw in mails:
            body = raw.replace(b"\r\n", b"\n")
            body = b"\n".join(b">" + line if line.lstrip(b">").startswith(b"From ") else line
                              for line in body.split(b"\n"))
            out.write(b"From MAILER-DAEMON Mon Nov 23 10:00:00 2026\n" + body.rstrip(b"\n") + b"\n\n")


def main() -> None:
    """Generate, print the mix, and write an mbox."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", "--mails", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("-o", "--output", type=Path,
                        default=Path(__file__).resolve().parent.parent / "var" / "bench" / "corpus.mbox")
    args = parser.parse_args()
    mails = generate_mails(args.mails, args.seed)
    write_mbox([m.raw for m in mails], args.output)
    print(summary(mails))
    print(f"written: {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
