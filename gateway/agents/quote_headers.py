"""Where quoted history starts, in the words of mail clients in many languages.

Pure data and small predicates over one line (or a few joined lines); the algorithm that
decides what of a reply is history lives in ``gateway.agents.quoting``. The patterns were
written here from the clients' own output (Gmail, Apple Mail, iOS, Thunderbird, Outlook,
Yahoo, AOL) in each language; other reply parsers (mail-parser-reply, email_reply_parser)
were read for which clients and languages to cover, none of their code is used.

Three kinds of quote header:

- *strong*: a keyword at the start and a verb at the end (``On … wrote:``, ``Am … schrieb …:``,
  ``Dnia … napisał(a):``): history even when no ``>`` lines follow (a quote without marks);
- *weak*: only a verb or an address before the colon (``Anna wrote:``, Gmail's Japanese and
  Russian ``2026年11月23日(月) 10:00 Anna <a@b>:``): a header only when ``>`` lines follow;
- Outlook's block of header fields without ``>`` (``From:/Sent:/To:/Subject:`` and
  ``Fra:/Sendt:/Til:/Emne:`` …), and separator lines (``-----Original Message-----``,
  ``-----Ursprüngliche Nachricht-----`` …): everything from there on is history.
"""

from __future__ import annotations

import re

_I = re.IGNORECASE
_ANY = r".{1,250}?"  # a date, a name, an address: anything of header length

# Weekday abbreviations that start date-first headers (Gmail in da/no/sv/pl/fi/cs/ru/tr).
_WEEKDAYS = (
    r"man|tir|ons|tor|fre|lør|søn|mån|tis|lör|sön"  # da, no, sv
    r"|pon|wt|śr|czw|pt|sob|niedz|nie"  # pl
    r"|po|út|st|čt|pá|so|ne"  # cs
    r"|ma|ti|ke|to|pe|la|su"  # fi
    r"|пн|вт|ср|чт|пт|сб|вс"  # ru
    r"|pzt|sal|çar|per|cum|cmt|paz"  # tr
)
_DATE_FIRST = rf"(?:(?:{_WEEKDAYS})\.?,?\s|\d)"

