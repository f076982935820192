"""Choosing from what the store knows: the key to sign with, the certificate to encrypt to, the content
cipher every recipient can read, the key that opens a message, and whether a recipient may be used.

The choices are made here, in the library, so that the command line, the gateway and any program agree.
Time, trust anchors and CRLs are parameters; the only I/O is through the :class:`~smimekit.store.Store`
handed in.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.hashes import SHA256

from smimekit import pki
from smimekit.cms import ContentCipher
from smimekit.errors import SmimekitError, StoreNotFoundError, UsageError
from smimekit.pki import (
    KeyPurpose,
    PathFailure,
    PathResult,
    RevocationData,
    RevocationFetcher,
    RevocationMode,
)
from smimekit.pki.profile import extended_key_usage_problem, key_usage_problem, validity_problem
from smimekit.recipients import RecipientId
from smimekit.store.api import CertificateRecord, Store

__all__ = [
    "MAX_CHAIN",
    "CipherChoice",
    "RecipientVerdict",
    "TrustPolicy",
    "check_recipient",
    "choose_cipher",
    "decryption_candidates",
    "issuer_chain",
    "known_intermediates",
    "recipient_certificate",
    "signing_certificate",
    "validate_with_revocation",
]

#: How many CA certificates a chain built from the store may hold (a loop or a hostile store ends there).
MAX_CHAIN = 8
#: The ciphers chosen automatically, strongest first; the last one is the floor (RFC 8551 §2.7 makes
#: AES-128-CBC a MUST and AES-256-CBC a SHOULD for receiving agents, and every agent in use reads it).
_BEST = ContentCipher.AES256_GCM
_FLOOR = ContentCipher.AES256_CBC
_SHA256 = SHA256()


# ---------------------------------------------------------------------------------------------- cipher


@dataclass(frozen=True)
class CipherChoice:
    """The content cipher for a message and why it was chosen (a sentence for people)."""

    cipher: ContentCipher
    reason: str
    requested: bool = False
    """The caller named the cipher; ``reason`` then says whether every recipient is known to read it."""


def choose_cipher(
    capabilities: Mapping[str, Sequence[str] | None], *, requested: ContentCipher | None = None
) -> CipherChoice:
    """The strongest content cipher that every recipient is known to support.

    ``capabilities`` maps each recipient (an address, or any label) to the SMIMECapabilities OIDs they
    announced in their signed mail (their order does not matter), or None when nothing is known of them.
    AES-256-GCM when every recipient announced it, else AES-256-CBC, which every S/MIME agent reads.
    ``requested`` overrides the choice; the reason then names the recipients not known to support it.
    Raises UsageError for a legacy ``requested`` cipher (never used to encrypt).
    """
    if requested is not None:
        if not isinstance(requested, ContentCipher):
            raise UsageError("requested must be a ContentCipher")
        if requested.legacy:
            raise UsageError(f"{requested.label} is a legacy cipher and is never used to encrypt")
        unsure = sorted(who for who, caps in capabilities.items() if not caps or requested.value not in caps)
        reason = f"{requested.label} as requested"
        if unsure and requested is not _FLOOR:
            reason += (
                f", although {_listing(unsure)} {'has' if len(unsure) == 1 else 'have'} not announced it"
            )
        return CipherChoice(requested, reason, requested=True)
    if not capabilities:
        return CipherChoice(_BEST, f"{_BEST.label}: the default, with no recipient to ask")
    unknown = sorted(who for who, caps in capabilities.items() if not caps)
    lacking = sorted(who for who, caps in capabilities.items() if caps and _BEST.value not in caps)
    if not unknown and not lacking:
        everyone = "the recipient" if len(capabilities) == 1 else "every recipient"
        return CipherChoice(_BEST, f"{_BEST.label}: {everyone} announced support for it")
    why = []
    if lacking:
        why.append(
            f"{_listing(lacking)} did not announce {_BEST.label} in {_their(lacking)} S/MIME capabilities"
        )
    if unknown:
        why.append(f"nothing is known of the capabilities of {_listing(unknown)} (no signed mail seen)")
    return CipherChoice(_FLOOR, f"{_FLOOR.label}: {'; '.join(why)}")


def _listing(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _their(names: Sequence[str]) -> str:
    return "its" if len(names) == 1 else "their"


# ---------------------------------------------------------------------------------------------- signing


def _problem(certificate: x509.Certificate, purpose: KeyPurpose, at: dt.datetime) -> str | None:
    return (
        validity_problem(certificate, at)
        or key_usage_problem(certificate, purpose)
        or extended_key_usage_problem(certificate)
    )


def _require_aware(at: dt.datetime) -> None:
    if not isinstance(at, dt.datetime) or at.tzinfo is None:
        raise UsageError("at must be a timezone-aware datetime")


def signing_certificate(store: Store, email: str, *, at: dt.datetime) -> CertificateRecord:
    """The certificate to sign as ``email`` at ``at``: the newest (by notBefore) of the store's
    certificates for the address that has a private key, is valid at ``at`` and fits signing (key type,
    key usage digitalSignature or nonRepudiation, the emailProtection EKU when an EKU is present).

    Raises StoreNotFoundError saying why none fits (no certificate, no private key, or the reason the
    newest one with a key cannot sign).
    """
    _require_aware(at)
    records = store.find_by_email(email)
    if not records:
        raise StoreNotFoundError(f"the store holds no certificate for {email}")
    mine = [r for r in records if r.has_private_key]
    if not mine:
        raise StoreNotFoundError(
            f"the store holds {len(records)} certificate{'s' if len(records) > 1 else ''} for {email} "
            "but no private key for any: import your key and certificate (smimekit keys import)"
        )
    return _first_fit(mine, KeyPurpose.SIGNING, at, email=email, use="sign")


def _first_fit(
    records: Sequence[CertificateRecord], purpose: KeyPurpose, at: dt.datetime, *, email: str, use: str
) -> CertificateRecord:
    """The first of ``records`` (at least one) whose certificate is valid at ``at`` and fits ``purpose``.
    Raises StoreNotFoundError with the problem of the first one (``email`` cannot ``use`` it) when none
    fits."""
    problems: list[str] = []
    for record in records:
        problem = _problem(record.certificate, purpose, at)
        if problem is None:
            return record
        problems.append(problem)
    n = len(problems)
    which = "the certificate" if n == 1 else f"none of the {n} certificates; the newest"
    raise StoreNotFoundError(
        f"no certificate for {email} in the store can {use} now ({which}: {problems[0]})"
    )


def issuer_chain(store: Store, certificate: x509.Certificate) -> tuple[x509.Certificate, ...]:
    """The CA certificates above ``certificate`` that the store holds, nearest first, without the
    self-signed root (what a signature carries). Stops at the first issuer the store lacks."""
    chain: list[x509.Certificate] = []
    current = certificate
    seen = {certificate.fingerprint(_SHA256)}
    while len(chain) < MAX_CHAIN and current.issuer != current.subject:
        issuer = _issuer_of(store, current)
        if issuer is None or issuer.issuer == issuer.subject:
            break
        fingerprint = issuer.fingerprint(_SHA256)
        if fingerprint in seen:
            break
        seen.add(fingerprint)
        chain.append(issuer)
        current = issuer
    return tuple(chain)


def _issuer_of(store: Store, certificate: x509.Certificate) -> x509.Certificate | None:
    for record in store.find_by_subject(certificate.issuer):
        try:
            certificate.verify_directly_issued_by(record.certificate)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return record.certificate
    return None


def known_intermediates(store: Store) -> list[x509.Certificate]:
    """The CA certificates in the store (path-building material, not trust anchors)."""
    out = []
    for record in store.list_certificates():
        try:
            basic = record.certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
        except (x509.ExtensionNotFound, ValueError):
            continue
        if basic.ca:
            out.append(record.certificate)
    return out


# ---------------------------------------------------------------------------------------------- encryption


def recipient_certificate(store: Store, email: str, *, at: dt.datetime) -> CertificateRecord:
    """The certificate to encrypt to ``email`` at ``at``: the one the correspondent said they prefer
    (SMIMEEncryptionKeyPreference) when the store has it and it fits, else the newest valid one that fits
    encryption (key type, key usage keyEncipherment or keyAgreement, the emailProtection EKU).

    Path validation and revocation are not looked at here: see :func:`check_recipient`. Raises
    StoreNotFoundError saying why none fits.
    """
    _require_aware(at)
    records = store.find_by_email(email)
    if not records:
        raise StoreNotFoundError(
            f"the store holds no certificate for {email}: import it (smimekit keys import FILE) or verify "
            "a signed message from them"
        )
    correspondent = store.correspondent(email)
    if correspondent is not None and correspondent.preferred_certificate is not None:
        preferred = [r for r in records if r.fingerprint == correspondent.preferred_certificate]
        records = preferred + [r for r in records if r not in preferred]
    return _first_fit(records, KeyPurpose.ENCRYPTION, at, email=email, use="be encrypted to")


class TrustPolicy(enum.Enum):
    """Whether a recipient certificate needs a path to a trust anchor before it is encrypted to."""

    REQUIRE_PATH = "require-path"
    """Refuse a recipient whose certificate has no valid path to an anchor (the default)."""
    UNSAFE_ALLOW_UNTRUSTED = "unsafe-allow-untrusted"
    """Accept a certificate without a path to an anchor (reported); revoked, expired and unfit
    certificates are still refused."""


@dataclass(frozen=True)
class RecipientVerdict:
    """Why a recipient certificate may be encrypted to. ``trusted`` is False only under
    UNSAFE_ALLOW_UNTRUSTED, and ``note`` then says why it is not."""

    certificate: x509.Certificate
    email: str | None
    trusted: bool
    path: PathResult
    note: str | None = None


#: Failures that ``UNSAFE_ALLOW_UNTRUSTED`` lets through: only the missing path to an anchor.
_UNTRUSTED_OK = frozenset({PathFailure.NO_TRUST_ANCHOR})


def check_recipient(
    certificate: x509.Certificate,
    *,
    email: str | None,
    at: dt.datetime,
    anchors: Sequence[x509.Certificate],
    intermediates: Sequence[x509.Certificate] = (),
    crls: Sequence[x509.CertificateRevocationList] = (),
    revocation: RevocationMode = RevocationMode.SOFT,
    fetcher: RevocationFetcher | None = None,
    policy: TrustPolicy = TrustPolicy.REQUIRE_PATH,
    label: str | None = None,
) -> RecipientVerdict:
    """Whether ``certificate`` may be encrypted to (for ``email``) at ``at``; raises when it may not.

    Checks the S/MIME profile (validity, key usage and EKU for encryption, the address), then the path to
    one of ``anchors`` for encryption, with revocation as ``revocation`` says: the ``crls`` given, and what
    ``fetcher`` (CRL distribution points, OCSP) finds for the path once it is built. Under
    UNSAFE_ALLOW_UNTRUSTED a certificate with no path to an anchor is accepted (the verdict says so)
    unless a given CRL of its issuer lists it. Raises UsageError naming the recipient (``label``, else
    the address, else the certificate's first address or subject) and the reason.
    """
    who = label or email or _label(certificate)
    problems = pki.check_recipient_certificate(certificate, at=at, email=email)
    if problems:
        raise UsageError(f"cannot encrypt to {who}: {problems[0]}")
    result = validate_with_revocation(
        certificate,
        purpose=KeyPurpose.ENCRYPTION,
        email=email,
        at=at,
        anchors=anchors,
        intermediates=intermediates,
        crls=crls,
        revocation=revocation,
        fetcher=fetcher,
    )
    if result.trusted:
        return RecipientVerdict(certificate, email, True, result)
    if policy is TrustPolicy.UNSAFE_ALLOW_UNTRUSTED and result.failure in _UNTRUSTED_OK:
        listed = _listed_by(certificate, crls) if revocation is not RevocationMode.OFF else None
        if listed is not None:
            raise UsageError(f"cannot encrypt to {who}: {listed}")
        return RecipientVerdict(
            certificate, email, False, result, note=f"{who}: not trusted: {result.reason}"
        )
    hint = ""
    if result.failure in _UNTRUSTED_OK:
        hint = " (trust its issuer, or give --allow-untrusted to encrypt anyway)"
    raise UsageError(f"cannot encrypt to {who}: {result.reason}{hint}")


def validate_with_revocation(
    certificate: x509.Certificate,
    *,
    purpose: KeyPurpose,
    email: str | None,
    at: dt.datetime,
    anchors: Sequence[x509.Certificate],
    intermediates: Sequence[x509.Certificate] = (),
    crls: Sequence[x509.CertificateRevocationList] = (),
    revocation: RevocationMode = RevocationMode.SOFT,
    fetcher: RevocationFetcher | None = None,
) -> PathResult:
    """``pki.validate_path`` with the ``crls`` given; when ``fetcher`` is given (and revocation is not
    OFF) and a path was built, the revocation data it fetches for that path is added and the path is
    validated again, as :mod:`smimekit.pki.revocation` describes."""
    given = () if revocation is RevocationMode.OFF else tuple(crls)

    def run(data: RevocationData | None) -> PathResult:
        return pki.validate_path(
            certificate,
            anchors=anchors,
            intermediates=intermediates,
            at=at,
            purpose=purpose,
            email=email,
            crls=given + (data.crls if data is not None else ()),
            ocsp_responses=data.ocsp_responses if data is not None else (),
            origins=data.origins if data is not None else None,
            revocation=revocation,
        )

    result = run(None)
    if fetcher is None or revocation is RevocationMode.OFF or result.anchor is None or not result.unchecked:
        return result
    try:
        data = fetcher.fetch(result.path, now=at)
    except SmimekitError as exc:  # a fetcher should not raise; its failure leaves the status unknown
        data = RevocationData(problems=(str(exc),))
    return run(data)


def _listed_by(certificate: x509.Certificate, crls: Iterable[x509.CertificateRevocationList]) -> str | None:
    """Why a CRL of the certificate's issuer lists it as revoked (the CRL cannot be verified without a
    path, so it is believed: refusing to encrypt is the safe side), or None."""
    for crl in crls:
        if crl.issuer != certificate.issuer:
            continue
        entry = crl.get_revoked_certificate_by_serial_number(certificate.serial_number)
        if entry is not None:
            return f"the certificate was revoked on {entry.revocation_date_utc:%Y-%m-%d} (CRL of its issuer)"
    return None


def _label(certificate: x509.Certificate) -> str:
    emails = pki.certificate_email_addresses(certificate)
    if emails:
        return emails[0]
    try:
        return certificate.subject.rfc4514_string()
    except ValueError:
        return f"the certificate with serial {certificate.serial_number:#x}"


# ---------------------------------------------------------------------------------------------- decryption


def decryption_candidates(store: Store, recipients: Sequence[RecipientId]) -> list[CertificateRecord]:
    """The store's certificates with a private key that ``recipients`` name, in the message's order.

    Looked up by issuer and serial number or by subject key identifier; certificates with a key whose
    issuer name is encoded differently in the message are found by comparing names by value.
    """
    found: dict[str, CertificateRecord] = {}
    for rid in recipients:
        records: list[CertificateRecord] = []
        if rid.serial is not None and rid.issuer is not None:
            record = store.find_by_issuer_serial(rid.issuer, rid.serial)
            records = [record] if record is not None else []
        elif rid.subject_key_identifier is not None:
            records = store.find_by_subject_key_identifier(rid.subject_key_identifier)
        for record in records:
            if record.has_private_key and rid.names(record.certificate):
                found.setdefault(record.fingerprint, record)
    if not found and any(r.serial is not None or r.subject_key_identifier is not None for r in recipients):
        for record in store.list_certificates(with_keys=True):
            if any(rid.names(record.certificate) for rid in recipients):
                found.setdefault(record.fingerprint, record)
    return list(found.values())
