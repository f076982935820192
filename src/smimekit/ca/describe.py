"""``smimekit cert show``: what a certificate says, as plain values for people and for JSON. Pure."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa, x448, x25519
from cryptography.x509.oid import NameOID

from smimekit.pki.addresses import certificate_email_addresses

__all__ = ["CertificateInfo", "describe_certificate", "describe_key"]

_POLICY_NAMES = {
    "2.23.140.1.5.1.1": "S/MIME BR mailbox-validated legacy",
    "2.23.140.1.5.1.2": "S/MIME BR mailbox-validated multipurpose",
    "2.23.140.1.5.1.3": "S/MIME BR mailbox-validated strict",
    "2.23.140.1.5.2.1": "S/MIME BR organization-validated legacy",
    "2.23.140.1.5.2.2": "S/MIME BR organization-validated multipurpose",
    "2.23.140.1.5.2.3": "S/MIME BR organization-validated strict",
    "2.23.140.1.5.3.1": "S/MIME BR sponsor-validated legacy",
    "2.23.140.1.5.3.2": "S/MIME BR sponsor-validated multipurpose",
    "2.23.140.1.5.3.3": "S/MIME BR sponsor-validated strict",
    "2.23.140.1.5.4.1": "S/MIME BR individual-validated legacy",
    "2.23.140.1.5.4.2": "S/MIME BR individual-validated multipurpose",
    "2.23.140.1.5.4.3": "S/MIME BR individual-validated strict",
    "2.5.29.32.0": "anyPolicy",
}
_EKU_NAMES = {
    "1.3.6.1.5.5.7.3.1": "serverAuth",
    "1.3.6.1.5.5.7.3.2": "clientAuth",
    "1.3.6.1.5.5.7.3.3": "codeSigning",
    "1.3.6.1.5.5.7.3.4": "emailProtection",
    "1.3.6.1.5.5.7.3.8": "timeStamping",
    "1.3.6.1.5.5.7.3.9": "OCSPSigning",
    "2.5.29.37.0": "anyExtendedKeyUsage",
}


@dataclass(frozen=True)
class CertificateInfo:
    """The facts ``smimekit cert show`` prints. Times are UTC; lists are empty when the extension is absent
    (``key_usage`` is None then, as an absent keyUsage restricts nothing)."""

    subject: str
    issuer: str
    serial: str
    """Upper-case hex, as openssl prints it."""
    not_before: dt.datetime
    not_after: dt.datetime
    addresses: tuple[str, ...]
    key: str
    key_usage: tuple[str, ...] | None
    extended_key_usage: tuple[str, ...]
    policies: tuple[str, ...]
    """Dotted OIDs, with a name in parentheses where known."""
    is_ca: bool
    self_signed: bool
    sha256: str
    sha1: str

    def as_json(self) -> dict[str, object]:
        """The fields as JSON-ready values (times in ISO 8601)."""
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "serial": self.serial,
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "addresses": list(self.addresses),
            "key": self.key,
            "key_usage": None if self.key_usage is None else list(self.key_usage),
            "extended_key_usage": list(self.extended_key_usage),
            "policies": list(self.policies),
            "is_ca": self.is_ca,
            "self_signed": self.self_signed,
            "sha256": self.sha256,
            "sha1": self.sha1,
        }


def _name(name: x509.Name) -> str:
    try:
        return name.rfc4514_string({NameOID.EMAIL_ADDRESS: "E"})
    except ValueError:
        return "(unreadable name)"


def describe_key(key: object) -> str:
    """``RSA 3072``, ``EC P-256``, ``Ed25519``, ``X25519``, ..."""
    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        return f"RSA {key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        curves = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
        return f"EC {curves.get(key.curve.name, key.curve.name)}"
    if isinstance(key, dsa.DSAPublicKey | dsa.DSAPrivateKey):
        return f"DSA {key.key_size}"
    names: tuple[tuple[type, str], ...] = (
        (ed25519.Ed25519PublicKey, "Ed25519"),
        (ed448.Ed448PublicKey, "Ed448"),
        (x25519.X25519PublicKey, "X25519"),
        (x448.X448PublicKey, "X448"),
        (ed25519.Ed25519PrivateKey, "Ed25519"),
        (x25519.X25519PrivateKey, "X25519"),
    )
    return next((label for cls, label in names if isinstance(key, cls)), type(key).__name__)


def _extension(cert: x509.Certificate, cls: type[x509.ExtensionType]) -> x509.ExtensionType | None:
    try:
        return cert.extensions.get_extension_for_class(cls).value
    except (x509.ExtensionNotFound, ValueError):
        return None


def describe_certificate(certificate: x509.Certificate) -> CertificateInfo:
    """The facts of ``certificate`` (unreadable parts are shown as such, never raised)."""
    try:
        key = describe_key(certificate.public_key())
    except (ValueError, UnsupportedAlgorithm):
        key = f"unsupported ({certificate.public_key_algorithm_oid.dotted_string})"
    ku = _extension(certificate, x509.KeyUsage)
    usage: tuple[str, ...] | None = None
    if isinstance(ku, x509.KeyUsage):
        flags = [
            ("digitalSignature", ku.digital_signature),
            ("nonRepudiation", ku.content_commitment),
            ("keyEncipherment", ku.key_encipherment),
            ("dataEncipherment", ku.data_encipherment),
            ("keyAgreement", ku.key_agreement),
            ("keyCertSign", ku.key_cert_sign),
            ("cRLSign", ku.crl_sign),
            ("encipherOnly", ku.key_agreement and ku.encipher_only),
            ("decipherOnly", ku.key_agreement and ku.decipher_only),
        ]
        usage = tuple(name for name, on in flags if on)
    eku = _extension(certificate, x509.ExtendedKeyUsage)
    ekus = (
        tuple(_EKU_NAMES.get(o.dotted_string, o.dotted_string) for o in eku)
        if isinstance(eku, x509.ExtendedKeyUsage)
        else ()
    )
    cp = _extension(certificate, x509.CertificatePolicies)
    policies: tuple[str, ...] = ()
    if isinstance(cp, x509.CertificatePolicies):
        out = []
        for policy in cp:
            oid = policy.policy_identifier.dotted_string
            name = _POLICY_NAMES.get(oid)
            out.append(f"{oid} ({name})" if name else oid)
        policies = tuple(out)
    bc = _extension(certificate, x509.BasicConstraints)
    return CertificateInfo(
        subject=_name(certificate.subject),
        issuer=_name(certificate.issuer),
        serial=f"{certificate.serial_number:X}",
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        addresses=certificate_email_addresses(certificate),
        key=key,
        key_usage=usage,
        extended_key_usage=ekus,
        policies=policies,
        is_ca=isinstance(bc, x509.BasicConstraints) and bc.ca,
        self_signed=certificate.issuer == certificate.subject,
        sha256=certificate.fingerprint(hashes.SHA256()).hex(),
        sha1=certificate.fingerprint(hashes.SHA1()).hex(),
    )
