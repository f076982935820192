"""Header values: RFC 2047 vectors, stdlib agreement, fold/unfold round trips, addresses."""

from __future__ import annotations

import email.header
import email.policy
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smimekit.errors import MimeBuildError, UsageError
from smimekit.mime.rfc2047 import (
    decode_header_value,
    encode_header_value,
    fold_header,
    format_address,
    parse_addresses,
)

# Printable text as a header value holds it: no controls, no line or paragraph separators.
printable = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=120)
_WORD = re.compile(r"=\?[^?]+\?[BQ]\?[^?]*\?=")


# --------------------------------------------------------------------------------------------- decoding


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?=", "Keld Jørn Simonsen"),
        (
            "=?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?= "
            "=?ISO-8859-2?B?dSB1bmRlcnN0YW5kIHRoZSBleGFtcGxlLg==?=",
            "If you can read this you understand the example.",
        ),
        ("=?US-ASCII?Q?Keith_Moore?= <moore@cs.utk.edu>", "Keith Moore <moore@cs.utk.edu>"),
        ("=?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>", "André Pirard <PIRARD@vm1.ulg.ac.be>"),
        # RFC 2047 §8: white space between adjacent encoded words is not displayed
        ("(=?ISO-8859-1?Q?a?=)", "(a)"),
        ("(=?ISO-8859-1?Q?a?= b)", "(a b)"),
        ("(=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=)", "(ab)"),
        ("(=?ISO-8859-1?Q?a?=  =?ISO-8859-1?Q?b?=)", "(ab)"),
        ("(=?ISO-8859-1?Q?a?=\r\n    =?ISO-8859-1?Q?b?=)", "(ab)"),
        ("(=?ISO-8859-1?Q?a_b?=)", "(a b)"),
        ("(=?ISO-8859-1?Q?a?= =?ISO-8859-2?Q?_b?=)", "(a b)"),
        # RFC 2231 §5 language tag
        ("=?US-ASCII*EN?Q?Keith_Moore?=", "Keith Moore"),
        ("=?utf-8*de?b?R3LDvMOfZQ==?=", "Grüße"),
        # a UTF-8 character split between two words survives
        ("=?utf-8?B?w6k=?= =?utf-8?B?w6k=?=", "éé"),
        ("=?utf-8?Q?=C3?= =?UTF-8?Q?=A9?=", "é"),
        ("=?iso-2022-jp?B?GyRCRnxLXDhsGyhC?=", "日本語"),
        ("=?koi8-r?B?8NLJ18XU?=", "Привет"),
        ("=?gb2312?B?1tDOxA==?=", "中文"),
        ("plain\r\n text\r\n", "plain text"),
        ("no words =? here ?=", "no words =? here ?="),
    ],
)
def test_decode_vectors(raw: str, text: str) -> None:
    assert decode_header_value(raw) == (text, ())
    assert decode_header_value(raw.encode("ascii")) == (text, ())


@pytest.mark.parametrize(
    ("raw", "text", "defects"),
    [
        ("=?utf-8?X?abc?= x", "=?utf-8?X?abc?= x", ("InvalidEncodedWord",)),
        ("=??Q?abc?=", "=??Q?abc?=", ("InvalidEncodedWord",)),
        ("=?bogus?Q?caf=E9?=", "café", ("UnknownCharset",)),
        ("=?utf-8?Q?caf=E9?=", "café", ("UndecodableBytes",)),
        ("=?utf-8?B?w6k?=", "é", ("InvalidBase64Padding",)),
        ("=?utf-8?Q?a=ZZ?=", "a=ZZ", ("InvalidQuotedPrintableEscape",)),
        (b"caf\xe9 =?utf-8?q?ok?=", "café ok", ("UndecodableBytes",)),
    ],
)
def test_decode_defects(raw: str | bytes, text: str, defects: tuple[str, ...]) -> None:
    assert decode_header_value(raw) == (text, defects)


def test_decode_raw_utf8_headers() -> None:
    assert decode_header_value("Grüße aus Köln".encode()) == ("Grüße aus Köln", ())  # RFC 6532
    assert decode_header_value("Grüße") == ("Grüße", ())


