"""The linter: clean on what our CA issues (see test_issue), and each rule fires on a certificate broken
in just that way, built by hand here."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import core as asn1_core
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa, x25519
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, ExtensionOID, NameOID

from smimekit import ca
from smimekit.cli.main import cli
from tests.ca._support import NOW, Hierarchy

EMAIL = "alice@example.org"
SMTP_UTF8_MAILBOX = x509.ObjectIdentifier("1.3.6.1.5.5.7.8.9")
_EC_KEY = ec.generate_private_key(ec.SECP256R1())


def _ku(**bits: bool) -> x509.KeyUsage:
    names = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
             "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")  # fmt: skip
    return x509.KeyUsage(**{n: bits.get(n, False) for n in names})


def _uri(url: str) -> x509.UniformResourceIdentifier:
    return x509.UniformResourceIdentifier(url)


def _base_extensions(
    h: Hierarchy, public: Any, policy: str = "2.23.140.1.5.1.3"
) -> dict[str, tuple[x509.ExtensionType, bool]]:
    return {
        "bc": (x509.BasicConstraints(ca=False, path_length=None), True),
        "ku": (_ku(digital_signature=True, key_agreement=True), True),
        "eku": (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False),
        "san": (x509.SubjectAlternativeName([x509.RFC822Name(EMAIL)]), False),
        "cp": (
            x509.CertificatePolicies([x509.PolicyInformation(x509.ObjectIdentifier(policy), None)]),
            False,
        ),
        "crl": (
            x509.CRLDistributionPoints(
                [x509.DistributionPoint([_uri("http://127.0.0.1/c.crl")], None, None, None)]
            ),
            False,
        ),
        "aia": (
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(AuthorityInformationAccessOID.OCSP, _uri("http://127.0.0.1/ocsp")),
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.CA_ISSUERS, _uri("http://127.0.0.1/ca.der")
                    ),
                ]
            ),
            False,
        ),
        "aki": (x509.AuthorityKeyIdentifier.from_issuer_public_key(h.sub.key.public_key()), False),  # type: ignore[arg-type]
        "ski": (x509.SubjectKeyIdentifier.from_public_key(public), False),
    }


def build(h: Hierarchy, **changes: Any) -> x509.Certificate:
    """A clean strict mailbox-validated certificate, with ``changes``: an extension name mapped to None
    (dropped) or to (value, critical); ``subject``, ``key``, ``days``, ``serial``, ``hash``, ``policy``."""
    key = changes.pop("key", _EC_KEY)
    public = key.public_key() if hasattr(key, "public_key") else key
    extensions = _base_extensions(h, public, changes.pop("policy", "2.23.140.1.5.1.3"))
    subject = changes.pop("subject", [(NameOID.COMMON_NAME, EMAIL), (NameOID.EMAIL_ADDRESS, EMAIL)])
    days = changes.pop("days", 365)
    serial = changes.pop("serial", ca.random_serial())
    algorithm = changes.pop("hash", hashes.SHA256())
    not_before = changes.pop("not_before", NOW)
    for name, value in changes.items():
        if value is None:
            extensions.pop(name)
        else:
            extensions[name] = value
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(oid, v) for oid, v in subject]))
        .issuer_name(h.sub.certificate.subject)
        .public_key(public)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_before + dt.timedelta(days=days))
    )
    for value, critical in extensions.values():
        builder = builder.add_extension(value, critical=critical)
    return builder.sign(h.sub.key, algorithm)


def rules(cert: x509.Certificate) -> list[str]:
    return [str(f) for f in ca.lint_certificate(cert).findings]


def test_the_base_certificate_is_clean(hierarchy: Hierarchy) -> None:
    assert rules(build(hierarchy)) == []


_NOT_HTTP_CRL = x509.CRLDistributionPoints(
    [x509.DistributionPoint([_uri("ldap://dir.example/cn=crl")], None, None, None)]
)
_OCSP_ONLY = x509.AuthorityInformationAccess(
    [x509.AccessDescription(AuthorityInformationAccessOID.OCSP, _uri("http://127.0.0.1/ocsp"))]
)
_FTP_AIA = x509.AuthorityInformationAccess(
    [x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS, _uri("ftp://127.0.0.1/ca.der"))]
)

CASES: list[tuple[str, dict[str, Any], str]] = [
    ("no policies", {"cp": None}, "BR 7.1.2.3(a): certificatePolicies must be present"),
    (
        "no reserved policy",
        {"policy": "1.2.3.4"},
        "BR 7.1.2.3(a): certificatePolicies must contain exactly one reserved S/MIME policy",
    ),
    (
        "anyPolicy",
        {
            "cp": (
                x509.CertificatePolicies(
                    [
                        x509.PolicyInformation(x509.ObjectIdentifier("2.5.29.32.0"), None),
                        x509.PolicyInformation(x509.ObjectIdentifier("2.23.140.1.5.1.3"), None),
                    ]
                ),
                False,
            )
        },
        "BR 7.1.2.3(a): anyPolicy must not be present",
    ),
    (
        "critical policies",
        {
            "cp": (
                x509.CertificatePolicies(
                    [x509.PolicyInformation(x509.ObjectIdentifier("2.23.140.1.5.1.3"), None)]
                ),
                True,
            )
        },
        "BR 7.1.2.3(a): certificatePolicies should not be critical",
    ),
    ("no CRL DP", {"crl": None}, "BR 7.1.2.3(b): cRLDistributionPoints must be present"),
    (
        "LDAP CRL DP",
        {"crl": (_NOT_HTTP_CRL, False)},
        "BR 7.1.2.3(b): every cRLDistributionPoints URL must have the scheme HTTP",
    ),
    ("no AIA", {"aia": None}, "BR 7.1.2.3(c): authorityInformationAccess should be present"),
    (
        "AIA without caIssuers",
        {"aia": (_OCSP_ONLY, False)},
        "BR 7.1.2.3(c): authorityInformationAccess should contain an id-ad-caIssuers URL",
    ),
    (
        "AIA over FTP",
        {"aia": (_FTP_AIA, False)},
        "BR 7.1.2.3(c): every authorityInformationAccess location must be an HTTP URL",
    ),
    (
        "pathLen on a leaf (cryptography cannot even parse it)",
        {"bc": (x509.UnrecognizedExtension(ExtensionOID.BASIC_CONSTRAINTS, b"\x30\x03\x02\x01\x00"), True)},
        "RFC 5280 4.2: the extensions cannot be parsed: path_length must be None",
    ),
    ("no key usage", {"ku": None}, "BR 7.1.2.3(e): keyUsage must be present"),
    (
        "key usage not critical",
        {"ku": (_ku(digital_signature=True), False)},
        "BR 7.1.2.3(e): keyUsage should be critical",
    ),
    (
        "keyEncipherment on EC",
        {"ku": (_ku(digital_signature=True, key_encipherment=True), True)},
        "BR 7.1.2.3(e): keyUsage must not assert keyEncipherment for an EC key",
    ),
    (
        "keyCertSign on a leaf",
        {"ku": (_ku(digital_signature=True, key_cert_sign=True), True)},
        "BR 7.1.2.3(e): keyUsage must not assert keyCertSign",
    ),
    (
        "EC without a usable bit",
        {"ku": (_ku(content_commitment=True), True)},
        "BR 7.1.2.3(e): keyUsage must assert digitalSignature or keyAgreement for an EC key",
    ),
    ("no EKU", {"eku": None}, "BR 7.1.2.3(f): extKeyUsage must be present"),
    (
        "EKU without emailProtection",
        {"eku": (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)},
        "BR 7.1.2.3(f): extKeyUsage must contain id-kp-emailProtection",
    ),
    (
        "strict with clientAuth",
        {
            "eku": (
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.EMAIL_PROTECTION, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                False,
            )
        },
        "BR 7.1.2.3(f): extKeyUsage must contain nothing but id-kp-emailProtection (strict)",
    ),
    (
        "multipurpose with serverAuth",
        {
            "policy": "2.23.140.1.5.1.2",
            "eku": (
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.EMAIL_PROTECTION, ExtendedKeyUsageOID.SERVER_AUTH]
                ),
                False,
            ),
        },
        "BR 7.1.2.3(f): extKeyUsage must not contain id-kp-serverAuth",
    ),
    ("no AKI", {"aki": None}, "BR 7.1.2.3(g): authorityKeyIdentifier must be present"),
    (
        "AKI with issuer and serial",
        {
            "aki": (
                x509.AuthorityKeyIdentifier(
                    b"\x01" * 20,
                    [x509.DirectoryName(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "CA")]))],
                    7,
                ),
                False,
            )
        },
        "BR 7.1.2.3(g): authorityKeyIdentifier must not contain authorityCertIssuer or authorityCertSerialNumber",
    ),
    (
        "critical AKI",
        {"aki": (x509.AuthorityKeyIdentifier(b"\x01" * 20, None, None), True)},
        "RFC 5280 4.2.1.1: authorityKeyIdentifier must not be critical",
    ),
    ("no SKI", {"ski": None}, "RFC 5280 4.2.1.2: subjectKeyIdentifier should be present"),
    ("no SAN", {"san": None}, "BR 7.1.4.2.1: subjectAltName must be present"),
    (
        "a DNS name in the SAN",
        {"san": (x509.SubjectAlternativeName([x509.RFC822Name(EMAIL), x509.DNSName("example.org")]), False)},
        "BR 7.1.4.2.1: subjectAltName must not contain a DNSName",
    ),
    (
        "emailAddress not in the SAN",
        {"subject": [(NameOID.COMMON_NAME, EMAIL), (NameOID.EMAIL_ADDRESS, "bob@example.org")]},
        "BR 7.1.4.2.1: the subject emailAddress bob@example.org must be repeated in subjectAltName",
    ),
    (
        "CN not a mailbox",
        {"subject": [(NameOID.COMMON_NAME, "Alice Smith")]},
        "BR 7.1.4.2.2(a): the subject commonName 'Alice Smith' must be a mailbox address of subjectAltName",
    ),
    (
        "organization in a mailbox-validated subject",
        {"subject": [(NameOID.COMMON_NAME, EMAIL), (NameOID.ORGANIZATION_NAME, "Example Ltd")]},
        "BR 7.1.4.2.3: a mailbox-validated subject must not contain organizationName",
    ),
    (
        "ASCII SmtpUTF8Mailbox",
        {
            "san": (
                x509.SubjectAlternativeName(
                    [
                        x509.RFC822Name(EMAIL),
                        x509.OtherName(SMTP_UTF8_MAILBOX, asn1_core.UTF8String("bob@example.org").dump()),
                    ]
                ),
                False,
            )
        },
        "RFC 8398 3: an ASCII mailbox must be an rfc822Name, not an SmtpUTF8Mailbox (bob@example.org)",
    ),
    (
        "other otherName in strict",
        {
            "san": (
                x509.SubjectAlternativeName(
                    [
                        x509.RFC822Name(EMAIL),
                        x509.OtherName(
                            x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2.3"),
                            asn1_core.UTF8String("alice@corp").dump(),
                        ),
                    ]
                ),
                False,
            )
        },
        "BR 7.1.4.2.1: subjectAltName must not contain otherName 1.3.6.1.4.1.311.20.2.3 (strict)",
    ),
    ("826 days", {"days": 826}, "BR 6.3.2: the validity period must not exceed 825 days (strict)"),
    (
        "legacy after the cut-off",
        {"policy": "2.23.140.1.5.1.1"},
        "BR 7.1.6.1: legacy generation certificates must not be issued after 2025-07-15",
    ),
    (
        "a small serial",
        {"serial": 12345},
        "BR 7.1: the serial number must hold at least 64 bits of CSPRNG output",
    ),
    ("SHA-224", {"hash": hashes.SHA224()}, "BR 7.1.3.2: the signature algorithm"),
    (
        "RSA-1024",
        {"key": rsa.generate_private_key(65537, 1024), "ku": (_ku(digital_signature=True), True)},
        "BR 6.1.5: an RSA modulus must be at least 2048 bits",
    ),
    (
        "a secp256k1 key",
        {"key": ec.generate_private_key(ec.SECP256K1()), "ku": (_ku(digital_signature=True), True)},
        "BR 6.1.5: the curve secp256k1 is not allowed",
    ),
    (
        "a DSA key",
        {"key": dsa.generate_private_key(2048), "ku": (_ku(digital_signature=True), True)},
        "BR 7.1.3.1: DSA keys are not allowed",
    ),
    (
        "Ed25519 with keyAgreement",
        {
            "key": ed25519.Ed25519PrivateKey.generate(),
            "ku": (_ku(digital_signature=True, key_agreement=True), True),
        },
        "BR 7.1.2.3(e): keyUsage must not assert keyAgreement for an EdDSA key",
    ),
    (
        "X25519 signing",
        {"key": x25519.X25519PrivateKey.generate().public_key(), "ku": (_ku(digital_signature=True), True)},
        "BR 7.1.2.3(e): keyUsage must not assert digitalSignature for an X25519/X448 key",
    ),
]


@pytest.mark.parametrize(("changes", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_rule_fires(hierarchy: Hierarchy, changes: dict[str, Any], expected: str) -> None:
    found = rules(build(hierarchy, **changes))
    assert any(f.startswith(expected) for f in found), found


def test_path_length_and_ca_flag_on_a_leaf(hierarchy: Hierarchy) -> None:
    # cryptography refuses to build CA:FALSE with a pathLenConstraint; a CA:TRUE leaf is linted as a CA
    cert = build(hierarchy, bc=(x509.BasicConstraints(ca=True, path_length=0), False))
    report = ca.lint_certificate(cert)
    assert report.kind is ca.CertificateKind.SUBORDINATE_CA
    found = [str(f) for f in report.findings]
    assert "BR 7.1.2.2: basicConstraints must be critical in a CA certificate" in found
    assert "BR 7.1.2.2: keyUsage must assert keyCertSign and cRLSign" in found


def test_a_root_with_an_eku_and_without_keycertsign(hierarchy: Hierarchy) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Sloppy Root")])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(ca.random_serial()).not_valid_before(NOW).not_valid_after(NOW + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_ku(key_cert_sign=True), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    found = rules(cert)
    assert "BR 7.1.2.1: keyUsage must be critical" in found
    assert "BR 7.1.2.1: keyUsage must assert keyCertSign and cRLSign" in found
    assert "BR 7.1.2.1: extKeyUsage must not be present in a root CA certificate" in found
    assert "RFC 5280 4.2.1.2: a CA certificate must have a subjectKeyIdentifier" in found


def test_an_intermediate_without_eku_policies_and_crl(hierarchy: Hierarchy) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Sub")]))
        .issuer_name(hierarchy.root.certificate.subject).public_key(key.public_key())
        .serial_number(ca.random_serial()).not_valid_before(NOW).not_valid_after(NOW + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_ku(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(hierarchy.root.key.public_key()), critical=False)  # type: ignore[arg-type]
        .sign(hierarchy.root.key, hashes.SHA256())
    )  # fmt: skip
    assert rules(cert) == [
        "BR 7.1.2.2: extKeyUsage must be present in a subordinate CA certificate",
        "BR 7.1.2.2: certificatePolicies must be present",
        "BR 7.1.2.2: cRLDistributionPoints must be present",
    ]


# ---------------------------------------------------------------------------------------- the commands


def _cli(args: list[str]) -> Any:
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert "Traceback" not in result.output
    return result


def test_cert_lint_exit_codes_and_lines(tmp_path: Path, hierarchy: Hierarchy) -> None:
    good = tmp_path / "good.pem"
    good.write_bytes(build(hierarchy).public_bytes(serialization.Encoding.PEM))
    result = _cli(["cert", "lint", str(good)])
    assert result.exit_code == 0 and result.stdout == "", result.output
    assert "no deviation" in result.stderr

    bad = tmp_path / "bad.der"
    bad.write_bytes(build(hierarchy, eku=None, aia=None).public_bytes(serialization.Encoding.DER))
    result = _cli(["cert", "lint", str(bad)])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "BR 7.1.2.3(c): authorityInformationAccess should be present (warning)",
        "BR 7.1.2.3(f): extKeyUsage must be present",
    ]
    document = json.loads(_cli(["cert", "lint", "--json", str(bad)]).stdout)
    assert document["ok"] is False
    [entry] = document["certificates"]
    assert (entry["kind"], entry["generation"], entry["validation"]) == ("subscriber", "strict", "mailbox")
    assert {(f["rule"], f["severity"]) for f in entry["findings"]} == {
        ("BR 7.1.2.3(c)", "warning"),
        ("BR 7.1.2.3(f)", "error"),
    }

    warned = tmp_path / "warned.pem"
    warned.write_bytes(build(hierarchy, aia=None).public_bytes(serialization.Encoding.PEM))
    assert _cli(["cert", "lint", str(warned)]).exit_code == 0
    assert _cli(["cert", "lint", "--fail-on-warning", str(warned)]).exit_code == 1


def test_cert_lint_and_show_on_unreadable_input(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_bytes(b"not a certificate\n")
    for command in ("lint", "show"):
        for path in (str(junk), str(tmp_path / "missing.pem")):
            result = _cli(["cert", command, path])
            assert result.exit_code == 2
            assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("smimekit: error: ")


def test_cert_show(tmp_path: Path, hierarchy: Hierarchy) -> None:
    cert = build(hierarchy)
    path = tmp_path / "c.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    text = _cli(["cert", "show", str(path)]).stdout
    assert f"Serial:             {cert.serial_number:X}" in text
    assert "Addresses:          alice@example.org" in text
    assert "Key:                EC P-256" in text
    assert "Key usage:          digitalSignature, keyAgreement" in text
    assert "Extended key usage: emailProtection" in text
    assert "2.23.140.1.5.1.3 (S/MIME BR mailbox-validated strict)" in text
    assert cert.fingerprint(hashes.SHA256()).hex() in text
    [info] = json.loads(_cli(["cert", "show", "--json", str(path)]).stdout)["certificates"]
    assert info["addresses"] == ["alice@example.org"] and info["issuer"] == "CN=smimekit CA Test Intermediate"
    assert info["sha1"] == cert.fingerprint(hashes.SHA1()).hex() and info["is_ca"] is False
    assert dt.datetime.fromisoformat(info["not_after"]) == cert.not_valid_after_utc
