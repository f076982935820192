"""Making certificates: root and intermediate CAs, S/MIME end-entity certificates, OCSP responders.

Pure: the time, the keys and the URLs are parameters; nothing is read from a disk, a clock or a network
(random serial numbers and generated keys come from the operating system's CSPRNG). The end-entity
profile follows the CA/Browser Forum S/MIME Baseline Requirements for mailbox-validated certificates.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from asn1crypto import core as asn1_core
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa, x448, x25519
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
    PrivateKeyTypes,
)
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from smimekit.ca.profile import (
    DEFAULT_INTERMEDIATE_DAYS,
    DEFAULT_ROOT_DAYS,
    DEFAULT_SUBSCRIBER_DAYS,
    MAX_SUBSCRIBER_VALIDITY,
    OCSP_NO_CHECK,
    POLICY_MAILBOX_MULTIPURPOSE,
    POLICY_MAILBOX_STRICT,
    SMTP_UTF8_MAILBOX,
    Generation,
    KeyType,
    Usage,
)
from smimekit.errors import CaError, PkiError
from smimekit.pki.addresses import check_email_argument

__all__ = [
    "CaSigner",
    "Endpoints",
    "chain_of",
    "create_ca",
    "default_usage",
    "generate_key",
    "issue_certificate",
    "issue_ocsp_responder",
    "load_csr",
    "mailbox_names",
    "random_serial",
    "signature_hash",
]

_SIGNING_KEYS = (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey)


@dataclass(frozen=True)
class CaSigner:
    """A CA that signs: its certificate and its private key (which must match)."""

    certificate: x509.Certificate
    key: CertificateIssuerPrivateKeyTypes

    def __post_init__(self) -> None:
        if not isinstance(self.certificate, x509.Certificate):
            raise CaError("the CA certificate must be an x509.Certificate")
        if not isinstance(self.key, _SIGNING_KEYS):
            raise CaError(f"a CA key must be RSA, EC or Ed25519, not {type(self.key).__name__}")
        if self.key.public_key() != self.certificate.public_key():
            raise CaError("the CA key does not belong to the CA certificate")


@dataclass(frozen=True)
class Endpoints:
    """Where relying parties find revocation data and the issuer's certificate (all optional, HTTP URLs)."""

    crl_url: str | None = None
    ocsp_url: str | None = None
    ca_issuers_url: str | None = None

    def __post_init__(self) -> None:
        for name in ("crl_url", "ocsp_url", "ca_issuers_url"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, str) and value.startswith("http://")):
                raise CaError(f"{name.replace('_', ' ')} must be an http:// URL (BR 7.1.2.3), not {value!r}")


def generate_key(key_type: KeyType) -> PrivateKeyTypes:
    """A new private key of ``key_type``."""
    if not isinstance(key_type, KeyType):
        raise CaError(f"key_type must be a KeyType, not {type(key_type).__name__}")
    match key_type:
        case KeyType.RSA3072:
            return rsa.generate_private_key(public_exponent=65537, key_size=3072)
        case KeyType.P256:
            return ec.generate_private_key(ec.SECP256R1())
        case KeyType.P384:
            return ec.generate_private_key(ec.SECP384R1())
        case KeyType.ED25519:
            return ed25519.Ed25519PrivateKey.generate()
        case KeyType.X25519:
            return x25519.X25519PrivateKey.generate()


def random_serial() -> int:
    """A positive serial number of 127 random bits (16 bytes in DER; BR 7.1: at least 64 CSPRNG bits)."""
    while True:
        serial = secrets.randbits(127)
        if serial >= 1 << 64:
            return serial


def signature_hash(key: CertificateIssuerPrivateKeyTypes) -> hashes.SHA256 | hashes.SHA384 | None:
    """The hash a CA key signs with (BR 7.1.3.2): SHA-384 for P-384, none for Ed25519, else SHA-256."""
    if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size >= 384:
        return hashes.SHA384()
    return hashes.SHA256()


def _aware(name: str, value: object) -> dt.datetime:
    if not isinstance(value, dt.datetime) or value.utcoffset() is None:
        raise CaError(f"{name} must be a timezone-aware datetime")
    return value.astimezone(dt.UTC).replace(microsecond=0)


