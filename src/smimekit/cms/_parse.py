"""Reading a SignedData into plain typed values (the only place that walks its asn1crypto structure)."""

from __future__ import annotations

from dataclasses import dataclass

from smimekit.cms import _asn1
from smimekit.cms.algorithms import DigestAlgorithm
from smimekit.cms.attributes import OID_COUNTERSIGNATURE
from smimekit.cms.certs import CertificateEntry, SignerIdentifier, identifier_from, read_certificate_set
from smimekit.errors import CmsFormatError, UnsupportedAlgorithmError, UsageError

OID_SIGNED_DATA = "1.2.840.113549.1.7.2"

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


def parse_signed_data(data: bytes) -> ParsedSignedData:
    """Read a ContentInfo holding SignedData; raises CmsFormatError for anything else or malformed input."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise UsageError("signed data must be given as bytes")
    data = bytes(data)
    if data.lstrip()[:10] == b"-----BEGIN":
        raise CmsFormatError("the input is PEM armoured; decode it to DER first")
    if not data:
        raise CmsFormatError("the input is empty")
    info = _asn1.load_shallow(_asn1.cms.ContentInfo, data, "the ContentInfo")

    def _read() -> ParsedSignedData:
        ctype = _asn1.oid(info["content_type"])
        if ctype != OID_SIGNED_DATA:
            name = _CONTENT_TYPE_NAMES.get(ctype, ctype)
            raise CmsFormatError(f"the content type is {name}, not signed-data")
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
