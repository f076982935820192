"""The canonical form for signing: CRLF everywhere, 7-bit-safe leaves, nothing else changed."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smimekit.errors import MimeBuildError
from smimekit.mime import Entity, canonicalize, compose, is_canonical, parse, to_canonical
from tests.mime.test_compose import messages, nl

MIXED = (
    b"From: a@example.org\n"
    b"Subject: =?utf-8?q?caf=C3=A9?=\n"
    b"X-Folded: one\n two\n"
    b"MIME-Version: 1.0\n"
    b"Content-Type: multipart/mixed; boundary=x\n"
    b"\n"
    b"preamble\n"
    b"--x\n"
    b"Content-Type: text/plain; charset=utf-8\n"
    b"Content-Transfer-Encoding: 8bit\n"
    b"\n"
    b"h\xc3\xa9llo\n"
    b"world\n"
    b"--x\n"
    b"Content-Type: application/octet-stream\n"
    b"Content-Transfer-Encoding: binary\n"
    b"\n"
    b"\x00\x01\r\xff\n"
    b"--x\n"
    b"Content-Type:   text/plain\n"
    b"\n"
    b"plain 7bit\n"
    b"--x\n"
    b"Content-Type: message/rfc822\n"
    b"Content-Transfer-Encoding: 8bit\n"
    b"\n"
    b"Subject: inner\n"
    b"Content-Type: text/plain; charset=iso-8859-1\n"
    b"Content-Transfer-Encoding: 8bit\n"
    b"\n"
    b"caf\xe9\n"
    b"--x--\n"
    b"epilogue\n"
)

SAFE = {"7bit", "quoted-printable", "base64"}


def leaves(msg: Entity) -> list[Entity]:
    return [e for e in msg.walk() if not e.is_multipart() and e.message is None]


def only_crlf(data: bytes) -> bool:
    return data.count(b"\n") == data.count(b"\r\n")


def test_reencodes_8bit_and_binary_leaves_and_fixes_line_endings() -> None:
    msg = parse(MIXED)
    assert not is_canonical(msg)
    out = canonicalize(msg)
    assert only_crlf(out)
    canon = parse(out)
    assert [e.content_type for e in canon.walk()] == [e.content_type for e in msg.walk()]
    assert [e.transfer_encoding for e in leaves(canon)] == [
        "quoted-printable",
        "base64",
        "7bit",
        "quoted-printable",
    ]
    text, blob, plain, inner = leaves(canon)
    assert text.decoded() == b"h\xc3\xa9llo\r\nworld" and text.text() == "héllo\r\nworld"
    assert blob.decoded() == b"\x00\x01\r\xff"
    assert plain.raw_body() == b"plain 7bit"
    assert inner.text() == "café"
    assert canon.parts[3].transfer_encoding == "7bit"  # the message/rfc822 part holds only 7-bit now
    # everything that needed no re-encoding keeps its bytes, line endings aside
    for piece in (
        b"X-Folded: one\r\n two\r\n",
        b"\r\n\r\npreamble\r\n--x\r\n",
        b"Content-Type:   text/plain\r\n",
    ):
        assert piece in out
    assert out.endswith(b"--x--\r\nepilogue\r\n")
    assert is_canonical(canon)


def test_the_caller_s_message_is_not_changed() -> None:
    msg = parse(MIXED)
    canonicalize(msg)
    copy = to_canonical(msg)
    assert msg.to_bytes() == MIXED and not msg.modified
    assert copy is not msg and copy.to_bytes() == canonicalize(msg)
    assert not copy.modified and copy.to_bytes() == parse(copy.to_bytes()).to_bytes()


def test_canonical_input_is_returned_unchanged() -> None:
    msg = compose(from_="a@example.org", text="héllo\nworld", attachments=[], message_id="m@x")
    assert is_canonical(msg)
    assert canonicalize(msg) == msg.to_bytes()
    assert to_canonical(to_canonical(msg)).to_bytes() == msg.to_bytes()


@pytest.mark.parametrize(
    ("body", "cte", "content_type", "expected"),
    [
        (b"x" * 1200 + b"\n", "7bit", "text/plain", "quoted-printable"),  # a line over 998 octets
        (b"bare\rCR\n", "7bit", "text/plain", "quoted-printable"),
        (b"NUL\x00\n", "7bit", "application/x-thing", "base64"),
        (b"caf\xc3\xa9=\n", "quoted-printable", "text/plain", "quoted-printable"),  # raw 8-bit in QP
        (b"AAEC\xff\n", "base64", "application/octet-stream", "base64"),
        (b"ascii only\n", "8bit", "text/plain", "quoted-printable"),  # declared 8bit is re-encoded too
    ],
)
def test_what_counts_as_8bit(body: bytes, cte: str, content_type: str, expected: str) -> None:
    raw = f"Content-Type: {content_type}\nContent-Transfer-Encoding: {cte}\n\n".encode() + body
    msg = parse(raw)
    canon = to_canonical(msg)
    assert canon.transfer_encoding == expected
    if content_type.startswith("text/"):
        assert nl(canon.text()) == nl(msg.text())
    else:
        assert canon.decoded() == msg.decoded()
    assert only_crlf(canon.to_bytes())
    assert is_canonical(canon) and not is_canonical(msg)


def test_utf16_text_goes_to_base64() -> None:
    text = "line one\nline two\n".encode("utf-16")
    msg = parse(
        b"Content-Type: text/plain; charset=utf-16\r\nContent-Transfer-Encoding: binary\r\n\r\n" + text
    )
    canon = to_canonical(msg)
    assert canon.transfer_encoding == "base64" and canon.decoded() == text


def test_only_lf_to_crlf_for_a_7bit_message() -> None:
    raw = b"Subject: x\nContent-Type: text/plain\n\nline\n\nlast\n"
    assert canonicalize(parse(raw)) == raw.replace(b"\n", b"\r\n")


def test_unknown_transfer_encoding_with_8bit_content_raises() -> None:
    msg = parse(
        b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n\xff\r\n"
    )
    with pytest.raises(MimeBuildError, match="unknown transfer encoding"):
        canonicalize(msg)
    assert not is_canonical(msg)
    ascii_only = parse(
        b"Content-Type: application/octet-stream\nContent-Transfer-Encoding: x-uuencode\n\nbegin\n"
    )
    assert canonicalize(ascii_only).endswith(b"\r\n\r\nbegin\r\n")


def test_an_entity_read_without_a_blank_line_after_its_headers() -> None:
    # a first line that is no header field: the whole message is a headerless 8-bit body
    raw = "Grüße, no header\nContent-Type: multipart/mixed; boundary=x\n\n--x\n\nhi\n--x--\n".encode()
    msg = parse(raw)
    canon = to_canonical(msg)
    assert [e.content_type for e in canon.walk()] == [e.content_type for e in msg.walk()] == ["text/plain"]
    assert canon.decoded() == msg.decoded().replace(b"\n", b"\r\n")
    assert is_canonical(canon)


def test_a_part_can_be_canonicalized_on_its_own() -> None:
    msg = parse(MIXED)
    part = msg.parts[0]
    out = canonicalize(part)
    assert out.startswith(
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable"
    )
    assert not msg.modified


# --------------------------------------------------------------------------------------------- properties


def crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def seven_bit(data: bytes) -> bool:
    lines = data.split(b"\n")
    return (
        data.isascii()
        and b"\0" not in data
        and data.count(b"\r") == data.count(b"\r\n")
        and all(len(line.removesuffix(b"\r")) <= 998 for line in lines)
    )


def check_canonical(msg: Entity, canon: Entity) -> None:
    out = canon.to_bytes()
    assert only_crlf(out)
    assert [e.content_type for e in canon.walk()] == [e.content_type for e in msg.walk()]
    for before, after in zip(leaves(msg), leaves(canon), strict=True):
        assert after.transfer_encoding in SAFE
        data = after.raw_body()
        assert data.isascii() and b"\0" not in data
        assert all(len(line) <= 998 for line in data.split(b"\r\n"))
        if before.maintype == "text":
            assert nl(after.text()) == nl(before.text())
        if before.transfer_encoding in ("8bit", "binary") or not seven_bit(before.raw_body()):
            if before.maintype != "text":
                assert after.decoded() == before.decoded()
        else:  # kept as it was, but for its line breaks
            assert after.raw_body() == crlf(before.raw_body())
    assert is_canonical(canon)
    assert canonicalize(canon) == out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages())
def test_canonical_form_of_composed_messages(kw: dict[str, object]) -> None:
    msg = compose(**kw)  # type: ignore[arg-type]
    canon = to_canonical(msg)
    check_canonical(msg, canon)
    assert is_canonical(msg) == (canonicalize(msg) == msg.to_bytes())


_LINE = st.sampled_from([b"\n", b"\r\n"])
_BODY = st.lists(
    st.binary(max_size=40) | st.sampled_from([b"plain words", b"caf\xc3\xa9", b"=3D", b"\x00"]), max_size=6
)
_CTE = st.sampled_from(["7bit", "8bit", "binary", "quoted-printable", "base64", ""])
_TYPE = st.sampled_from(["text/plain; charset=utf-8", "application/octet-stream", "image/png", "text/html"])


@st.composite
def raw_messages(draw: st.DrawFn) -> bytes:
    """Multipart messages with arbitrary bodies, declared encodings and line endings."""
    eol = draw(_LINE)
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        cte = draw(_CTE)
        head = b"Content-Type: " + draw(_TYPE).encode() + eol
        head += b"Content-Transfer-Encoding: " + cte.encode() + eol if cte else b""
        body = draw(_LINE).join(draw(_BODY))
        # sometimes no blank line: a first body line that is no header field ends the header block
        blank = draw(st.sampled_from([eol, eol, b"no header" + eol, b"\xffX: y" + eol]))
        parts.append(head + blank + re.sub(rb"--bnd", b"--xxx", body))
    out = b"MIME-Version: 1.0" + eol + b"Content-Type: multipart/mixed; boundary=bnd" + eol + eol
    for part in parts:
        out += b"--bnd" + draw(_LINE) + part + draw(_LINE)
    return out + b"--bnd--" + eol


@settings(max_examples=150, deadline=None)
@given(raw_messages())
def test_canonical_form_of_arbitrary_multiparts(raw: bytes) -> None:
    msg = parse(raw)
    out = canonicalize(msg)
    assert msg.to_bytes() == raw
    check_canonical(msg, parse(out))


def _large_mixed_8bit() -> bytes:
    """A multipart whose 8-bit text (re-encoded) sits between two large parts kept as they are."""
    big = ("A" * 75 + "\r\n").encode() * 2000  # 154 KB of 7-bit lines
    return (
        b"From: a@example.org\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\n" + big + b"\r\n"
        b"--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + "Grüße\n".encode() * 3000
        + b"\r\n--b\r\nContent-Type: application/octet-stream\r\n\r\n"
        + big
        + b"\r\n--b--\r\n"
    )


def test_edited_form_streams_the_ranges_it_keeps() -> None:
    from smimekit.mime import _canonedit

    reads: list[int] = []
    real_read = _canonedit._View.read

    def spy(self: _canonedit._View, start: int, end: int) -> bytes:
        if self.recording:
            reads.append(end - start)
        return real_read(self, start, end)

    msg = parse(_large_mixed_8bit())
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_canonedit._View, "read", spy)
        out = canonicalize(msg)
    assert max(reads) < 2048  # while write_to() runs, only delimiters and probes are read
    assert out.count(b"A" * 75 + b"\r\n") == 4000  # both large parts, streamed afterwards, unchanged
    assert b"Content-Transfer-Encoding: quoted-printable\r\n" in out
    assert "Grüße".encode() not in out and is_canonical(parse(out))


def test_a_marker_that_does_not_come_back_is_a_bug_not_output() -> None:
    from smimekit.mime import _canonedit

    msg = parse(_large_mixed_8bit())
    with pytest.MonkeyPatch.context() as mp:
        # a writer that copies what it is given loses the markers' identity
        mp.setattr(_canonedit._Recorder, "write", lambda self, data: self.items.append(bytes(data)))
        with pytest.raises(AssertionError, match="not written as it was handed out"):
            canonicalize(msg)