@given(printable)
def test_decode_agrees_with_stdlib_encoder(text: str) -> None:
    encoded = email.header.Header(text, "utf-8").encode()
    assert decode_header_value(encoded) == (text, ())


@given(
    st.lists(st.text(st.characters(blacklist_categories=("Cc", "Cs", "Z")), min_size=1), min_size=1).map(
        " ".join
    )
)
def test_stdlib_parser_reads_our_encoding(text: str) -> None:
    encoded = encode_header_value(text)
    assert email.policy.default.header_fetch_parse("Subject", encoded) == text


# --------------------------------------------------------------------------------------------- encoding


def test_encode_keeps_ascii_and_encodes_only_what_needs_it() -> None:
    assert encode_header_value("Hello, world") == "Hello, world"
    assert encode_header_value("Hello wörld and all") == "Hello =?utf-8?Q?w=C3=B6rld?= and all"
    assert encode_header_value("日本語") == "=?utf-8?B?5pel5pys6Kqe?="
    # adjacent words share encoded words: the space between them is inside
    assert encode_header_value("café crème") == "=?utf-8?Q?caf=C3=A9_cr=C3=A8me?="
    # ASCII that would read as an encoded word is protected
    assert decode_header_value(encode_header_value("é =?utf-8?q?x?=")) == ("é =?utf-8?q?x?=", ())


@pytest.mark.parametrize("charset", ["utf-8", "iso-2022-jp", "shift_jis", "euc-jp"])
def test_encode_long_text_in_legacy_charsets(charset: str) -> None:
    text = "日本語の件名です、とても長いので複数の encoded word に分割されます。" * 3
    encoded = encode_header_value(text, charset=charset)
    words = _WORD.findall(encoded)
    assert len(words) > 2
    for word in words:
        assert len(word) <= 75
        assert decode_header_value(word)[1] == ()  # every word holds whole characters
    assert decode_header_value(encoded) == (text, ())


@pytest.mark.parametrize(
    ("text", "charset"),
    [("Привет, как дела?", "koi8-r"), ("Grüße", "iso-8859-1"), ("中文邮件", "gb2312"), ("中文", "big5")],
)
def test_encode_legacy_charsets(text: str, charset: str) -> None:
    encoded = encode_header_value(text, charset=charset)
    assert f"=?{charset}?" in encoded
    assert decode_header_value(encoded) == (text, ())


def test_encode_errors() -> None:
    with pytest.raises(MimeBuildError):
        encode_header_value("日本", charset="iso-8859-1")
    with pytest.raises(MimeBuildError):
        encode_header_value("é", charset="x-unknown")


@settings(max_examples=200)
@given(printable)
def test_encode_decode_round_trip(text: str) -> None:
    encoded = encode_header_value(text)
    assert encoded.isascii()
    assert all(len(word) <= 75 for word in _WORD.findall(encoded))
    assert decode_header_value(encoded) == (text, ())


# --------------------------------------------------------------------------------------------- folding


def test_fold_short_and_long() -> None:
    assert fold_header("Subject", "hello") == b"Subject: hello\r\n"
    assert fold_header("Subject", "hello", eol=b"\n") == b"Subject: hello\n"
    value = " ".join(["word"] * 40)
    folded = fold_header("Subject", value)
    lines = folded.split(b"\r\n")
    assert lines.pop() == b""
    assert len(lines) > 2
    assert all(len(line) <= 78 for line in lines)
    assert all(line.startswith(b" word") for line in lines[1:])
    assert decode_header_value(folded[len("Subject: ") :]) == (value, ())


def test_fold_keeps_unbreakable_tokens_whole() -> None:
    token = "x" * 120
    assert fold_header("Message-ID", f"<{token}>") == f"Message-ID: <{token}>\r\n".encode()
    assert fold_header("X", f"a {token} b") == f"X: a\r\n {token}\r\n b\r\n".encode()
    with pytest.raises(MimeBuildError, match="998"):
        fold_header("X", "y" * 1000)


