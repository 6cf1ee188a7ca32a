"""Reply trimming: keep everything an agent wrote, drop the quoted history and the signature.

A reply is read as blocks: the agent's text, quote headers, quoted lines (``>``), signatures,
and history that runs to the end of the mail (Outlook's header block, ``-----Original
Message-----``, a dated quote header over text without ``>``). Then:

- signatures go, and so do quote blocks that nothing of the agent's follows, with headers;
- one quote at the top answered below it (bottom posting) goes too: the answer stays;
- quotes the agent answered between (inline answers) stay as ``> `` lines, without headers;
- nothing of the agent's at all gives ``''``: the caller keeps the whole text instead.

The words clients use for headers, in many languages, are in ``gateway.agents.quote_headers``.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.agents import quote_headers as q


@dataclass(frozen=True)
class Block:
    """Lines start..end (exclusive) of one kind: text, header, quote or signature."""

    kind: str
    start: int
    end: int
    soft: bool = False  # a header that may be the agent's own words ('Anna wrote:')


@dataclass(frozen=True)
class _Header:
    end: int  # the line after the header
    quoted: bool  # '>' lines follow
    soft: bool


def _joined(lines: list[str], start: int, end: int) -> str:
    return " ".join(line.strip() for line in lines[start:end + 1])


def _span_ok(lines: list[str], start: int, end: int) -> bool:
    """Lines that can form one folded header: unquoted, not blank, no sentence ends inside."""
    part = lines[start:end + 1]
    return (all(not q.is_blank(x) and not q.is_quoted(x) for x in part)
            and not any(q.ends_sentence(x) for x in part[:-1]))


def _next_is_quoted(lines: list[str], index: int) -> bool:
    """The first non-blank line from index on is quoted."""
    while index < len(lines):
        if not q.is_blank(lines[index]):
            return q.is_quoted(lines[index])
        index += 1
    return False


def _header_ending(lines: list[str], end: int) -> tuple[int, _Header] | None:
    """The quote header whose last line is `end`, if any: its first line and what it is."""
    quoted = _next_is_quoted(lines, end + 1)
    spans = [end - k for k in range(q.MAX_HEADER_LINES) if end - k >= 0 and _span_ok(lines, end - k, end)]
    strong = [s for s in spans if q.strong_header(_joined(lines, s, end))]
    if strong:
        # A client puts a blank line above its header: prefer the span that starts after one.
        start = next((s for s in strong if s == 0 or q.is_blank(lines[s - 1])), strong[0])
        if quoted or q.dated(_joined(lines, start, end)):
            return start, _Header(end + 1, quoted, soft=False)
        return None
    if not quoted:
        return None
    start = end
    if end - 1 in spans and q.verb_only(lines[end]):
        start = end - 1
    text = _joined(lines, start, end)
    if not q.weak_header(text):
        return None
    return start, _Header(end + 1, True, soft=not _hard_header(text))


def _headers(lines: list[str]) -> dict[int, _Header]:
    """Every quote header, by its first line."""
    found: dict[int, _Header] = {}
    for index, line in enumerate(lines):
        if q.ends_header(line) and not q.is_quoted(line):
            header = _header_ending(lines, index)
            if header is not None:
                found.setdefault(*header)
    return found


def _history_at(lines: list[str], index: int, headers: dict[int, _Header]) -> bool:
    """Everything from this line on is history (no '>' marks to tell answers apart)."""
    line = lines[index]
    if q.is_quoted(line):
        return False
    if q.separator(line) or q.outlook_block(lines, index):
        return True
    if index in headers and not headers[index].quoted:
        return True
    if q.rule_line(line):
        below = [i for i in range(index + 1, min(index + 3, len(lines))) if not q.is_blank(lines[i])]
        return bool(below) and q.outlook_block(lines, below[0])
    return False


def _quote_end(lines: list[str], index: int) -> int:
    """The line after a run of quoted lines (blank lines inside the run belong to it)."""
    end = index
    while end < len(lines) and (q.is_quoted(lines[end])
                                or (q.is_blank(lines[end]) and _next_is_quoted(lines, end))):
        end += 1
    return end


def blocks(lines: list[str]) -> list[Block]:
    """The reply as blocks, in order, up to where the unmarked history starts."""
    headers = _headers(lines)

    def structure(index: int) -> bool:
        line = lines[index]
        return (q.is_quoted(line) or index in headers or _history_at(lines, index, headers)
                or q.signature_delimiter(line) or q.device_signature(line))

    found: list[Block] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if q.is_blank(line):
            index += 1
        elif _history_at(lines, index, headers):
            break
        elif q.is_quoted(line):
            end = _quote_end(lines, index)
            found.append(Block("quote", index, end))
            index = end
        elif index in headers:
            header = headers[index]
            found.append(Block("header", index, header.end, header.soft))
            index = header.end
        else:
            kind = "signature" if q.signature_delimiter(line) or q.device_signature(line) else "text"
            end = index + 1
            while end < len(lines) and not (structure(end) and not (
                    kind == "signature" and (q.signature_delimiter(lines[end])
                                             or q.device_signature(lines[end])))):
                end += 1
            found.append(Block(kind, index, end))
            index = end
    return found


def _without_leading_header(contents: list[str]) -> list[str]:
    """Quoted lines without the header quoted with them: a client's, Outlook's block, or ours."""
    index = 0
    while index < len(contents) and not contents[index]:
        index += 1
    if index < len(contents) and q.separator(contents[index]):
        index += 1
        while index < len(contents) and not contents[index]:
            index += 1
    if index < len(contents) and (q.outlook_block(contents, index) or q.own_intro(contents[index])):
        while index < len(contents) and contents[index]:
            index += 1
    elif index < len(contents) and _hard_header(contents[index]):
        index += 1
    return contents[index:]


def _hard_header(text: str) -> bool:
    """A quote header that is surely the client's: strong, or with an address or a date."""
    return q.strong_header(text) or (q.weak_header(text) and ("@" in text or q.dated(text)))


