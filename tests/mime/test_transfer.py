"""Content-transfer-encodings: stdlib agreement, lenient decoding with defects, chunking invariance."""

from __future__ import annotations

import base64
import binascii
import itertools
import quopri
import re
from typing import Protocol
from unittest import mock

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from smimekit.errors import UsageError
from smimekit.mime import qp, transfer
from smimekit.mime.transfer import (
    Base64Decoder,
    Base64Encoder,
    IdentityDecoder,
    QuotedPrintableDecoder,
    QuotedPrintableEncoder,
    choose_transfer_encoding,
    decode_base64,
    decode_quoted_printable,
    decoder_for,
    encode_base64,
    encode_quoted_printable,
)

# Bytes that hit the interesting paths of both decoders more often than st.binary() would.
_PIECES = [
    *(
        b"Q",
        b"U",
        b"J",
        b"D",
        b"x",
        b"+",
        b"/",
        b"=",
        b"==",
        b"\r\n",
        b"\n",
        b"\r",
        b" ",
        b"\t",
        b"!",
        b"\xff",
    ),
    *(b"=4", b"=41", b"=4a", b"=\r\n", b"=\n", b"= \r\n", b"=G", b"From ", b".", b"\x00"),
]
messy = st.lists(st.sampled_from(_PIECES) | st.binary(max_size=4), max_size=60).map(b"".join)
cuts = st.lists(st.integers(min_value=0, max_value=300), max_size=8)


def _chunks(data: bytes, points: list[int]) -> list[bytes]:
    edges = sorted({min(p, len(data)) for p in points} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(edges)]


class _Codec(Protocol):
    def feed(self, chunk: bytes) -> bytes: ...

    def close(self) -> bytes: ...


def _feed_all(codec: _Codec, chunks: list[bytes]) -> bytes:
    out = b"".join(codec.feed(c) for c in chunks)
    return out + codec.close()


# --------------------------------------------------------------------------------------------- base64


@given(st.binary(max_size=400))
def test_base64_agrees_with_stdlib(data: bytes) -> None:
    for encoded in (base64.encodebytes(data), base64.b64encode(data), encode_base64(data)):
        assert decode_base64(encoded) == (data, ())
    assert encode_base64(data, eol=b"\n") == base64.encodebytes(data)


@pytest.mark.parametrize(
    ("encoded", "decoded", "defects"),
    [
        (b"", b"", ()),
        (b"QUJD\r\nREVG\r\n", b"ABCDEF", ()),
        (b"  QU JD\tREVG  \r\n", b"ABCDEF", ()),
        (b"QQ", b"A", ("InvalidBase64Padding",)),
        (b"QUI", b"AB", ("InvalidBase64Padding",)),
        (b"QQ=", b"A", ("InvalidBase64Padding",)),
        (b"QUJD=", b"ABC", ("InvalidBase64Padding",)),
        (b"QUJDR", b"ABC", ("InvalidBase64Length",)),
        (b"QU*JD", b"ABC", ("InvalidBase64Characters",)),
        (b"QU\xffJD", b"ABC", ("InvalidBase64Characters",)),
        (b"QQ==QUJD", b"A", ("Base64DataAfterPadding",)),
        (b"QQ==\r\nQUJD", b"A", ("Base64DataAfterPadding",)),
        (b"QQ=\r\n=\r\n", b"A", ()),
        (b"QQ=!=", b"A", ("InvalidBase64Characters",)),
        (b"Q!Q", b"A", ("InvalidBase64Characters", "InvalidBase64Padding")),
    ],
)
def test_base64_is_lenient_and_names_defects(
    encoded: bytes, decoded: bytes, defects: tuple[str, ...]
) -> None:
    assert decode_base64(encoded) == (decoded, defects)


@given(messy, cuts)
def test_base64_decoder_chunking_matches_one_shot(data: bytes, points: list[int]) -> None:
    decoder = Base64Decoder()
    assert (_feed_all(decoder, _chunks(data, points)), decoder.defects) == decode_base64(data)


@given(st.binary(max_size=300), st.sampled_from([b"\r\n", b"\n"]), cuts)
def test_base64_fast_path_equals_exact_path(data: bytes, eol: bytes, points: list[int]) -> None:
    encoded = encode_base64(data, eol=eol, line_length=64)
    assert transfer._decode_base64_regular(encoded) == data
    decoder = Base64Decoder()
    assert _feed_all(decoder, _chunks(encoded, points)) == data
    assert decoder.defects == ()


