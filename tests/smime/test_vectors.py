"""Third-party S/MIME messages (../shared/vectors): MimeKit's Thunderbird sample, RFC 4134, NIST PKITS, OpenSSL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_der_private_key

from smimekit import mime, smime
from smimekit.cms import ContentCipher
from smimekit.errors import LegacyAlgorithmError
from smimekit.smime import LayerKind

VECTORS = Path(__file__).resolve().parents[3] / "shared" / "vectors"
MIMEKIT = VECTORS / "mimekit-testdata" / "UnitTests" / "TestData" / "smime"
RFC4134 = VECTORS / "rfc4134"
PKITS = VECTORS / "nist-pkits"
OPENSSL = VECTORS / "openssl-smime"
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

pytestmark = pytest.mark.skipif(not VECTORS.is_dir(), reason="the shared vectors are not available")


def _cert(path: Path) -> x509.Certificate:
    data = path.read_bytes()
    return (
        x509.load_pem_x509_certificate(data)
        if b"-----BEGIN" in data
        else x509.load_der_x509_certificate(data)
    )


# --------------------------------------------------------------------------------------------- MimeKit


def test_thunderbird_signed_message() -> None:
    """A real Thunderbird 24 mail (2013, SHA-1, stored with LF endings): intact and valid; trusted with
    the StartCom anchors at its signing time, no longer now (the certificate expired in 2014)."""
    anchor = _cert(MIMEKIT / "StartComCertificationAuthority.crt")
    intermediate = _cert(MIMEKIT / "StartComClass1PrimaryIntermediateClientCA.crt")
    with mime.parse_file(MIMEKIT / "thunderbird-signed.txt") as msg:
        report = smime.verify(msg, anchors=[anchor], intermediates=[intermediate], now=NOW)
    (sig,) = report.signatures
    assert sig.intact and sig.valid
    assert sig.line_endings_converted  # the file is stored with LF line endings
    assert sig.signing_time == dt.datetime(2013, 11, 2, 20, 28, 4, tzinfo=dt.UTC)
    assert sig.signer is not None and sig.signer.emails == ("fejj@gnome.org",)
    assert sig.from_matches and report.unsigned_parts == ()
    assert sig.covered_parts == ("1.1", "1.1.1", "1.1.2")
    assert "SHA-1 digest" in sig.weak
    assert sig.digest_algorithm == "SHA-1"
    assert sig.trust.now is not None and not sig.trust.now.trusted and not sig.ok
    # the StartCom chain is signed with SHA-1: refused by default, with a reason that says what to do
    assert sig.trust.at_signing_time is not None and not sig.trust.at_signing_time.trusted
    assert "sha1" in sig.trust.at_signing_time.reason.lower()
    assert "legacy algorithms" in sig.trust.at_signing_time.reason


def test_thunderbird_signed_message_with_legacy_algorithms_allowed() -> None:
    """With legacy algorithms allowed, the SHA-1 StartCom path is trusted at the signing time, and the
    report says that it needed the opt-in; now the certificate has expired all the same."""
    anchor = _cert(MIMEKIT / "StartComCertificationAuthority.crt")
    intermediate = _cert(MIMEKIT / "StartComClass1PrimaryIntermediateClientCA.crt")
    with mime.parse_file(MIMEKIT / "thunderbird-signed.txt") as msg:
        report = smime.verify(
            msg, anchors=[anchor], intermediates=[intermediate], now=NOW, legacy_algorithms=True
        )
    (sig,) = report.signatures
    then = sig.trust.at_signing_time
    assert then is not None and then.trusted and then.legacy
    assert then.anchor is not None and "StartCom" in then.anchor
    assert sig.trust.now is not None and not sig.trust.now.trusted and "expired" in sig.trust.now.reason
    assert any("legacy algorithms" in n for n in report.notes)
    assert not sig.ok


# --------------------------------------------------------------------------------------------- RFC 4134


def test_rfc4134_clear_signed_4_8() -> None:
    with mime.parse_file(RFC4134 / "4.8.eml") as msg:
        report = smime.verify(msg, anchors=[_cert(RFC4134 / "CarlDSSSelf.cer")], now=NOW)
    (sig,) = report.signatures
    assert sig.intact and sig.valid and sig.line_endings_converted
    assert sig.signer is not None and sig.signer.emails == ("alicedss@example.com",)
    assert set(sig.weak) >= {"SHA-1 digest", "DSA key of 1024 bits"}
    # the From is aliceDss@examples.com: another domain than the certificate's
    assert report.from_addresses == ("alicedss@examples.com",) and not sig.from_matches


def test_rfc4134_opaque_signed_4_9() -> None:
    with mime.parse_file(RFC4134 / "4.9.eml") as msg:
        report = smime.verify(msg, now=NOW)
    (sig,) = report.signatures
    assert sig.intact and sig.valid and sig.form == "signed-data"
    assert report.content is not None
    assert b"This is some sample content." in report.content.to_bytes()


def test_rfc4134_enveloped_5_3_needs_the_legacy_switch() -> None:
    key = load_der_private_key((RFC4134 / "BobPrivRSAEncrypt.pri").read_bytes(), None)
    cert = _cert(RFC4134 / "BobRSASignByCarl.cer")
    with mime.parse_file(RFC4134 / "5.3.eml") as msg:
        with pytest.raises(LegacyAlgorithmError):
            smime.decrypt(msg, key=key, certificate=cert)  # type: ignore[arg-type]
        inner, info = smime.decrypt(msg, key=key, certificate=cert, legacy_ciphers=True)  # type: ignore[arg-type]
        result = smime.open(msg, keys=[(cert, key)], legacy_ciphers=True, now=NOW)  # type: ignore[list-item]
    assert info.cipher is ContentCipher.DES_EDE3_CBC and info.legacy and not info.authenticated
    assert b"This is some sample content." in inner.to_bytes()
    assert inner.subject == "Example 5.3"  # the outer fields are put on the inner content
    assert [layer.kind for layer in result.layers] == [LayerKind.ENVELOPED]
    assert result.layers[0].decryption is not None and result.layers[0].decryption.legacy


# --------------------------------------------------------------------------------------------- NIST PKITS


@pytest.fixture(scope="module")
def pkits() -> tuple[x509.Certificate, list[x509.CertificateRevocationList]]:
    pytest.importorskip("smimekit.pki")
    anchor = _cert(PKITS / "certs" / "TrustAnchorRootCertificate.crt")
    crls = [x509.load_der_x509_crl(p.read_bytes()) for p in sorted((PKITS / "crls").glob("*.crl"))]
    return anchor, crls


PKITS_CASES = [
    ("SignedValidSignaturesTest1", None),
    ("SignedValidGeneralizedTimeCRLnextUpdateTest13", None),
    ("SignedInvalidCASignatureTest2", "invalid-path"),
    ("SignedInvalidEESignatureTest3", "invalid-path"),
    ("SignedInvalidRevokedEETest3", "revoked"),
    ("SignedInvalidEEnotAfterDateTest6", "expired"),
    ("SignedInvalidMissingbasicConstraintsTest1", "invalid-path"),
]


@pytest.mark.parametrize(("name", "failure"), PKITS_CASES)
def test_pkits_messages(
    pkits: tuple[x509.Certificate, list[x509.CertificateRevocationList]], name: str, failure: str | None
) -> None:
    anchor, crls = pkits
    with mime.parse_file(PKITS / "smime" / f"{name}.eml") as msg:
        report = smime.verify(msg, anchors=[anchor], crls=crls, now=NOW)
    (sig,) = report.signatures
    assert sig.intact and sig.valid  # the signature itself always holds; the path decides
    assert sig.trusted is (failure is None)
    if failure is not None:
        at_signing = sig.trust.at_signing_time
        assert at_signing is not None and at_signing.failure == failure
        assert sig.reasons and sig.reasons[-1].startswith("at the signing time:")


# --------------------------------------------------------------------------------------------- OpenSSL


def test_openssl_pkits_policy_message() -> None:
    pytest.importorskip("smimekit.pki")
    anchor = _cert(OPENSSL / "test" / "certs" / "pkitsta.pem")
    with mime.parse_file(
        OPENSSL / "test" / "smime-eml" / "SignedInvalidMappingFromanyPolicyTest7.eml"
    ) as msg:
        report = smime.verify(msg, anchors=[anchor], now=NOW)
    (sig,) = report.signatures
    assert sig.intact and sig.valid
    assert sig.digest_algorithm == "SHA-256"


def test_openssl_empty_digest_set_is_rejected() -> None:
    path = OPENSSL / "upstream-newer" / "test" / "smime-eml" / "pkcs7-empty-digest-set.eml"
    with mime.parse_file(path) as msg:
        (sig,) = smime.verify(msg, now=NOW).signatures
    assert not sig.valid and not sig.ok
    assert any("digestAlgorithms" in r for r in sig.reasons)


def test_vectors_reemit_their_bytes() -> None:
    """Verifying reads the bytes as received: the parsed messages are never rewritten."""
    for path in (
        MIMEKIT / "thunderbird-signed.txt",
        RFC4134 / "4.8.eml",
        PKITS / "smime" / "SignedValidSignaturesTest1.eml",
    ):
        with mime.parse_file(path) as msg:
            smime.verify(msg, now=NOW)
            assert msg.to_bytes() == path.read_bytes()
