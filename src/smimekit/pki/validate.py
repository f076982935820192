"""Path validation with the S/MIME profile: is this certificate trusted for this use, at this time?

``validate_path`` = RFC 5280 path validation to one of the given trust anchors at the given time
(pyhanko-certvalidator, see :mod:`smimekit.pki._engine`), the trust anchor's own validity period, the
CRLs and OCSP responses handed in (per :class:`RevocationMode`), rfc822Name constraints on SmtpUTF8Mailbox names (RFC 8398 §6), then the S/MIME
profile of RFC 8550 (see :mod:`smimekit.pki.profile`): the emailProtection EKU on the certificate and its
intermediate CAs, key usage for the purpose, and the address. The first failing check gives the reason.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence

from cryptography import x509

from smimekit.errors import PkiError
from smimekit.pki._engine import run_pkix
from smimekit.pki.addresses import check_email_argument, eai_name_constraints_problem
from smimekit.pki.policies import PolicyRequirements
from smimekit.pki.profile import (
    KeyPurpose,
    address_problem,
    describe,
    extended_key_usage_problem,
    key_usage_problem,
    require_aware,
    require_certificate,
    validity_problem,
)
from smimekit.pki.result import CertificateRevocation, PathFailure, PathResult, RevocationMode, SignerTrust

__all__ = ["SIGNING_TIME_TOLERANCE", "validate_path", "validate_signer"]

#: A signing time this much after ``now`` is taken for clock skew between the sender and us.
SIGNING_TIME_TOLERANCE = dt.timedelta(minutes=5)

_DEFAULT_POLICIES = PolicyRequirements()


def validate_path(
    certificate: x509.Certificate,
    *,
    anchors: Sequence[x509.Certificate],
    intermediates: Sequence[x509.Certificate] = (),
    at: dt.datetime,
    purpose: KeyPurpose = KeyPurpose.SIGNING,
    email: str | None = None,
    crls: Sequence[x509.CertificateRevocationList] = (),
    ocsp_responses: Sequence[bytes] = (),
    revocation: RevocationMode = RevocationMode.SOFT,
    origins: Mapping[bytes, str] | None = None,
    require_revocation: bool = False,
    policies: PolicyRequirements = _DEFAULT_POLICIES,
    legacy_algorithms: bool = False,
) -> PathResult:
    """Whether ``certificate`` is trusted for ``purpose`` (and ``email``) at ``at``; read ``.trusted``.

    ``anchors`` are the trust anchors (a root alone is enough; any certificate may be one);
    ``intermediates`` the other certificates available for building the path (those of the message).
    ``crls`` and ``ocsp_responses`` (DER OCSPResponse) are checked for every certificate of the path they
    cover, as ``revocation`` says (:class:`RevocationMode`; ``require_revocation=True`` is HARD): a
    revoked certificate is never trusted, data that covers a certificate but cannot be used (stale, badly
    signed, from an unauthorised OCSP responder) fails closed, and under HARD every certificate but the
    anchor must be covered by usable data. The result's ``revocation`` gives each certificate's status
    and its source (``origins`` maps the DER of a CRL or response to the URL it came from). Nothing is
    fetched: online revocation belongs to ``smimekit.net``, which hands what it fetched to this function. ``policies`` are the RFC 5280
    certificate policy inputs (default: any policy, none required). Never raises for an untrusted
    certificate; raises PkiError for arguments that cannot work (a naive datetime, a malformed address,
    something that is not a certificate). ``legacy_algorithms`` (off by default) accepts a path signed
    with SHA-1 or holding 1024-bit RSA/DSA keys, as old mail needs; the result then says so in ``legacy``.
    """
    require_certificate("certificate", certificate)
    anchor_list = _certificates("anchors", anchors)
    intermediate_list = _certificates("intermediates", intermediates)
    require_aware("at", at)
    if not isinstance(purpose, KeyPurpose):
        raise PkiError(f"purpose must be a KeyPurpose, not {type(purpose).__name__}")
    if email is not None:
        check_email_argument(email)
    crl_list = _crls(crls)
    ocsp_list = _ocsps(ocsp_responses)
    if not isinstance(require_revocation, bool):
        raise PkiError("require_revocation must be a bool")
    if not isinstance(revocation, RevocationMode):
        raise PkiError(f"revocation must be a RevocationMode, not {type(revocation).__name__}")
    mode = RevocationMode.HARD if require_revocation else revocation
    if not isinstance(policies, PolicyRequirements):
        raise PkiError(f"policies must be a PolicyRequirements, not {type(policies).__name__}")

    def untrusted(
        failure: PathFailure,
        reason: str,
        path: tuple[x509.Certificate, ...] = (certificate,),
        anchor: x509.Certificate | None = None,
    ) -> PathResult:
        return PathResult(False, reason, path, anchor, at, failure, revocation=status, revocation_mode=mode)

    status: tuple[CertificateRevocation, ...] = ()

    if not anchor_list:
        return untrusted(
            PathFailure.NO_TRUST_ANCHOR, "no path to a trust anchor: no trust anchors were given"
        )
    outcome = run_pkix(
        certificate,
        anchors=anchor_list,
        intermediates=intermediate_list,
        at=at,
        crls=crl_list,
        ocsp_responses=ocsp_list,
        origins=origins,
        mode=mode,
        policies=policies,
        legacy_algorithms=legacy_algorithms,
    )
    status = outcome.revocation
    if outcome.failure is not None:
        return untrusted(outcome.failure, outcome.reason or "not trusted", outcome.path, outcome.anchor)
    path, anchor = outcome.path, outcome.anchor
    if anchor is None:  # cannot happen: a validated path ends at its anchor; fail closed all the same
        return untrusted(PathFailure.MALFORMED, "the path has no trust anchor", path)

    # RFC 5280 treats an anchor as a name and a key; OpenSSL and NSS also hold it to its validity period.
    problem = validity_problem(anchor, at, subject=f"the trust anchor {describe(anchor)}")
    if problem is not None:
        kind = PathFailure.EXPIRED if at > anchor.not_valid_after_utc else PathFailure.NOT_YET_VALID
        return untrusted(kind, problem, path, anchor)

    problem = eai_name_constraints_problem(path)
    if problem is not None:
        return untrusted(PathFailure.INVALID_PATH, problem, path, anchor)

    problem = extended_key_usage_problem(certificate)
    for ca in path[1:-1]:
        problem = problem or extended_key_usage_problem(ca, subject=f"the CA certificate {describe(ca)}")
    if problem is not None:
        return untrusted(PathFailure.EXTENDED_KEY_USAGE, problem, path, anchor)
    problem = key_usage_problem(certificate, purpose)
    if problem is not None:
        return untrusted(PathFailure.KEY_USAGE, problem, path, anchor)
    if email is not None:
        problem = address_problem(certificate, email)
        if problem is not None:
            return untrusted(PathFailure.ADDRESS_MISMATCH, problem, path, anchor)
    return PathResult(
        True,
        None,
        path,
        anchor,
        at,
        legacy=legacy_algorithms and _uses_legacy(path),
        revocation=status,
        revocation_mode=mode,
    )


def _uses_legacy(path: Sequence[x509.Certificate]) -> bool:
    """True when the path relies on what only ``legacy_algorithms`` accepts (SHA-1, keys < 2048 bits)."""
    from cryptography.hazmat.primitives.asymmetric import dsa, rsa

    for cert in path:
        algo = cert.signature_hash_algorithm
        if cert is not path[-1] and algo is not None and algo.name == "sha1":
            return True
        key = cert.public_key()
        if isinstance(key, rsa.RSAPublicKey | dsa.DSAPublicKey) and key.key_size < 2048:
            return True
    return False


def validate_signer(
    certificate: x509.Certificate,
    *,
    anchors: Sequence[x509.Certificate],
    intermediates: Sequence[x509.Certificate] = (),
    signing_time: dt.datetime | None,
    now: dt.datetime,
    email: str | None = None,
    crls: Sequence[x509.CertificateRevocationList] = (),
    ocsp_responses: Sequence[bytes] = (),
    revocation: RevocationMode = RevocationMode.SOFT,
    origins: Mapping[bytes, str] | None = None,
    require_revocation: bool = False,
    legacy_algorithms: bool = False,
) -> SignerTrust:
    """Trust in a signer's certificate for signing, at the signing time and at ``now``.

    The signing time is the signer's claim (the signingTime attribute): validation at that time is bounded
    by the validity of the certificate and its path (a time outside it fails), and a signing time later
    than ``now`` (beyond SIGNING_TIME_TOLERANCE of clock skew) is not believed. A revocation dated after
    the signing time does not count against it. ``crls``, ``ocsp_responses``, ``revocation`` and
    ``origins`` are those of :func:`validate_path`. Raises PkiError for bad arguments, never for distrust.
    """
    require_aware("now", now)
    if signing_time is not None:
        require_aware("signing_time", signing_time)

    def at_time(when: dt.datetime) -> PathResult:
        return validate_path(
            certificate,
            anchors=anchors,
            intermediates=intermediates,
            at=when,
            purpose=KeyPurpose.SIGNING,
            email=email,
            crls=crls,
            ocsp_responses=ocsp_responses,
            revocation=revocation,
            origins=origins,
            require_revocation=require_revocation,
            legacy_algorithms=legacy_algorithms,
        )

    current = at_time(now)
    if signing_time is None:
        return SignerTrust(None, current)
    if signing_time > now + SIGNING_TIME_TOLERANCE:
        then = PathResult(
            False,
            f"the signing time {signing_time:%Y-%m-%d %H:%M:%S %Z} lies after the validation time",
            (certificate,),
            None,
            signing_time,
            PathFailure.SIGNING_TIME,
        )
    else:
        then = at_time(signing_time)
    return SignerTrust(then, current)


def _certificates(name: str, values: object) -> tuple[x509.Certificate, ...]:
    if isinstance(values, x509.Certificate | str | bytes) or not isinstance(values, Iterable):
        raise PkiError(f"{name} must be a sequence of certificates, not {type(values).__name__}")
    return tuple(require_certificate(f"every item of {name}", item) for item in values)


def _crl(value: object) -> x509.CertificateRevocationList:
    if not isinstance(value, x509.CertificateRevocationList):
        raise PkiError(
            f"every item of crls must be an x509.CertificateRevocationList, not {type(value).__name__}"
        )
    return value


def _crls(values: object) -> tuple[x509.CertificateRevocationList, ...]:
    if isinstance(values, x509.CertificateRevocationList | str | bytes) or not isinstance(values, Iterable):
        raise PkiError(f"crls must be a sequence of CRLs, not {type(values).__name__}")
    return tuple(_crl(item) for item in values)


def _ocsps(values: object) -> tuple[bytes, ...]:
    if isinstance(values, bytes | bytearray | str) or not isinstance(values, Iterable):
        raise PkiError(
            f"ocsp_responses must be a sequence of DER OCSP responses, not {type(values).__name__}"
        )
    out = []
    for item in values:
        if not isinstance(item, bytes | bytearray | memoryview):
            raise PkiError(f"every item of ocsp_responses must be bytes (DER), not {type(item).__name__}")
        out.append(bytes(item))
    return tuple(out)