@given(
    st.binary(max_size=120),
    st.sampled_from([4, 8, 76]),
    st.lists(st.tuples(st.integers(0, 500), st.sampled_from(list(b"AQw+/=\r\n \t!\xff"))), max_size=3),
)
def test_base64_fast_path_agrees_on_damaged_input(
    data: bytes, length: int, edits: list[tuple[int, int]]
) -> None:
    encoded = bytearray(encode_base64(data, line_length=length))
    for pos, byte in edits:
        if encoded:
            encoded[pos % len(encoded)] = byte
    decoder = Base64Decoder()
    assert decode_base64(bytes(encoded)) == (_feed_all(decoder, [bytes(encoded)]), decoder.defects)


def test_base64_regular_layout_with_junk_takes_exact_path() -> None:
    encoded = encode_base64(bytes(range(256)) * 4)
    assert transfer._decode_base64_regular(encoded) == bytes(range(256)) * 4  # the fast path
    damaged = encoded[:100] + b"!" + encoded[101:]  # '!' replaces an alphabet character
    assert transfer._decode_base64_regular(damaged) is None
    out, defects = decode_base64(damaged)
    assert defects == ("InvalidBase64Characters", "InvalidBase64Length")
    assert len(out) == 1023


def _binascii_reference(data: bytes) -> tuple[bytes, tuple[str, ...]]:
    """The exact path alone, decoding with binascii: what every fast path must reproduce."""
    with mock.patch.object(transfer, "_b64decode", binascii.a2b_base64):
        decoder = Base64Decoder()
        out = decoder._feed_exact(data)
        out += decoder.close()
    return out, decoder.defects


# Base64 text in lines of one width, then damaged: bytes replaced, inserted or deleted anywhere.
damaged_base64 = st.builds(
    lambda data, length, eol, final_eol, edits: _damage(
        encode_base64(data, line_length=length, eol=eol)[: None if final_eol else -len(eol)], edits
    ),
    st.binary(max_size=700),
    st.sampled_from([4, 6, 64, 76, 76]),
    st.sampled_from([b"\r\n", b"\n"]),
    st.booleans(),
    st.lists(
        st.tuples(st.integers(0, 1200), st.sampled_from(list(b"AQw+/=\r\n \t!\xff-")), st.integers(0, 3)),
        max_size=3,
    ),
)