_STRONG = [
    rf"on\s{_ANY}\s*wrote\s*:",  # en: Gmail, Apple, iOS, Thunderbird, Yahoo, AOL
    rf"in a message dated\s{_ANY}\s*writes\s*:",  # en: AOL
    rf"am\s{_ANY}\s*schrieb\b.{{0,250}}:",  # de
    rf"am\s{_ANY}\shat\s{_ANY}\s*geschrieben\s*:",  # de (Outlook for Mac)
    rf"le\s{_ANY}\s*a\s+[ée]crit\s*:",  # fr
    rf"el\s{_ANY}\s*escribi[óo]\s*:",  # es
    rf"op\s{_ANY}\s*schreef\b.{{0,250}}:",  # nl
    rf"op\s{_ANY}\s*(?:het volgende\s)?geschreven\s*:",  # nl
    rf"(?:il|in data)\s{_ANY}\s*ha\s+scritto\s*:",  # it
    rf"(?:em|no dia|a)\s{_ANY}\s*escreveu\s*:",  # pt (pt-BR Gmail, pt-PT)
    rf"{_ANY}\s*escreveu\s*\({_ANY}\)\s*:",  # pt-PT (Gmail)
    rf"(?:den\s|{_DATE_FIRST}){_ANY}\s*skrev\b.{{0,250}}:",  # da, no, sv
    rf"(?:dnia|w dniu)\s{_ANY}\s*(?:napisał(?:\(a\))?|nadesłał|pisze)\s*:",  # pl
    rf"{_DATE_FIRST}{_ANY}\s*(?:napisał(?:\(a\)|a)?|pisze)\s*:",  # pl (Gmail), Thunderbird
    rf"\d{{4}}\s*年\s*\d{{1,2}}\s*月\s*\d{{1,2}}\s*日{_ANY}<[^<>\s]+@[^<>\s]+>\s*[:：]",  # ja (Gmail)
    rf"\d{{4}}/\d{{1,2}}/\d{{1,2}}{_ANY}(?:のメール|さんは書きました|wrote)\s*[:：]",  # ja
    rf"{_ANY}\s*пользователь\s{_ANY}\s*написал(?:а|\(а\))?\s*:",  # ru (Apple Mail)
    rf"{_DATE_FIRST}{_ANY}\s*(?:пишет|написал(?:а|\(а\))?)\s*:",  # ru (Thunderbird, Gmail)
    rf"dne\s{_ANY}\s*napsal(?:\(a\)|a)?\s*:",  # cs
    rf"{_ANY}\s*odesílatel\s{_ANY}\s*napsal(?:\(a\)|a)?\s*:",  # cs (Gmail)
    rf"{_DATE_FIRST}{_ANY}\s*kirjoitti\s*:",  # fi (Gmail)
    rf"{_ANY}\s*kirjoitti\s+{_DATE_FIRST}{_ANY}:",  # fi (Thunderbird)
    rf"{_ANY}\s*tarihinde\s+(?:şunu\s+)?yazdı\s*:",  # tr (Gmail)
    rf"{_ANY}(?:于|於|在)\s*\d{{4}}\s*年{_ANY}\s*(?:写道|寫道)\s*[:：]",  # zh (Gmail, QQ)
    # ko (Gmail)
    rf"\d{{4}}\s*년\s*\d{{1,2}}\s*월\s*\d{{1,2}}\s*일{_ANY}\s*(?:님이\s*)?작성(?:하였습니다|했습니다)?\s*[:：]",
]
_STRONG_RE = re.compile(r"^(?:" + "|".join(_STRONG) + r")$", _I)
# Every strong header has one of these: a cheap test before the expensive one.
_STRONG_HINTS = ("wrote", "writes", "schrieb", "geschrieben", "crit", "escribi", "schreef", "geschreven",
                 "scritto", "escreveu", "skrev", "napisa", "nadesła", "pisze", "написал", "пишет",
                 "napsal", "kirjoitti", "yazdı", "写道", "寫道", "작성", "のメール", "書きました", "@")

_VERBS = (
    r"wrote|schrieb|a\s+[ée]crit|escribi[óo]|schreef|ha\s+scritto|escreveu|skrev|napisał(?:\(a\)|a)?"
    r"|pisze|написал(?:а|\(а\))?|пишет|napsal(?:\(a\)|a)?|kirjoitti|yazdı|写道|寫道|작성|님이\s*작성"
    r"|さんは書きました|のメール"
)
_WEAK_RE = re.compile(rf"^(?:.{{1,200}}?\s*(?:{_VERBS})|.*\d.*<[^<>\s]+@[^<>\s]+>\)?)\s*[:：]$", _I)
# The first lines of our own agent notifications (templates/*/agent/new_*.txt.j2), quoted back.
_OWN_INTRO_RE = re.compile(r"^(?:.{1,200}?\s(?:wrote on ticket|schrieb zu ticket)\s\S+"
                           r"|(?:new ticket|neues ticket)\s\S+\s(?:from|von)\s.{1,200}?)\s*:$", _I)
_VERB_ONLY_RE = re.compile(rf"^(?:{_VERBS})\s*[:：]$", _I)

# Outlook (and AOL, Yahoo, Thunderbird forwards): header fields of the quoted mail, no '>'.
_FROM = (r"from|von|de|da|van|fra|från|od|от|lähettäjä|kimden|afzender|expéditeur|remitente"
         r"|差出人|发件人|發件人|寄件者|보낸\s?사람")
_SENT = (r"sent|date|gesendet|datum|envoyé|enviado|enviada em|enviada|inviato|data|verzonden"
         r"|sendt|dato|skickat|wysłano|wysłane|отправлено|дата|odesláno|lähetetty|päivämäärä"
         r"|gönderildi|gönderilme tarihi|tarih"
         r"|发送时间|發送時間|寄件日期|日期|送信日時|日付|보낸\s?날짜|날짜")
