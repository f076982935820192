"""The checks behind one SignerInfo's verdict: digest, signed attributes, algorithms, signature maths."""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, rsa

from smimekit.cms import _asn1
from smimekit.cms._parse import ParsedSignerInfo
from smimekit.cms.algorithms import (
    OID_RSASSA_PSS,
    WEAK_RSA_BITS,
    DigestAlgorithm,
    PssParameters,
    SignatureAlgorithm,
    SignatureScheme,
    signature_algorithm_from,
)
from smimekit.cms.attributes import (
    OID_CONTENT_TYPE,
    OID_COUNTERSIGNATURE,
    OID_MESSAGE_DIGEST,
    OID_SIGNING_TIME,
    EssCertId,
    SignedAttributes,
    attribute_name,
    read_signed_attributes,
)
from smimekit.cms.certs import CertificateEntry, find, public_key
from smimekit.errors import CmsFormatError, UnsupportedAlgorithmError

_CONTENT_ALTERED = (
    "the content does not match the messageDigest attribute: it was altered or is not the signed content"
)

# RFC 5652 §11.1-11.3: these attributes MUST be signed attributes.
_SIGNED_ONLY = frozenset({OID_CONTENT_TYPE, OID_MESSAGE_DIGEST, OID_SIGNING_TIME})


@dataclass(frozen=True)
class CheckResult:
    """What the checks of one SignerInfo found."""

    entry: CertificateEntry | None
    algorithm: SignatureAlgorithm | None
    attributes: SignedAttributes | None
    intact: bool
    valid: bool
    reasons: tuple[str, ...]
    weak: tuple[str, ...]
    legacy: tuple[str, ...]
    notes: tuple[str, ...]


def check_signer(
    signer: ParsedSignerInfo,
    *,
    candidates: Sequence[CertificateEntry],
    content_digest: bytes | None,
    content: bytes | None,
    content_type: str | None,
) -> CheckResult:
    """Run every check on ``signer``; never raises for a bad signature, only reports.

    ``content_type`` is the eContentType to compare with the contentType attribute, None for a
    countersignature (which must not carry one). ``content`` is needed only for pure Ed25519 without
    signed attributes.
    """
    reasons: list[str] = []
    weak: list[str] = []
    legacy: list[str] = []
    notes: list[str] = []
    entry = find(signer.sid, candidates)
    if entry is None:
        reasons.append(
            f"the signer's certificate ({signer.sid.describe()}) is in neither the message nor the extra certificates"
        )

    algorithm: SignatureAlgorithm | None = None
    digest = signer.digest
    if digest is None:
        reasons.append(signer.digest_error or "the digest algorithm is not allowed")
    else:
        if digest.weak:
            weak.append(f"{digest.label} digest")
        try:
            pss = (
                PssParameters.from_der(signer.signature_params or b"")
                if signer.signature_oid == OID_RSASSA_PSS
                else None
            )
            algorithm = signature_algorithm_from(signer.signature_oid, digest, pss)
        except (UnsupportedAlgorithmError, CmsFormatError) as exc:
            reasons.append(str(exc))
    if algorithm is not None:
        if algorithm.mgf_digest is not None and algorithm.mgf_digest.weak and not algorithm.digest.weak:
            weak.append(f"{algorithm.mgf_digest.label} in MGF1")
        if algorithm.scheme.legacy:
            legacy.append(f"{algorithm.scheme.value} signature")

    attributes: SignedAttributes | None = None
    attrs_ok = True
    intact = False
    if signer.signed_attrs is not None:
        try:
            attributes = read_signed_attributes(signer.signed_attrs, countersignature=content_type is None)
        except CmsFormatError as exc:
            reasons.append(f"the signed attributes are malformed: {exc.reason}")
            attrs_ok = False
        if attributes is not None:
            reasons.extend(attributes.problems)
            attrs_ok = not attributes.problems
            intact = _check_intact(attributes, content_digest, reasons)
            attrs_ok = (
                _check_attribute_consistency(signer, attributes, entry, content_type, reasons) and attrs_ok
            )

    for dotted in signer.unsigned_types:
        if dotted in _SIGNED_ONLY:
            reasons.append(
                f"the {attribute_name(dotted)} attribute must be signed but is among the unsigned attributes"
            )
            attrs_ok = False
    if attributes is not None and OID_COUNTERSIGNATURE in attributes.types:
        reasons.append("the countersignature attribute must be unsigned but is among the signed attributes")
        attrs_ok = False

    signature_ok = False
    if entry is not None and algorithm is not None:
        signature_ok = _check_signature(
            signer, algorithm, entry, candidates, attributes, content_digest, content, reasons, weak, legacy
        )
    if signer.signed_attrs is None:
        # Without signed attributes the signature is over the content itself: it is intact iff it is valid.
        intact = signature_ok
    valid = signature_ok and attrs_ok
    return CheckResult(
        entry, algorithm, attributes, intact, valid, tuple(reasons), tuple(weak), tuple(legacy), tuple(notes)
    )


