"""HTML to text keeps structure; remote images in stored HTML are blocked unless allowed."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from gateway.intake.htmltext import html_to_text
from gateway.pipeline import RawMail, process
from store.db import transaction
from store.models import Message
from tests.conftest import make_config

CASES = [
    ("<table><tr><th>Order</th><th>Qty</th></tr><tr><td>A-1</td><td>2</td></tr></table>",
     "Order | Qty\nA-1 | 2"),
    ("<table><tr><td><p>two</p><p>blocks</p></td><td>cell</td></tr></table>", "two blocks | cell"),
    ("<ul><li>red</li><li>green</li></ul>", "- red\n- green"),
    ("<ol><li>first<ul><li>inner</li></ul></li><li>second</li></ol>",
     "1. first\n  - inner\n2. second"),
    ('<p>Read <a href="https://docs.example/x">the manual</a>.</p>',
     "Read the manual <https://docs.example/x>."),
    ('<a href="https://docs.example/">https://docs.example/</a>', "https://docs.example/"),
    ('<a href="mailto:help@example.net">help@example.net</a>', "help@example.net"),
    ('<a href="mailto:help@example.net">write us</a>', "write us <help@example.net>"),
    ("<p>Yes.</p><blockquote><p>Is it on?</p><blockquote>Test</blockquote></blockquote>",
     "Yes.\n\n> Is it on?\n>\n> > Test"),
    ("<div>one</div><div>two</div>", "one\n\ntwo"),
]


@pytest.mark.parametrize(("html", "text"), CASES)
def test_html_to_text_keeps_structure(html: str, text: str) -> None:
    assert html_to_text(html) == text


def _html_mail(n: int) -> bytes:
    return (f"From: Eve <eve@example.org>\r\nTo: support@example.com\r\nSubject: pixel {n}\r\n"
            f"Message-ID: <pixel-{n}@example.org>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/html; charset=utf-8\r\n\r\n"
            '<p>Hello<img src="https://track.example.net/o.gif?id=42" width="1" height="1">'
            '<img src="cid:logo@x" alt="logo"></p>\r\n').encode()


@pytest.mark.parametrize("allow", [False, True])
def test_remote_images_are_blocked_unless_allowed(engine: Engine, allow: bool) -> None:
    html = {"html": {"remote_images": "allow"}} if allow else {}
    process(engine, make_config(**html), RawMail(_html_mail(int(allow)), "ingest"))
    with transaction(engine) as session:
        stored = session.exec(select(Message.html).where(Message.direction == "in")).one()
    assert 'src="cid:logo@x"' in stored  # an inline image is ours to show
    if allow:
        assert "https://track.example.net/o.gif?id=42" in stored
    else:
        assert "track.example.net/o.gif" not in stored
        assert "[image from track.example.net not loaded]" in stored


@pytest.mark.parametrize("sanitizer", ["nh3", "bleach"])
@pytest.mark.parametrize("img", [
    '<img alt="a>b" src="http://t.example/x.gif">',  # a ">" inside a quoted attribute
    "<img src='//t.example/y.gif'>",  # protocol-relative
    '<IMG SRC="HTTPS://T.EXAMPLE/Z">',
    '<img src=" https://t.example/q">',
    '<img src="https&#58;//t.example/e">',
])
def test_every_spelling_of_a_remote_image_is_blocked(sanitizer: str, img: str) -> None:
    from gateway.intake.htmltext import SANITIZERS

    stored = SANITIZERS[sanitizer](f"<p>{img}</p>")
    assert "<img" not in stored.lower() and "[image from t.example not loaded" in stored