def _days(value: int, *, limit: dt.timedelta | None = None) -> dt.timedelta:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise CaError(f"the validity must be a positive number of days, not {value!r}")
    span = dt.timedelta(days=value)
    if limit is not None and span > limit:
        raise CaError(f"{value} days is longer than the {limit.days} days the BR allow (BR 6.3.2)")
    return span


def _name(common_name: str) -> x509.Name:
    if not isinstance(common_name, str) or not common_name.strip() or len(common_name) > 64:
        raise CaError(f"a CA name must be 1 to 64 characters, not {common_name!r}")
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _access(endpoints: Endpoints) -> list[x509.AccessDescription]:
    out = []
    if endpoints.ocsp_url:
        out.append(
            x509.AccessDescription(
                AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(endpoints.ocsp_url)
            )
        )
    if endpoints.ca_issuers_url:
        out.append(
            x509.AccessDescription(
                AuthorityInformationAccessOID.CA_ISSUERS,
                x509.UniformResourceIdentifier(endpoints.ca_issuers_url),
            )
        )
    return out


def _with_endpoints(builder: x509.CertificateBuilder, endpoints: Endpoints) -> x509.CertificateBuilder:
    if endpoints.crl_url:
        point = x509.DistributionPoint([x509.UniformResourceIdentifier(endpoints.crl_url)], None, None, None)
        builder = builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)
    access = _access(endpoints)
    if access:
        builder = builder.add_extension(x509.AuthorityInformationAccess(access), critical=False)
    return builder


def _aki(issuer: CaSigner) -> x509.AuthorityKeyIdentifier:
    try:
        ski = issuer.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
    except (x509.ExtensionNotFound, ValueError):
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key())


def create_ca(
    *,
    name: str,
    key: CertificateIssuerPrivateKeyTypes,
    now: dt.datetime,
    days: int | None = None,
    parent: CaSigner | None = None,
    parent_endpoints: Endpoints = Endpoints(),
    path_length: int | None = None,
) -> x509.Certificate:
    """A self-signed root CA certificate called ``name``, or an intermediate signed by ``parent``.

    Both have basicConstraints CA:TRUE (critical), keyUsage keyCertSign, cRLSign and digitalSignature (the
    CA key signs OCSP responses itself) and an SKI. An intermediate also gets an AKI, the emailProtection
    EKU and the BR mailbox-validated policies (BR 7.1.2.2), and ``parent_endpoints`` (the parent's CRL and
    OCSP URLs). Raises CaError for a key that cannot sign, a bad name or a bad number of days.
    """
    if not isinstance(key, _SIGNING_KEYS):
        raise CaError(f"a CA key must be RSA, EC or Ed25519, not {type(key).__name__}")
    start = _aware("now", now)
    span = _days(days if days is not None else (DEFAULT_INTERMEDIATE_DAYS if parent else DEFAULT_ROOT_DAYS))
    subject = _name(name)
    if parent is not None:
        if start < parent.certificate.not_valid_before_utc:
            raise CaError("the parent CA certificate is not valid yet")
        if start + span > parent.certificate.not_valid_after_utc:
            raise CaError("the intermediate would outlive its parent CA: give fewer days")
        if subject == parent.certificate.subject:
            raise CaError(f"the intermediate cannot have the name of its parent ({name!r})")
    public = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(parent.certificate.subject if parent else subject)
        .public_key(public)
        .serial_number(random_serial())
        .not_valid_before(start)
        .not_valid_after(start + span)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )
    if parent is None:
        return builder.sign(key, signature_hash(key))
    policies = [
        x509.PolicyInformation(oid, None) for oid in (POLICY_MAILBOX_STRICT, POLICY_MAILBOX_MULTIPURPOSE)
    ]
    builder = (
        builder.add_extension(_aki(parent), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.CertificatePolicies(policies), critical=False)
    )
    builder = _with_endpoints(builder, parent_endpoints)
    return builder.sign(parent.key, signature_hash(parent.key))


