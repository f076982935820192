"""Issuing: the BR profile of what smimekit.ca makes, proved by our linter, openssl, gpgsm and validate_path."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from asn1crypto import core as asn1_core
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from smimekit import ca
from smimekit.errors import CaError
from smimekit.pki import KeyPurpose, PathFailure, certificate_email_addresses, validate_path
from tests.ca._support import ENDPOINTS, NOW, Hierarchy, key_pem, openssl, pem
from tests.smime import _gpgsm

SMTP_UTF8_MAILBOX = x509.ObjectIdentifier("1.3.6.1.5.5.7.8.9")


def issue(
    h: Hierarchy, key_type: ca.KeyType = ca.KeyType.P256, **options: object
) -> tuple[x509.Certificate, object]:
    key = ca.generate_key(key_type)
    options.setdefault("email", "alice@example.org")
    options.setdefault("endpoints", ENDPOINTS)
    cert = ca.issue_certificate(issuer=h.sub, public_key=key.public_key(), now=NOW, **options)  # type: ignore[arg-type]
    return cert, key


def ext(cert: x509.Certificate, cls: type[x509.ExtensionType]) -> x509.Extension[x509.ExtensionType]:
    return cert.extensions.get_extension_for_class(cls)


# ------------------------------------------------------------------------------------------ the profile


@pytest.mark.parametrize("generation", list(ca.Generation))
@pytest.mark.parametrize("key_type", list(ca.KeyType))
def test_every_key_type_and_generation_lints_clean(
    hierarchy: Hierarchy, key_type: ca.KeyType, generation: ca.Generation
) -> None:
    cert, _ = issue(hierarchy, key_type, generation=generation)
    report = ca.lint_certificate(cert)
    assert report.findings == (), [str(f) for f in report.findings]
    assert report.generation == generation.value and report.validation == "mailbox"


def test_the_ca_certificates_lint_clean(hierarchy: Hierarchy) -> None:
    root = ca.lint_certificate(hierarchy.root.certificate)
    sub = ca.lint_certificate(hierarchy.sub.certificate)
    assert (root.kind, root.findings) == (ca.CertificateKind.ROOT_CA, ())
    assert (sub.kind, sub.findings) == (ca.CertificateKind.SUBORDINATE_CA, ())


def test_the_fields_of_a_strict_certificate(hierarchy: Hierarchy) -> None:
    cert, key = issue(hierarchy, ca.KeyType.RSA3072, email="Alice.Smith@Example.ORG", days=825)
    assert cert.public_key() == key.public_key()  # type: ignore[attr-defined]
    assert cert.issuer == hierarchy.sub.certificate.subject
    # the local part as given, the domain lower-cased, in the SAN, the CN and emailAddress
    assert certificate_email_addresses(cert) == ("Alice.Smith@example.org",)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Alice.Smith@example.org"
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(days=825, seconds=-1)
    bc = ext(cert, x509.BasicConstraints)
    assert bc.critical and not bc.value.ca  # type: ignore[attr-defined]
    ku = ext(cert, x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and ku.value.key_encipherment  # type: ignore[attr-defined]
    assert not ku.value.key_agreement and not ku.value.content_commitment  # type: ignore[attr-defined]
    assert list(ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.EMAIL_PROTECTION]  # type: ignore[call-overload]
    policies = [p.policy_identifier.dotted_string for p in ext(cert, x509.CertificatePolicies).value]  # type: ignore[attr-defined]
    assert policies == ["2.23.140.1.5.1.3"]
    crl = ext(cert, x509.CRLDistributionPoints).value
    assert [n.value for n in crl[0].full_name] == ["http://127.0.0.1/sub.crl"]  # type: ignore[index]
    aia = {
        a.access_method.dotted_string: a.access_location.value
        for a in ext(cert, x509.AuthorityInformationAccess).value
    }  # type: ignore[attr-defined]
    assert aia == {
        "1.3.6.1.5.5.7.48.1": "http://127.0.0.1/ocsp",
        "1.3.6.1.5.5.7.48.2": "http://127.0.0.1/sub.der",
    }
    ski = ext(hierarchy.sub.certificate, x509.SubjectKeyIdentifier).value.digest  # type: ignore[attr-defined]
    assert ext(cert, x509.AuthorityKeyIdentifier).value.key_identifier == ski  # type: ignore[attr-defined]
    # random 16-byte serials
    der = cert.public_bytes(serialization.Encoding.DER)
    assert len(cert.serial_number.to_bytes(16, "big")) == 16 and cert.serial_number.bit_length() > 64
    assert der  # the certificate serializes
    other, _ = issue(hierarchy, ca.KeyType.RSA3072)
    assert other.serial_number != cert.serial_number


@pytest.mark.parametrize(
    ("key_type", "usage", "bits"),
    [
        (ca.KeyType.RSA3072, ca.Usage.SIGNING, {"digital_signature"}),
        (ca.KeyType.RSA3072, ca.Usage.ENCRYPTION, {"key_encipherment"}),
        (ca.KeyType.P384, ca.Usage.SIGNING, {"digital_signature"}),
        (ca.KeyType.P256, ca.Usage.ENCRYPTION, {"key_agreement"}),
        (ca.KeyType.P256, ca.Usage.BOTH, {"digital_signature", "key_agreement"}),
        (ca.KeyType.ED25519, None, {"digital_signature"}),
        (ca.KeyType.X25519, None, {"key_agreement"}),
    ],
)
def test_key_usage_follows_usage_and_key_type(
    hierarchy: Hierarchy, key_type: ca.KeyType, usage: ca.Usage | None, bits: set[str]
) -> None:
    cert, _ = issue(hierarchy, key_type, usage=usage)
    ku = ext(cert, x509.KeyUsage).value
    names = (
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
    )
    assert {n for n in names if getattr(ku, n)} == bits


def test_multipurpose_may_add_client_auth_and_strict_may_not(hierarchy: Hierarchy) -> None:
    cert, _ = issue(hierarchy, generation=ca.Generation.MULTIPURPOSE, client_auth=True)
    eku = list(ext(cert, x509.ExtendedKeyUsage).value)  # type: ignore[call-overload]
    assert eku == [ExtendedKeyUsageOID.EMAIL_PROTECTION, ExtendedKeyUsageOID.CLIENT_AUTH]
    policies = [p.policy_identifier.dotted_string for p in ext(cert, x509.CertificatePolicies).value]  # type: ignore[attr-defined]
    assert policies == ["2.23.140.1.5.1.2"]
    assert ca.lint_certificate(cert).findings == ()
    with pytest.raises(CaError, match="multipurpose"):
        issue(hierarchy, client_auth=True)


def test_a_non_ascii_local_part_is_an_smtputf8mailbox(hierarchy: Hierarchy) -> None:
    cert, _ = issue(hierarchy, email="jörg@Bücher.example")
    san = list(ext(cert, x509.SubjectAlternativeName).value)  # type: ignore[call-overload]
    assert len(san) == 1 and isinstance(san[0], x509.OtherName) and san[0].type_id == SMTP_UTF8_MAILBOX
    assert asn1_core.UTF8String.load(san[0].value).native == "jörg@xn--bcher-kva.example"
    assert not cert.subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS)  # IA5String cannot hold it
    assert ca.lint_certificate(cert).findings == ()
    ascii_idn, _ = issue(hierarchy, email="info@Bücher.example")
    assert [n.value for n in ext(ascii_idn, x509.SubjectAlternativeName).value] == [
        "info@xn--bcher-kva.example"
    ]  # type: ignore[attr-defined]


# --------------------------------------------------------------------------------- refused requests


@pytest.mark.parametrize(
    ("key_type", "options", "message"),
    [
        (ca.KeyType.ED25519, {"usage": ca.Usage.ENCRYPTION}, "Ed25519 key can only sign"),
        (ca.KeyType.ED25519, {"usage": ca.Usage.BOTH}, "Ed25519 key can only sign"),
        (ca.KeyType.X25519, {"usage": ca.Usage.SIGNING}, "X25519 key can only encrypt"),
        (ca.KeyType.P256, {"days": 826}, "825 days"),
        (ca.KeyType.P256, {"days": 0}, "positive number of days"),
        (ca.KeyType.P256, {"email": "not an address"}, "not a plain e-mail address"),
        (ca.KeyType.P256, {"email": "a@b@"}, "not a plain e-mail address"),
        (ca.KeyType.P256, {"email": '"quoted"@example.org'}, "quoted"),
        (ca.KeyType.P256, {"now": dt.datetime(2026, 1, 1)}, "timezone-aware"),
    ],
)
def test_what_cannot_be_issued_is_refused(
    hierarchy: Hierarchy, key_type: ca.KeyType, options: dict[str, object], message: str
) -> None:
    key = ca.generate_key(key_type)
    kwargs: dict[str, object] = {"email": "alice@example.org", "now": NOW, "endpoints": ENDPOINTS, **options}
    with pytest.raises(CaError, match=message):
        ca.issue_certificate(issuer=hierarchy.sub, public_key=key.public_key(), **kwargs)  # type: ignore[arg-type]


def test_endpoints_must_be_http_and_the_ca_must_outlive_the_certificate(hierarchy: Hierarchy) -> None:
    with pytest.raises(CaError, match="http://"):
        ca.Endpoints(crl_url="ldap://example.org/cn=crl")
    late = hierarchy.sub.certificate.not_valid_after_utc - dt.timedelta(days=10)
    with pytest.raises(CaError, match="outlive its CA"):
        ca.issue_certificate(
            issuer=hierarchy.sub,
            public_key=ca.generate_key(ca.KeyType.P256).public_key(),
            email="a@example.org",
            now=late,  # type: ignore[arg-type]
        )
    with pytest.raises(CaError, match="does not belong"):
        ca.CaSigner(hierarchy.sub.certificate, hierarchy.root.key)
    with pytest.raises(CaError, match="outlive its parent"):
        ca.create_ca(
            name="Too long", key=ca.generate_key(ca.KeyType.P256), now=NOW, days=40_000, parent=hierarchy.root
        )  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------ CSRs


def _csr(key: ec.EllipticCurvePrivateKey, email: str) -> x509.CertificateSigningRequest:
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, email),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Evil Corp"),
                ]
            )
        )
        .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(email)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


def test_a_csr_gives_its_key_and_nothing_else(hierarchy: Hierarchy) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = _csr(key, "mallory@bank.example")
    for data in (csr.public_bytes(serialization.Encoding.PEM), csr.public_bytes(serialization.Encoding.DER)):
        loaded = ca.load_csr(data)
        cert = ca.issue_certificate(
            issuer=hierarchy.sub,
            public_key=loaded.public_key(),
            email="alice@example.org",
            now=NOW,
            endpoints=ENDPOINTS,  # type: ignore[arg-type]
        )
        assert cert.public_key() == key.public_key()
        assert certificate_email_addresses(cert) == ("alice@example.org",)  # not the CSR's address
        assert not cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        assert not ext(cert, x509.BasicConstraints).value.ca  # type: ignore[attr-defined]


def test_a_csr_with_a_bad_signature_or_garbage_is_refused() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    der = bytearray(_csr(key, "a@example.org").public_bytes(serialization.Encoding.DER))
    der[-5] ^= 0x01  # inside the signature value
    with pytest.raises(CaError, match=r"signature does not verify|cannot be checked"):
        ca.load_csr(bytes(der))
    with pytest.raises(CaError, match="not a certificate signing request"):
        ca.load_csr(b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n")
    with pytest.raises(CaError, match="not a certificate signing request"):
        ca.load_csr(b"\x30\x03\x02\x01\x01")


# ------------------------------------------------------------------------------------- relying parties


def _verify(tmp_path: Path, h: Hierarchy, cert: x509.Certificate, purpose: str) -> bool:
    root, sub = h.write(tmp_path)
    leaf = tmp_path / "leaf.pem"
    leaf.write_bytes(pem(cert))
    proc = openssl("verify", "-purpose", purpose, "-CAfile", root, "-untrusted", sub, leaf, check=False)
    assert proc.returncode == 0 or "unsuitable certificate purpose" in proc.stdout + proc.stderr, proc.stderr
    return proc.returncode == 0


@pytest.mark.parametrize(
    ("key_type", "usage", "sign_ok", "encrypt_ok"),
    [
        (ca.KeyType.RSA3072, ca.Usage.SIGNING, True, False),
        (ca.KeyType.RSA3072, ca.Usage.ENCRYPTION, False, True),
        (ca.KeyType.RSA3072, ca.Usage.BOTH, True, True),
        (ca.KeyType.P256, ca.Usage.SIGNING, True, False),
        (ca.KeyType.P384, ca.Usage.SIGNING, True, False),
        (ca.KeyType.ED25519, ca.Usage.SIGNING, True, False),
        # OpenSSL's smimeencrypt purpose wants keyEncipherment, an RSA notion: EC and X25519 encryption
        # certificates (keyAgreement, RFC 5753/8418) are refused by it; see the cms test below instead
        (ca.KeyType.P256, ca.Usage.ENCRYPTION, False, False),
        (ca.KeyType.X25519, ca.Usage.ENCRYPTION, False, False),
    ],
)
def test_openssl_verify_accepts_the_matching_purpose_only(
    tmp_path: Path,
    hierarchy: Hierarchy,
    key_type: ca.KeyType,
    usage: ca.Usage,
    sign_ok: bool,
    encrypt_ok: bool,
) -> None:
    cert, _ = issue(hierarchy, key_type, usage=usage)
    assert _verify(tmp_path, hierarchy, cert, "smimesign") is sign_ok
    assert _verify(tmp_path, hierarchy, cert, "smimeencrypt") is encrypt_ok


def test_openssl_cms_encrypts_to_an_ec_encryption_certificate(tmp_path: Path, hierarchy: Hierarchy) -> None:
    cert, key = issue(hierarchy, ca.KeyType.P256, usage=ca.Usage.ENCRYPTION)
    (tmp_path / "c.pem").write_bytes(pem(cert))
    (tmp_path / "k.pem").write_bytes(key_pem(key))
    (tmp_path / "msg").write_bytes(b"for alice only\r\n")
    openssl(
        "cms",
        "-encrypt",
        "-aes256",
        "-in",
        tmp_path / "msg",
        "-out",
        tmp_path / "enc",
        "-outform",
        "DER",
        tmp_path / "c.pem",
    )
    out = openssl(
        "cms",
        "-decrypt",
        "-inform",
        "DER",
        "-in",
        tmp_path / "enc",
        "-recip",
        tmp_path / "c.pem",
        "-inkey",
        tmp_path / "k.pem",
    )
    assert out.stdout.strip() == "for alice only"


@pytest.mark.parametrize(
    ("usage", "signing", "encryption"),
    [(ca.Usage.SIGNING, True, False), (ca.Usage.ENCRYPTION, False, True), (ca.Usage.BOTH, True, True)],
)
@pytest.mark.parametrize("key_type", [ca.KeyType.RSA3072, ca.KeyType.P256])
def test_validate_path_trusts_them_for_the_right_purpose(
    hierarchy: Hierarchy, key_type: ca.KeyType, usage: ca.Usage, signing: bool, encryption: bool
) -> None:
    cert, _ = issue(hierarchy, key_type, usage=usage, email="bob@example.org")
    at = NOW + dt.timedelta(hours=1)
    common = {
        "anchors": [hierarchy.root.certificate],
        "intermediates": [hierarchy.sub.certificate],
        "at": at,
        "email": "bob@example.org",
    }
    sign = validate_path(cert, purpose=KeyPurpose.SIGNING, **common)  # type: ignore[arg-type]
    encrypt = validate_path(cert, purpose=KeyPurpose.ENCRYPTION, **common)  # type: ignore[arg-type]
    assert (sign.trusted, encrypt.trusted) == (signing, encryption), (sign.reason, encrypt.reason)
    for result in (sign, encrypt):
        assert result.trusted or result.failure is PathFailure.KEY_USAGE
    wrong = validate_path(
        cert,
        purpose=KeyPurpose.SIGNING if signing else KeyPurpose.ENCRYPTION,
        **{**common, "email": "eve@example.org"},
    )  # type: ignore[arg-type]
    assert wrong.failure is PathFailure.ADDRESS_MISMATCH


@pytest.mark.skipif(
    bool(_gpgsm.missing()), reason="GnuPG's S/MIME tools are not installed (apt-get install gpgsm gpg-agent)"
)
def test_gpgsm_imports_them(tmp_path: Path, hierarchy: Hierarchy) -> None:
    rsa_cert, _ = issue(hierarchy, ca.KeyType.RSA3072, email="rsa@example.org")
    ec_cert, _ = issue(hierarchy, ca.KeyType.P256, usage=ca.Usage.SIGNING, email="ec@example.org")
    with _gpgsm.GpgsmHome(
        tmp_path / "gnupg", passphrase=b"unused", faked_time=NOW + dt.timedelta(hours=1)
    ) as home:
        home.trust(hierarchy.root.certificate)
        run = home.import_certificates(
            pem(hierarchy.root.certificate, hierarchy.sub.certificate, rsa_cert, ec_cert),
            tmp_path / "all.pem",
        )
        assert run.get("IMPORT_RES") is not None and run.get("IMPORT_RES")[0] == "4", str(run)  # type: ignore[index]
        listing = home.run("--with-colons", "--with-validation", "--list-keys").colons()
        for cert in (rsa_cert, ec_cert):
            fpr = _gpgsm.sha1_fingerprint(cert)
            assert fpr in listing, listing
            assert listing[fpr][1] == _gpgsm.sha1_fingerprint(hierarchy.sub.certificate)  # chained to our CA
        problems = home.run("--with-validation", "--list-keys", "rsa@example.org", check=False)
        assert problems.returncode == 0, str(problems)


def test_pkcs12_bundles(hierarchy: Hierarchy) -> None:
    from cryptography.hazmat.primitives.serialization import pkcs12

    cert, key = issue(hierarchy, ca.KeyType.P256)
    for legacy in (False, True):
        data = ca.pkcs12_bundle(
            name="alice",
            key=key,
            certificate=cert,
            chain=[hierarchy.sub.certificate],
            passphrase=b"pw",
            legacy=legacy,  # type: ignore[arg-type]
        )
        loaded = pkcs12.load_pkcs12(data, b"pw")
        assert (
            loaded.cert is not None
            and loaded.cert.certificate == cert
            and loaded.cert.friendly_name == b"alice"
        )
        assert [c.certificate for c in loaded.additional_certs] == [hierarchy.sub.certificate]
    x_cert, x_key = issue(hierarchy, ca.KeyType.X25519)
    with pytest.raises(CaError, match="X25519"):
        ca.pkcs12_bundle(name="x", key=x_key, certificate=x_cert, chain=[], passphrase=b"pw")  # type: ignore[arg-type]
    with pytest.raises(CaError, match="passphrase"):
        ca.pkcs12_bundle(name="x", key=key, certificate=cert, chain=[], passphrase=b"")  # type: ignore[arg-type]
    with pytest.raises(CaError, match="CA key cannot be"):
        ca.issuer_key(x_key)  # type: ignore[arg-type]
