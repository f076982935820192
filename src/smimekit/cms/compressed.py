"""CompressedData (RFC 3274, zlib): compress, and decompress with a bound on the output size.

Both directions stream: :func:`compress_to` reads the content in pieces and writes the zlib stream as it
comes out of ``zlib.compressobj`` (BER with indefinite lengths, a constructed OCTET STRING of pieces, as
``openssl cms -compress -stream`` writes); :func:`decompress_to` reads the compressed octets in chunks
(a non-seekable stream is read forward, never copied) and writes the content as ``zlib.decompressobj``
gives it, stopping as soon as the output would pass ``max_size``, so that a zip bomb costs at most
``max_size`` bytes of output and 1 MiB of memory.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterable, Iterator
from typing import BinaryIO, Protocol, cast

from asn1crypto import core

from smimekit.cms import _der
from smimekit.cms._asn1 import PARSE_ERRORS
from smimekit.cms._der import CONTEXT, SEQUENCE, UNIVERSAL, BerReader
from smimekit.cms.algorithms import ZLIB_COMPRESSION_OID
from smimekit.errors import CmsFormatError, DecompressionLimitError, UnsupportedAlgorithmError, UsageError

COMPRESSED_DATA_OID = "1.2.840.113549.1.9.16.1.9"
DATA_OID = "1.2.840.113549.1.7.1"
MAX_SIZE = 1 << 30  # 1 GiB
CHUNK = _der.CHUNK


class Writable(Protocol):
    def write(self, data: bytes, /) -> object: ...


def compress(
    content: bytes | BinaryIO | Iterable[bytes], *, content_type: str = DATA_OID, level: int = 9
) -> bytes:
    """ContentInfo of CompressedData holding ``content`` compressed with zlib: DER for bytes, streamed
    BER for a stream or pieces (see :func:`compress_to`). Raises UsageError for content of another type."""
    out = io.BytesIO()
    compress_to(out, content, content_type=content_type, level=level)
    return out.getvalue()


def compress_to(
    out: Writable,
    content: bytes | BinaryIO | Iterable[bytes],
    *,
    content_type: str = DATA_OID,
    level: int = 9,
) -> int:
    """Write the ContentInfo of CompressedData holding ``content`` compressed with zlib to ``out``;
    returns the number of bytes written.

    ``content`` is bytes (written as DER), or a binary stream or an iterable of byte pieces, read in
    pieces and compressed as it is read: the output is then BER with indefinite lengths whose compressed
    eContent is a constructed OCTET STRING of the pieces zlib gives out, so memory does not grow with the
    content. Raises UsageError for content of another type or a level outside 0-9.
    """
    if not isinstance(level, int) or not 0 <= level <= 9:
        raise UsageError(f"the zlib level must be 0-9, not {level!r}")
    head = _der.integer(0) + _der.algorithm(ZLIB_COMPRESSION_OID)
    if isinstance(content, bytes | bytearray | memoryview):
        packed = zlib.compress(content, level)
        encap = _der.seq(_der.oid(content_type), _der.explicit(0, _der.octets(packed)))
        der = _der.seq(_der.oid(COMPRESSED_DATA_OID), _der.explicit(0, _der.seq(head, encap)))
        out.write(der)
        return len(der)
    if isinstance(content, str) or not (hasattr(content, "read") or isinstance(content, Iterable)):
        raise UsageError("compress takes the content as bytes, a binary stream or byte pieces")
    prefix = b"".join(
        [
            _der.header(0x30, None),  # ContentInfo
            _der.oid(COMPRESSED_DATA_OID),
            _der.header(0xA0, None),  # [0] EXPLICIT
            _der.header(0x30, None),  # CompressedData
            head,
            _der.header(0x30, None),  # EncapsulatedContentInfo
            _der.oid(content_type),
            _der.header(0xA0, None),  # [0] EXPLICIT eContent
            _der.header(0x24, None),  # OCTET STRING, constructed
        ]
    )
    out.write(prefix)
    written = len(prefix)
    deflater = zlib.compressobj(level)
    for piece in _pieces(content):
        written += _write_octets(out, deflater.compress(piece))
    written += _write_octets(out, deflater.flush())
    tail = _der.EOC * 6  # the OCTET STRING, [0], EncapsulatedContentInfo, CompressedData, [0], ContentInfo
    out.write(tail)
    return written + len(tail)


def _pieces(content: BinaryIO | Iterable[bytes]) -> Iterator[bytes]:
    if hasattr(content, "read"):
        stream = cast(BinaryIO, content)
        while chunk := stream.read(CHUNK):
            yield chunk
        return
    for piece in content:
        if not isinstance(piece, bytes | bytearray | memoryview):
            raise UsageError(f"content pieces must be bytes, not {type(piece).__name__}")
        yield piece


def _write_octets(out: Writable, data: bytes) -> int:
    if not data:
        return 0
    head = _der.header(0x04, len(data))
    out.write(head)
    out.write(data)
    return len(head) + len(data)


def decompress(data: bytes | BinaryIO, *, max_size: int = MAX_SIZE) -> bytes:
    """The content of a CompressedData ContentInfo (BER or DER), in memory; :func:`decompress_to` streams.

    Raises DecompressionLimitError when it would exceed ``max_size`` bytes, CmsFormatError for malformed
    input or a corrupt zlib stream, UnsupportedAlgorithmError for a compression other than zlib.
    """
    out = io.BytesIO()
    decompress_to(out, data, max_size=max_size)
    return out.getvalue()


def decompress_to(out: Writable, data: bytes | BinaryIO, *, max_size: int = MAX_SIZE) -> int:
    """Write the content of a CompressedData ContentInfo (BER or DER) to ``out`` as it is inflated;
    returns its size. ``data`` that cannot seek is read forward once, never copied.

    Raises as :func:`decompress`; what was written before an error is not the whole content (a caller
    that must not release part of it writes to a spool it discards on error).
    """
    if not isinstance(max_size, int) or max_size < 0:
        raise UsageError("max_size must be a non-negative number of bytes")
    r = BerReader(_der.forward(data))
    try:
        return _decompress(r, out, max_size)
    except PARSE_ERRORS as exc:
        raise CmsFormatError(f"cannot parse the compressed data: {exc}") from exc


def _oid_value(der: bytes) -> str:
    return str(core.ObjectIdentifier.load(der, strict=True).dotted)


def _decompress(r: BerReader, out: Writable, max_size: int) -> int:
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
    inflater = zlib.decompressobj()
    size = 0
    try:
        for chunk in r.string_chunks(octets):
            size = _inflate(inflater, chunk, out, size, max_size)
        tail = inflater.flush()
    except zlib.error as exc:
        raise CmsFormatError(f"the compressed content is corrupt: {exc}") from exc
    if size + len(tail) > max_size:
        raise DecompressionLimitError(max_size)
    if tail:
        out.write(tail)
    size += len(tail)
    if not inflater.eof:
        raise CmsFormatError("the compressed content is truncated")
    r.end(explicit)
    r.end(encap)
    r.end(cd)
    r.end(wrapper)
    r.end(ci)
    return size


def _inflate(inflater: zlib._Decompress, chunk: bytes, out: Writable, size: int, max_size: int) -> int:
    """Inflate ``chunk`` into ``out`` (``size`` bytes written so far), at most 1 MiB of output at a time
    and never more than one byte past ``max_size``; returns the new size."""
    data = chunk
    while data:
        room = max_size - size
        piece = inflater.decompress(data, min(room + 1, CHUNK))
        if len(piece) > room:
            raise DecompressionLimitError(max_size)
        if piece:
            out.write(piece)
        size += len(piece)
        data = inflater.unconsumed_tail
    return size
