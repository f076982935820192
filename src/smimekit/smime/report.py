"""What verifying, decrypting and opening an S/MIME message found: frozen results with ``to_dict()`` for JSON.

A signature's verdict is kept in three parts (as pyhanko does): *intact* (the digest matches the content),
*valid* (the signature maths holds over the signed attributes), *trusted* (a path to a given trust anchor,
for e-mail protection, at the signing time and now). ``ok`` needs all three.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID

from smimekit.cms import ContentCipher, RecipientType, SignerReport
from smimekit.mime import Entity, Message

__all__ = [
    "CertificateSummary",
    "DecryptionInfo",
    "LayerKind",
    "LayerReport",
    "OpenResult",
    "PathVerdict",
    "RevocationVerdict",
    "SignatureReport",
    "TrustVerdict",
    "VerificationReport",
]


def _time(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


@dataclass(frozen=True)
class CertificateSummary:
    """Who signed: the signer certificate's names, serial number and SHA-256 fingerprint (lowercase hex).

    ``emails`` are the rfc822Name SANs and subject emailAddress values, lowercased, without repeats.
    """

    subject: str
    emails: tuple[str, ...]
    issuer: str
    serial_number: int
    sha256_fingerprint: str
    not_before: dt.datetime
    not_after: dt.datetime
    public_key: str

    @classmethod
    def of(cls, cert: x509.Certificate) -> CertificateSummary:
        """Summarize ``cert``; never raises for odd extensions (they are left out)."""
        emails: list[str] = []
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            emails += [str(v) for v in san.get_values_for_type(x509.RFC822Name)]
        except (x509.ExtensionNotFound, ValueError):
            pass
        with contextlib.suppress(ValueError):
            emails += [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS)]
        return cls(
            subject=_name(cert.subject),
            emails=tuple(dict.fromkeys(e.strip().lower() for e in emails if e.strip())),
            issuer=_name(cert.issuer),
            serial_number=cert.serial_number,
            sha256_fingerprint=cert.fingerprint(hashes.SHA256()).hex(),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            public_key=_key_label(cert),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "emails": list(self.emails),
            "issuer": self.issuer,
            "serial_number": format(self.serial_number, "x"),
            "sha256_fingerprint": self.sha256_fingerprint,
            "not_before": _time(self.not_before),
            "not_after": _time(self.not_after),
            "public_key": self.public_key,
        }


def _name(name: x509.Name) -> str:
    try:
        return name.rfc4514_string({NameOID.EMAIL_ADDRESS: "emailAddress"})
    except ValueError:
        return repr(name)


def _key_label(cert: x509.Certificate) -> str:
    try:
        key = cert.public_key()
    except (ValueError, TypeError):
        return "unreadable"
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {key.curve.name}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448"
    if isinstance(key, dsa.DSAPublicKey):
        return f"DSA {key.key_size}"
    return type(key).__name__


@dataclass(frozen=True)
class RevocationVerdict:
    """The revocation status of one certificate of a path: ``status`` is ``"good"``, ``"revoked"``,
    ``"unknown"`` or ``"not checked"``; ``source`` says where it came from (``"OCSP http://..."``,
    ``"CRL http://..."``, ``"CRL (given)"``); ``reason`` and ``date`` are set when revoked; ``detail``
    says why a status is unknown."""

    subject: str
    status: str
    source: str | None = None
    reason: str | None = None
    date: dt.datetime | None = None
    detail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "status": self.status,
            "source": self.source,
            "reason": self.reason,
            "date": _time(self.date),
            "detail": self.detail,
        }


@dataclass(frozen=True)
class PathVerdict:
    """Path validation at one point in time: ``path`` holds subjects from the signer up to the ``anchor``;
    ``reason`` (empty when trusted) is a sentence and ``failure`` its kind (a ``pki.PathFailure`` value).

    ``revocation_path`` holds the revocation status of each certificate of the path but the anchor, signer
    first; ``revocation_mode`` is ``"hard"``, ``"soft"`` or ``"off"``.
    """

    trusted: bool
    reason: str
    validated_at: dt.datetime | None
    path: tuple[str, ...] = ()
    anchor: str | None = None
    failure: str | None = None
    legacy: bool = False
    """Trusted only because legacy algorithms (SHA-1, keys under 2048 bits) were allowed in the path."""
    revocation_path: tuple[RevocationVerdict, ...] = ()
    revocation_mode: str = "soft"

    @property
    def revocation(self) -> str:
        """The signer certificate's revocation status: good, revoked, unknown or not checked."""
        return self.revocation_path[0].status if self.revocation_path else "not checked"

    @property
    def revocation_source(self) -> str | None:
        return self.revocation_path[0].source if self.revocation_path else None

    @property
    def revocation_reason(self) -> str | None:
        return self.revocation_path[0].reason if self.revocation_path else None

    @property
    def revocation_date(self) -> dt.datetime | None:
        return self.revocation_path[0].date if self.revocation_path else None

    @property
    def unchecked(self) -> tuple[RevocationVerdict, ...]:
        """The certificates of the path whose revocation status could not be checked, or was not."""
        return tuple(r for r in self.revocation_path if r.status in ("unknown", "not checked"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "trusted": self.trusted,
            "reason": self.reason,
            "validated_at": _time(self.validated_at),
            "path": list(self.path),
            "anchor": self.anchor,
            "failure": self.failure,
            "legacy": self.legacy,
            "revocation": self.revocation,
            "revocation_source": self.revocation_source,
            "revocation_reason": self.revocation_reason,
            "revocation_date": _time(self.revocation_date),
            "revocation_mode": self.revocation_mode,
            "revocation_path": [r.to_dict() for r in self.revocation_path],
        }


@dataclass(frozen=True)
class TrustVerdict:
    """Trust in a signer certificate: at the signing time (None when the signature carries none) and now.

    ``reason`` is empty when ``trusted``. The ``revocation*`` properties are those of the verdict now (of
    the one at the signing time when there is none now).
    """

    trusted: bool
    reason: str
    at_signing_time: PathVerdict | None = None
    now: PathVerdict | None = None

    @property
    def legacy(self) -> bool:
        """A verdict of trust that needed legacy algorithms at the signing time or now."""
        return any(v is not None and v.trusted and v.legacy for v in (self.at_signing_time, self.now))

    @property
    def _current(self) -> PathVerdict | None:
        return self.now if self.now is not None else self.at_signing_time

    @property
    def revocation(self) -> str:
        """The signer certificate's revocation status: good, revoked, unknown or not checked."""
        return self._current.revocation if self._current is not None else "not checked"

    @property
    def revocation_source(self) -> str | None:
        return self._current.revocation_source if self._current is not None else None

    @property
    def revocation_reason(self) -> str | None:
        return self._current.revocation_reason if self._current is not None else None

    @property
    def revocation_date(self) -> dt.datetime | None:
        return self._current.revocation_date if self._current is not None else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "trusted": self.trusted,
            "reason": self.reason,
            "revocation": self.revocation,
            "revocation_source": self.revocation_source,
            "revocation_reason": self.revocation_reason,
            "revocation_date": _time(self.revocation_date),
            "at_signing_time": None if self.at_signing_time is None else self.at_signing_time.to_dict(),
            "now": None if self.now is None else self.now.to_dict(),
        }