def _check_intact(attributes: SignedAttributes, content_digest: bytes | None, reasons: list[str]) -> bool:
    if attributes.message_digest is None or content_digest is None:
        return False
    if hmac.compare_digest(attributes.message_digest, content_digest):
        return True
    reasons.append(_CONTENT_ALTERED)
    return False


def _check_attribute_consistency(
    signer: ParsedSignerInfo,
    attributes: SignedAttributes,
    entry: CertificateEntry | None,
    content_type: str | None,
    reasons: list[str],
) -> bool:
    ok = True
    if (
        content_type is not None
        and attributes.content_type is not None
        and attributes.content_type != content_type
    ):
        reasons.append(
            f"the contentType attribute ({attributes.content_type}) differs from the eContentType ({content_type})"
        )
        ok = False
    prot = attributes.algorithm_protection
    if prot is not None:
        if prot.has_mac_algorithm:
            reasons.append("the CMSAlgorithmProtection attribute names a MAC algorithm in a SignedData")
            ok = False
        if not _same_algorithm(prot.digest_algorithm, signer.digest_algorithm_der):
            reasons.append(
                "the CMSAlgorithmProtection attribute names another digest algorithm than the signer uses"
            )
            ok = False
        if prot.signature_algorithm is None or not _same_algorithm(
            prot.signature_algorithm, signer.signature_algorithm_der
        ):
            reasons.append(
                "the CMSAlgorithmProtection attribute names another signature algorithm than the signer uses"
            )
            ok = False
    if entry is not None:
        for label, ess in (
            ("signingCertificateV2", attributes.signing_certificate_v2),
            ("signingCertificate", attributes.signing_certificate),
        ):
            if ess is not None and not _ess_matches(ess, entry):
                reasons.append(f"the {label} attribute names another certificate than the signer's")
                ok = False
    return ok


def _same_algorithm(a_der: bytes, b_der: bytes) -> bool:
    """AlgorithmIdentifiers equal, treating absent and NULL parameters alike (RFC 4055 §2.1)."""
    try:
        a = _asn1.load(_asn1.algos.AlgorithmIdentifier, a_der, "an AlgorithmIdentifier")
        b = _asn1.load(_asn1.algos.AlgorithmIdentifier, b_der, "an AlgorithmIdentifier")
        return _asn1.oid(a["algorithm"]) == _asn1.oid(b["algorithm"]) and _asn1.algorithm_params(
            a
        ) == _asn1.algorithm_params(b)
    except CmsFormatError:
        return a_der == b_der


def _ess_matches(ess: EssCertId, entry: CertificateEntry) -> bool:
    try:
        digest = DigestAlgorithm.from_oid(ess.digest_oid)
    except UnsupportedAlgorithmError:
        return False
    ctx = hashes.Hash(digest.hash())
    ctx.update(entry.der)
    if not hmac.compare_digest(ctx.finalize(), ess.cert_hash):
        return False
    if ess.serial_number is None:
        return True
    try:
        cert = _asn1.x509.Certificate.load(entry.der)
        serial = _asn1.integer(cert["tbs_certificate"]["serial_number"])
        issuer = _asn1.dump(cert["tbs_certificate"]["issuer"])
    except _asn1.PARSE_ERRORS:
        return False
    return serial == ess.serial_number and any(_asn1.names_equal(n, issuer) for n in ess.issuer_names)


def _check_signature(
    signer: ParsedSignerInfo,
    algorithm: SignatureAlgorithm,
    entry: CertificateEntry,
    candidates: Sequence[CertificateEntry],
    attributes: SignedAttributes | None,
    content_digest: bytes | None,
    content: bytes | None,
    reasons: list[str],
    weak: list[str],
    legacy: list[str],
) -> bool:
    try:
        key, inherited = public_key(entry, candidates)
    except CmsFormatError as exc:
        reasons.append(exc.reason)
        return False
    except UnsupportedAlgorithmError as exc:
        reasons.append(str(exc))
        return False
    if inherited:
        legacy.append("DSA parameters inherited from the issuer")
    if isinstance(key, rsa.RSAPublicKey | dsa.DSAPublicKey) and key.key_size < WEAK_RSA_BITS:
        weak.append(f"{'RSA' if isinstance(key, rsa.RSAPublicKey) else 'DSA'} key of {key.key_size} bits")
    if attributes is not None:
        data, prehashed = attributes.to_sign, False
    elif algorithm.scheme is SignatureScheme.ED25519:
        if content is None:
            reasons.append(
                "a pure Ed25519 signature without signed attributes cannot be checked on streamed content"
            )
            return False
        data, prehashed = content, False
    else:
        if content_digest is None:
            return False
        data, prehashed = content_digest, True
    try:
        algorithm.verify(key, signer.signature, data, prehashed=prehashed)
    except InvalidSignature:
        what = "the signed attributes" if attributes is not None else "the content"
        reasons.append(f"the signature does not verify over {what} with the signer's key")
        return False
    except (UnsupportedAlgorithmError, ValueError, TypeError) as exc:
        reasons.append(f"the signature cannot be checked: {exc}")
        return False
    return True


__all__ = ["CheckResult", "attribute_name", "check_signer"]
