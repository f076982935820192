"""Reading a SignedData into plain typed values (the only place that walks its asn1crypto structure).

:class:`SignedDataReader` reads a SignedData from a stream without holding its encapsulated content: the
BER reader of :mod:`smimekit.cms._der` walks the outer structure and hands out the eContent in chunks;
everything else (certificates, CRLs, SignerInfos: small) is read into memory and parsed as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from asn1crypto import core

from smimekit.cms import _asn1, _der
from smimekit.cms._der import CONTEXT, OCTET_STRING, SEQUENCE, UNIVERSAL, BerReader, Header
from smimekit.cms.algorithms import DigestAlgorithm
from smimekit.cms.attributes import OID_COUNTERSIGNATURE
from smimekit.cms.certs import CertificateEntry, SignerIdentifier, identifier_from, read_certificate_set
from smimekit.errors import CmsFormatError, UnsupportedAlgorithmError, UsageError

OID_SIGNED_DATA = "1.2.840.113549.1.7.2"
#: Outside the eContent, no element of a SignedData (the certificate set, say) may exceed this size.
MAX_ELEMENT = _der.MAX_ELEMENT

_CONTENT_TYPE_NAMES = {
    "1.2.840.113549.1.7.1": "data",
    "1.2.840.113549.1.7.3": "enveloped-data",
    "1.2.840.113549.1.7.5": "digested-data",
    "1.2.840.113549.1.7.6": "encrypted-data",
    "1.2.840.113549.1.9.16.1.2": "authenticated-data",
    "1.2.840.113549.1.9.16.1.9": "compressed-data",
    "1.2.840.113549.1.9.16.1.23": "authEnveloped-data",
}


@dataclass(frozen=True)
class ParsedSignerInfo:
    """One SignerInfo, read but not checked. ``digest`` is None when the digest is not allowed."""

    sid: SignerIdentifier
    version: int
    digest_oid: str
    digest: DigestAlgorithm | None
    digest_error: str | None
    digest_algorithm_der: bytes
    signature_oid: str
    signature_params: bytes | None
    signature_algorithm_der: bytes
    signature: bytes
    signed_attrs: _asn1.Asn1 | None
    countersignatures: tuple[_asn1.Asn1, ...]
    unsigned_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class ParsedSignedData:
    """A SignedData read into typed values; ``content`` is None when detached."""

    version: int
    content_type: str
    content: bytes | None
    digest_algorithms: tuple[str, ...]
    certificates: tuple[CertificateEntry, ...]
    crls: tuple[bytes, ...]
    signers: tuple[ParsedSignerInfo, ...]


def _check_start(head: bytes) -> None:
    if head.lstrip()[:10] == b"-----BEGIN":
        raise CmsFormatError("the input is PEM armoured; decode it to DER first")
    if not head:
        raise CmsFormatError("the input is empty")


def _content_type_error(ctype: str) -> CmsFormatError:
    name = _CONTENT_TYPE_NAMES.get(ctype, ctype)
    return CmsFormatError(f"the content type is {name}, not signed-data")


def parse_signed_data(data: bytes) -> ParsedSignedData:
    """Read a ContentInfo holding SignedData; raises CmsFormatError for anything else or malformed input."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise UsageError("signed data must be given as bytes")
    data = bytes(data)
    _check_start(data[:4096])
    info = _asn1.load_shallow(_asn1.cms.ContentInfo, data, "the ContentInfo")

    def _read() -> ParsedSignedData:
        ctype = _asn1.oid(info["content_type"])
        if ctype != OID_SIGNED_DATA:
            raise _content_type_error(ctype)
        sd = info["content"]
        if not _asn1.is_present(sd):
            raise CmsFormatError("the ContentInfo has no content")
        encap = _asn1.RawEncapsulatedContentInfo.load(_asn1.dump(sd["encap_content_info"]), strict=True)
        econtent = encap["content"]
        crls = sd["crls"]
        return ParsedSignedData(
            version=_asn1.integer(sd["version"]),
            content_type=_asn1.oid(encap["content_type"]),
            content=_asn1.octets(econtent) if _asn1.is_present(econtent) else None,
            digest_algorithms=tuple(_asn1.oid(d["algorithm"]) for d in sd["digest_algorithms"]),
            certificates=read_certificate_set(sd["certificates"]),
            crls=tuple(_asn1.dump(c.chosen) for c in crls) if _asn1.is_present(crls) else (),
            signers=tuple(parse_signer_info(si) for si in sd["signer_infos"]),
        )

    return _asn1.guarded("malformed SignedData", _read)


def parse_signer_info(si: _asn1.Asn1) -> ParsedSignerInfo:
    """Read one SignerInfo; raises CmsFormatError when its structure is malformed."""

    def _read() -> ParsedSignerInfo:
        digest_oid = _asn1.oid(si["digest_algorithm"]["algorithm"])
        digest: DigestAlgorithm | None = None
        error = None
        try:
            digest = DigestAlgorithm.from_oid(digest_oid)
        except UnsupportedAlgorithmError as exc:
            error = str(exc)
        sig_alg = si["signature_algorithm"]
        signed_attrs = si["signed_attrs"]
        counters: list[_asn1.Asn1] = []
        unsigned_types: list[str] = []
        unsigned = si["unsigned_attrs"]
        if _asn1.is_present(unsigned):
            for attr in unsigned:
                unsigned_types.append(_asn1.oid(attr["type"]))
                if unsigned_types[-1] == OID_COUNTERSIGNATURE:
                    counters.extend(attr["values"])
        return ParsedSignerInfo(
            sid=identifier_from(si["sid"]),
            version=_asn1.integer(si["version"]),
            digest_oid=digest_oid,
            digest=digest,
            digest_error=error,
            digest_algorithm_der=_asn1.dump(si["digest_algorithm"]),
            signature_oid=_asn1.oid(sig_alg["algorithm"]),
            signature_params=_asn1.algorithm_params(sig_alg),
            signature_algorithm_der=_asn1.dump(sig_alg),
            signature=_asn1.octets(si["signature"]),
            signed_attrs=signed_attrs if _asn1.is_present(signed_attrs) else None,
            countersignatures=tuple(counters),
            unsigned_types=tuple(unsigned_types),
        )

    return _asn1.guarded("malformed SignerInfo", _read)


