"""SignedData against third-party vectors (see ../shared/vectors/*/MANIFEST.txt for their provenance).

RFC 4134 examples, OpenSSL's test data (its malformed signed-attribute files must be rejected), NIST PKITS
signed messages, a real Thunderbird signature, pyca's certs-only bundles and the RFC 9216 example keys.
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from smimekit.cms import DigestAlgorithm, SignatureScheme, Signer, sign, verify
from smimekit.errors import CmsFormatError
from tests.cms._mime import opaque_der, split_signed
from tests.cms.conftest import SIGNING_TIME, VECTORS

RFC4134 = VECTORS / "rfc4134"
OPENSSL = VECTORS / "openssl-smime" / "test"
EX_CONTENT = b"This is some sample content."

pytestmark = pytest.mark.skipif(not RFC4134.is_dir(), reason="../shared/vectors is not available")


def _cert(path: Path) -> x509.Certificate:
    data = path.read_bytes()
    return (
        x509.load_pem_x509_certificate(data)
        if b"-----BEGIN" in data
        else x509.load_der_x509_certificate(data)
    )


def _pem_body(path: Path) -> bytes:
    m = re.search(rb"-----BEGIN [^-]+-----(.*?)-----END", path.read_bytes(), re.S)
    assert m
    return base64.b64decode(m.group(1))


# ------------------------------------------------------------------------------------------ RFC 4134

# sample -> (signature scheme of its signers, signer count). Section titles from the RFC's table of contents
# (the MANIFEST's notes on 4.5, 4.7 and 4.10 are off: SKI is 4.7, the CRLs are in 4.4).
RFC4134_SIGNED = {
    "4.1": (SignatureScheme.DSA, 1),  # Basic Signed Content, DSS
    "4.2": (SignatureScheme.RSA_PKCS1V15, 1),  # Basic Signed Content, RSA
    "4.3": (SignatureScheme.DSA, 1),  # Detached Content: ExContent.bin
    "4.4": (SignatureScheme.DSA, 1),  # Fancier Signed Content: countersignature, CRLs
    "4.5": (SignatureScheme.RSA_PKCS1V15, 1),  # All RSA Signed Message
    "4.7": (SignatureScheme.DSA, 1),  # Signing Using SKI
    "4.10": (SignatureScheme.DSA, 1),  # SignedData with Attributes
}


@pytest.mark.parametrize("name", sorted(RFC4134_SIGNED))
def test_rfc4134_signed_examples_verify(name: str) -> None:
    scheme, count = RFC4134_SIGNED[name]
    der = (RFC4134 / f"{name}.bin").read_bytes()
    detached = name == "4.3"
    report = verify(der, detached_content=EX_CONTENT if detached else None)
    assert report.ok, [s.reasons for s in report.signers]
    assert report.content == (None if detached else EX_CONTENT)
    assert len(report.signers) == count
    for signer in report.signers:
        assert signer.signature_algorithm is not None
        assert signer.signature_algorithm.scheme is scheme
        assert signer.digest_algorithm is DigestAlgorithm.SHA1
        assert "SHA-1 digest" in signer.weak
        assert ("DSA signature" in signer.legacy) is (scheme is SignatureScheme.DSA)
        assert signer.certificate is not None
    assert report.weak


def test_rfc4134_subject_key_identifier_signer() -> None:
    (signer,) = verify((RFC4134 / "4.7.bin").read_bytes()).signers
    assert signer.signer_id.subject_key_identifier is not None
    assert signer.certificate == _cert(RFC4134 / "AliceDSSSignByCarlNoInherit.cer")


def test_rfc4134_countersignature_is_reported_and_verified() -> None:
    (signer,) = verify((RFC4134 / "4.4.bin").read_bytes()).signers
    (counter,) = signer.countersignatures
    assert counter.ok, counter.reasons
    assert counter.certificate is not None
    assert signer.ok


def test_rfc4134_certificates_and_crls_are_carried() -> None:
    report = verify((RFC4134 / "4.4.bin").read_bytes())
    assert report.ok
    assert report.crls and report.certificates


def test_rfc4134_inherited_dsa_parameters() -> None:
    """4.6: Diane's DSA certificate inherits its parameters from CarlDSS (RFC 3279 §2.3.2)."""
    der = (RFC4134 / "4.6.bin").read_bytes()
    without = verify(der)
    assert not without.ok
    assert any("inherits parameters" in r for s in without.signers for r in s.reasons)
    report = verify(der, extra_certificates=[_cert(RFC4134 / "CarlDSSSelf.cer")])
    assert report.ok, [s.reasons for s in report.signers]
    assert any("DSA parameters inherited from the issuer" in s.legacy for s in report.signers)
    # cryptography cannot read such a certificate: the report keeps its DER for the PKI layer.
    assert report.unreadable_certificates