_TO = (r"to|an|à|a|para|aan|til|till|do|кому|komu|vastaanottaja|kime|收件人|收件者|宛先|받는\s?사람"
       r"|subject|betreff|objet|asunto|oggetto|onderwerp|assunto|emne|ämne|temat|тема|předmět"
       r"|aihe|konu|主题|主題|主旨|件名|제목"
       r"|cc|kopie|kopia|kopi|dw|копия|kopio|bilgi|抄送|副本|참조")
_FIELD = r"^\s*\*?\s*(?:{})\s*\*?\s*[:：]"
_FROM_RE = re.compile(_FIELD.format(_FROM), _I)
_SENT_RE = re.compile(_FIELD.format(_SENT), _I)
_TO_RE = re.compile(_FIELD.format(_TO), _I)

# Separator lines above a quoted or forwarded mail.
_PHRASES = (
    r"original message|original e-?mail|forwarded message|begin forwarded message"
    r"|ursprüngliche nachricht|urspruengliche nachricht|original-?nachricht|weitergeleitete nachricht"
    r"|anfang der weitergeleiteten nachricht"
    r"|message d'origine|message original|message transféré|mensaje original|mensaje reenviado"
    r"|messaggio originale|messaggio inoltrato|oorspronkelijk bericht|origineel bericht"
    r"|doorgestuurd bericht|mensagem original|mensagem encaminhada"
    r"|oprindelig meddelelse|videresendt meddelelse|opprinnelig melding|opprinnelig meddelelse"
    r"|videresendt melding|ursprungligt meddelande|originalmeddelande|vidarebefordrat meddelande"
    r"|wiadomość oryginalna|oryginalna wiadomość|wiadomość przekazana|przekazana wiadomość"
    r"|исходное сообщение|пересылаемое сообщение|původní zpráva|původní e-?mail|přeposlaná zpráva"
    r"|alkuperäinen viesti|välitetty viesti|özgün ileti|orijinal mesaj|iletilen ileti"
    r"|原始邮件|原始郵件|原始信件|转发的邮件|轉寄的郵件"
    r"|원본 메시지|전달된 메시지|元のメッセージ|転送されたメッセージ"
)
_SEPARATOR_RE = re.compile(
    rf"^\s*(?:[-=_*]{{2,}}\s*(?:{_PHRASES})\s*[-=_*]{{2,}}|(?:{_PHRASES})\s*[:：])\s*$", _I)
_RULE_RE = re.compile(r"^\s*(?:_{10,}|-{10,})\s*$")  # Outlook's line above its header block

# Signatures: the '-- ' delimiter and the lines mobile clients add on their own.
_SIGNATURE_RE = re.compile(r"^(?:-- ?|—|__)\s*$")
_DEVICE_RE = re.compile(
    r"^\s*(?:sent from (?:my|the|yahoo|aol|mail|outlook|samsung)|sent with|get outlook for"
    r"|von meinem|gesendet von"
    r"|envoyé de mon|envoyé depuis|enviado desde mi|enviado do meu|enviado de meu|inviato da"
    r"|verzonden (?:met|vanaf) mijn|verstuurd vanaf mijn|sendt fra min|skickat från min|wysłane z"
    r"|отправлено с|odesláno z|lähetetty \S+(?:sta|stä)$|\S+(?:umdan|imden|'dan|'den) gönderildi"
    r"|从我的|發自我的|来自我的|\S+에서 보냄|\S+から送信)",
    _I,
)

_DATED_RE = re.compile(r"\d{1,2}[:.h]\d{2}|\d{4}|\d{1,2}[./-]\d{1,2}[./-]\d{2}")

MAX_HEADER_LINES = 3  # a quote header folded by the client spans at most this many lines
_MAX_HEADER_CHARS = 600  # longer "headers" are text; also bounds the regex work per line


def _clean(text: str) -> str:
    """One line of header text: no-break and narrow spaces as spaces, trimmed."""
    return text.replace("\u00a0", " ").replace("\u202f", " ").strip()