@dataclass(frozen=True)
class SignatureReport:
    """The verdict on one signature of a message.

    ``part`` is the path of the signed entity, numbered as ``smimekit inspect`` numbers parts (``"1"`` for
    the whole message, ``"1.2"`` for its second part);
    ``form`` is ``"multipart/signed"`` or ``"signed-data"``; ``covered_parts`` are the paths of every entity
    inside the signed content. ``reasons`` lists every failure, one sentence each (CMS checks, then trust).
    ``line_endings_converted``: the content was stored with LF line endings and verified in its CRLF form
    (RFC 8551 §3.1.1). ``diagnosis`` says, for content that is not intact, which damage in transit explains
    it when one does — the verdict stays invalid. ``cms`` is the CMS layer's report, for the details.
    """

    part: str
    form: str
    covered_parts: tuple[str, ...]
    signer: CertificateSummary | None
    signer_id: str
    signing_time: dt.datetime | None
    digest_algorithm: str | None
    signature_algorithm: str | None
    intact: bool
    valid: bool
    trust: TrustVerdict
    reasons: tuple[str, ...]
    weak: tuple[str, ...]
    from_matches: bool
    line_endings_converted: bool = False
    diagnosis: str | None = None
    cms: SignerReport | None = field(default=None, repr=False, compare=False)
    certificates: tuple[x509.Certificate, ...] = field(default=(), repr=False, compare=False)
    """Every certificate the SignedData carried (for harvesting the chain into a store)."""

    @property
    def trusted(self) -> bool:
        return self.trust.trusted

    @property
    def ok(self) -> bool:
        """Intact, valid and trusted."""
        return self.intact and self.valid and self.trusted

    def to_dict(self) -> dict[str, Any]:
        return {
            "part": self.part,
            "form": self.form,
            "covered_parts": list(self.covered_parts),
            "signer": None if self.signer is None else self.signer.to_dict(),
            "signer_id": self.signer_id,
            "signing_time": _time(self.signing_time),
            "digest_algorithm": self.digest_algorithm,
            "signature_algorithm": self.signature_algorithm,
            "intact": self.intact,
            "valid": self.valid,
            "trusted": self.trusted,
            "ok": self.ok,
            "trust": self.trust.to_dict(),
            "reasons": list(self.reasons),
            "weak": list(self.weak),
            "from_matches": self.from_matches,
            "line_endings_converted": self.line_endings_converted,
            "diagnosis": self.diagnosis,
        }


