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
from smimekit.cms.compressed import compress, decompress
from smimekit.errors import CmsFormatError, DecompressionLimitError, SmimekitError, UnsupportedAlgorithmError


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