def _damage(encoded: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    out = bytearray(encoded)
    for pos, byte, how in edits:
        at = pos % (len(out) + 1)
        if how == 0 and at < len(out):
            out[at] = byte  # replaced
        elif how == 3:
            out[at : at + 4] = bytes([byte]) * len(out[at : at + 4])  # a run of four replaced
        elif how == 1:
            out.insert(at, byte)  # inserted
        elif at < len(out):
            del out[at]  # deleted
    return bytes(out)


@given(damaged_base64 | messy, cuts)
def test_base64_pybase64_paths_agree_with_binascii_reference(data: bytes, points: list[int]) -> None:
    expected = _binascii_reference(data)
    assert decode_base64(data) == expected
    decoder = Base64Decoder()
    assert (_feed_all(decoder, _chunks(data, points)), decoder.defects) == expected
    with mock.patch.object(transfer, "_b64decode", binascii.a2b_base64):  # the fallback without pybase64
        assert decode_base64(data) == expected


@example(size=174, eol=b"\r\n", step=200)  # a short last line without padding
@example(size=57 * 4 + 56, eol=b"\n", step=300)  # a last line of full width with padding
@given(st.integers(1, 1500), st.sampled_from([b"\r\n", b"\n"]), st.integers(1, 400))
def test_base64_decoder_streams_regular_lines_with_one_line_held(size: int, eol: bytes, step: int) -> None:
    data = bytes(i * 7919 % 251 for i in range(size))
    encoded = encode_base64(data, eol=eol)
    decoder = Base64Decoder()
    with mock.patch.object(decoder, "_feed_exact", wraps=decoder._feed_exact) as exact:
        out = []
        for i in range(0, len(encoded), step):
            out.append(decoder.feed(encoded[i : i + step]))
            assert len(decoder._carry) < 76 + len(eol)  # at most the unfinished line
        out.append(decoder.close())
    assert b"".join(out) == data and decoder.defects == ()
    # Only the last line (short, or with the padding) goes the exact way.
    assert sum(len(c.args[0]) for c in exact.call_args_list) <= 76 + len(eol)


@pytest.mark.parametrize("junk", [b"!", b"\xff", b"-", b"=", b" "])
@pytest.mark.parametrize("eol", [b"\r\n", b"\n"])
def test_base64_fast_paths_refuse_a_run_of_junk(junk: bytes, eol: bytes) -> None:
    # Four bytes of junk keep the alphabet count a multiple of four: only the length check sees them.
    encoded = bytearray(encode_base64(bytes(range(256)) * 4, eol=eol))
    encoded[90:94] = junk * 4  # in the second line
    expected = _binascii_reference(bytes(encoded))
    assert expected[1] or junk == b" "  # white space is no defect: then the bytes must still agree
    assert decode_base64(bytes(encoded)) == expected
    for step in (100, 1000, len(encoded)):
        decoder = Base64Decoder()
        assert (
            _feed_all(decoder, _chunks(bytes(encoded), list(range(0, 1100, step)))),
            decoder.defects,
        ) == expected


@settings(max_examples=50)
@given(damaged_base64, cuts, st.sampled_from([0, 1, 5, 80]))
def test_base64_decoder_long_lines_go_the_exact_way(data: bytes, points: list[int], cap: int) -> None:
    expected = decode_base64(data)
    with mock.patch.object(transfer, "_B64_CARRY", cap):
        decoder = Base64Decoder()
        out = []
        for chunk in _chunks(data, points):
            out.append(decoder.feed(chunk))
            assert len(decoder._carry) <= cap
        out.append(decoder.close())
    assert (b"".join(out), decoder.defects) == expected


@pytest.mark.parametrize("extra", [b"Q", b"QU", b"QUJ", b"QUJDR"])
def test_base64_decoder_takes_no_fast_path_out_of_step(extra: bytes) -> None:
    # A line with characters that are not a multiple of four leaves the quanta out of step with the lines.
    lines = encode_base64(bytes(range(256)) * 20).split(b"\r\n")
    lines[2] += extra
    encoded = b"\r\n".join(lines)
    decoder = Base64Decoder()
    out = b"".join(decoder.feed(encoded[i : i + 500]) for i in range(0, len(encoded), 500))
    assert (out + decoder.close(), decoder.defects) == _binascii_reference(encoded)


def test_base64_decoder_recovers_the_fast_path_after_a_bad_line() -> None:
    lines = encode_base64(bytes(range(256)) * 40).split(b"\r\n")
    lines[3] = lines[3][:10] + b"!" + lines[3][10:]  # junk in one line of the first chunk
    encoded = b"\r\n".join(lines)
    decoder = Base64Decoder()
    with mock.patch.object(decoder, "_feed_exact", wraps=decoder._feed_exact) as exact:
        out = b"".join(decoder.feed(encoded[i : i + 1000]) for i in range(0, len(encoded), 1000))
        out += decoder.close()
    assert (out, decoder.defects) == decode_base64(encoded)
    assert decoder.defects == ("InvalidBase64Characters",)
    assert sum(len(c.args[0]) for c in exact.call_args_list) < 2000  # the first chunk and the last line


@given(st.binary(max_size=300), st.integers(min_value=4, max_value=100), cuts)
def test_base64_encoder_lines_and_chunking(data: bytes, length: int, points: list[int]) -> None:
    encoded = encode_base64(data, line_length=length)
    assert _feed_all(Base64Encoder(line_length=length), _chunks(data, points)) == encoded
    assert base64.b64decode(encoded.replace(b"\r\n", b"")) == data
    if data:
        lines = encoded.split(b"\r\n")
        assert lines.pop() == b""
        assert all(len(line) == length for line in lines[:-1]) and 0 < len(lines[-1]) <= length
    else:
        assert encoded == b""


@given(
    st.binary(max_size=2000),
    st.sampled_from([4, 5, 6, 7, 8, 64, 76, 77]),
    st.sampled_from([b"\r\n", b"\n"]),
    cuts,
    st.sampled_from([1, 57, 100, 1 << 20]),
)
def test_base64_encoder_pybase64_agrees_with_binascii(
    data: bytes, length: int, eol: bytes, points: list[int], block: int
) -> None:
    with (
        mock.patch.object(transfer, "_PYBASE64", False),
        mock.patch.object(transfer, "_b64encode", lambda d: binascii.b2a_base64(d, newline=False)),
    ):
        expected = encode_base64(data, line_length=length, eol=eol)
    with mock.patch.object(transfer, "_B64_BLOCK", block):  # blocks of whole lines, joined
        assert encode_base64(data, line_length=length, eol=eol) == expected
        encoder = Base64Encoder(line_length=length, eol=eol)
        assert _feed_all(encoder, _chunks(data, points)) == expected


def test_base64_encoder_keeps_less_than_a_line_group() -> None:
    pieces = [bytes(range(256)) * 10 + b"x" * n for n in range(100)]
    encoder = Base64Encoder()
    out = []
    for piece in pieces:
        out.append(encoder.feed(piece))
        assert len(encoder._raw) < 57  # the input of one 76-character line
    out.append(encoder.close())
    assert b"".join(out) == encode_base64(b"".join(pieces))


def test_encoders_reject_bad_options() -> None:
    with pytest.raises(UsageError):
        encode_base64(b"x", line_length=3)
    with pytest.raises(UsageError):
        encode_base64(b"x", eol=b"\r")
    with pytest.raises(UsageError):
        encode_quoted_printable(b"x", eol=b"")


# ------------------------------------------------------------------------------------------ quoted-printable


def test_qp_rfc2045_soft_breaks() -> None:
    encoded = b"Now's the time =\r\nfor all folk to come=\n to the aid of their country."
    assert decode_quoted_printable(encoded) == (
        b"Now's the time for all folk to come to the aid of their country.",
        (),
    )


@pytest.mark.parametrize(
    ("encoded", "decoded", "defects"),
    [
        (b"a\nb\r\nc\rd", b"a\nb\r\nc\rd", ()),  # hard line endings stay as they are
        (b"caf=C3=A9 =3d =4a", b"caf\xc3\xa9 = J", ()),  # lower-case hex accepted
        (b"a= \t\r\nb", b"ab", ()),  # transport padding after a soft break
        (b"end=", b"end", ()),  # a soft break at the end of the data
        (b"end=  ", b"end", ()),
        (b"x=G1y", b"x=G1y", ("InvalidQuotedPrintableEscape",)),
        (b"==41", b"=A", ("InvalidQuotedPrintableEscape",)),
        (b"=\rx", b"=\rx", ("InvalidQuotedPrintableEscape",)),
        (b"a=4", b"a=4", ("InvalidQuotedPrintableEscape",)),
        (b"a= b", b"a= b", ("InvalidQuotedPrintableEscape",)),
    ],
)
def test_qp_is_lenient_and_names_defects(encoded: bytes, decoded: bytes, defects: tuple[str, ...]) -> None:
    assert decode_quoted_printable(encoded) == (decoded, defects)


@given(st.binary(max_size=300))
def test_qp_agrees_with_stdlib(data: bytes) -> None:
    stdlib = binascii.b2a_qp(data, istext=False)
    assert decode_quoted_printable(stdlib) == (data, ())
    ours = encode_quoted_printable(data, text=False)
    assert quopri.decodestring(ours) == data
    assert decode_quoted_printable(ours) == (data, ())


@given(messy, cuts)
def test_qp_decoder_chunking_matches_one_shot(data: bytes, points: list[int]) -> None:
    decoder = QuotedPrintableDecoder()
    assert (_feed_all(decoder, _chunks(data, points)), decoder.defects) == decode_quoted_printable(data)


def _canonical_text(data: bytes, eol: bytes) -> bytes:
    *lines, last = data.split(b"\n")
    return eol.join([line.removesuffix(b"\r") for line in lines] + [last])


def _assert_valid_qp(encoded: bytes, eol: bytes) -> None:
    assert re.fullmatch(rb"[\t -~\r\n]*", encoded)
    for line in encoded.split(eol):
        assert len(line) <= 76
        assert not line.endswith((b" ", b"\t"))
        assert not line.startswith(b"From ") and line != b"."
        assert b"\r" not in line and b"\n" not in line


@settings(max_examples=300)
@given(messy, st.sampled_from([b"\r\n", b"\n"]), st.booleans())
def test_qp_encoder_output_is_valid_and_round_trips(data: bytes, eol: bytes, text: bool) -> None:
    encoded = encode_quoted_printable(data, eol=eol, text=text)
    _assert_valid_qp(encoded, eol)
    expected = _canonical_text(data, eol) if text else data
    assert decode_quoted_printable(encoded) == (expected, ())


@given(
    st.lists(
        st.sampled_from([b"a", b" ", b"=", b"\xe9", b"From ", b".", b"\n", b"\r\n", b"\r"]), max_size=200
    )
)
def test_qp_encoder_long_lines_and_chunking(pieces: list[bytes]) -> None:
    data = b"".join(pieces) * 3
    for text in (True, False):
        encoded = encode_quoted_printable(data, text=text)
        _assert_valid_qp(encoded, b"\r\n")
        with mock.patch.object(qp, "_QP_HOLD", 10):  # stream unfinished lines early
            for step in (1, 7, 97):
                encoder = QuotedPrintableEncoder(text=text)
                chunks = [data[i : i + step] for i in range(0, len(data), step)]
                assert _feed_all(encoder, chunks) == encoded


def test_qp_encoder_examples() -> None:
    assert encode_quoted_printable(b"") == b""
    assert encode_quoted_printable(b"From me\n.\nend \nx\t") == b"=46rom me\r\n=2E\r\nend=20\r\nx=09"
    assert encode_quoted_printable(b"a\r\nb\rc", eol=b"\n") == b"a\nb=0Dc"
    assert encode_quoted_printable(b"a\r\nb", text=False) == b"a=0D=0Ab"
    assert encode_quoted_printable(b"caf\xc3\xa9 = ok") == b"caf=C3=A9 =3D ok"
    long = encode_quoted_printable(b"x" * 74 + b"\xff")  # the escape moves whole to the next line
    assert long == b"x" * 74 + b"=\r\n=FF"
    wrapped = encode_quoted_printable(b"y" * 75 + b"From here")
    assert wrapped == b"y" * 75 + b"=\r\n=46rom here"


def test_qp_encoder_keeps_bounded_state() -> None:
    encoder = QuotedPrintableEncoder(text=False)
    produced = sum(len(encoder.feed(b"\x00 a" * 10_000)) for _ in range(20))
    assert produced > 1_000_000
    assert len(encoder._raw) + len(encoder._enc) < 100  # nothing of size grows with the input


# --------------------------------------------------------------------------------------------- selection


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("base64", Base64Decoder),
        (" BASE64 ", Base64Decoder),
        ("Quoted-Printable", QuotedPrintableDecoder),
        ("7bit", IdentityDecoder),
        ("binary", IdentityDecoder),
        ("x-uuencode", IdentityDecoder),
        (None, IdentityDecoder),
    ],
)
def test_decoder_for(name: str | None, kind: type) -> None:
    decoder = decoder_for(name)
    assert isinstance(decoder, kind)
    assert decoder_for(name) is not decoder


