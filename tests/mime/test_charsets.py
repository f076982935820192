"""Charset labels as mail uses them, decoding that never fails, strict encoding."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smimekit.errors import MimeBuildError
from smimekit.mime.charsets import decode_text, encode_text, lookup_codec


@pytest.mark.parametrize(
    ("label", "codec"),
    [
        ("utf-8", "utf-8"),
        ("UTF8", "utf-8"),
        (' "utf-8" ', "utf-8"),
        ("utf-8*en", "utf-8"),  # RFC 2231 language suffix
        ("us-ascii", "ascii"),
        ("ISO-8859-1", "iso8859-1"),
        ("iso-8859-8-i", "iso8859-8"),
        ("windows-1252", "cp1252"),
        ("Windows-1251", "cp1251"),
        ("ks_c_5601-1987", "cp949"),
        ("euc-kr", "cp949"),
        ("gb2312", "gb18030"),
        ("GBK", "gb18030"),
        ("Shift_JIS", "cp932"),
        ("sjis", "cp932"),
        ("iso-2022-jp", "iso2022_jp_ext"),
        ("euc-jp", "euc_jp"),
        ("koi8-r", "koi8-r"),
        ("koi8-u", "koi8-u"),
        ("big5", "big5"),
        ("macintosh", "mac-roman"),
    ],
)
def test_lookup_codec_maps_mail_labels(label: str, codec: str) -> None:
    assert lookup_codec(label) == codec


_NOT_CHARSETS = [None, "", "  ", "x-unknown", "unknown-8bit", "bogus", "base64", "rot13", "zlib", "idna"]


@pytest.mark.parametrize("label", [*_NOT_CHARSETS, "utf-8\0", "x" * 100])
def test_lookup_codec_refuses_non_charsets(label: str | None) -> None:
    assert lookup_codec(label) is None


@pytest.mark.parametrize(
    ("text", "charset"),
    [
        ("Привет, мир", "koi8-r"),
        ("Привіт", "koi8-u"),
        ("日本語のメール", "iso-2022-jp"),
        ("日本語のメール", "shift_jis"),
        ("日本語のメール", "euc-jp"),
        ("中文邮件", "gb2312"),
        ("中文郵件", "big5"),
        ("한국어 메일", "euc-kr"),
        ("שלום", "iso-8859-8-i"),
        ("“quoted” – café", "windows-1252"),
    ],
)
def test_decode_text_legacy_charsets(text: str, charset: str) -> None:
    assert decode_text(encode_text(text, charset), charset) == (text, ())


def test_decode_text_accepts_the_supersets_mail_really_contains() -> None:
    assert decode_text("镕".encode("gbk"), "gb2312") == ("镕", ())  # GBK text labelled gb2312
    assert decode_text("똠".encode("cp949"), "ks_c_5601-1987") == ("똠", ())  # UHC text
    assert decode_text("①～".encode("cp932"), "shift_jis") == ("①～", ())  # Windows-31J text
    assert decode_text("ｱ".encode("iso2022_jp_ext"), "iso-2022-jp") == ("ｱ", ())  # half-width katakana


@pytest.mark.parametrize(
    ("data", "charset", "expected"),
    [
        (b"plain", None, ("plain", ())),
        ("café".encode(), None, ("café", ("UndecodableBytes",))),  # us-ascii by default
        (b"caf\xe9", "utf-8", ("café", ("UndecodableBytes",))),  # falls back to windows-1252
        ("café".encode(), "us-ascii", ("café", ("UndecodableBytes",))),  # falls back to UTF-8
        (b"\x93hi\x94 \x81", "ascii", ("“hi” \x81", ("UndecodableBytes",))),  # latin-1 for unassigned 0x81
        ("café".encode(), "x-unknown", ("café", ("UnknownCharset",))),
        (b"caf\xe9", "no-such-charset", ("café", ("UnknownCharset",))),
        (b"\xff\xfe", "iso-2022-jp", ("ÿþ", ("UndecodableBytes",))),
    ],
)
def test_decode_text_falls_back_with_a_defect(
    data: bytes, charset: str | None, expected: tuple[str, tuple[str, ...]]
) -> None:
    assert decode_text(data, charset) == expected


_SOME_CHARSETS = [None, "utf-8", "us-ascii", "iso-2022-jp", "utf-16", "gb2312", "shift_jis", "utf-7", "big5"]


@given(st.binary(max_size=200), st.sampled_from([*_SOME_CHARSETS, "bogus", "x-unknown"]))
def test_decode_text_never_raises(data: bytes, charset: str | None) -> None:
    text, defects = decode_text(data, charset)
    assert isinstance(text, str)
    assert set(defects) <= {"UnknownCharset", "UndecodableBytes"}


@given(st.text(), st.sampled_from(["utf-8", "UTF-8", "utf-16", "gb18030"]))
def test_encode_decode_round_trip(text: str, charset: str) -> None:
    assert decode_text(encode_text(text, charset), charset) == (text, ())


def test_encode_text_uses_the_labelled_charset_strictly() -> None:
    assert encode_text("日本", "shift_jis") == "日本".encode("shift_jis")
    assert encode_text("Grüße", "ISO-8859-1") == b"Gr\xfc\xdfe"
    with pytest.raises(MimeBuildError, match="cannot encode"):
        encode_text("镕", "gb2312")  # GBK only: it would not be gb2312 any more
    with pytest.raises(MimeBuildError, match="cannot encode 'é'"):
        encode_text("café", "us-ascii")
    with pytest.raises(MimeBuildError, match="unknown"):
        encode_text("x", "x-unknown")
    with pytest.raises(MimeBuildError, match="unknown"):
        encode_text("x", "base64")