@dataclass(frozen=True)
class VerificationReport:
    """Every S/MIME signature found in a message, and what they leave uncovered.

    ``unsigned_parts`` are the paths of content parts that no signature covers (e.g. text an unsigned
    ``multipart/mixed`` adds around a signed part) — shown to a user, they must not look signed.
    ``from_addresses`` are the addresses of the message's From. ``content`` is the signed entity of the
    first signature: the first part of a ``multipart/signed`` as received, or the parsed content of a
    signed-data.
    """

    signatures: tuple[SignatureReport, ...]
    unsigned_parts: tuple[str, ...]
    from_addresses: tuple[str, ...]
    notes: tuple[str, ...] = ()
    content: Entity | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        """At least one signature, and every signature intact, valid and trusted."""
        return bool(self.signatures) and all(s.ok for s in self.signatures)

    @property
    def fully_signed(self) -> bool:
        """``ok``, and no content outside the signatures."""
        return self.ok and not self.unsigned_parts

    @property
    def from_matches(self) -> bool:
        """Some signer certificate names an address of the From field."""
        return any(s.from_matches for s in self.signatures)

    @property
    def weak(self) -> tuple[str, ...]:
        """Every weak algorithm or key any signature relies on."""
        return tuple(dict.fromkeys(w for s in self.signatures for w in s.weak))

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "fully_signed": self.fully_signed,
            "from_matches": self.from_matches,
            "from_addresses": list(self.from_addresses),
            "unsigned_parts": list(self.unsigned_parts),
            "weak": list(self.weak),
            "notes": list(self.notes),
            "signatures": [s.to_dict() for s in self.signatures],
        }


@dataclass(frozen=True)
class DecryptionInfo:
    """How a message was decrypted: the content cipher, the kind of recipient that opened it, whether the
    content was authenticated (AES-GCM, ChaCha20-Poly1305) and whether a legacy cipher was accepted."""

    cipher: ContentCipher
    recipient_type: RecipientType
    authenticated: bool
    legacy: bool
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "cipher": self.cipher.label,
            "recipient_type": self.recipient_type.value,
            "authenticated": self.authenticated,
            "legacy": self.legacy,
            "size": self.size,
        }


class LayerKind(enum.Enum):
    """One S/MIME layer; the value is its RFC 8551 ``smime-type`` name."""

    SIGNED = "signed"
    ENVELOPED = "enveloped"
    AUTH_ENVELOPED = "authEnveloped"
    COMPRESSED = "compressed"


@dataclass(frozen=True)
class LayerReport:
    """One unwrapped layer, outermost first: its verification report or decryption details, and notes
    (e.g. the inner From differs from the outer one)."""

    kind: LayerKind
    verification: VerificationReport | None = None
    decryption: DecryptionInfo | None = None
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "verification": None if self.verification is None else self.verification.to_dict(),
            "decryption": None if self.decryption is None else self.decryption.to_dict(),
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class OpenResult:
    """The innermost message and a report of every layer around it.

    ``ok``: at least one layer, and every signed layer verified (intact, valid, trusted).
    ``signed``/``encrypted`` say whether any layer signed or encrypted the content.
    """

    inner: Message = field(repr=False, compare=False)
    layers: tuple[LayerReport, ...]

    @property
    def signed(self) -> bool:
        return any(layer.kind is LayerKind.SIGNED for layer in self.layers)

    @property
    def encrypted(self) -> bool:
        return any(layer.kind in (LayerKind.ENVELOPED, LayerKind.AUTH_ENVELOPED) for layer in self.layers)

    @property
    def ok(self) -> bool:
        checks = [layer.verification.ok for layer in self.layers if layer.verification is not None]
        return bool(self.layers) and all(checks)

    @property
    def notes(self) -> tuple[str, ...]:
        return tuple(n for layer in self.layers for n in layer.notes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "signed": self.signed,
            "encrypted": self.encrypted,
            "layers": [layer.to_dict() for layer in self.layers],
        }
