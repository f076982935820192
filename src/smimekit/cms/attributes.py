"""Signed attributes of a SignerInfo: building them for signing, reading and checking them for verifying.

Reading never re-encodes: the bytes the signature covers are the attribute SET exactly as received,
re-tagged from IMPLICIT [0] to SET OF (RFC 5652 §5.4).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from smimekit.cms import _asn1
from smimekit.cms.certs import SignerIdentifier
from smimekit.errors import CmsFormatError

OID_CONTENT_TYPE = "1.2.840.113549.1.9.3"
OID_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
OID_SIGNING_TIME = "1.2.840.113549.1.9.5"
OID_COUNTERSIGNATURE = "1.2.840.113549.1.9.6"
OID_SMIME_CAPABILITIES = "1.2.840.113549.1.9.15"
OID_ENCRYPTION_KEY_PREFERENCE = "1.2.840.113549.1.9.16.2.11"
OID_SIGNING_CERTIFICATE = "1.2.840.113549.1.9.16.2.12"
OID_SIGNING_CERTIFICATE_V2 = "1.2.840.113549.1.9.16.2.47"
OID_ALGORITHM_PROTECTION = "1.2.840.113549.1.9.52"
OID_DATA = "1.2.840.113549.1.7.1"

_ATTRIBUTE_ERRORS: tuple[type[BaseException], ...] = (CmsFormatError, *_asn1.PARSE_ERRORS)

_NAMES = {
    OID_CONTENT_TYPE: "contentType",
    OID_MESSAGE_DIGEST: "messageDigest",
    OID_SIGNING_TIME: "signingTime",
    OID_COUNTERSIGNATURE: "countersignature",
    OID_SMIME_CAPABILITIES: "SMIMECapabilities",
    OID_ENCRYPTION_KEY_PREFERENCE: "SMIMEEncryptionKeyPreference",
    OID_SIGNING_CERTIFICATE: "signingCertificate",
    OID_SIGNING_CERTIFICATE_V2: "signingCertificateV2",
    OID_ALGORITHM_PROTECTION: "CMSAlgorithmProtection",
}


def attribute_name(dotted: str) -> str:
    """The RFC name of an attribute OID, or the OID itself."""
    return _NAMES.get(dotted, dotted)


@dataclass(frozen=True)
class SmimeCapability:
    """One SMIMECapability (RFC 8551 §2.5.2): an algorithm OID with optional DER parameters."""

    oid: str
    parameters: bytes | None = None


#: What smimekit announces it can decrypt, strongest first (RFC 8551 §2.5.2, §2.7).
DEFAULT_SMIME_CAPABILITIES: tuple[SmimeCapability, ...] = (
    SmimeCapability("2.16.840.1.101.3.4.1.46"),  # AES-256-GCM
    SmimeCapability("2.16.840.1.101.3.4.1.6"),  # AES-128-GCM
    SmimeCapability("2.16.840.1.101.3.4.1.42"),  # AES-256-CBC
    SmimeCapability("2.16.840.1.101.3.4.1.2"),  # AES-128-CBC
)


@dataclass(frozen=True)
class EssCertId:
    """An ESSCertID(v2) of a signingCertificate(V2) attribute (RFC 5035)."""

    digest_oid: str
    cert_hash: bytes
    issuer_names: tuple[bytes, ...] = ()  # DER Names of the directoryName entries of issuerSerial
    serial_number: int | None = None


@dataclass(frozen=True)
class AlgorithmProtection:
    """CMSAlgorithmProtection (RFC 6211): the algorithm identifiers as DER."""

    digest_algorithm: bytes
    signature_algorithm: bytes | None
    has_mac_algorithm: bool


@dataclass(frozen=True)
class SignedAttributes:
    """The signed attributes of one SignerInfo as read; ``problems`` lists what makes them unusable."""

    to_sign: bytes
    types: tuple[str, ...]
    content_type: str | None = None
    message_digest: bytes | None = None
    signing_time: dt.datetime | None = None
    smime_capabilities: tuple[SmimeCapability, ...] = ()
    encryption_key_preference: SignerIdentifier | None = None
    signing_certificate: EssCertId | None = None
    signing_certificate_v2: EssCertId | None = None
    algorithm_protection: AlgorithmProtection | None = None
    problems: tuple[str, ...] = ()


# ------------------------------------------------------------------------------------------ building


def _attribute(dotted: str, values: Sequence[_asn1.Asn1]) -> bytes:
    return _asn1.dump(_asn1.cms.CMSAttribute({"type": dotted, "values": list(values)}))


def signing_time_value(when: dt.datetime) -> _asn1.Asn1:
    """RFC 5652 §11.3: UTCTime for 1950..2049, GeneralizedTime otherwise; whole seconds in UTC."""
    if when.tzinfo is None:
        raise ValueError("signing_time must be timezone-aware")
    when = when.astimezone(dt.UTC).replace(microsecond=0)
    if 1950 <= when.year < 2050:
        return _asn1.cms.Time({"utc_time": when})
    return _asn1.cms.Time({"generalized_time": when})


#: How many distinct values each cache of encoded attributes keeps (least recently used go first).
ATTRIBUTE_CACHE_SIZE = 256


def build_signed_attributes(
    *,
    content_type: str,
    message_digest: bytes,
    signer_certificate: x509.Certificate,
    digest_algorithm: bytes,
    signature_algorithm: bytes,
    signing_time: dt.datetime | None,
    capabilities: Sequence[SmimeCapability],
    encryption_certificate: x509.Certificate | None,
) -> bytes:
    """The DER SET OF signed attributes (tag 0x31) for one signer; the signature goes over these bytes.

    The attributes that do not change from message to message (contentType, CMSAlgorithmProtection,
    signingCertificateV2, SMIMECapabilities, SMIMEEncryptionKeyPreference) are encoded once per distinct
    input and kept as immutable bytes in bounded caches keyed by that input (a certificate by its DER);
    the output is byte for byte what encoding them afresh gives.
    """
    if signing_time is not None and signing_time.tzinfo is None:
        raise ValueError("signing_time must be timezone-aware")
    attrs = [
        _content_type_attribute(content_type),
        _attribute(OID_MESSAGE_DIGEST, [_asn1.core.OctetString(message_digest)]),
        _algorithm_protection_attribute(bytes(digest_algorithm), bytes(signature_algorithm)),
        _signing_certificate_v2_attribute(signer_certificate.public_bytes(serialization.Encoding.DER)),
    ]
    if signing_time is not None:
        attrs.append(_signing_time_attribute(signing_time.astimezone(dt.UTC).replace(microsecond=0)))
    if capabilities:
        attrs.append(_capabilities_attribute(tuple(capabilities)))
    if encryption_certificate is not None:
        attrs.append(
            _key_preference_attribute(
                encryption_certificate.issuer.public_bytes(), encryption_certificate.serial_number
            )
        )
    return _asn1.set_of_der(attrs)


@functools.lru_cache(maxsize=ATTRIBUTE_CACHE_SIZE)
def _content_type_attribute(content_type: str) -> bytes:
    return _attribute(OID_CONTENT_TYPE, [_asn1.cms.ContentType(content_type)])


@functools.lru_cache(maxsize=ATTRIBUTE_CACHE_SIZE)
def _algorithm_protection_attribute(digest_algorithm: bytes, signature_algorithm: bytes) -> bytes:
    protection = _asn1.cms.CMSAlgorithmProtection(
        {
            "digest_algorithm": _asn1.algos.DigestAlgorithm.load(digest_algorithm),
            "signature_algorithm": _asn1.algos.SignedDigestAlgorithm.load(signature_algorithm),
        }
    )
    return _attribute(OID_ALGORITHM_PROTECTION, [protection])


@functools.lru_cache(maxsize=ATTRIBUTE_CACHE_SIZE)
def _signing_certificate_v2_attribute(cert_der: bytes) -> bytes:
    # keyed by the whole DER: two certificates that differ anywhere never share an entry
    cert = x509.load_der_x509_certificate(cert_der)
    return _attribute(OID_SIGNING_CERTIFICATE_V2, [_signing_certificate_v2(cert)])


@functools.lru_cache(maxsize=8)
def _signing_time_attribute(when: dt.datetime) -> bytes:
    # whole seconds: the messages signed within one second share the encoding
    return _attribute(OID_SIGNING_TIME, [signing_time_value(when)])


@functools.lru_cache(maxsize=ATTRIBUTE_CACHE_SIZE)
def _capabilities_attribute(capabilities: tuple[SmimeCapability, ...]) -> bytes:
    caps = []
    for cap in capabilities:
        item: dict[str, object] = {"capability_id": cap.oid}
        if cap.parameters is not None:
            item["parameters"] = _asn1.core.Any.load(cap.parameters)
        caps.append(item)
    return _attribute(OID_SMIME_CAPABILITIES, [_asn1.cms.SMIMECapabilites(caps)])


@functools.lru_cache(maxsize=ATTRIBUTE_CACHE_SIZE)
def _key_preference_attribute(issuer: bytes, serial_number: int) -> bytes:
    ias = _asn1.issuer_and_serial(issuer, serial_number)
    pref = _asn1.cms.SMIMEEncryptionKeyPreference({"issuer_and_serial_number": ias})
    return _attribute(OID_ENCRYPTION_KEY_PREFERENCE, [pref])


def clear_attribute_caches() -> None:
    """Forget every cached attribute encoding (for tests and benchmarks that want a cold start)."""
    for cached in (
        _content_type_attribute,
        _algorithm_protection_attribute,
        _signing_certificate_v2_attribute,
        _signing_time_attribute,
        _capabilities_attribute,
        _key_preference_attribute,
    ):
        cached.cache_clear()


def _signing_certificate_v2(cert: x509.Certificate) -> _asn1.Asn1:
    der = cert.public_bytes(serialization.Encoding.DER)
    issuer = _asn1.x509.Name.load(cert.issuer.public_bytes())
    ess = {
        # hashAlgorithm is omitted: SHA-256 is its DEFAULT (RFC 5035 §5.4).
        "cert_hash": hashlib.sha256(der).digest(),
        "issuer_serial": {
            "issuer": [_asn1.x509.GeneralName({"directory_name": issuer})],
            "serial_number": cert.serial_number,
        },
    }
    return _asn1.tsp.SigningCertificateV2({"certs": [ess]})


# ------------------------------------------------------------------------------------------- reading


def read_signed_attributes(signed_attrs: _asn1.Asn1, *, countersignature: bool = False) -> SignedAttributes:
    """Read a SignerInfo's signedAttrs; structural problems are collected, not raised.

    Raises CmsFormatError only when the attribute SET itself cannot be parsed.
    """
    to_sign = _asn1.signed_attrs_to_sign(_asn1.contents(signed_attrs))
    items = _asn1.guarded("cannot parse the signed attributes", lambda: list(signed_attrs))
    problems: list[str] = []
    types: list[str] = []
    values: dict[str, _asn1.Asn1] = {}
    for item in items:
        try:
            dotted = _asn1.oid(item["type"])
        except _asn1.PARSE_ERRORS:
            problems.append("a signed attribute has a malformed type")
            continue
        name = attribute_name(dotted)
        if dotted in values:
            problems.append(f"the signed attribute {name} appears more than once")
            continue
        types.append(dotted)
        values[dotted] = item

    fields: dict[str, object] = {}
    for dotted, item in values.items():
        name = attribute_name(dotted)
        try:
            vals = list(item["values"])
            if not vals:
                problems.append(f"the signed attribute {name} has no value")
                continue
            if dotted in _SINGLE_VALUED and len(vals) != 1:
                problems.append(f"the signed attribute {name} must have exactly one value, not {len(vals)}")
                continue
            reader = _READERS.get(dotted)
            if reader is not None:
                fields.update(reader(vals[0]))
        except _ATTRIBUTE_ERRORS as exc:
            problems.append(f"the signed attribute {name} is malformed ({exc})")

    if OID_MESSAGE_DIGEST not in values:
        problems.append("the signed attributes lack messageDigest")
    if countersignature:
        if OID_CONTENT_TYPE in values:
            problems.append("a countersignature must not carry a contentType attribute")
    elif OID_CONTENT_TYPE not in values:
        problems.append("the signed attributes lack contentType")
    return SignedAttributes(to_sign=to_sign, types=tuple(types), problems=tuple(problems), **fields)  # type: ignore[arg-type]


def _read_content_type(value: _asn1.Asn1) -> dict[str, object]:
    return {"content_type": _asn1.oid(value)}


def _read_message_digest(value: _asn1.Asn1) -> dict[str, object]:
    return {"message_digest": _asn1.octets(value)}


def _read_signing_time(value: _asn1.Asn1) -> dict[str, object]:
    return {"signing_time": _asn1.time_value(value)}


def _read_capabilities(value: _asn1.Asn1) -> dict[str, object]:
    caps = []
    for cap in value:
        params = cap["parameters"]
        caps.append(
            SmimeCapability(
                _asn1.oid(cap["capability_id"]), _asn1.dump(params) if _asn1.is_present(params) else None
            )
        )
    return {"smime_capabilities": tuple(caps)}


def _read_key_preference(value: _asn1.Asn1) -> dict[str, object]:
    if str(value.name) != "issuer_and_serial_number":
        return {}
    chosen = value.chosen
    sid = SignerIdentifier(
        issuer=_asn1.dump(chosen["issuer"]), serial_number=_asn1.integer(chosen["serial_number"])
    )
    return {"encryption_key_preference": sid}


def _ess_cert_id(ess: _asn1.Asn1, default_oid: str | None) -> EssCertId:
    digest_oid = default_oid if default_oid else _asn1.oid(ess["hash_algorithm"]["algorithm"])
    names: list[bytes] = []
    serial = None
    issuer_serial = ess["issuer_serial"]
    if _asn1.is_present(issuer_serial):
        serial = _asn1.integer(issuer_serial["serial_number"])
        for general_name in issuer_serial["issuer"]:
            if str(general_name.name) == "directory_name":
                names.append(_asn1.dump(general_name.chosen.untag()))
    return EssCertId(digest_oid, _asn1.octets(ess["cert_hash"]), tuple(names), serial)


def _read_signing_certificate_v2(value: _asn1.Asn1) -> dict[str, object]:
    certs = list(value["certs"])
    if not certs:
        raise CmsFormatError("no ESSCertIDv2")
    return {"signing_certificate_v2": _ess_cert_id(certs[0], None)}


def _read_signing_certificate(value: _asn1.Asn1) -> dict[str, object]:
    certs = list(value["certs"])
    if not certs:
        raise CmsFormatError("no ESSCertID")
    return {"signing_certificate": _ess_cert_id(certs[0], "1.3.14.3.2.26")}


def _read_algorithm_protection(value: _asn1.Asn1) -> dict[str, object]:
    sig = value["signature_algorithm"]
    mac = value["mac_algorithm"]
    prot = AlgorithmProtection(
        digest_algorithm=_asn1.dump(value["digest_algorithm"]),
        signature_algorithm=_retag_sequence(_asn1.dump(sig)) if _asn1.is_present(sig) else None,
        has_mac_algorithm=_asn1.is_present(mac),
    )
    return {"algorithm_protection": prot}


def _retag_sequence(der: bytes) -> bytes:
    """An IMPLICIT [n] AlgorithmIdentifier re-tagged as the SEQUENCE it stands for."""
    return b"\x30" + der[1:]


_READERS = {
    OID_CONTENT_TYPE: _read_content_type,
    OID_MESSAGE_DIGEST: _read_message_digest,
    OID_SIGNING_TIME: _read_signing_time,
    OID_SMIME_CAPABILITIES: _read_capabilities,
    OID_ENCRYPTION_KEY_PREFERENCE: _read_key_preference,
    OID_SIGNING_CERTIFICATE_V2: _read_signing_certificate_v2,
    OID_SIGNING_CERTIFICATE: _read_signing_certificate,
    OID_ALGORITHM_PROTECTION: _read_algorithm_protection,
}

# RFC 5652 §11, RFC 8551, RFC 5035, RFC 6211: these attributes have exactly one value.
_SINGLE_VALUED = frozenset(
    {
        OID_CONTENT_TYPE,
        OID_MESSAGE_DIGEST,
        OID_SIGNING_TIME,
        OID_SMIME_CAPABILITIES,
        OID_ENCRYPTION_KEY_PREFERENCE,
        OID_SIGNING_CERTIFICATE,
        OID_SIGNING_CERTIFICATE_V2,
        OID_ALGORITHM_PROTECTION,
    }
)
