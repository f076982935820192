"""CompressedData (RFC 3274): round trips, OpenSSL-style BER, bounded decompression."""

from __future__ import annotations

import contextlib
import io
import os
import zlib

import pytest
from asn1crypto import cms
from hypothesis import given, settings
from hypothesis import strategies as st

from smimekit.cms import _der
from smimekit.cms.compressed import compress, compress_to, decompress, decompress_to
from smimekit.errors import (
    CmsFormatError,
    DecompressionLimitError,
    SmimekitError,
    UnsupportedAlgorithmError,
    UsageError,
)


@pytest.mark.parametrize("content", [b"", b"hello", os.urandom(5000), b"a" * 3_000_000])
def test_round_trip(content) -> None:
    packed = compress(content)
    assert cms.ContentInfo.load(packed, strict=True)["content_type"].native == "compressed_data"
    assert decompress(packed) == content
    assert decompress(io.BytesIO(packed)) == content


def _ber(packed_content: bytes, chunk: int = 1000) -> bytes:
    """A CompressedData as OpenSSL -stream writes it: indefinite lengths, constructed OCTET STRING."""
    chunks = b"".join(
        _der.octets(packed_content[i : i + chunk]) for i in range(0, len(packed_content), chunk)
    )
    encap = b"\x30\x80" + _der.oid("1.2.840.113549.1.7.1") + b"\xa0\x80\x24\x80" + chunks + b"\x00\x00" * 3
    body = b"\x30\x80" + _der.integer(0) + _der.algorithm("1.2.840.113549.1.9.16.3.8") + encap + b"\x00\x00"
    return b"\x30\x80" + _der.oid("1.2.840.113549.1.9.16.1.9") + b"\xa0\x80" + body + b"\x00\x00" * 2


def test_indefinite_length_ber_with_chunked_octets() -> None:
    content = os.urandom(10_000) + b"z" * 50_000
    assert decompress(_ber(zlib.compress(content))) == content


def test_zip_bomb_stops_at_max_size() -> None:
    bomb = zlib.compress(b"\x00" * (64 << 20), 9)  # 64 MiB from ~64 KiB
    with pytest.raises(DecompressionLimitError) as info:
        decompress(_ber(bomb, chunk=4096), max_size=1 << 20)
    assert info.value.limit == 1 << 20
    assert decompress(_ber(zlib.compress(b"x" * 100)), max_size=100) == b"x" * 100
    with pytest.raises(DecompressionLimitError):
        decompress(_ber(zlib.compress(b"x" * 101)), max_size=100)


def test_corrupt_and_foreign_input() -> None:
    packed = compress(b"some content " * 100)
    with pytest.raises(CmsFormatError):
        decompress(packed[:-10])
    broken = bytearray(packed)
    broken[-20] ^= 0xFF
    with pytest.raises(CmsFormatError):
        decompress(bytes(broken))
    other = packed.replace(_der.oid("1.2.840.113549.1.9.16.3.8"), _der.oid("1.2.840.113549.1.9.16.3.9"))
    with pytest.raises(UnsupportedAlgorithmError):
        decompress(other)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_hostile_bytes_raise_only_typed_errors(data) -> None:
    with contextlib.suppress(SmimekitError):
        decompress(data)


class _OneWay(io.RawIOBase):
    """A stream that cannot seek (as a socket or a base64 decoder), counting what was read from it."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[no-untyped-def, override]
        n = self._data.readinto(b)
        self.read_bytes += n
        return n


@pytest.mark.parametrize("form", ["stream", "pieces"])
def test_streamed_compression_is_ber_that_inflates_to_the_content(form: str) -> None:
    content = os.urandom(300_000) + b"line of text\r\n" * 200_000
    source = (
        io.BytesIO(content)
        if form == "stream"
        else iter([content[:5], content[5:2_000_000], content[2_000_000:]])
    )
    out = io.BytesIO()
    written = compress_to(out, source)
    packed = out.getvalue()
    assert written == len(packed) and packed[:2] == b"\x30\x80"  # indefinite lengths: streamed
    parsed = cms.ContentInfo.load(packed)  # an independent BER reader agrees on the structure
    assert parsed["content_type"].native == "compressed_data"
    assert zlib.decompress(parsed["content"]["encap_content_info"]["content"].native) == content
    sink = io.BytesIO()
    assert decompress_to(sink, _OneWay(packed)) == len(content)
    assert sink.getvalue() == content == decompress(packed)


def test_streamed_decompression_stops_at_max_size_without_holding_the_content() -> None:
    bomb = _ber(zlib.compress(b"\x00" * (64 << 20), 9), chunk=4096)
    written: list[int] = []

    class Sink:
        def write(self, data: bytes) -> int:
            written.append(len(data))
            return len(data)

    with pytest.raises(DecompressionLimitError):
        decompress_to(Sink(), _OneWay(bomb), max_size=5 << 20)
    assert sum(written) <= 5 << 20  # nothing past the limit was written
    assert max(written) <= 1 << 20  # and never more than 1 MiB at a time
    with pytest.raises(UsageError):
        compress_to(io.BytesIO(), "text")  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        compress_to(io.BytesIO(), b"x", level=12)