def _quote_lines(lines: list[str], block: Block) -> list[str]:
    """A quote the agent answered, as '> ' lines: without its own header or quoted signature."""
    contents: list[str] = []
    for line in lines[block.start:block.end]:
        text = line.lstrip()
        text = text[1:] if text.startswith(">") else text
        text = text[1:] if text.startswith(" ") else text
        if q.signature_delimiter(text):
            break
        contents.append(text.rstrip())
    contents = _without_leading_header(contents)
    while contents and not contents[0].strip(" >"):
        contents.pop(0)
    while contents and not contents[-1].strip(" >"):
        contents.pop()
    return [f"> {text}".rstrip() for text in contents]


def _render(lines: list[str], kept: list[Block]) -> str:
    """The kept blocks as text; a blank line between them where the mail had a gap."""
    out: list[str] = []
    last = -2
    for block in kept:
        if block.kind == "quote":
            body = _quote_lines(lines, block)
        else:
            body = [x.rstrip() for x in lines[block.start:block.end]]
            while body and not body[-1]:
                body.pop()
        if not body:
            continue
        first = block.start
        while q.is_blank(lines[first]):
            first += 1
        if out:
            out.append("\n" if first == last + 1 else "\n\n")
        out.append("\n".join(body))
        last = block.start + len(body) - 1 if block.kind != "quote" else block.end - 1
        while last > block.start and q.is_blank(lines[last]):
            last -= 1
    return "".join(out).strip()


def trim_reply(text: str) -> str:
    """What the agent wrote, with the quoted lines they answered; '' if nothing of theirs.

    >>> trim_reply("Thanks, fixed.\\n\\n-- \\nAlice\\n\\nOn Mon, 23 Nov 2026 Bob wrote:\\n> old")
    'Thanks, fixed.'
    >>> trim_reply("On Mon, 23 Nov 2026 Bob wrote:\\n> Is it fixed?\\n\\nYes, since today.")
    'Yes, since today.'
    >>> trim_reply("> Is it fixed?\\nYes.\\n> And the scanner?\\nAlso.\\n> Bye")
    '> Is it fixed?\\nYes.\\n> And the scanner?\\nAlso.'
    >>> trim_reply("Erledigt.\\n\\nVon: Kunde <k@example.org>\\nGesendet: Montag\\nBetreff: x")
    'Erledigt.'
    >>> trim_reply("Logged:\\nFrom: billing@example.com\\nDate: today\\n\\nCheck spam.")
    'Logged:\\nFrom: billing@example.com\\nDate: today\\n\\nCheck spam.'
    >>> trim_reply("On Mon, Bob wrote:\\n> only history")
    ''
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept = [b for b in blocks(lines) if b.kind != "signature"]
    trailing_quote = False
    while kept and kept[-1].kind != "text":
        trailing_quote = trailing_quote or kept[-1].kind == "quote"
        kept.pop()
    if not kept:
        return ""
    # A soft header ('The vendor wrote:') may be the agent's words: kept unless its quote goes.
    kept = [Block("text", b.start, b.end) if b.kind == "header" and b.soft else b for b in kept]
    quotes = [b for b in kept if b.kind == "quote"]
    first_text = next(i for i, b in enumerate(kept) if b.kind == "text")
    if len(quotes) == 1 and not trailing_quote and first_text > 0:
        kept = kept[first_text:]  # bottom posting: the answer below the whole quote
    return _render(lines, [b for b in kept if b.kind != "header"])


def split_leading_quote(text: str) -> tuple[str, str]:
    """A reply that starts with a quote: (the quote with its header, the text below it).

    Bottom posters write their commands on the first lines of their own text.

    >>> split_leading_quote("On Mon, 23 Nov 2026 Bob wrote:\\n> Hi\\n\\n#close\\nDone.")
    ('On Mon, 23 Nov 2026 Bob wrote:\\n> Hi\\n', '#close\\nDone.')
    >>> split_leading_quote("Hi\\n> quoted")
    ('', 'Hi\\n> quoted')
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    found = blocks(lines)
    index = 0
    while index < len(found) and found[index].kind in ("header", "quote"):
        index += 1
    if index == 0 or index == len(found) or found[index].kind != "text":
        return "", text
    start = found[index].start
    return "\n".join(lines[:start]), "\n".join(lines[start:])
