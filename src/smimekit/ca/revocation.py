"""Revocation data a CA publishes: CRLs (RFC 5280 §5) and OCSP responses (RFC 6960). Pure.

The caller says what is revoked (:class:`Revoked` entries, or a lookup by serial number for OCSP) and what
time it is; these functions only build and sign.
"""

from __future__ import annotations

import base64
import datetime as dt
import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import unquote

from asn1crypto import keys as asn1_keys
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from smimekit.ca.issue import CaSigner, signature_hash
from smimekit.errors import CaError
from smimekit.store.api import RevocationReason

__all__ = [
    "CertStatus",
    "DelegatedSigner",
    "OcspResponder",
    "Revoked",
    "build_crl",
    "build_ocsp_response",
    "decode_ocsp_get_path",
    "delegated_responders",
]

_REASONS = {
    RevocationReason.KEY_COMPROMISE: x509.ReasonFlags.key_compromise,
    RevocationReason.CA_COMPROMISE: x509.ReasonFlags.ca_compromise,
    RevocationReason.AFFILIATION_CHANGED: x509.ReasonFlags.affiliation_changed,
    RevocationReason.SUPERSEDED: x509.ReasonFlags.superseded,
    RevocationReason.CESSATION_OF_OPERATION: x509.ReasonFlags.cessation_of_operation,
    RevocationReason.CERTIFICATE_HOLD: x509.ReasonFlags.certificate_hold,
    RevocationReason.PRIVILEGE_WITHDRAWN: x509.ReasonFlags.privilege_withdrawn,
}
_MAX_OCSP_REQUEST = 16 * 1024


def reason_flag(reason: RevocationReason) -> x509.ReasonFlags | None:
    """The CRL/OCSP reason code for ``reason``; None for unspecified (RFC 5280 §5.3.1: then left out)."""
    return _REASONS.get(reason)


@dataclass(frozen=True)
class Revoked:
    """One revoked certificate: its serial number, when and why."""

    serial: int
    revoked_at: dt.datetime
    reason: RevocationReason = RevocationReason.UNSPECIFIED


def _aware(name: str, value: object) -> dt.datetime:
    if not isinstance(value, dt.datetime) or value.utcoffset() is None:
        raise CaError(f"{name} must be a timezone-aware datetime")
    return value.astimezone(dt.UTC).replace(microsecond=0)


def build_crl(
    *,
    issuer: CaSigner,
    revoked: Iterable[Revoked],
    number: int,
    this_update: dt.datetime,
    next_update: dt.datetime,
) -> x509.CertificateRevocationList:
    """A complete CRL of ``issuer`` listing ``revoked``, with CRL number ``number`` (RFC 5280 §5.2.3), the
    AKI, and each entry's reason code (none for unspecified). Raises CaError for a nextUpdate that is not
    after thisUpdate or a CRL number that is not positive."""
    start, end = _aware("this_update", this_update), _aware("next_update", next_update)
    if end <= start:
        raise CaError("the CRL's nextUpdate must be after its thisUpdate")
    if not isinstance(number, int) or number < 1 or number.bit_length() > 159:
        raise CaError(f"the CRL number must be a positive integer of at most 20 octets, not {number!r}")
    aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key())
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.certificate.subject)
        .last_update(start)
        .next_update(end)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(aki, critical=False)
    )
    seen: set[int] = set()
    for entry in revoked:
        if entry.serial in seen:
            continue
        seen.add(entry.serial)
        item = (
            x509.RevokedCertificateBuilder()
            .serial_number(entry.serial)
            .revocation_date(_aware("revoked_at", entry.revoked_at))
        )
        flag = reason_flag(entry.reason)
        if flag is not None:
            item = item.add_extension(x509.CRLReason(flag), critical=False)
        builder = builder.add_revoked_certificate(item.build())
    return builder.sign(issuer.key, signature_hash(issuer.key))


