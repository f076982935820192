"""Revocation data handed to path validation, and the pure checks of an OCSP response. Nothing is fetched.

``validate_path`` takes CRLs and OCSP responses as data; pyhanko-certvalidator checks them (CRL signature,
scope and freshness with delta CRLs; the OCSP response's signature, the responder's authorisation — the
issuing CA itself, or a responder certificate issued by that CA with id-kp-OCSPSigning, trusted for that
CA only (RFC 6960 §4.2.2.2) — the certID and thisUpdate/nextUpdate). What it cannot know is checked here:
that a response answers the request that was sent (status, certID, nonce) and is not from the future.

Fetching belongs to ``smimekit.net``: it implements :class:`RevocationFetcher` and hands back
:class:`RevocationData`; the caller validates once to find the path, fetches for it, validates again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import OCSPExtensionOID

__all__ = [
    "OCSP_TIME_TOLERANCE",
    "RevocationData",
    "RevocationFetcher",
    "crl_problem",
    "ocsp_response_problem",
    "reason_name",
    "single_response_matches",
    "verified_ocsp_problem",
]

#: Clock skew allowed between a CRL issuer or OCSP responder and us, on thisUpdate and nextUpdate.
OCSP_TIME_TOLERANCE = dt.timedelta(minutes=5)

_REASON_NAMES = {
    "unspecified": "unspecified",
    "key_compromise": "keyCompromise",
    "ca_compromise": "cACompromise",
    "affiliation_changed": "affiliationChanged",
    "superseded": "superseded",
    "cessation_of_operation": "cessationOfOperation",
    "certificate_hold": "certificateHold",
    "remove_from_crl": "removeFromCRL",
    "privilege_withdrawn": "privilegeWithdrawn",
    "aa_compromise": "aACompromise",
}


def reason_name(value: str | None) -> str:
    """The RFC 5280 name (``keyCompromise``) of a reason as asn1crypto or cryptography names it."""
    if not value:
        return "unspecified"
    return _REASON_NAMES.get(value, value)


@dataclass(frozen=True)
class RevocationData:
    """CRLs and OCSP responses for a path, and where they came from.

    ``origins`` maps the DER of a CRL or of an OCSP response to its URL, so that results can say
    ``"CRL http://..."``; ``problems`` are sentences about what could not be fetched (shown when a status
    stays unknown).
    """

    crls: tuple[x509.CertificateRevocationList, ...] = ()
    ocsp_responses: tuple[bytes, ...] = ()
    origins: Mapping[bytes, str] = field(default_factory=dict)
    problems: tuple[str, ...] = ()


@runtime_checkable
class RevocationFetcher(Protocol):
    """Gets revocation data for a certificate path (leaf first, anchor last) at ``now``.

    Must not raise for what it cannot fetch: such failures go into ``RevocationData.problems``.
    """

    def fetch(self, path: Sequence[x509.Certificate], *, now: dt.datetime) -> RevocationData: ...


def ocsp_response_problem(
    der: bytes,
    *,
    certificate: x509.Certificate,
    issuer: x509.Certificate,
    at: dt.datetime,
    nonce: bytes | None = None,
    tolerance: dt.timedelta = OCSP_TIME_TOLERANCE,
) -> str | None:
    """Why the OCSP response ``der`` does not answer a request for ``certificate`` (issued by ``issuer``)
    made at ``at`` with ``nonce``; None when it does.

    Checks the response status, that exactly one SingleResponse has the certificate's certID (serial,
    issuer name hash and issuer key hash), that thisUpdate is not after ``at`` and nextUpdate not before
    it (beyond ``tolerance``), and, when a nonce was sent, that the response echoes it. The signature and
    the responder's authority are checked by ``validate_path``. Never raises for bad data.
    """
    try:
        response = ocsp.load_der_ocsp_response(der)
    except ValueError as exc:
        return f"the OCSP response cannot be read ({exc})"
    if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        return f"the OCSP responder answered {response.response_status.name.lower().replace('_', ' ')}"
    try:
        singles = list(response.responses)
    except ValueError as exc:
        return f"the OCSP response cannot be read ({exc})"
    matching = [s for s in singles if single_response_matches(s, certificate, issuer)]
    if not matching:
        return "the OCSP response is not about this certificate"
    single = matching[0]
    this_update = single.this_update_utc
    next_update = single.next_update_utc
    if this_update > at + tolerance:
        return f"the OCSP response is dated in the future ({this_update:%Y-%m-%d %H:%M:%S} UTC)"
    if next_update is not None and next_update < at - tolerance:
        return f"the OCSP response is out of date (its nextUpdate is {next_update:%Y-%m-%d %H:%M:%S} UTC)"
    if nonce is not None:
        try:
            echoed = response.extensions.get_extension_for_oid(OCSPExtensionOID.NONCE).value
        except x509.ExtensionNotFound:
            return "the OCSP response does not echo the nonce that was sent"
        except ValueError as exc:
            return f"the OCSP response's extensions cannot be read ({exc})"
        if not isinstance(echoed, x509.OCSPNonce) or echoed.nonce != nonce:
            return "the OCSP response's nonce differs from the one sent (a replayed response?)"
    return None


def verified_ocsp_problem(
    der: bytes,
    *,
    path: Sequence[x509.Certificate],
    index: int,
    at: dt.datetime,
    nonce: bytes | None = None,
) -> str | None:
    """Why the OCSP response ``der`` cannot be trusted for ``path[index]`` at ``at``; None when it can.

    ``path`` runs from the leaf to the anchor. On top of :func:`ocsp_response_problem` (certID, times,
    nonce) this runs path validation from ``path[index]`` to ``path[-1]`` with that response alone, so
    the library checks its signature and its responder's authorisation (the issuing CA, or a responder
    certificate issued by it for OCSP signing, RFC 6960 §4.2.2.2): the response must give the
    certificate a status (good or revoked). For caches that must hold nothing unverified. Never raises
    for bad data.
    """
    from smimekit.pki._engine import run_pkix
    from smimekit.pki.policies import PolicyRequirements
    from smimekit.pki.result import RevocationMode, RevocationStatus

    certs = list(path)
    if not 0 <= index < len(certs) - 1:
        return "the certificate has no issuer in the path"
    problem = ocsp_response_problem(
        der, certificate=certs[index], issuer=certs[index + 1], at=at, nonce=nonce
    )
    if problem is not None:
        return problem
    try:
        outcome = run_pkix(
            certs[index],
            anchors=[certs[-1]],
            intermediates=certs[index + 1 : -1],
            at=at,
            crls=(),
            policies=PolicyRequirements(),
            ocsp_responses=(der,),
            mode=RevocationMode.SOFT,
        )
    except Exception as exc:  # the library raises many types; none of them means "verified"
        return f"the OCSP response cannot be verified ({exc})"
    status = next((r for r in outcome.revocation if r.certificate == certs[index]), None)
    if status is None:
        return outcome.reason or "the OCSP response cannot be verified"
    if status.status in (RevocationStatus.GOOD, RevocationStatus.REVOKED):
        return None
    return status.detail or "the OCSP response cannot be verified"


def crl_problem(
    crl: x509.CertificateRevocationList,
    *,
    issuer: x509.Certificate,
    at: dt.datetime,
    tolerance: dt.timedelta = OCSP_TIME_TOLERANCE,
) -> str | None:
    """Why ``crl`` cannot be taken as a CRL issued by the CA ``issuer`` at ``at``; None when it can.

    Checks that the CRL names ``issuer`` as its issuer, that its authority key identifier (when present)
    is the CA's, that ``issuer``'s key signed it, and that its thisUpdate is not after ``at`` (beyond
    ``tolerance``). Indirect CRLs (signed by another key) are refused. Scope and freshness are left to
    ``validate_path``. Never raises for bad data.
    """
    if crl.issuer != issuer.subject:
        return f"the CRL is issued by {crl.issuer.rfc4514_string()}, not by {issuer.subject.rfc4514_string()}"
    try:
        aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    except x509.ExtensionNotFound:
        aki = None
    except ValueError as exc:
        return f"the CRL's extensions cannot be read ({exc})"
    if aki is not None:
        try:
            ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
        except (x509.ExtensionNotFound, ValueError):
            ski = None
        if ski is not None and ski != aki:
            return "the CRL's authority key identifier is not the issuing CA's key"
    try:
        signed = crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        return f"the CRL's signature cannot be checked ({exc})"
    if not signed:
        return "the CRL's signature does not verify with the issuing CA's key"
    if crl.last_update_utc > at + tolerance:
        return f"the CRL is dated in the future ({crl.last_update_utc:%Y-%m-%d %H:%M:%S} UTC)"
    return None


def single_response_matches(
    single: ocsp.OCSPSingleResponse, certificate: x509.Certificate, issuer: x509.Certificate
) -> bool:
    """Whether ``single`` carries the full certID of ``certificate`` issued by ``issuer``: serial number,
    issuer name hash and issuer key hash (SHA-1 or SHA-2)."""
    if single.serial_number != certificate.serial_number:
        return False
    algorithm = single.hash_algorithm
    if not isinstance(algorithm, hashes.SHA1 | hashes.SHA256 | hashes.SHA384 | hashes.SHA512):
        return False
    name_hash = _digest(algorithm, certificate.issuer.public_bytes())
    key_bits = _subject_public_key_bits(issuer)
    return single.issuer_name_hash == name_hash and single.issuer_key_hash == _digest(algorithm, key_bits)


def _digest(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    h = hashes.Hash(algorithm)
    h.update(data)
    return h.finalize()


def _subject_public_key_bits(cert: x509.Certificate) -> bytes:
    """The BIT STRING contents of subjectPublicKey (what an OCSP issuerKeyHash digests)."""
    from asn1crypto import keys

    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    info = keys.PublicKeyInfo.load(spki)
    return bytes(info["public_key"].contents[1:])  # drop the unused-bits octet
