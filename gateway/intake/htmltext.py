"""Inbound HTML: sanitised before it is stored (nh3 by default, bleach on request); text from it.

Both sanitisers get the same allowlist. nh3 (Ammonia, Rust) is the default because on
HTML-heavy mail bleach dominated ingest time (bench/README.md, section ingest): about 0.1 s
per 20-80 KB Outlook/Gmail body against about 2 ms. ``[html] sanitizer = "bleach"`` keeps the
pure-Python one for those who require it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from html.parser import HTMLParser

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


SANITIZERS: dict[str, Callable[[str], str]] = {"nh3": sanitize_html, "bleach": sanitize_html_bleach}


_BLOCKS = frozenset({"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6",
                     "blockquote", "pre", "table", "hr", "dt", "dd"})


class _TextCollector(HTMLParser):
    """Collects visible text, one line per block element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(html: str) -> str:
    """Readable plain text of (already sanitised) HTML."""
    collector = _TextCollector()
    collector.feed(_DROP_WITH_CONTENT.sub("", html))
    collector.close()
    lines = (re.sub(r"[ \t\u00a0]+", " ", line).strip() for line in
             "".join(collector.parts).splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