def test_rfc4134_degenerate_certs_only() -> None:
    report = verify((RFC4134 / "4.11.bin").read_bytes())
    assert report.signers == () and not report.ok
    assert report.certificates and report.crls


def test_rfc4134_messages() -> None:
    content, der = split_signed((RFC4134 / "4.8.eml").read_bytes())
    assert verify(der, detached_content=content).ok
    assert verify(opaque_der((RFC4134 / "4.9.eml").read_bytes())).ok


@pytest.mark.parametrize("name", ["3.1", "3.2", "5.1", "5.2", "6.0", "7.1", "7.2"])
def test_rfc4134_other_content_types_are_refused(name: str) -> None:
    with pytest.raises(CmsFormatError, match="not signed-data"):
        verify((RFC4134 / f"{name}.bin").read_bytes())


# ---------------------------------------------------------------------------------------- OpenSSL

MALFORMED = {
    "bad_signtime_attr.cms": "signingTime attribute must be signed",
    "no_ct_attr.cms": "lack contentType",
    "no_md_attr.cms": "lack messageDigest",
    "ct_multiple_attr.cms": "contentType appears more than once",
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_openssl_malformed_signed_attributes_are_rejected(name: str) -> None:
    der = (OPENSSL / "recipes" / "80-test_cms_data" / name).read_bytes()
    (signer,) = verify(der).signers
    assert not signer.valid
    assert any(MALFORMED[name] in r for r in signer.reasons), signer.reasons


def test_openssl_md4_is_refused_cleanly() -> None:
    (signer,) = verify(_pem_body(OPENSSL / "recipes" / "80-test_cms_data" / "pkcs7-md4.pem")).signers
    assert not signer.ok
    assert any("MD4" in r and "rejected" in r for r in signer.reasons)


def test_openssl_empty_digest_set_is_rejected() -> None:
    eml = VECTORS / "openssl-smime" / "upstream-newer" / "test" / "smime-eml" / "pkcs7-empty-digest-set.eml"
    content, der = split_signed(eml.read_bytes())
    (signer,) = verify(der, detached_content=content).signers
    assert signer.intact and not signer.valid
    assert any("digestAlgorithms" in r for r in signer.reasons)


def test_openssl_pkits_message_signature_holds() -> None:
    """Its path fails a policy check (trust, not ours); the signature itself is intact and valid."""
    eml = OPENSSL / "smime-eml" / "SignedInvalidMappingFromanyPolicyTest7.eml"
    content, der = split_signed(eml.read_bytes())
    assert verify(der, detached_content=content).ok


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
@pytest.mark.parametrize("key", ["smrsa1", "smrsa2", "smec1", "smec2", "smdsa1"])
def test_openssl_test_keys_sign_and_we_verify(tmp_path: Path, key: str) -> None:
    """OpenSSL signs with its own test keys; smec2 is on sect283k1, outside our allow-list."""
    pem = OPENSSL / "smime-certs" / f"{key}.pem"
    smcont = OPENSSL / "smcont.txt"
    out = tmp_path / "s.der"
    done = subprocess.run(
        [
            "openssl",
            "cms",
            "-sign",
            "-binary",
            "-nodetach",
            "-outform",
            "DER",
            "-in",
            smcont,
            "-signer",
            pem,
            "-out",
            out,
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    report = verify(out.read_bytes())
    assert report.content == smcont.read_bytes()
    if key == "smec2":
        (signer,) = report.signers
        assert signer.intact and not signer.valid
        assert any("1.3.132.0.16" in r for r in signer.reasons)
    else:
        assert report.ok, [s.reasons for s in report.signers]


# -------------------------------------------------------------------------- PKITS, Thunderbird, pyca

PKITS = sorted((VECTORS / "nist-pkits" / "smime").glob("*.eml"))


@pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")
def test_pkits_signed_messages_are_intact_and_valid() -> None:
    """All 224 PKITS messages carry good signatures (their Valid/Invalid verdicts are about trust)."""
    assert len(PKITS) == 224
    failures = {}
    for path in PKITS:
        content, der = split_signed(path.read_bytes())
        report = verify(der, detached_content=content)
        if not report.ok:
            failures[path.name] = [s.reasons for s in report.signers]
    assert failures == {}


def test_thunderbird_signed_message() -> None:
    path = VECTORS / "mimekit-testdata" / "UnitTests" / "TestData" / "smime" / "thunderbird-signed.txt"
    content, der = split_signed(path.read_bytes())
    report = verify(der, detached_content=content)
    assert report.ok
    (signer,) = report.signers
    assert signer.signing_time is not None and signer.signing_time.year == 2013
    assert not verify(der, detached_content=content.replace(b"\r\n", b"\n")).ok


@pytest.mark.parametrize(
    ("name", "count"), [("amazon-roots.der", None), ("amazon-roots.p7b", None), ("isrg.pem", None)]
)
def test_pyca_certs_only_bundles(name: str, count: int | None) -> None:
    path = VECTORS / "pyca-cryptography-vectors" / "pkcs7" / name
    data = path.read_bytes()
    der = _pem_body(path) if b"-----BEGIN" in data else data
    report = verify(der)
    assert report.signers == ()
    assert report.certificates


# ---------------------------------------------------------------------------------------- RFC 9216

RFC9216 = VECTORS / "rfc9216"


@pytest.mark.parametrize(
    ("who", "ca"),
    [("alice", "ca.rsa"), ("bob", "ca.rsa"), ("carlos", "ca.25519"), ("dana", "ca.25519")],
)
@pytest.mark.parametrize("detached", [False, True], ids=["encapsulated", "detached"])
def test_rfc9216_example_keys_sign_and_verify(who: str, ca: str, detached: bool) -> None:
    cert = _cert(RFC9216 / f"{who}.sign.crt")
    key = load_pem_private_key((RFC9216 / f"{who}.sign.key").read_bytes(), None)
    encryption = _cert(RFC9216 / f"{who}.encrypt.crt")
    signer = Signer(cert, key, encryption_certificate=encryption)  # type: ignore[arg-type]
    content = b"Content-Type: text/plain\r\n\r\nHello from the LAMPS examples.\r\n"
    der = sign(
        content,
        [signer],
        detached=detached,
        signing_time=SIGNING_TIME,
        certificates=[_cert(RFC9216 / f"{ca}.crt")],
    )
    report = verify(der, detached_content=content if detached else None)
    assert report.ok
    (result,) = report.signers
    assert result.certificate == cert
    assert result.encryption_key_preference is not None
    assert result.encryption_key_preference.serial_number == encryption.serial_number
    if ca == "ca.25519":
        assert (
            result.signature_algorithm is not None
            and result.signature_algorithm.scheme is SignatureScheme.ED25519
        )
        assert result.digest_algorithm is DigestAlgorithm.SHA512


# ------------------------------------------------------------- published Ed25519 (RFC 8419) examples

# Made with the RFC 9216 keys by David Ireland, https://github.com/davidi67/examples-cms (MIT):
#   pem-encoded/signedByCarlosEd25519.pem           commit ac350e775d6bc5d48c91e85056d9dcf2bc874830
#   pem-encoded/signedByAliceAndCarlosNoCerts.pem   commit aff3f0c9c0438747c344a382aa110d7f9e0722b8
# Ed25519 with signed attributes (signingCertificateV2 with SHA-512); and Ed25519 + RSA signers without
# signed attributes and without certificates (pure Ed25519 over the content itself).
SIGNED_BY_CARLOS = base64.b64decode(
    "MIIEhAYJKoZIhvcNAQcCoIIEdTCCBHECAQExDTALBglghkgBZQMEAgMwKwYJKoZIhvcNAQcB"
    "oB4EHFRoaXMgaXMgc29tZSBzYW1wbGUgY29udGVudC6gggILMIICBzCCAbmgAwIBAgITP14f"
    "VCTRtAFDeA9zwYoXhR52ljAFBgMrZXAwWTENMAsGA1UEChMESUVURjERMA8GA1UECxMITEFN"
    "UFMgV0cxNTAzBgNVBAMTLFNhbXBsZSBMQU1QUyBFZDI1NTE5IENlcnRpZmljYXRpb24gQXV0"
    "aG9yaXR5MCAXDTIwMTIxNTIxMzU0NFoYDzIwNTIxMjE1MjEzNTQ0WjA6MQ0wCwYDVQQKEwRJ"
    "RVRGMREwDwYDVQQLEwhMQU1QUyBXRzEWMBQGA1UEAxMNQ2FybG9zIFR1cmluZzAqMAUGAytl"
    "cAMhAMLOgDIs3mHITYRNYO+RnOedrq5/HuQHXSPyAKaS98ito4GwMIGtMAwGA1UdEwEB/wQC"
    "MAAwFwYDVR0gBBAwDjAMBgpghkgBZQMCATABMB8GA1UdEQQYMBaBFGNhcmxvc0BzbWltZS5l"
    "eGFtcGxlMBMGA1UdJQQMMAoGCCsGAQUFBwMEMA4GA1UdDwEB/wQEAwIGwDAdBgNVHQ4EFgQU"
    "ZIXjO5wdWs3mC7oafwi+xJzMhD8wHwYDVR0jBBgwFoAUa6KVfboUm+QtBNEHpNGC5C5rjLUw"
    "BQYDK2VwA0EAwVGQWbdy6FQIpTFsaWvG2/US2fnS6B+BzgCrkGQKWX1WgkTj4MEOqL+0cFXL"
    "r7ZQ2DQUo2iXyTAu58BR6btcCTGCAh8wggIbAgEBMHAwWTENMAsGA1UEChMESUVURjERMA8G"
    "A1UECxMITEFNUFMgV0cxNTAzBgNVBAMTLFNhbXBsZSBMQU1QUyBFZDI1NTE5IENlcnRpZmlj"
    "YXRpb24gQXV0aG9yaXR5AhM/Xh9UJNG0AUN4D3PBiheFHnaWMAsGCWCGSAFlAwQCA6CCAUww"
    "GAYJKoZIhvcNAQkDMQsGCSqGSIb3DQEHATBPBgkqhkiG9w0BCQQxQgRADuK5Tf5qDZC6Lck2"
    "LQIRsHaksjUR7OA/5aVip/+3UD7NgaLlqpxZVEJAnlZpXVO6zoYHWxTsSGLF8jxv+VYQwzCB"
    "3gYLKoZIhvcNAQkQAi8xgc4wgcswgcgwgcUwCwYJYIZIAWUDBAIDBEDOPY5yzu47rrTfcSt8"
    "zoVQLeaRbCrkPY/SdRmB2/TXGFDH8GskfLTJ6TMbj7zIzMADzmMT815RQo4ksfGC6SEGMHQw"
    "XaRbMFkxDTALBgNVBAoTBElFVEYxETAPBgNVBAsTCExBTVBTIFdHMTUwMwYDVQQDEyxTYW1w"
    "bGUgTEFNUFMgRWQyNTUxOSBDZXJ0aWZpY2F0aW9uIEF1dGhvcml0eQITP14fVCTRtAFDeA9z"
    "wYoXhR52ljAFBgMrZXAEQCtaZQ+x8gh/xDN4DFJRjYFPIr1eKpKE7emf4mzS79qqitLj6nZ0"
    "MWkcsvASIW/SRJMhO5bDVIKqAemcrKh8qgk="
)
SIGNED_BY_ALICE_AND_CARLOS_NO_CERTS = base64.b64decode(
    "MIICxgYJKoZIhvcNAQcCoIICtzCCArMCAQExGjALBglghkgBZQMEAgEwCwYJYIZIAWUDBAID"
    "MCsGCSqGSIb3DQEHAaAeBBxUaGlzIGlzIHNvbWUgc2FtcGxlIGNvbnRlbnQuMYICYzCBywIB"
    "ATBwMFkxDTALBgNVBAoTBElFVEYxETAPBgNVBAsTCExBTVBTIFdHMTUwMwYDVQQDEyxTYW1w"
    "bGUgTEFNUFMgRWQyNTUxOSBDZXJ0aWZpY2F0aW9uIEF1dGhvcml0eQITP14fVCTRtAFDeA9z"
    "wYoXhR52ljALBglghkgBZQMEAgMwBQYDK2VwBECcOb8wLL9b6kuBfPSh01L3d3FSe3rt27Dh"
    "5tK9Mzrrx52J1O4yx7N3iJE3nwFGrRCp37CHN0jW2HwlcqLkJwAHMIIBkQIBATBsMFUxDTAL"
    "BgNVBAoTBElFVEYxETAPBgNVBAsTCExBTVBTIFdHMTEwLwYDVQQDEyhTYW1wbGUgTEFNUFMg"
    "UlNBIENlcnRpZmljYXRpb24gQXV0aG9yaXR5AhM3QQV57XV/QqmiXDr0+GrOmqnXMAsGCWCG"
    "SAFlAwQCATANBgkqhkiG9w0BAQEFAASCAQCE2SITRuCi4zv/mfHxpJouhdj+GSSXSHztg7vo"
    "kZ+Bp2xYLtgptpxnD6nMjlBaMdpBL97RVNhdq85lfrejz2pPCRnwmo4d29UxiGg2/TGUWLIx"
    "oxsg1UGbt9wHBrc8O6ZrfNskP6X0ZjCt7aITE4qWPmmUMz6RPuY9p1MR3WfM8THq5NqZ/DNm"
    "WQb5EVQsWT4CDG5zQfWpk7hsI63T8yr5EOvXZLV0E2E7Ajg3dDqJ66Q6Su+SqBC7mAADJz/Q"
    "/Mt3d8qOP0iP0VbsuqrgTO/2L6s35foz9bV/7iPs8tvAgfk8H1TBaSSeuBZPF+IkewGNox/w"
    "gNmHevK6L+EMSqNK"
)


def test_published_ed25519_signature_verifies() -> None:
    report = verify(SIGNED_BY_CARLOS)
    assert report.ok
    assert report.content == EX_CONTENT
    (signer,) = report.signers
    assert signer.certificate == _cert(RFC9216 / "carlos.sign.crt")
    assert signer.digest_algorithm is DigestAlgorithm.SHA512
    assert (
        signer.signature_algorithm is not None
        and signer.signature_algorithm.scheme is SignatureScheme.ED25519
    )
    at = SIGNED_BY_CARLOS.index(EX_CONTENT)
    assert not verify(SIGNED_BY_CARLOS[:at] + b"t" + SIGNED_BY_CARLOS[at + 1 :]).signers[0].intact


def test_published_ed25519_and_rsa_without_signed_attributes() -> None:
    certs = [_cert(RFC9216 / "carlos.sign.crt"), _cert(RFC9216 / "alice.sign.crt")]
    assert not verify(SIGNED_BY_ALICE_AND_CARLOS_NO_CERTS).ok  # the certificates are not in the message
    report = verify(SIGNED_BY_ALICE_AND_CARLOS_NO_CERTS, extra_certificates=certs)
    assert report.ok
    schemes = sorted(s.signature_algorithm.scheme.name for s in report.signers if s.signature_algorithm)
    assert schemes == ["ED25519", "RSA_PKCS1V15"]
    assert all(s.signed_attribute_types == () for s in report.signers)
    at = SIGNED_BY_ALICE_AND_CARLOS_NO_CERTS.index(EX_CONTENT)
    tampered = SIGNED_BY_ALICE_AND_CARLOS_NO_CERTS[:at] + b"t" + SIGNED_BY_ALICE_AND_CARLOS_NO_CERTS[at + 1 :]
    assert not any(s.intact or s.valid for s in verify(tampered, extra_certificates=certs).signers)
