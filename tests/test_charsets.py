"""Raw 8-bit header charset guessing, as a table: each charset, short and long text.

Each text is sent three ways: as a raw Subject in a mail whose body part declares the
charset (the mail's own declaration must win), as a raw attachment name in such a mail,
and as bare bytes with nothing declared (the generic guess).
"""

from __future__ import annotations

import pytest

from gateway.intake.charsets import decode_bytes, decode_header_text, guess_charset
from gateway.intake.iso2022 import decode_iso2022_jp
from gateway.intake.parse import parse_mail

# (label the mail declares, codec that writes the bytes, text)
TABLE = [
    ("Shift_JIS", "cp932", "見積書"),
    ("Shift_JIS", "cp932", "お世話になっております。先日の打ち合わせの件でご連絡いたしました。"
                           "添付の資料をご確認いただけますでしょうか。"),
    ("Shift_JIS", "cp932", "テスト"),
    ("GB2312", "gb2312", "报价单"),
    ("GB2312", "gb2312", "您好，附件是本月的销售报告，请查收。如有问题请随时与我联系，谢谢。"),
    ("GBK", "gbk", "朱镕基访问"),  # 镕 is GBK only
    ("GBK", "gbk", "关于喆和堃两位同事的调岗申请，请人事部门在本周五之前给出书面答复。"),
    ("Big5", "big5", "報價單"),
    ("Big5", "big5", "您好，附件是本月的銷售報告，請查收。如有問題請隨時與我聯繫，謝謝。"),
    ("EUC-KR", "euc_kr", "견적서"),
    ("EUC-KR", "euc_kr", "안녕하세요. 지난번 회의 관련하여 연락드립니다. 첨부된 자료를 확인해 주시기 "
                         "바랍니다."),
    ("ISO-8859-1", "latin-1", "Grüße"),
    ("ISO-8859-1", "latin-1", "Sehr geehrte Damen und Herren, anbei erhalten Sie die gewünschten "
                              "Unterlagen für Ihre Prüfung. Mit freundlichen Grüßen"),
    ("UTF-8", "utf-8", "Grüße"),
    ("UTF-8", "utf-8", "会議の資料と请查收附件와 회의 자료"),
]
IDS = [f"{label}-{'long' if len(text) > 10 else 'short'}-{i}" for i, (label, _, text)
       in enumerate(TABLE)]


def _mail(label: str, subject: bytes, filename: bytes, body: bytes) -> bytes:
    return (b"From: Sender <sender@example.org>\nTo: support@example.com\nSubject: " + subject
            + b"\nMessage-ID: <charset-table@example.org>\nMIME-Version: 1.0\n"
            b"Content-Type: multipart/mixed; boundary=\"b\"\n\n--b\n"
            b"Content-Type: text/plain; charset=" + label.encode() + b"\n"
            b"Content-Transfer-Encoding: 8bit\n\n" + body + b"\n--b\n"
            b"Content-Type: application/octet-stream\n"
            b"Content-Disposition: attachment; filename=\"" + filename + b".dat\"\n"
            b"Content-Transfer-Encoding: base64\n\nAAEC\n--b--\n")


@pytest.mark.parametrize(("label", "codec", "text"), TABLE, ids=IDS)
def test_raw_subject_and_file_name_in_the_declared_charset(label: str, codec: str,
                                                           text: str) -> None:
    data = text.encode(codec)
    parsed = parse_mail(_mail(label, data, data, "Hallo / 你好".encode(codec, "replace")))
    assert parsed.subject == text
    assert [a.filename for a in parsed.attachments] == [f"{text}.dat"]


# Without any charset declared anywhere, three Han characters of Big5 read as three
# common Hangul syllables in EUC-KR just as well: only the mail's own declaration (the
# test above) settles it. Strict: if the guess ever gets it, this must be looked at.
AMBIGUOUS = {"報價單": "Big5 bytes that are also three common EUC-KR syllables"}
UNDECLARED = [pytest.param(*row, id=name, marks=pytest.mark.xfail(
    strict=True, reason=AMBIGUOUS[row[2]])) if row[2] in AMBIGUOUS else pytest.param(*row, id=name)
    for row, name in zip(TABLE, IDS, strict=True)]


@pytest.mark.parametrize(("label", "codec", "text"), UNDECLARED)
def test_raw_header_without_any_declared_charset(label: str, codec: str, text: str) -> None:
    raw = text.encode(codec).decode("ascii", "surrogateescape")  # as the parser hands it on
    assert decode_header_text(raw) == text


@pytest.mark.parametrize(("declared", "codec", "text"), [
    ("iso2022_jp_ext", "cp932", "見積書"),  # the body says ISO-2022-JP: Japanese, so Shift_JIS
    ("gb18030", "gb2312", "谢谢"),  # also valid UTF-8 ("лл"): the declared charset wins
    ("cp949", "euc_kr", "견적서"),  # Big5 decodes these bytes too
    ("big5", "big5", "測試"),  # two characters: GB2312 and EUC-KR read them too
])
def test_the_mails_language_decides_where_bytes_fit_several_charsets(declared: str, codec: str,
                                                                     text: str) -> None:
    assert decode_bytes(text.encode(codec), None, [declared])[0] == text


def test_a_wrong_label_never_yields_replacement_characters() -> None:
    for label, codec, text in TABLE:
        decoded, _note = decode_bytes(text.encode(codec), "us-ascii")
        assert "\ufffd" not in decoded, (label, decoded)
    assert guess_charset(b"caf\xe9 cr\xe8me") == "cp1252"


def test_iso_2022_jp_vendor_characters_are_decoded_exactly() -> None:
    # NEC row 13 (①, Ⅱ, ㈱) inside an ESC $ B run; 〜 (JIS 0x2141) stays WAVE DASH U+301C.
    data = b"\x1b$B-!-6-j!A\x1b(B ok"
    assert decode_iso2022_jp(data) == "①Ⅱ㈱\u301c ok"
    assert decode_bytes(data, None)[0] == "①Ⅱ㈱\u301c ok"  # unlabelled: found by its escapes
    assert decode_header_text("=?ISO-2022-JP?B?GyRCLSEbKEI=?=") == "①"
