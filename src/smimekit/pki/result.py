"""The verdicts of path validation: frozen values whose ``trusted`` must be read (house style rule 3)."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from cryptography import x509

__all__ = [
    "CertificateRevocation",
    "PathFailure",
    "PathResult",
    "RevocationMode",
    "RevocationStatus",
    "SignerTrust",
]


class RevocationMode(enum.Enum):
    """How revocation decides trust, per use.

    HARD: every certificate of the path but the anchor needs a usable CRL or OCSP response saying it is
    not revoked, else it is not trusted. SOFT: a revoked certificate is not trusted; one whose status is
    unknown (nothing given or fetched) is trusted and the result says it could not be checked; data that
    covers a certificate but cannot be used (stale, badly signed, from an unauthorised responder) is
    refused in both modes (fail closed). OFF: nothing is checked, and the result says so.
    """

    HARD = "hard"
    SOFT = "soft"
    OFF = "off"


class RevocationStatus(enum.Enum):
    """The revocation status of one certificate of a path."""

    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"
    NOT_CHECKED = "not checked"


@dataclass(frozen=True)
class CertificateRevocation:
    """What revocation checking found for one certificate of a path.

    ``source`` says where the answer came from: ``"OCSP http://..."``, ``"CRL http://..."``, ``"CRL
    (given)"``, ``"OCSP (given)"`` (with ``" + delta CRL ..."`` when a delta CRL was used); None when
    nothing usable was found. ``reason`` (an RFC 5280 reason name such as ``"keyCompromise"``) and
    ``revoked_at`` are set when revoked. ``detail`` says why the status is unknown, as a sentence.
    """

    certificate: x509.Certificate
    status: RevocationStatus
    source: str | None = None
    reason: str | None = None
    revoked_at: dt.datetime | None = None
    detail: str | None = None


class PathFailure(enum.Enum):
    """Why a certificate is not trusted, for programs (``PathResult.reason`` is the sentence for people)."""

    NO_TRUST_ANCHOR = "no-trust-anchor"
    """No path from the certificate to a given trust anchor (missing issuer, self-signed, no anchors)."""

    EXPIRED = "expired"
    """The certificate, a CA certificate or the trust anchor had expired at the validation time."""

    NOT_YET_VALID = "not-yet-valid"
    """The certificate, a CA certificate or the trust anchor was not yet valid at the validation time."""

    REVOKED = "revoked"
    """A CRL that was handed in lists the certificate or a CA certificate of its path as revoked."""

    REVOCATION_UNKNOWN = "revocation-unknown"
    """Revocation status was required but no usable CRL was given, or a given CRL could not be used."""

    INVALID_PATH = "invalid-path"
    """The path breaks RFC 5280: a bad signature, basic or name constraints, policies, a weak algorithm."""

    EXTENDED_KEY_USAGE = "extended-key-usage"
    """The certificate or an intermediate CA is not valid for e-mail protection (EKU)."""

    KEY_USAGE = "key-usage"
    """The key type or key usage does not fit the purpose (signing or encryption)."""

    ADDRESS_MISMATCH = "address-mismatch"
    """The certificate does not name the e-mail address asked for."""

    SIGNING_TIME = "signing-time"
    """The claimed signing time lies after the validation time."""

    MALFORMED = "malformed"
    """A certificate or CRL could not be processed."""


@dataclass(frozen=True)
class PathResult:
    """The verdict of ``validate_path``.

    ``trusted`` is True only when every check passed; then ``reason`` and ``failure`` are None. Otherwise
    ``reason`` is a sentence ("the certificate expired on 2025-01-01") and ``failure`` its kind. ``path``
    runs from the certificate to the trust anchor when one was reached (else it holds at least the
    certificate); ``anchor`` is the trust anchor reached, or None. ``validated_at`` is the time asked for.
    """

    trusted: bool
    reason: str | None
    path: tuple[x509.Certificate, ...]
    anchor: x509.Certificate | None
    validated_at: dt.datetime
    failure: PathFailure | None = None
    legacy: bool = False
    """The path was accepted only because legacy algorithms were allowed (SHA-1, keys under 2048 bits)."""
    revocation: tuple[CertificateRevocation, ...] = ()
    """The revocation status of each certificate of the path but the anchor, leaf first (empty when the
    path could not be built that far)."""
    revocation_mode: RevocationMode = RevocationMode.SOFT

    @property
    def leaf_revocation(self) -> CertificateRevocation | None:
        """The revocation status of the certificate itself, when it was looked at."""
        return self.revocation[0] if self.revocation else None

    @property
    def unchecked(self) -> tuple[CertificateRevocation, ...]:
        """The certificates of the path whose revocation status could not be checked (or was not)."""
        return tuple(
            r for r in self.revocation if r.status in (RevocationStatus.UNKNOWN, RevocationStatus.NOT_CHECKED)
        )

    def __post_init__(self) -> None:
        if self.trusted != (self.reason is None) or self.trusted != (self.failure is None):
            raise ValueError("a trusted PathResult has no reason and no failure; an untrusted one has both")


@dataclass(frozen=True)
class SignerTrust:
    """Trust in a signer's certificate at the signing time and now.

    ``at_signing_time`` is None when the signature carries no signing time. ``trusted`` holds when the
    certificate validates now and, when a signing time is given, at that time too.
    """

    at_signing_time: PathResult | None
    now: PathResult

    @property
    def trusted(self) -> bool:
        """Both verdicts hold (only ``now`` when there is no signing time)."""
        if self.at_signing_time is not None and not self.at_signing_time.trusted:
            return False
        return self.now.trusted

    @property
    def reason(self) -> str | None:
        """The first reason not to trust, saying at which time; None when trusted."""
        if self.at_signing_time is not None and not self.at_signing_time.trusted:
            return f"at the signing time: {self.at_signing_time.reason}"
        if not self.now.trusted:
            return f"now: {self.now.reason}"
        return None
