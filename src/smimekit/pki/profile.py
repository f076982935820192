"""The S/MIME certificate profile a relying party checks (RFC 8550 §4.4), one certificate at a time.

Each check returns a sentence saying what is wrong, or None. The rules:

- Validity: ``not_before <= at <= not_after`` (both ends inclusive, RFC 5280 §4.1.2.5).
- Extended key usage (RFC 8550 §4.4.4): when the extension is present it must list emailProtection or
  anyExtendedKeyUsage; when it is absent the key is not restricted. OpenSSL's ``-purpose smimesign``
  agrees except that it rejects anyExtendedKeyUsage alone. The same rule is applied to intermediate CA
  certificates (EKU chaining, as OpenSSL and NSS do and the CA/B Forum S/MIME requirements expect).
- Key usage (RFC 8550 §4.4.2, RFC 5280 §4.2.1.3): signing needs digitalSignature or nonRepudiation;
  encryption needs keyEncipherment for RSA and keyAgreement for EC, X25519 and X448 (RFC 5753, RFC 8418).
  An absent extension allows both; a key type that cannot do the operation (an X25519 key signing, an
  Ed25519 key encrypting) fails whatever the extension says.
- Address (RFC 8550 §3): see :mod:`smimekit.pki.addresses`.
"""

from __future__ import annotations

import datetime as dt
import enum

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import dh, dsa, ec, ed448, ed25519, rsa, x448, x25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from smimekit.errors import PkiError
from smimekit.pki.addresses import certificate_email_addresses, check_email_argument, email_matches

__all__ = [
    "KeyPurpose",
    "address_problem",
    "check_recipient_certificate",
    "extended_key_usage_problem",
    "key_usage_problem",
    "validity_problem",
]


class KeyPurpose(enum.Enum):
    """What the certificate's key is to be used for."""

    SIGNING = "signing"
    """Signing mail: key usage digitalSignature or nonRepudiation."""

    ENCRYPTION = "encryption"
    """Encrypting mail to it: key usage keyEncipherment (RSA) or keyAgreement (EC, X25519, X448)."""


def describe(certificate: x509.Certificate) -> str:
    """A short human name for a certificate: its subject as an RFC 4514 string (emailAddress as E), quoted."""
    try:
        return f"'{certificate.subject.rfc4514_string({NameOID.EMAIL_ADDRESS: 'E'})}'"
    except ValueError:
        return "'(unreadable subject)'"


def require_aware(name: str, value: object) -> dt.datetime:
    """``value`` if it is a timezone-aware datetime; raises PkiError otherwise."""
    if not isinstance(value, dt.datetime):
        raise PkiError(f"{name} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise PkiError(f"{name} must be timezone-aware (for example datetime.now(timezone.utc))")
    return value


def require_certificate(name: str, value: object) -> x509.Certificate:
    """``value`` if it is a cryptography certificate; raises PkiError otherwise."""
    if not isinstance(value, x509.Certificate):
        raise PkiError(f"{name} must be a cryptography x509.Certificate, not {type(value).__name__}")
    return value


def validity_problem(
    certificate: x509.Certificate, at: dt.datetime, *, subject: str = "the certificate"
) -> str | None:
    """Why ``certificate`` is not valid at ``at`` (expired, not yet valid), or None."""
    if at > certificate.not_valid_after_utc:
        return f"{subject} expired on {certificate.not_valid_after_utc:%Y-%m-%d}"
    if at < certificate.not_valid_before_utc:
        return f"{subject} is not valid before {certificate.not_valid_before_utc:%Y-%m-%d}"
    return None


def extended_key_usage_problem(
    certificate: x509.Certificate, *, subject: str = "the certificate"
) -> str | None:
    """Why ``certificate`` may not be used for e-mail protection according to its EKU, or None."""
    try:
        eku = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return None
    except ValueError:
        return f"{subject} has an unreadable extension"
    if ExtendedKeyUsageOID.EMAIL_PROTECTION in eku or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in eku:
        return None
    return f"{subject} is not valid for e-mail protection (EKU)"


def key_usage_problem(certificate: x509.Certificate, purpose: KeyPurpose) -> str | None:
    """Why the key of ``certificate`` may not be used for ``purpose`` (key type, key usage), or None."""
    if not isinstance(purpose, KeyPurpose):
        raise PkiError(f"purpose must be a KeyPurpose, not {type(purpose).__name__}")
    try:
        key = certificate.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        return f"the certificate's public key cannot be read ({exc})"
    try:
        ku: x509.KeyUsage | None = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        ku = None
    except ValueError:
        return "the certificate has an unreadable extension"
    kind = _key_kind(key)
    if purpose is KeyPurpose.SIGNING:
        if isinstance(key, x25519.X25519PublicKey | x448.X448PublicKey | dh.DHPublicKey):
            return f"the certificate's {kind} key cannot sign"
        if ku is not None and not (ku.digital_signature or ku.content_commitment):
            return "the certificate's key usage does not allow signing (digitalSignature or nonRepudiation)"
        return None
    if isinstance(key, rsa.RSAPublicKey):
        if ku is not None and not ku.key_encipherment:
            return "the certificate's key usage does not allow encryption (keyEncipherment)"
        return None
    if isinstance(
        key, ec.EllipticCurvePublicKey | x25519.X25519PublicKey | x448.X448PublicKey | dh.DHPublicKey
    ):
        if ku is not None and not ku.key_agreement:
            return "the certificate's key usage does not allow encryption (keyAgreement)"
        return None
    return f"the certificate's {kind} key cannot be used for encryption"


def _key_kind(key: object) -> str:
    kinds: tuple[tuple[type, str], ...] = (
        (rsa.RSAPublicKey, "RSA"),
        (ec.EllipticCurvePublicKey, "EC"),
        (ed25519.Ed25519PublicKey, "Ed25519"),
        (ed448.Ed448PublicKey, "Ed448"),
        (x25519.X25519PublicKey, "X25519"),
        (x448.X448PublicKey, "X448"),
        (dsa.DSAPublicKey, "DSA"),
        (dh.DHPublicKey, "DH"),
    )
    return next((name for cls, name in kinds if isinstance(key, cls)), type(key).__name__)


def address_problem(certificate: x509.Certificate, email: str) -> str | None:
    """Why ``certificate`` is not a certificate for ``email``, or None (raises PkiError for a bad address)."""
    check_email_argument(email)
    named = certificate_email_addresses(certificate)
    if not named:
        return f"the certificate names no e-mail address (wanted {email})"
    if any(email_matches(email, n) for n in named):
        return None
    return f"the certificate is not for {email} (it names {', '.join(named)})"


def check_recipient_certificate(
    certificate: x509.Certificate, *, at: dt.datetime, email: str | None = None
) -> list[str]:
    """The problems with encrypting to ``certificate`` at ``at``, one sentence each ([] when none).

    Checks validity, key type and key usage for encryption, the emailProtection EKU and (when ``email`` is
    given) the address. It does not validate the path or revocation: use ``validate_path(...,
    purpose=KeyPurpose.ENCRYPTION)`` for that. Raises PkiError for bad arguments.
    """
    require_certificate("certificate", certificate)
    require_aware("at", at)
    problems = [
        validity_problem(certificate, at),
        key_usage_problem(certificate, KeyPurpose.ENCRYPTION),
        extended_key_usage_problem(certificate),
        address_problem(certificate, email) if email is not None else None,
    ]
    return [p for p in problems if p is not None]
