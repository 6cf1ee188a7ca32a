"""Inbound HTML: sanitised before it is stored (nh3 by default, bleach on request); text from it.

Both sanitisers get the same allowlist. nh3 (Ammonia, Rust) is the default because on
HTML-heavy mail bleach dominated ingest time (bench/README.md, section ingest): about 0.1 s
per 20-80 KB Outlook/Gmail body against about 2 ms. ``[html] sanitizer = "bleach"`` keeps the
pure-Python one for those who require it.
"""

from __future__ import annotations

import html as htmllib
import re
from collections.abc import Callable
from html.parser import HTMLParser
from urllib.parse import urlsplit

import bleach
import nh3
from bleach.css_sanitizer import CSSSanitizer

_TAGS = frozenset({
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "col", "colgroup", "dd", "del",
    "div", "dl", "dt", "em", "font", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img",
    "ins", "li", "ol", "p", "pre", "q", "s", "small", "span", "strike", "strong", "sub",
    "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
})
_ATTRIBUTES = {
    "*": ["style", "title", "align", "dir", "lang"],
    "a": ["href", "name"],
    "img": ["src", "alt", "width", "height"],
    "td": ["colspan", "rowspan", "valign", "width"],
    "th": ["colspan", "rowspan", "valign", "width"],
    "table": ["border", "cellpadding", "cellspacing", "width"],
    "font": ["color", "face", "size"],
}
_PROTOCOLS = frozenset({"http", "https", "mailto", "cid", "tel"})
_DROP_WITH_CONTENT = re.compile(
    r"<(script|style|head|title|xml|object|iframe|embed)\b[^>]*>.*?</\1\s*>|<!--.*?-->",
    re.IGNORECASE | re.DOTALL,
)
_CSS = frozenset({
    "color", "background-color", "font-weight", "font-style", "font-size", "font-family",
    "text-decoration", "text-align", "vertical-align", "line-height", "margin", "margin-top",
    "margin-bottom", "margin-left", "margin-right", "padding", "padding-top", "padding-bottom",
    "padding-left", "padding-right", "border", "border-collapse", "width", "height",
    "white-space",
})
_CLEANER = bleach.Cleaner(
    tags=_TAGS,
    attributes=_ATTRIBUTES,
    protocols=_PROTOCOLS,
    strip=True,
    strip_comments=True,
    css_sanitizer=CSSSanitizer(allowed_css_properties=_CSS),
)
_NH3_ATTRIBUTES = {tag: set(names) for tag, names in _ATTRIBUTES.items()}


def sanitize_html_bleach(html: str) -> str:
    """HTML safe to show an agent, cleaned by bleach."""
    cleaned: str = _CLEANER.clean(_DROP_WITH_CONTENT.sub("", html))
    return cleaned.strip()


def sanitize_html(html: str) -> str:
    """HTML safe to show an agent: no scripts, handlers, forms or javascript: links (nh3)."""
    cleaned: str = nh3.clean(
        _DROP_WITH_CONTENT.sub("", html),
        tags=set(_TAGS),
        clean_content_tags={"script", "style"},
        attributes=_NH3_ATTRIBUTES,
        url_schemes=set(_PROTOCOLS),
        strip_comments=True,
        link_rel="noopener noreferrer",
        filter_style_properties=set(_CSS),
    )
    return cleaned.strip()