class CertStatus(enum.Enum):
    """What an OCSP responder says about one serial number."""

    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class OcspResponder:
    """Who answers for ``ca``: the CA itself (``signer`` None) or a delegated responder (RFC 6960
    §4.2.2.2), whose certificate and key are given.

    Raises CaError when ``key`` does not belong to the certificate that signs, or when ``signer`` has no
    id-kp-OCSPSigning or was not issued by ``ca``. Whether ``signer`` is valid is a question of time:
    :func:`build_ocsp_response` asks it (:meth:`answers_at`), :func:`delegated_responders` checks it.
    """

    ca: x509.Certificate
    key: CertificateIssuerPrivateKeyTypes
    signer: x509.Certificate | None = None

    def __post_init__(self) -> None:
        if self.signer is None:
            if self.key.public_key() != self.ca.public_key():
                raise CaError("the OCSP signing key does not belong to the CA certificate")
            return
        name = self.signer.subject.rfc4514_string()
        _check_delegated(self.signer, self.key, name=name)
        if not _issued_by(self.signer, self.ca):
            raise CaError(
                f"the responder certificate {name} was not issued by {self.ca.subject.rfc4514_string()}"
            )

    def answers_at(self, now: dt.datetime) -> bool:
        """Whether this responder can sign answers at ``now``: always for the CA itself; for a delegated
        responder, only while its certificate is valid (an answer signed outside it verifies nowhere)."""
        if self.signer is None:
            return True
        return self.signer.not_valid_before_utc <= _aware("now", now) < self.signer.not_valid_after_utc


@dataclass(frozen=True)
class DelegatedSigner:
    """A delegated OCSP responder's certificate and key as given, before :func:`delegated_responders`
    checks them; ``name`` is how errors call it (a file name, say; empty: the certificate's subject)."""

    certificate: x509.Certificate
    key: CertificateIssuerPrivateKeyTypes
    name: str = ""

    @property
    def label(self) -> str:
        """``name``, or the certificate's subject when there is none."""
        return self.name or self.certificate.subject.rfc4514_string()