def is_quoted(line: str) -> bool:
    """A line of quoted text ('> …', also '>>' and indented '>')."""
    return line.lstrip().startswith(">")


def is_blank(line: str) -> bool:
    """An empty or whitespace-only line."""
    return not line.strip()


def strong_header(text: str) -> bool:
    """A quote header that means history even without '>' lines below it.

    >>> strong_header("On Mon, 23 Nov 2026 at 10:00, Anna <anna@acme.example>wrote:")
    True
    >>> strong_header("Den man. 23. nov. 2026 kl. 10.00 skrev Anna <anna@acme.example>:")
    True
    >>> strong_header("On Monday we ship the fix.")
    False
    """
    text = _clean(text)
    return (len(text) <= _MAX_HEADER_CHARS and text[-1:] in ":："
            and any(hint in text.lower() for hint in _STRONG_HINTS) and bool(_STRONG_RE.match(text)))


def dated(text: str) -> bool:
    """Has a date or a time in it, as every client's quote header has."""
    return bool(_DATED_RE.search(text))


def weak_header(text: str) -> bool:
    """A quote header only when quoted lines follow ('Anna wrote:', '… <a@b>:').

    >>> weak_header("Anna Kunde <anna@acme.example> kirjoitti:"), weak_header("Note:")
    (True, False)
    """
    text = _clean(text)
    return len(text) <= _MAX_HEADER_CHARS and text[-1:] in ":：" and bool(_WEAK_RE.match(text))


def own_intro(line: str) -> bool:
    """The intro line of ticketgate's own notification to agents ('Anna wrote on ticket T1:').

    >>> own_intro("Anna Kunde wrote on ticket T20261123.0001:"), own_intro("Neues Ticket T1 von Anna:")
    (True, True)
    """
    return bool(_OWN_INTRO_RE.match(_clean(line)))


def verb_only(line: str) -> bool:
    """A line that is just the end of a folded header ('wrote:')."""
    return bool(_VERB_ONLY_RE.match(_clean(line)))


def ends_header(line: str) -> bool:
    """Cheap test: could this line be the last line of a quote header (ends with a colon)?"""
    return _clean(line)[-1:] in (":", "：")


def ends_sentence(line: str) -> bool:
    """A line that ends a sentence: never the first part of a folded header."""
    return _clean(line)[-1:] in (".", "!", "?", ";")


def outlook_block(lines: list[str], index: int) -> bool:
    """From:, then Sent:/Date: and To:/Subject: just below it: a quoted header block.

    >>> outlook_block(["Fra: Anna", "Sendt: 23. nov.", "Til: Support", "Emne: Printer"], 0)
    True
    >>> outlook_block(["From: billing@example.com", "Date: today", "", "Check spam."], 0)
    False
    """
    if not _FROM_RE.match(lines[index]):
        return False
    below = lines[index + 1:index + 7]
    return any(_SENT_RE.match(x) for x in below) and any(_TO_RE.match(x) for x in below)


def separator(line: str) -> bool:
    """'-----Original Message-----' and its kin in many languages.

    >>> separator("-----Ursprüngliche Nachricht-----"), separator("-------- Oprindelig meddelelse --------")
    (True, True)
    """
    return bool(_SEPARATOR_RE.match(line))


def rule_line(line: str) -> bool:
    """A line of underscores or dashes (Outlook draws one above its header block)."""
    return bool(_RULE_RE.match(line))


def signature_delimiter(line: str) -> bool:
    """The '-- ' line (and its common mistypings) above a signature."""
    return bool(_SIGNATURE_RE.match(line))


def device_signature(line: str) -> bool:
    """A line a mobile client adds by itself ('Sent from my iPhone', 'Von meinem iPhone gesendet').

    >>> device_signature("Sent from my iPhone"), device_signature("Sent from my desk, I checked it")
    (True, False)
    """
    text = _clean(line).rstrip(".")
    return (len(text) <= 60 and len(text.split()) <= 9 and not any(c in text for c in ",;:!?")
            and bool(_DEVICE_RE.match(text)))