class SignedDataReader:
    """Reads a ContentInfo holding SignedData from a seekable stream, in three steps.

    :meth:`head` reads up to the eContent (the digest algorithms announced, whether the content is
    encapsulated); :meth:`content` yields the eContent in chunks of at most 1 MiB (a primitive or a
    constructed OCTET STRING, definite or indefinite lengths) and may be called again to read it once more;
    :meth:`finish` reads the rest and returns the :class:`ParsedSignedData` (``content`` None). Each raises
    CmsFormatError for malformed input.
    """

    def __init__(self, stream: BinaryIO) -> None:
        pos = stream.tell()
        _check_start(stream.read(64))
        stream.seek(pos)
        self._r = BerReader(stream)
        self._parts: list[bytes] = []
        self._frames: list[Header] = []  # ContentInfo, [0], SignedData, EncapsulatedContentInfo, [0]
        self._octets: Header | None = None
        self._content_end: int | None = None  # where the eContent ends, once it was read through
        self.digest_algorithms: tuple[str, ...] = ()
        self.encapsulated = False

    def head(self) -> None:
        """Read up to the eContent; sets ``digest_algorithms`` and ``encapsulated``."""
        r = self._r
        ci = r.expect(UNIVERSAL, SEQUENCE, "a ContentInfo", constructed=True)
        ctype = _oid(r.element(limit=256), "the content type")
        if ctype != OID_SIGNED_DATA:
            raise _content_type_error(ctype)
        wrapper = r.expect(CONTEXT, 0, "the [0] content of the ContentInfo", constructed=True)
        sd = r.expect(UNIVERSAL, SEQUENCE, "a SignedData", constructed=True)
        self._parts.append(r.element(limit=64))  # version
        digests = r.element()
        if digests[:1] != b"\x31":
            raise CmsFormatError("expected the digestAlgorithms SET")
        self._parts.append(digests)
        self.digest_algorithms = _asn1.guarded(
            "malformed SignedData",
            lambda: tuple(
                _asn1.oid(d["algorithm"]) for d in _asn1.cms.DigestAlgorithms.load(digests, strict=True)
            ),
        )
        encap = r.expect(UNIVERSAL, SEQUENCE, "an EncapsulatedContentInfo", constructed=True)
        self._parts.append(r.element(limit=256))  # eContentType
        self._frames = [ci, wrapper, sd, encap]
        if r.next_in(encap) is not None:
            self._frames.append(r.expect(CONTEXT, 0, "the [0] eContent", constructed=True))
            octets = r.header()
            if not octets.is_(UNIVERSAL, OCTET_STRING):
                raise CmsFormatError(f"expected the eContent OCTET STRING at byte {octets.offset}")
            self._octets = octets
            self.encapsulated = True
        else:
            self._content_end = r.tell()

    def content(self) -> Iterator[bytes]:
        """The eContent in chunks (nothing when it is detached)."""
        h = self._octets
        if h is None:
            return
        r = self._r
        r.seek(h.content_offset)
        yield from r.string_chunks(h)
        if self._content_end is None:
            r.end(self._frames[4])  # the [0] around the eContent
            self._content_end = r.tell()

    def finish(self) -> ParsedSignedData:
        """Read the certificates, CRLs and SignerInfos and the end of the structure."""
        r = self._r
        if len(self._frames) < 4:
            raise UsageError("SignedDataReader.head() must come first")
        if self._content_end is None:
            assert self._octets is not None
            r.seek(self._octets.offset)
            r.skip_content(r.header())
            r.end(self._frames[4])
            self._content_end = r.tell()
        r.seek(self._content_end)
        ci, wrapper, sd, encap = self._frames[:4]
        r.end(encap)
        rest: list[bytes] = []
        while (nxt := r.next_in(sd)) is not None:
            if len(rest) == 3:  # certificates, crls, signerInfos
                raise CmsFormatError(f"unexpected element in the SignedData at byte {nxt.offset}")
            rest.append(r.element(limit=MAX_ELEMENT))
        for frame in (sd, wrapper, ci):
            r.end(frame)
        if not r.at_end():
            raise CmsFormatError(f"unexpected data after the message at byte {r.tell()}")
        version, digests, ctype = self._parts
        sd_der = _der.seq(version, digests, _der.seq(ctype), *rest)
        return parse_signed_data(_der.seq(_der.oid(OID_SIGNED_DATA), _der.explicit(0, sd_der)))


def _oid(der: bytes, what: str) -> str:
    def _read() -> str:
        return str(core.ObjectIdentifier.load(der, strict=True).dotted)

    return _asn1.guarded(f"malformed {what}", _read)
