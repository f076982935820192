"""``smimekit cert lint``: how a certificate deviates from the CA/Browser Forum S/MIME Baseline Requirements.

Each rule that a certificate breaks gives one :class:`Finding` naming the rule (``BR 7.1.2.3(f)``, or the
RFC for requirements the BR inherit) and saying what is wrong. A broken SHALL is an error, an ignored
SHOULD a warning. Subscriber (end-entity) certificates are checked against the profile of BR 7.1.2.3 and
7.1.4.2 for their generation (strict, multipurpose or legacy, read from the reserved policy OID); root
and subordinate CA certificates against the smaller profiles of BR 7.1.2.1 and 7.1.2.2. Pure.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa, x448, x25519
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from smimekit.ca.profile import SMTP_UTF8_MAILBOX
from smimekit.errors import CaError
from smimekit.pki.addresses import smtp_utf8_mailboxes

__all__ = ["CertificateKind", "Finding", "LintReport", "Severity", "lint_certificate"]

_SMIME_ARC = "2.23.140.1.5."
_VALIDATION = {"1": "mailbox", "2": "organization", "3": "sponsor", "4": "individual"}
_GENERATION = {"1": "legacy", "2": "multipurpose", "3": "strict"}
_LEGACY_CUTOFF = dt.datetime(2025, 7, 15, tzinfo=dt.UTC)
_MAX_DAYS = {"legacy": 1185, "multipurpose": 825, "strict": 825}
_SIGNATURE_OIDS = {
    "1.2.840.113549.1.1.11",  # sha256WithRSAEncryption
    "1.2.840.113549.1.1.12",  # sha384WithRSAEncryption
    "1.2.840.113549.1.1.13",  # sha512WithRSAEncryption
    "1.2.840.113549.1.1.10",  # RSASSA-PSS
    "1.2.840.10045.4.3.2",  # ecdsa-with-SHA256
    "1.2.840.10045.4.3.3",  # ecdsa-with-SHA384
    "1.2.840.10045.4.3.4",  # ecdsa-with-SHA512
    "1.3.101.112",  # Ed25519
    "1.3.101.113",  # Ed448
}
_CURVES = {"secp256r1", "secp384r1", "secp521r1"}
_FORBIDDEN_EKU = {
    ExtendedKeyUsageOID.SERVER_AUTH: "id-kp-serverAuth",
    ExtendedKeyUsageOID.CODE_SIGNING: "id-kp-codeSigning",
    ExtendedKeyUsageOID.TIME_STAMPING: "id-kp-timeStamping",
    ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE: "anyExtendedKeyUsage",
}
_MAILBOX_SUBJECT = {NameOID.COMMON_NAME, NameOID.EMAIL_ADDRESS, NameOID.SERIAL_NUMBER}


class Severity(enum.Enum):
    """ERROR: a SHALL (MUST) is broken. WARNING: a SHOULD is not followed."""

    ERROR = "error"
    WARNING = "warning"


class CertificateKind(enum.Enum):
    """Which profile a certificate was checked against."""

    SUBSCRIBER = "subscriber"
    ROOT_CA = "root CA"
    SUBORDINATE_CA = "subordinate CA"


@dataclass(frozen=True)
class Finding:
    """One deviation: ``rule`` (``BR 7.1.2.3(f)``), what is wrong, and how bad."""

    rule: str
    message: str
    severity: Severity = Severity.ERROR

    def __str__(self) -> str:
        return f"{self.rule}: {self.message}"


@dataclass(frozen=True)
class LintReport:
    """What :func:`lint_certificate` found. ``generation`` and ``validation`` come from the certificate's
    reserved S/MIME policy (None when it has none, or for a CA)."""

    kind: CertificateKind
    generation: str | None
    validation: str | None
    findings: tuple[Finding, ...]

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.WARNING)

    @property
    def clean(self) -> bool:
        """No deviation at all, not even a warning."""
        return not self.findings


class _Linter:
    def __init__(self, certificate: x509.Certificate) -> None:
        self.cert = certificate
        self.findings: list[Finding] = []
        self.exts: dict[x509.ObjectIdentifier, x509.Extension[x509.ExtensionType]] = {}

    def fail(self, rule: str, message: str, severity: Severity = Severity.ERROR) -> None:
        self.findings.append(Finding(rule, message, severity))

    def warn(self, rule: str, message: str) -> None:
        self.fail(rule, message, Severity.WARNING)

    def get(self, cls: type[x509.ExtensionType]) -> x509.Extension[x509.ExtensionType] | None:
        return self.exts.get(cls.oid)

    # -- common to every certificate ------------------------------------------------------------
    def common(self) -> None:
        cert = self.cert
        if cert.version is not x509.Version.v3:
            self.fail("RFC 5280 4.1.2.1", "the certificate must be version 3")
        serial = cert.serial_number
        if serial <= 0:
            self.fail("RFC 5280 4.1.2.2", "the serial number must be positive")
        elif (serial.bit_length() + 8) // 8 > 20:
            self.fail("RFC 5280 4.1.2.2", "the serial number must not be longer than 20 octets")
        elif serial.bit_length() < 64:
            self.fail("BR 7.1", "the serial number must hold at least 64 bits of CSPRNG output")
        if cert.not_valid_after_utc <= cert.not_valid_before_utc:
            self.fail("RFC 5280 4.1.2.5", "notAfter must be after notBefore")
        if cert.signature_algorithm_oid.dotted_string not in _SIGNATURE_OIDS:
            name = getattr(cert.signature_algorithm_oid, "_name", cert.signature_algorithm_oid.dotted_string)
            self.fail("BR 7.1.3.2", f"the signature algorithm {name} is not allowed")
        self.public_key()
        if self.get(x509.SubjectKeyIdentifier) is None:
            if self.is_ca():
                self.fail("RFC 5280 4.2.1.2", "a CA certificate must have a subjectKeyIdentifier")
            else:
                self.warn("RFC 5280 4.2.1.2", "subjectKeyIdentifier should be present")
        aki = self.get(x509.AuthorityKeyIdentifier)
        self_signed = cert.issuer == cert.subject
        if aki is None:
            if not self_signed:
                self.fail(self.rule("g"), "authorityKeyIdentifier must be present")
        else:
            value = aki.value
            assert isinstance(value, x509.AuthorityKeyIdentifier)
            if aki.critical:
                self.fail("RFC 5280 4.2.1.1", "authorityKeyIdentifier must not be critical")
            if value.key_identifier is None:
                self.fail(self.rule("g"), "authorityKeyIdentifier must contain a keyIdentifier")
            if value.authority_cert_issuer is not None or value.authority_cert_serial_number is not None:
                self.fail(
                    self.rule("g"),
                    "authorityKeyIdentifier must not contain authorityCertIssuer or authorityCertSerialNumber",
                )

    def rule(self, letter: str) -> str:
        return (
            f"BR 7.1.2.3({letter})"
            if not self.is_ca()
            else ("BR 7.1.2.1" if self.is_root() else "BR 7.1.2.2")
        )

    def is_ca(self) -> bool:
        bc = self.get(x509.BasicConstraints)
        return bc is not None and isinstance(bc.value, x509.BasicConstraints) and bc.value.ca

    def is_root(self) -> bool:
        return self.is_ca() and self.cert.issuer == self.cert.subject

    def public_key(self) -> None:
        try:
            key = self.cert.public_key()
        except (ValueError, UnsupportedAlgorithm):
            self.fail("BR 7.1.3.1", "the subject public key algorithm is not allowed (or unreadable)")
            return
        if isinstance(key, rsa.RSAPublicKey):
            if key.key_size < 2048 or key.key_size % 8:
                self.fail(
                    "BR 6.1.5",
                    f"an RSA modulus must be at least 2048 bits and a multiple of 8, not {key.key_size}",
                )
            exponent = key.public_numbers().e
            if exponent < 3 or exponent % 2 == 0:
                self.fail("BR 6.1.6", "the RSA public exponent must be an odd number of 3 or more")
        elif isinstance(key, ec.EllipticCurvePublicKey):
            if key.curve.name not in _CURVES:
                self.fail("BR 6.1.5", f"the curve {key.curve.name} is not allowed (P-256, P-384, P-521)")
        elif not isinstance(
            key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey | x25519.X25519PublicKey | x448.X448PublicKey
        ):
            self.fail(
                "BR 7.1.3.1",
                f"{type(key).__name__.removesuffix('PublicKey').removeprefix('_')} keys are not allowed",
            )

    # -- CA certificates ------------------------------------------------------------------------
    def ca(self) -> None:
        section = "BR 7.1.2.1" if self.is_root() else "BR 7.1.2.2"
        bc = self.get(x509.BasicConstraints)
        if bc is not None and not bc.critical:
            self.fail(section, "basicConstraints must be critical in a CA certificate")
        ku = self.get(x509.KeyUsage)
        if ku is None:
            self.fail(section, "keyUsage must be present")
        else:
            value = ku.value
            assert isinstance(value, x509.KeyUsage)
            if not ku.critical:
                self.fail(section, "keyUsage must be critical")
            if not (value.key_cert_sign and value.crl_sign):
                self.fail(section, "keyUsage must assert keyCertSign and cRLSign")
        eku = self.get(x509.ExtendedKeyUsage)
        if self.is_root():
            if eku is not None:
                self.fail(section, "extKeyUsage must not be present in a root CA certificate")
            return
        if eku is None:
            self.fail(section, "extKeyUsage must be present in a subordinate CA certificate")
        else:
            usages = list(eku.value)  # type: ignore[call-overload]
            if ExtendedKeyUsageOID.EMAIL_PROTECTION not in usages:
                self.fail(section, "extKeyUsage must contain id-kp-emailProtection")
            for oid, name in _FORBIDDEN_EKU.items():
                if oid in usages:
                    self.fail(section, f"extKeyUsage must not contain {name}")
        if self.get(x509.CertificatePolicies) is None:
            self.fail(section, "certificatePolicies must be present")
        self.crl_distribution_points(section)

    # -- subscriber certificates ----------------------------------------------------------------
    def policies(self) -> tuple[str | None, str | None]:
        ext = self.get(x509.CertificatePolicies)
        if ext is None:
            self.fail("BR 7.1.2.3(a)", "certificatePolicies must be present")
            return None, None
        if ext.critical:
            self.warn("BR 7.1.2.3(a)", "certificatePolicies should not be critical")
        oids = [p.policy_identifier.dotted_string for p in ext.value]  # type: ignore[attr-defined]
        if "2.5.29.32.0" in oids:
            self.fail("BR 7.1.2.3(a)", "anyPolicy must not be present in a subscriber certificate")
        reserved = [o for o in oids if o.startswith(_SMIME_ARC) and len(o.split(".")) == 7]
        known = [o for o in reserved if o.split(".")[5] in _VALIDATION and o.split(".")[6] in _GENERATION]
        if len(known) != 1:
            self.fail(
                "BR 7.1.2.3(a)",
                "certificatePolicies must contain exactly one reserved S/MIME policy identifier (BR 7.1.6.1)",
            )
            return None, None
        parts = known[0].split(".")
        return _VALIDATION[parts[5]], _GENERATION[parts[6]]

    def validity(self, generation: str | None) -> None:
        if generation is None:
            return
        span = self.cert.not_valid_after_utc - self.cert.not_valid_before_utc + dt.timedelta(seconds=1)
        limit = _MAX_DAYS[generation]
        if span > dt.timedelta(days=limit):
            self.fail(
                "BR 6.3.2",
                f"the validity period must not exceed {limit} days ({generation}), it is {span.days}",
            )
        if generation == "legacy" and self.cert.not_valid_before_utc >= _LEGACY_CUTOFF:
            self.fail("BR 7.1.6.1", "legacy generation certificates must not be issued after 2025-07-15")

    def crl_distribution_points(self, rule: str) -> None:
        ext = self.get(x509.CRLDistributionPoints)
        if ext is None:
            self.fail(rule, "cRLDistributionPoints must be present")
            return
        if ext.critical:
            self.warn(rule, "cRLDistributionPoints should not be critical")
        uris = []
        for point in ext.value:  # type: ignore[attr-defined]
            for name in point.full_name or ():
                if not isinstance(name, x509.UniformResourceIdentifier):
                    self.fail(rule, "cRLDistributionPoints must name URIs only")
                else:
                    uris.append(name.value)
        if not uris:
            self.fail(rule, "cRLDistributionPoints must contain an HTTP URL")
        elif not all(u.lower().startswith("http://") for u in uris):
            self.fail(rule, "every cRLDistributionPoints URL must have the scheme HTTP")

    def authority_information_access(self) -> None:
        ext = self.get(x509.AuthorityInformationAccess)
        if ext is None:
            self.warn("BR 7.1.2.3(c)", "authorityInformationAccess should be present")
            return
        if ext.critical:
            self.fail("RFC 5280 4.2.2.1", "authorityInformationAccess must not be critical")
        methods = set()
        for access in ext.value:  # type: ignore[attr-defined]
            methods.add(access.access_method)
            if access.access_method not in (
                AuthorityInformationAccessOID.OCSP,
                AuthorityInformationAccessOID.CA_ISSUERS,
            ):
                self.fail(
                    "BR 7.1.2.3(c)",
                    "authorityInformationAccess must contain only id-ad-ocsp and id-ad-caIssuers",
                )
            location = access.access_location
            if not isinstance(
                location, x509.UniformResourceIdentifier
            ) or not location.value.lower().startswith("http://"):
                self.fail("BR 7.1.2.3(c)", "every authorityInformationAccess location must be an HTTP URL")
        if AuthorityInformationAccessOID.CA_ISSUERS not in methods:
            self.warn("BR 7.1.2.3(c)", "authorityInformationAccess should contain an id-ad-caIssuers URL")

    def key_usage(self, generation: str | None) -> None:
        ext = self.get(x509.KeyUsage)
        if ext is None:
            self.fail("BR 7.1.2.3(e)", "keyUsage must be present")
            return
        if not ext.critical:
            self.warn("BR 7.1.2.3(e)", "keyUsage should be critical")
        ku = ext.value
        assert isinstance(ku, x509.KeyUsage)
        bits = {
            "digitalSignature": ku.digital_signature,
            "nonRepudiation": ku.content_commitment,
            "keyEncipherment": ku.key_encipherment,
            "dataEncipherment": ku.data_encipherment,
            "keyAgreement": ku.key_agreement,
            "keyCertSign": ku.key_cert_sign,
            "cRLSign": ku.crl_sign,
            "encipherOnly": ku.key_agreement and ku.encipher_only,
            "decipherOnly": ku.key_agreement and ku.decipher_only,
        }
        asserted = {name for name, on in bits.items() if on}
        try:
            key = self.cert.public_key()
        except (ValueError, UnsupportedAlgorithm):
            return
        if isinstance(key, rsa.RSAPublicKey):
            kind, allowed, needed = (
                "an RSA",
                {"digitalSignature", "nonRepudiation", "keyEncipherment"},
                {"digitalSignature", "keyEncipherment"},
            )
            if generation != "strict":
                allowed.add("dataEncipherment")
        elif isinstance(key, ec.EllipticCurvePublicKey):
            kind = "an EC"
            allowed = {"digitalSignature", "nonRepudiation", "keyAgreement", "encipherOnly", "decipherOnly"}
            needed = {"digitalSignature", "keyAgreement"}
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            kind, allowed, needed = "an EdDSA", {"digitalSignature", "nonRepudiation"}, {"digitalSignature"}
        elif isinstance(key, x25519.X25519PublicKey | x448.X448PublicKey):
            kind, allowed, needed = (
                "an X25519/X448",
                {"keyAgreement", "encipherOnly", "decipherOnly"},
                {"keyAgreement"},
            )
        else:
            return
        for name in sorted(asserted - allowed):
            self.fail("BR 7.1.2.3(e)", f"keyUsage must not assert {name} for {kind} key")
        if not asserted & needed:
            wanted = " or ".join(sorted(needed))
            self.fail("BR 7.1.2.3(e)", f"keyUsage must assert {wanted} for {kind} key")

    def extended_key_usage(self, generation: str | None) -> None:
        ext = self.get(x509.ExtendedKeyUsage)
        if ext is None:
            self.fail("BR 7.1.2.3(f)", "extKeyUsage must be present")
            return
        usages = list(ext.value)  # type: ignore[call-overload]
        if ExtendedKeyUsageOID.EMAIL_PROTECTION not in usages:
            self.fail("BR 7.1.2.3(f)", "extKeyUsage must contain id-kp-emailProtection")
        if generation == "strict":
            others = [u for u in usages if u != ExtendedKeyUsageOID.EMAIL_PROTECTION]
            if others:
                names = ", ".join(getattr(u, "_name", u.dotted_string) for u in others)
                self.fail(
                    "BR 7.1.2.3(f)",
                    f"extKeyUsage must contain nothing but id-kp-emailProtection (strict): {names}",
                )
            return
        for oid, name in _FORBIDDEN_EKU.items():
            if oid in usages:
                self.fail("BR 7.1.2.3(f)", f"extKeyUsage must not contain {name}")

    def subject_alt_name(self, generation: str | None, validation: str | None) -> None:
        ext = self.get(x509.SubjectAlternativeName)
        if ext is None:
            self.fail("BR 7.1.4.2.1", "subjectAltName must be present")
            return
        names = list(ext.value)  # type: ignore[call-overload]
        mailboxes = [n.value for n in names if isinstance(n, x509.RFC822Name)]
        utf8 = list(smtp_utf8_mailboxes(ext.value))  # type: ignore[arg-type]
        for n in names:
            if isinstance(n, x509.OtherName):
                if n.type_id != SMTP_UTF8_MAILBOX and generation == "strict":
                    self.fail(
                        "BR 7.1.4.2.1",
                        f"subjectAltName must not contain otherName {n.type_id.dotted_string} (strict)",
                    )
            elif not isinstance(n, x509.RFC822Name):
                self.fail("BR 7.1.4.2.1", f"subjectAltName must not contain a {type(n).__name__}")
        for mailbox in utf8:
            if mailbox.rpartition("@")[0].isascii():
                self.fail(
                    "RFC 8398 3",
                    f"an ASCII mailbox must be an rfc822Name, not an SmtpUTF8Mailbox ({mailbox})",
                )
        addresses = mailboxes + utf8
        if not addresses:
            self.fail("BR 7.1.4.2.1", "subjectAltName must contain an rfc822Name or SmtpUTF8Mailbox")
        self.subject(addresses, validation)

    def subject(self, addresses: list[str], validation: str | None) -> None:
        known = {a.lower() for a in addresses}
        for attr in self.cert.subject:
            value = str(attr.value)
            if attr.oid == NameOID.EMAIL_ADDRESS and value.lower() not in known:
                self.fail(
                    "BR 7.1.4.2.1", f"the subject emailAddress {value} must be repeated in subjectAltName"
                )
            if validation == "mailbox":
                if attr.oid not in _MAILBOX_SUBJECT:
                    name = getattr(attr.oid, "_name", attr.oid.dotted_string)
                    self.fail("BR 7.1.4.2.3", f"a mailbox-validated subject must not contain {name}")
                if attr.oid == NameOID.COMMON_NAME and value.lower() not in known:
                    self.fail(
                        "BR 7.1.4.2.2(a)",
                        f"the subject commonName {value!r} must be a mailbox address of subjectAltName",
                    )

    def subscriber(self) -> tuple[str | None, str | None]:
        validation, generation = self.policies()
        self.validity(generation)
        self.crl_distribution_points("BR 7.1.2.3(b)")
        self.authority_information_access()
        self.key_usage(generation)
        self.extended_key_usage(generation)
        self.subject_alt_name(generation, validation)
        return validation, generation


def lint_certificate(certificate: x509.Certificate) -> LintReport:
    """Every deviation of ``certificate`` from the S/MIME BR profile that applies to it.

    Raises CaError only for something that is not a certificate; a certificate whose extensions cannot be
    parsed at all is reported as one finding.
    """
    if not isinstance(certificate, x509.Certificate):
        raise CaError(f"lint_certificate needs an x509.Certificate, not {type(certificate).__name__}")
    linter = _Linter(certificate)
    try:
        linter.exts = {ext.oid: ext for ext in certificate.extensions}
    except ValueError as exc:  # duplicate or malformed extensions: nothing else can be judged
        finding = Finding("RFC 5280 4.2", f"the extensions cannot be parsed: {exc}")
        return LintReport(CertificateKind.SUBSCRIBER, None, None, (finding,))
    linter.common()
    if linter.is_ca():
        linter.ca()
        kind = CertificateKind.ROOT_CA if linter.is_root() else CertificateKind.SUBORDINATE_CA
        return LintReport(kind, None, None, tuple(linter.findings))
    validation, generation = linter.subscriber()
    return LintReport(CertificateKind.SUBSCRIBER, generation, validation, tuple(linter.findings))