def test_identity_decoder() -> None:
    decoder = IdentityDecoder()
    assert decoder.feed(b"=41 \xff") == b"=41 \xff"
    assert decoder.close() == b"" and decoder.defects == ()


@pytest.mark.parametrize(
    ("data", "kwargs", "expected"),
    [
        (b"", {"text": True}, "7bit"),
        (b"hello\nworld\n", {"text": True}, "7bit"),  # LF becomes CRLF in the canonical form
        (b"hello\nworld\n", {"text": False}, "base64"),  # binary data would be changed by that
        (b"hello\r\nworld\r\n", {"text": False}, "7bit"),
        (b"a\rb", {"text": True}, "quoted-printable"),
        (b"a\x00b" + b"c" * 20, {"text": True}, "quoted-printable"),
        (b"x" * 998 + b"\r\n", {"text": True}, "7bit"),
        (b"x" * 999 + b"\r\n", {"text": True}, "quoted-printable"),
        ("Grüße aus Köln, wir sehen uns morgen zum Frühstück.".encode(), {"text": True}, "quoted-printable"),
        ("Grüße aus Köln, schöne Grüße".encode(), {"text": True}, "base64"),  # 12 of 34 bytes not ASCII
        ("Grüße".encode(), {"text": True, "allow_8bit": True}, "8bit"),
        ("Grüße\x00".encode(), {"text": True, "allow_8bit": True}, "base64"),
        ("Grüße\x00".encode(), {"text": True, "allow_8bit": True, "allow_binary": True}, "binary"),
        ("日本語のテキスト".encode(), {"text": True}, "base64"),
        (bytes(range(256)), {"text": False}, "base64"),
        (bytes(range(256)), {"text": False, "allow_binary": True}, "binary"),
    ],
)
def test_choose_transfer_encoding(data: bytes, kwargs: dict[str, bool], expected: str) -> None:
    assert choose_transfer_encoding(data, **kwargs) == expected