def test_fold_encodes_non_ascii_unless_utf8() -> None:
    folded = fold_header("Subject", "Grüße aus Köln")
    assert folded == b"Subject: =?utf-8?B?R3LDvMOfZQ==?= aus =?utf-8?Q?K=C3=B6ln?=\r\n"  # B: 4 of 7 bytes
    assert (
        fold_header("To", "Jörg <jörg@bücher.example>", utf8=True)
        == "To: Jörg <jörg@bücher.example>\r\n".encode()
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [("Subject", "a\r\nBcc: victim@example.com"), ("Subject", "a\nb"), ("Subject", "a\0"), ("Bad Name", "x"),
     ("Bad:Name", "x"), ("", "x"), ("Nämé", "x")],
)  # fmt: skip
def test_fold_refuses_injection_and_bad_names(name: str, value: str) -> None:
    with pytest.raises(MimeBuildError):
        fold_header(name, value)


def test_fold_refuses_bad_line_ending() -> None:
    with pytest.raises(UsageError):
        fold_header("Subject", "x", eol=b"\r")


@settings(max_examples=300)
@given(printable.filter(lambda v: not (v.isascii() and "=?" in v)), st.integers(min_value=20, max_value=100))
def test_fold_round_trips(value: str, max_line: int) -> None:
    folded = fold_header("Subject", value, max_line=max_line)
    assert folded.endswith(b"\r\n") and folded.isascii()
    lines = folded[:-2].split(b"\r\n")
    for line in lines[1:]:
        assert line[:1] in (b" ", b"\t") and line.strip(b" \t")  # never a blank continuation line
    for line in lines:
        assert len(line) <= 998
    assert decode_header_value(folded[len("Subject: ") :]) == (value, ())


@given(st.lists(st.text("abcdefghij", min_size=1, max_size=12), min_size=1, max_size=30))
def test_fold_respects_max_line_where_possible(words: list[str]) -> None:
    folded = fold_header("Subject", " ".join(words), max_line=40)
    assert all(len(line) <= 40 for line in folded.split(b"\r\n"))


# --------------------------------------------------------------------------------------------- addresses


@pytest.mark.parametrize(
    ("name", "address", "expected"),
    [
        ("", "user@example.com", "user@example.com"),
        ("John Smith", "john@example.com", "John Smith <john@example.com>"),
        ("John Q. Public", "jqp@example.com", '"John Q. Public" <jqp@example.com>'),
        ('Say "hi"', "a@example.com", '"Say \\"hi\\"" <a@example.com>'),
        ("Doe, Jane", "jane@example.com", '"Doe, Jane" <jane@example.com>'),
        ("Jörg Müller", "j@example.de", "=?utf-8?Q?J=C3=B6rg_M=C3=BCller?= <j@example.de>"),
        ("Müller, Jörg", "j@example.de", "=?utf-8?Q?M=C3=BCller=2C_J=C3=B6rg?= <j@example.de>"),
        ("Dr. Müller", "m@example.de", "=?utf-8?Q?Dr=2E_M=C3=BCller?= <m@example.de>"),
        ("Hans", "hans@bücher.example", "Hans <hans@bücher.example>"),  # RFC 6532: UTF-8 kept
        ("用户", "用户@例子.广告", "=?utf-8?B?55So5oi3?= <用户@例子.广告>"),
    ],
)
def test_format_address(name: str, address: str, expected: str) -> None:
    assert format_address(name, address) == expected


@pytest.mark.parametrize(
    ("name", "address"), [("x", ""), ("x", "a@b\r\nBcc: c@d"), ("x", "<a@b>"), ("x\ny", "a@b")]
)
def test_format_address_refuses_bad_input(name: str, address: str) -> None:
    with pytest.raises(MimeBuildError):
        format_address(name, address)


def test_parse_addresses() -> None:
    value = '=?utf-8?Q?M=C3=BCller=2C_Hans?= <h@example.com>, "Doe, J" <j@example.com>,\r\n bob@example.org'
    assert parse_addresses(value) == [
        ("Müller, Hans", "h@example.com"),
        ("Doe, J", "j@example.com"),
        ("", "bob@example.org"),
    ]
    assert parse_addresses("") == []


names = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp", "Zs")), min_size=1, max_size=20)


@given(st.lists(names, min_size=1, max_size=3).map(" ".join))
def test_format_then_parse_round_trips(name: str) -> None:
    assert parse_addresses(format_address(name, "user@example.com")) == [(name, "user@example.com")]