def mailbox_names(email: str) -> tuple[str, x509.GeneralName]:
    """The address as the certificate will name it, and its subjectAltName entry.

    The domain is lower-cased and written with A-labels; an ASCII local part gives an rfc822Name, a
    non-ASCII one an SmtpUTF8Mailbox otherName (RFC 9598). Raises CaError for something not an address.
    """
    try:
        check_email_argument(email)
    except PkiError as exc:
        raise CaError(exc.reason) from None
    local, _, domain = email.rpartition("@")
    if '"' in local or "\\" in local or local.startswith(".") or local.endswith(".") or ".." in local:
        raise CaError(f"{email!r} is not a plain e-mail address (quoted or dotted local parts are refused)")
    try:
        a_domain = domain.rstrip(".").encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise CaError(f"the domain of {email!r} is not a valid domain name") from None
    if not a_domain or any(not label for label in a_domain.split(".")):
        raise CaError(f"the domain of {email!r} is not a valid domain name")
    mailbox = f"{local}@{a_domain}"
    if local.isascii():
        return mailbox, x509.RFC822Name(mailbox)
    return mailbox, x509.OtherName(SMTP_UTF8_MAILBOX, asn1_core.UTF8String(mailbox).dump())


def _key_usage(public: CertificatePublicKeyTypes, usage: Usage) -> x509.KeyUsage:
    sign = usage in (Usage.SIGNING, Usage.BOTH)
    encrypt = usage in (Usage.ENCRYPTION, Usage.BOTH)
    if isinstance(public, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey) and encrypt:
        raise CaError("an Ed25519 key can only sign: use --usage signing (or an X25519 key to encrypt)")
    if isinstance(public, x25519.X25519PublicKey | x448.X448PublicKey) and sign:
        raise CaError("an X25519 key can only encrypt: use --usage encryption")
    if not isinstance(
        public,
        rsa.RSAPublicKey
        | ec.EllipticCurvePublicKey
        | ed25519.Ed25519PublicKey
        | ed448.Ed448PublicKey
        | x25519.X25519PublicKey
        | x448.X448PublicKey,
    ):
        raise CaError(f"{type(public).__name__} keys are not allowed by the BR (7.1.3.1)")
    if isinstance(public, rsa.RSAPublicKey) and (public.key_size < 2048 or public.key_size % 8):
        raise CaError(
            f"an RSA key of {public.key_size} bits is not allowed (BR 6.1.5: 2048 or more, a multiple of 8)"
        )
    if isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name not in (
        "secp256r1",
        "secp384r1",
        "secp521r1",
    ):
        raise CaError(f"the curve {public.curve.name} is not allowed (BR 6.1.5: P-256, P-384, P-521)")
    rsa_key = isinstance(public, rsa.RSAPublicKey)
    return x509.KeyUsage(
        digital_signature=sign,
        content_commitment=False,
        key_encipherment=encrypt and rsa_key,
        data_encipherment=False,
        key_agreement=encrypt and not rsa_key,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def default_usage(public: CertificatePublicKeyTypes) -> Usage:
    """What a key of this type can do: signing for Ed25519, encryption for X25519, both otherwise."""
    if isinstance(public, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return Usage.SIGNING
    if isinstance(public, x25519.X25519PublicKey | x448.X448PublicKey):
        return Usage.ENCRYPTION
    return Usage.BOTH


def issue_certificate(
    *,
    issuer: CaSigner,
    public_key: CertificatePublicKeyTypes,
    email: str,
    now: dt.datetime,
    usage: Usage | None = None,
    generation: Generation = Generation.STRICT,
    days: int = DEFAULT_SUBSCRIBER_DAYS,
    endpoints: Endpoints = Endpoints(),
    client_auth: bool = False,
) -> x509.Certificate:
    """A mailbox-validated S/MIME certificate for ``email`` and ``public_key``, signed by ``issuer``.

    The profile (BR 7.1.2.3, 7.1.4.2): subject CN (and emailAddress for an ASCII address) = the mailbox,
    which the subjectAltName names too; keyUsage (critical) for ``usage`` and the key type (default: what
    the key can do); EKU emailProtection (``client_auth`` adds clientAuth, multipurpose only); basic
    constraints CA:FALSE (critical); AKI, SKI; the generation's policy; the CRL and OCSP/caIssuers URLs of
    ``endpoints``; a random 16-byte serial; ``days`` of validity from ``now`` (at most 825). Raises CaError
    when any of these cannot be met (a key that cannot do ``usage``, a validity past the issuer's, ...).
    """
    if not isinstance(generation, Generation):
        raise CaError(f"generation must be a Generation, not {type(generation).__name__}")
    if usage is None:
        usage = default_usage(public_key)
    if not isinstance(usage, Usage):
        raise CaError(f"usage must be a Usage, not {type(usage).__name__}")
    if client_auth and generation is not Generation.MULTIPURPOSE:
        raise CaError("clientAuth is allowed in the multipurpose profile only (BR 7.1.2.3(f))")
    start = _aware("now", now)
    end = start + _days(days, limit=MAX_SUBSCRIBER_VALIDITY) - dt.timedelta(seconds=1)
    if end > issuer.certificate.not_valid_after_utc:
        raise CaError("the certificate would outlive its CA: give fewer days")
    if start < issuer.certificate.not_valid_before_utc:
        raise CaError("the CA certificate is not valid yet")
    ku = _key_usage(public_key, usage)
    mailbox, san = mailbox_names(email)
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, mailbox)]
    if mailbox.isascii():
        attributes.append(x509.NameAttribute(NameOID.EMAIL_ADDRESS, mailbox))
    purposes = [ExtendedKeyUsageOID.EMAIL_PROTECTION]
    if client_auth:
        purposes.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(attributes))
        .issuer_name(issuer.certificate.subject)
        .public_key(public_key)
        .serial_number(random_serial())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(ku, critical=True)
        .add_extension(x509.ExtendedKeyUsage(purposes), critical=False)
        .add_extension(x509.SubjectAlternativeName([san]), critical=False)
        .add_extension(
            x509.CertificatePolicies([x509.PolicyInformation(generation.policy, None)]), critical=False
        )
        .add_extension(_aki(issuer), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    builder = _with_endpoints(builder, endpoints)
    return builder.sign(issuer.key, signature_hash(issuer.key))


def issue_ocsp_responder(
    *, issuer: CaSigner, public_key: CertificatePublicKeyTypes, now: dt.datetime, days: int = 7
) -> x509.Certificate:
    """A delegated OCSP responder certificate for ``issuer`` (RFC 6960 §4.2.2.2): EKU id-kp-OCSPSigning,
    keyUsage digitalSignature, id-pkix-ocsp-nocheck, short-lived. Raises CaError for a key that cannot sign."""
    if not isinstance(public_key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
        raise CaError(f"an OCSP responder needs a signing key, not {type(public_key).__name__}")
    start = _aware("now", now)
    end = start + _days(days)
    if end > issuer.certificate.not_valid_after_utc:
        raise CaError("the responder certificate would outlive its CA: give fewer days")
    common_name = issuer.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    label = str(common_name[0].value) if common_name else "CA"
    return (
        x509.CertificateBuilder()
        .subject_name(_name(f"{label[:50]} OCSP Responder"))
        .issuer_name(issuer.certificate.subject)
        .public_key(public_key)
        .serial_number(random_serial())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
        .add_extension(x509.UnrecognizedExtension(OCSP_NO_CHECK, b"\x05\x00"), critical=False)
        .add_extension(_aki(issuer), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .sign(issuer.key, signature_hash(issuer.key))
    )


def load_csr(data: bytes) -> x509.CertificateSigningRequest:
    """The certificate signing request in ``data`` (PEM or DER), its self-signature checked.

    Only its public key is used: the address and everything else come from the CA. Raises CaError for
    something that is not a CSR, or one whose signature does not verify (proof of possession fails).
    """
    if not isinstance(data, bytes | bytearray):
        raise CaError("the CSR must be bytes")
    try:
        if b"-----BEGIN" in data:
            csr = x509.load_pem_x509_csr(bytes(data))
        else:
            csr = x509.load_der_x509_csr(bytes(data))
    except ValueError as exc:
        raise CaError(f"not a certificate signing request (PEM or DER): {exc}") from None
    try:
        valid = csr.is_signature_valid
        csr.public_key()
    except (ValueError, UnsupportedAlgorithm, InvalidSignature) as exc:
        raise CaError(f"the CSR cannot be checked: {exc}") from None
    if not valid:
        raise CaError("the CSR's signature does not verify (it was not signed by the key it holds)")
    return csr


def chain_of(
    certificate: x509.Certificate, candidates: Sequence[x509.Certificate]
) -> tuple[x509.Certificate, ...]:
    """The issuers of ``certificate`` among ``candidates``, nearest first, up to a self-signed one."""
    chain: list[x509.Certificate] = []
    current = certificate
    for _ in range(8):
        if current.issuer == current.subject:
            break
        issuer = next(
            (c for c in candidates if c.subject == current.issuer and c not in chain and c != current), None
        )
        if issuer is None:
            break
        chain.append(issuer)
        current = issuer
    return tuple(chain)