_IMG = re.compile(r"""<img\b(?:[^>"']|"[^"]*"|'[^']*')*>""", re.IGNORECASE)  # ">" may be quoted
_ATTR = re.compile(r"""\b(src|alt)\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE)


def block_remote_images(html: str) -> str:
    """Remote images (tracking pixels) replaced by a placeholder naming their host.

    Runs on sanitised HTML, whose attributes are always quoted; inline (cid:) images stay.

    >>> block_remote_images('<img src="https://t.example/p.gif?u=1" alt="Logo">')[-47:]
    '>[image from t.example not loaded: Logo]</span>'
    >>> block_remote_images('<img src="cid:part1">')
    '<img src="cid:part1">'
    """
    def replace(match: re.Match[str]) -> str:
        attrs = {m.group(1).lower(): htmllib.unescape(m.group(2) if m.group(2) is not None
                                                       else m.group(3))
                 for m in _ATTR.finditer(match.group(0))}
        src = attrs.get("src", "").strip()
        if not (src.lower().startswith(("http:", "https:", "//"))):
            return match.group(0)
        host = urlsplit(src if "://" in src else f"http:{src}").hostname or "an unknown host"
        alt = " ".join(attrs.get("alt", "").split())
        label = f"[image from {host} not loaded{': ' + alt if alt else ''}]"
        return (f'<span class="remote-image" title="remote image not loaded">'
                f"{htmllib.escape(label, quote=False)}</span>")

    return _IMG.sub(replace, html)


def _blocking(sanitize: Callable[[str], str]) -> Callable[[str], str]:
    """A sanitiser that also blocks remote images (the default, ``[html] remote_images``)."""
    def clean(html: str) -> str:
        return block_remote_images(sanitize(html))
    return clean


# By the name in Config.html_sanitizer: "+remote-images" keeps remote images loadable.
SANITIZERS: dict[str, Callable[[str], str]] = {
    "nh3": _blocking(sanitize_html), "bleach": _blocking(sanitize_html_bleach),
    "nh3+remote-images": sanitize_html, "bleach+remote-images": sanitize_html_bleach,
}


_BLOCKS = frozenset({"p", "div", "br", "h1", "h2", "h3", "h4", "h5", "h6",
                     "pre", "table", "hr", "dt", "dd"})
_INDENT = "\x01"  # a nested list's indentation, kept through whitespace folding


class _TextCollector(HTMLParser):
    """Visible text: a line per block, table cells apart, bullets, link targets, quotes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.saved: list[list[str]] = []  # outer text while a blockquote is collected
        self.lists: list[list[int]] = []  # [counter] per open list; -1 for bullets
        self.cells: list[int] = []  # cells so far in the row of each open table
        self.within: list[str] = []  # "table" | "cell": what a block break is inside
        self.links: list[tuple[int, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "blockquote":
            self.saved.append(self.parts)
            self.parts = []
        elif tag in ("ul", "ol"):
            if not self.lists:
                self._break()
            self.lists.append([1 if tag == "ol" else -1])
        elif tag == "li":
            self._list_item()
        elif tag == "table":
            self.cells.append(0)
            self.within.append("table")
        elif tag in ("td", "th"):
            self._cell()
        elif tag == "tr":
            self.parts.append("\n")  # a row starts a line; rows follow each other closely
        elif tag == "a":
            self.links.append((len(self.parts), dict(attrs).get("href") or ""))
        if tag in _BLOCKS:
            self._break()

    def handle_endtag(self, tag: str) -> None:
        if tag == "blockquote" and self.saved:
            inner = _tidy("".join(self.parts))
            self.parts = self.saved.pop()
            quoted = "\n".join(f"> {line}".rstrip() for line in inner.splitlines())
            self.parts.append(f"\n{quoted}\n")
        elif tag in ("ul", "ol") and self.lists:
            self.lists.pop()
            if not self.lists:
                self._break()
        elif tag == "table" and self.cells:
            self.cells.pop()
            self._leave("table")
        elif tag in ("td", "th"):
            self._leave("cell")
        elif tag == "tr" and self.cells:
            self.cells[-1] = 0
        elif tag == "a" and self.links:
            self._link_target(*self.links.pop())
        if tag in _BLOCKS:
            self._break()

    def handle_data(self, data: str) -> None:
        self.parts.append(data.replace(_INDENT, ""))

    def _break(self) -> None:
        """A line break, except between the blocks inside one table cell."""
        self.parts.append(" " if self.within and self.within[-1] == "cell" else "\n")

    def _cell(self) -> None:
        if self.cells:
            if self.cells[-1]:
                self.parts.append(" | ")
            self.cells[-1] += 1
        self.within.append("cell")

    def _leave(self, kind: str) -> None:
        if kind in self.within:
            while self.within and self.within.pop() != kind:
                pass

    def _list_item(self) -> None:
        marker = "- "
        if self.lists and self.lists[-1][0] > 0:
            marker = f"{self.lists[-1][0]}. "
            self.lists[-1][0] += 1
        self.parts.append("\n" + _INDENT * max(len(self.lists) - 1, 0) + marker)

    def _link_target(self, start: int, href: str) -> None:
        """The target after the link text, unless the text already says it."""
        href = href.strip()
        text = " ".join("".join(self.parts[start:]).split())
        shown = href[len("mailto:"):] if href.lower().startswith("mailto:") else href
        if not href or href.startswith("#") or href.lower().startswith("cid:") or not text:
            return
        if shown.rstrip("/") in text or text.rstrip("/") == shown.rstrip("/"):
            return
        self.parts.append(f" <{shown}>")


def _tidy(text: str) -> str:
    """Whitespace folded per line, at most one empty line in a row, indents restored."""
    lines = (re.sub(r"[ \t\u00a0]+", " ", line).strip() for line in text.splitlines())
    tidy = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return tidy.replace(_INDENT, "  ")


def html_to_text(html: str) -> str:
    """Readable plain text of (already sanitised) HTML.

    >>> print(html_to_text("<table><tr><td>Qty</td><td>Item</td></tr><tr><td>2</td>"
    ...                    "<td>Disk</td></tr></table><ul><li>one</li><li>two</li></ul>"
    ...                    '<p>See <a href="https://x.example/faq">the FAQ</a></p>'
    ...                    "<blockquote>old words</blockquote>"))
    Qty | Item
    2 | Disk
    <BLANKLINE>
    - one
    - two
    <BLANKLINE>
    See the FAQ <https://x.example/faq>
    <BLANKLINE>
    > old words
    """
    collector = _TextCollector()
    collector.feed(_DROP_WITH_CONTENT.sub("", html))
    collector.close()
    while collector.saved:  # an unclosed blockquote quotes to the end
        collector.handle_endtag("blockquote")
    return _tidy("".join(collector.parts))
