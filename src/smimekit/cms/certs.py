"""Certificates inside CMS: reading the certificate set, finding a signer's certificate, getting its key.

Trust is not decided here: this module only matches identifiers and extracts public keys.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm as CryptographyUnsupported
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa

from smimekit.cms import _asn1
from smimekit.cms.algorithms import OID_DSA, VerifyingKey
from smimekit.errors import CmsFormatError, UnsupportedAlgorithmError


@dataclass(frozen=True)
class CertificateEntry:
    """One certificate: its DER, and the cryptography object when cryptography can read it."""

    der: bytes
    certificate: x509.Certificate | None

    @classmethod
    def from_der(cls, der: bytes) -> CertificateEntry:
        try:
            return cls(der, x509.load_der_x509_certificate(der))
        except (ValueError, x509.InvalidVersion):
            return cls(der, None)

    @classmethod
    def from_certificate(cls, cert: x509.Certificate) -> CertificateEntry:
        return cls(cert.public_bytes(serialization.Encoding.DER), cert)


@dataclass(frozen=True)
class SignerIdentifier:
    """A SignerIdentifier: issuer DER name + serial number, or a subject key identifier."""

    issuer: bytes | None = None
    serial_number: int | None = None
    subject_key_identifier: bytes | None = None

    def describe(self) -> str:
        """A short human description."""
        if self.subject_key_identifier is not None:
            return f"subject key identifier {self.subject_key_identifier.hex()}"
        name = _describe_name(self.issuer or b"")
        return f"issuer {name}, serial number {self.serial_number:#x}"

    def matches(self, entry: CertificateEntry) -> bool:
        """True when ``entry`` is the certificate this identifier names."""
        info = _tbs_summary(entry.der)
        if info is None:
            return False
        issuer, serial, ski = info
        if self.subject_key_identifier is not None:
            return ski == self.subject_key_identifier
        return serial == self.serial_number and _asn1.names_equal(issuer, self.issuer or b"")


def identifier_from(sid: _asn1.Asn1) -> SignerIdentifier:
    """Read a SignerIdentifier CHOICE (also a SMIMEEncryptionKeyPreference's issuerAndSerialNumber)."""
    name = str(sid.name)
    if name == "subject_key_identifier":
        return SignerIdentifier(subject_key_identifier=_asn1.octets(sid.chosen))
    chosen = sid.chosen
    return SignerIdentifier(
        issuer=_asn1.dump(chosen["issuer"]), serial_number=_asn1.integer(chosen["serial_number"])
    )


def identifier_for(cert: x509.Certificate) -> SignerIdentifier:
    """The issuerAndSerialNumber identifier of ``cert``."""
    return SignerIdentifier(issuer=cert.issuer.public_bytes(), serial_number=cert.serial_number)


def subject_key_identifier(cert: x509.Certificate) -> bytes:
    """The certificate's SKI extension, or the RFC 5280 §4.2.1.2 method-1 hash of its public key."""
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest


def read_certificate_set(certificates: _asn1.Asn1) -> tuple[CertificateEntry, ...]:
    """The X.509 certificates of a SignedData ``certificates`` field (other choices are skipped)."""
    if not _asn1.is_present(certificates):
        return ()
    out = []
    for choice in certificates:
        if str(choice.name) == "certificate":
            out.append(CertificateEntry.from_der(_asn1.dump(choice.chosen)))
    return tuple(out)


def find(sid: SignerIdentifier, candidates: Iterable[CertificateEntry]) -> CertificateEntry | None:
    """The first candidate that ``sid`` names, or None."""
    for entry in candidates:
        if sid.matches(entry):
            return entry
    return None


def public_key(entry: CertificateEntry, candidates: Sequence[CertificateEntry]) -> tuple[VerifyingKey, bool]:
    """The public key of ``entry`` and whether DSA parameters had to be inherited from its issuer.

    RFC 3279 §2.3.2 lets a DSA certificate omit its parameters and inherit its issuer's; cryptography
    cannot read such a certificate, so the key is rebuilt from the issuer's parameters. Raises
    UnsupportedAlgorithmError for keys of other types, CmsFormatError when the key cannot be read.
    """
    if entry.certificate is not None:
        try:
            key = entry.certificate.public_key()
        except (ValueError, CryptographyUnsupported) as exc:
            raise CmsFormatError(f"cannot read the signer's public key: {exc}") from exc
        if not isinstance(key, VerifyingKey):
            raise UnsupportedAlgorithmError(type(key).__name__, reason="is not a supported signing key type")
        return key, False
    return _inherited_dsa_key(entry, candidates), True


def _inherited_dsa_key(entry: CertificateEntry, candidates: Sequence[CertificateEntry]) -> dsa.DSAPublicKey:
    def _read() -> dsa.DSAPublicKey:
        spki = _asn1.x509.Certificate.load(entry.der, strict=True)["tbs_certificate"][
            "subject_public_key_info"
        ]
        if _asn1.oid(spki["algorithm"]["algorithm"]) != OID_DSA:
            raise CmsFormatError("the signer's certificate cannot be read")
        y = _asn1.integer(spki["public_key"].parsed)
        p, q, g = _dsa_parameters(entry.der, candidates, _MAX_INHERITANCE)
        return dsa.DSAPublicNumbers(y, dsa.DSAParameterNumbers(p, q, g)).public_key()

    return _asn1.guarded("cannot read the signer's certificate", _read)


_MAX_INHERITANCE = 8


def _dsa_parameters(der: bytes, candidates: Sequence[CertificateEntry], depth: int) -> tuple[int, int, int]:
    """DSA (p, q, g) of a certificate, inherited up the issuer chain when absent (RFC 3279 §2.3.2)."""
    tbs = _asn1.x509.Certificate.load(der, strict=True)["tbs_certificate"]
    algorithm = tbs["subject_public_key_info"]["algorithm"]
    if _asn1.oid(algorithm["algorithm"]) != OID_DSA:
        raise CmsFormatError("a DSA certificate inherits parameters from a non-DSA issuer")
    if _asn1.algorithm_params(algorithm) is not None:
        params = algorithm["parameters"]
        return _asn1.integer(params["p"]), _asn1.integer(params["q"]), _asn1.integer(params["g"])
    if depth <= 0:
        raise CmsFormatError("DSA parameter inheritance goes too deep")
    issuer = _asn1.dump(tbs["issuer"])
    for cand in candidates:
        if cand.der == der:
            continue
        subject = _asn1.dump(_asn1.x509.Certificate.load(cand.der)["tbs_certificate"]["subject"])
        if _asn1.names_equal(subject, issuer):
            return _dsa_parameters(cand.der, candidates, depth - 1)
    raise CmsFormatError(
        "the signer's DSA certificate inherits parameters from an issuer that is not present"
    )


def _tbs_summary(der: bytes) -> tuple[bytes, int, bytes | None] | None:
    """(issuer DER, serial, SKI or None) of a certificate, read with asn1crypto so odd keys still match."""
    try:
        cert = _asn1.x509.Certificate.load(der)
        tbs = cert["tbs_certificate"]
        ski = cert.key_identifier
        if ski is None:
            ski = hashlib.sha1(bytes(tbs["subject_public_key_info"]["public_key"].contents[1:])).digest()
        return _asn1.dump(tbs["issuer"]), _asn1.integer(tbs["serial_number"]), bytes(ski)
    except _asn1.PARSE_ERRORS:
        return None


def _describe_name(der: bytes) -> str:
    try:
        return str(_asn1.x509.Name.load(der).human_friendly)
    except _asn1.PARSE_ERRORS:
        return der.hex()
