"""CompressedData (RFC 3274, zlib): compress, and decompress with a bound on the output size.

Decompression streams the compressed octets in chunks and stops as soon as the output would pass
``max_size``, so that a zip bomb costs at most ``max_size`` bytes of memory.
"""

from __future__ import annotations

import io
import zlib
from typing import BinaryIO

from asn1crypto import core

from smimekit.cms import _der
from smimekit.cms._asn1 import PARSE_ERRORS
from smimekit.cms._der import CONTEXT, SEQUENCE, UNIVERSAL, BerReader
from smimekit.cms.algorithms import ZLIB_COMPRESSION_OID
from smimekit.errors import CmsFormatError, DecompressionLimitError, UnsupportedAlgorithmError, UsageError

COMPRESSED_DATA_OID = "1.2.840.113549.1.9.16.1.9"
DATA_OID = "1.2.840.113549.1.7.1"
MAX_SIZE = 1 << 30  # 1 GiB


def compress(content: bytes, *, content_type: str = DATA_OID, level: int = 9) -> bytes:
    """DER ContentInfo of CompressedData holding ``content`` compressed with zlib."""
    if not isinstance(content, bytes | bytearray | memoryview):
        raise UsageError("compress takes the content as bytes")
    packed = zlib.compress(bytes(content), level)
    encap = _der.seq(_der.oid(content_type), _der.explicit(0, _der.octets(packed)))
    body = _der.seq(_der.integer(0), _der.algorithm(ZLIB_COMPRESSION_OID), encap)
    return _der.seq(_der.oid(COMPRESSED_DATA_OID), _der.explicit(0, body))


def decompress(data: bytes | BinaryIO, *, max_size: int = MAX_SIZE) -> bytes:
    """The content of a CompressedData ContentInfo (BER or DER).

    Raises DecompressionLimitError when it would exceed ``max_size`` bytes, CmsFormatError for malformed
    input or a corrupt zlib stream, UnsupportedAlgorithmError for a compression other than zlib.
    """
    r = BerReader(_der.seekable(data))
    try:
        return _decompress(r, max_size)
    except PARSE_ERRORS as exc:
        raise CmsFormatError(f"cannot parse the compressed data: {exc}") from exc


def _oid_value(der: bytes) -> str:
    return str(core.ObjectIdentifier.load(der, strict=True).dotted)


def _decompress(r: BerReader, max_size: int) -> bytes:
    ci = r.expect(UNIVERSAL, SEQUENCE, "a ContentInfo", constructed=True)
    if _oid_value(r.element(limit=256)) != COMPRESSED_DATA_OID:
        raise CmsFormatError("the content type is not compressed-data")
    wrapper = r.expect(CONTEXT, 0, "the [0] content of the ContentInfo", constructed=True)
    cd = r.expect(UNIVERSAL, SEQUENCE, "a CompressedData", constructed=True)
    core.Integer.load(r.element(limit=64), strict=True)
    alg = core.Sequence.load(r.element(limit=1024), strict=True)
    alg_oid = str(core.ObjectIdentifier.load(alg[0].dump()).dotted)
    if alg_oid != ZLIB_COMPRESSION_OID:
        raise UnsupportedAlgorithmError(alg_oid, reason="is not an allowed compression")
    encap = r.expect(UNIVERSAL, SEQUENCE, "an EncapsulatedContentInfo", constructed=True)
    r.element(limit=256)  # eContentType
    explicit = r.expect(CONTEXT, 0, "the compressed eContent", constructed=True)
    octets = r.header()
    if not octets.is_(UNIVERSAL, _der.OCTET_STRING):
        raise CmsFormatError(f"expected an OCTET STRING at byte {octets.offset}")
    out = io.BytesIO()
    inflater = zlib.decompressobj()
    try:
        for chunk in r.string_chunks(octets):
            _inflate(inflater, chunk, out, max_size)
        tail = inflater.flush()
    except zlib.error as exc:
        raise CmsFormatError(f"the compressed content is corrupt: {exc}") from exc
    if out.tell() + len(tail) > max_size:
        raise DecompressionLimitError(max_size)
    out.write(tail)
    if not inflater.eof:
        raise CmsFormatError("the compressed content is truncated")
    r.end(explicit)
    r.end(encap)
    r.end(cd)
    r.end(wrapper)
    r.end(ci)
    return out.getvalue()


def _inflate(inflater: zlib._Decompress, chunk: bytes, out: io.BytesIO, max_size: int) -> None:
    data = chunk
    while data:
        room = max_size - out.tell()
        piece = inflater.decompress(data, room + 1)
        if len(piece) > room:
            raise DecompressionLimitError(max_size)
        out.write(piece)
        data = inflater.unconsumed_tail