def _issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _check_delegated(
    certificate: x509.Certificate, key: CertificateIssuerPrivateKeyTypes, *, name: str
) -> None:
    """Raise CaError unless ``certificate`` has id-kp-OCSPSigning and ``key`` is its key."""
    try:
        eku = list(certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        eku = []
    if ExtendedKeyUsageOID.OCSP_SIGNING not in eku:
        raise CaError(f"{name} is not an OCSP responder certificate (no id-kp-OCSPSigning)")
    if key.public_key() != certificate.public_key():
        raise CaError(f"the OCSP signing key does not belong to the responder certificate {name}")


def delegated_responders(
    cas: Mapping[str, x509.Certificate], delegated: Iterable[DelegatedSigner], *, now: dt.datetime
) -> dict[str, OcspResponder]:
    """The delegated responders (RFC 6960 §4.2.2.2) of the CAs ``cas`` (keyed by the names errors use):
    for each CA that issued one of ``delegated``, the :class:`OcspResponder` that signs with it. CAs
    without one are left out (they sign their answers themselves).

    Each of ``delegated`` must have id-kp-OCSPSigning, be valid at ``now``, come with its own key and be
    issued by one of ``cas``, at most one per CA. Raises CaError naming the first that is not.
    """
    current = _aware("now", now)
    found: dict[str, OcspResponder] = {}
    for item in delegated:
        cert, name = item.certificate, item.label
        _check_delegated(cert, item.key, name=name)
        if not cert.not_valid_before_utc <= current < cert.not_valid_after_utc:
            raise CaError(
                f"{name} is not valid now (only from {cert.not_valid_before_utc:%Y-%m-%d %H:%M} "
                f"to {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC)"
            )
        issuers = [ca_name for ca_name, ca_cert in cas.items() if _issued_by(cert, ca_cert)]
        if not issuers:
            names = ", ".join(repr(n) for n in cas)
            why = f"none of {names} issued it" if names else "no CA is served"
            raise CaError(f"the responder certificate {name} would not be used: {why}")
        if issuers[0] in found:
            raise CaError(
                f"the responder certificate {name} would not be used: one given before is for the same CA "
                f"{issuers[0]!r}"
            )
        found[issuers[0]] = OcspResponder(cas[issuers[0]], item.key, cert)
    return found


def _matches(request: ocsp.OCSPRequest, ca: x509.Certificate) -> bool:
    algorithm = request.hash_algorithm
    if not isinstance(algorithm, hashes.SHA1 | hashes.SHA256 | hashes.SHA384 | hashes.SHA512):
        return False
    name_hash = hashes.Hash(algorithm)
    name_hash.update(ca.subject.public_bytes())
    key_bits = ca.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    key_hash = hashes.Hash(algorithm)
    key_hash.update(_subject_public_key(key_bits))
    return name_hash.finalize() == request.issuer_name_hash and key_hash.finalize() == request.issuer_key_hash


def _subject_public_key(spki: bytes) -> bytes:
    """The subjectPublicKey BIT STRING's bytes (without the unused-bits octet) of a DER SubjectPublicKeyInfo."""
    info = asn1_keys.PublicKeyInfo.load(spki)
    return bytes(info["public_key"].contents[1:])


def _unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(serialization.Encoding.DER)


def build_ocsp_response(
    request_der: bytes,
    *,
    responders: Iterable[OcspResponder],
    lookup: Callable[[x509.Certificate, int], tuple[CertStatus, Revoked | None]],
    now: dt.datetime,
    validity: dt.timedelta = dt.timedelta(hours=1),
) -> bytes:
    """The DER OCSPResponse to the DER OCSPRequest ``request_der`` (RFC 6960).

    The responder whose CA issued the certificate asked about answers with ``lookup(ca, serial)``: good,
    revoked (with time and reason) or unknown; thisUpdate is ``now``, nextUpdate ``now + validity``; a
    nonce in the request is echoed. A malformed request gets malformedRequest; a certificate of a CA none
    of ``responders`` speaks for gets unauthorized, and so does one whose delegated responder's
    certificate is not valid at ``now`` (:meth:`OcspResponder.answers_at`): no answer a client cannot
    verify. Never raises for bad input: every answer is a response.
    """
    current = _aware("now", now)
    if not isinstance(request_der, bytes) or len(request_der) > _MAX_OCSP_REQUEST:
        return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
    try:
        request = ocsp.load_der_ocsp_request(request_der)
        serial = request.serial_number
        extensions = list(request.extensions)
        request.hash_algorithm  # noqa: B018 - an unknown CertID hash raises here, not later
    except (ValueError, NotImplementedError, UnsupportedAlgorithm):  # NotImplementedError: several requests
        return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
    responder = next((r for r in responders if r.answers_at(current) and _matches(request, r.ca)), None)
    if responder is None:
        return _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
    status, revoked = lookup(responder.ca, serial)
    cert_status = {
        CertStatus.GOOD: ocsp.OCSPCertStatus.GOOD,
        CertStatus.REVOKED: ocsp.OCSPCertStatus.REVOKED,
        CertStatus.UNKNOWN: ocsp.OCSPCertStatus.UNKNOWN,
    }[status]
    revocation_time = revocation_reason = None
    if status is CertStatus.REVOKED:
        if revoked is None:
            raise CaError("a revoked status needs its Revoked entry")
        revocation_time = _aware("revoked_at", revoked.revoked_at)
        revocation_reason = reason_flag(revoked.reason)
    builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
        request.issuer_name_hash,
        request.issuer_key_hash,
        serial,
        request.hash_algorithm,
        cert_status,
        current,
        current + validity,
        revocation_time,
        revocation_reason,
    )
    signer = responder.signer or responder.ca
    builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, signer)
    if responder.signer is not None:
        builder = builder.certificates([responder.signer])
    for extension in extensions:
        if isinstance(extension.value, x509.OCSPNonce):
            builder = builder.add_extension(extension.value, critical=False)
    algorithm = signature_hash(responder.key)
    response = builder.sign(responder.key, algorithm)
    return response.public_bytes(serialization.Encoding.DER)


def decode_ocsp_get_path(path: str) -> bytes | None:
    """The DER request of an OCSP GET URL path (RFC 6960 A.1: ``/{url-encoding of base-64 of DER}``), or
    None when it does not decode."""
    encoded = unquote(path.split("?", 1)[0].lstrip("/"))
    if not encoded or len(encoded) > _MAX_OCSP_REQUEST * 2:
        return None
    try:
        return base64.b64decode(encoded, validate=True)
    except ValueError:
        return None
