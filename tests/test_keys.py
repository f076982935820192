"""Loading keys, certificates and PKCS#12 files from bytes: smimekit.keys.

Every accepted format, the third-party vectors (RFC 9216, MimeKit, OpenSSL, pyca) and files written by the
real ``openssl`` tool, and a typed error with a clear sentence for every way it can go wrong.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12

from smimekit import keys
from smimekit.errors import (
    CertificateLoadError,
    KeyLoadError,
    PasswordRequiredError,
    SmimekitError,
    WrongPasswordError,
)
from smimekit.keys import (
    KeyBundle,
    key_matches_certificate,
    load_certificates,
    load_pkcs12,
    load_pkcs12_bundles,
    load_private_key,
    load_trust_anchors,
)
from tests.testpki import Identity, make_ca, make_ee

VECTORS = Path(__file__).resolve().parents[2] / "shared" / "vectors"
RFC9216 = VECTORS / "rfc9216"
MIMEKIT = VECTORS / "mimekit-testdata" / "UnitTests" / "TestData" / "smime"
PYCA = VECTORS / "pyca-cryptography-vectors"
OPENSSL = VECTORS / "openssl-smime" / "test" / "smime-certs"

PEM, DER = serialization.Encoding.PEM, serialization.Encoding.DER
PKCS8, TRADITIONAL = serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL
needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")


@pytest.fixture(scope="module")
def ca() -> Identity:
    return make_ca("smimekit Keys Test CA")


@pytest.fixture(scope="module")
def people(ca: Identity) -> dict[str, Identity]:
    return {
        kind: make_ee(f"{kind}@example.com", ca, key_kind=kind)
        for kind in ("rsa2048", "p256", "ed25519", "x25519")
    }


def same_key(a: Any, b: Any) -> bool:
    spki = (DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return bool(a.public_key().public_bytes(*spki) == b.public_key().public_bytes(*spki))


# ---------------------------------------------------------------------------------------------- certificates


def test_pem_single_and_bundle_with_other_blocks(ca: Identity, people: dict[str, Identity]) -> None:
    rsa, p256 = people["rsa2048"], people["p256"]
    assert load_certificates(rsa.cert_pem()) == [rsa.cert]
    bundle = (
        b"junk before\n" + rsa.cert_pem() + p256.key_pem() + p256.cert_pem() + ca.cert_pem() + b"trailer\n"
    )
    assert load_certificates(bundle) == [rsa.cert, p256.cert, ca.cert]


def test_der_certificate(people: dict[str, Identity]) -> None:
    cert = people["p256"].cert
    assert load_certificates(cert.public_bytes(DER)) == [cert]


def test_pkcs7_certs_only_pem_and_der(ca: Identity, people: dict[str, Identity]) -> None:
    certs = [people["rsa2048"].cert, ca.cert]
    for encoding in (PEM, DER):
        blob = pkcs7.serialize_certificates(certs, encoding)
        assert set(load_certificates(blob)) == set(certs)  # a SET OF: DER sorts it


def test_pkcs7_vectors() -> None:
    assert len(load_certificates((PYCA / "pkcs7" / "amazon-roots.der").read_bytes())) == 2
    assert len(load_certificates((PYCA / "pkcs7" / "amazon-roots.p7b").read_bytes())) == 2  # BER, indefinite
    assert len(load_certificates((PYCA / "pkcs7" / "isrg.pem").read_bytes())) == 1  # BEGIN PKCS7


def test_ber_pkcs7_when_cryptography_refuses_it(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(data: bytes) -> list[x509.Certificate]:
        raise ValueError("no BER here")

    monkeypatch.setattr(keys.pkcs7, "load_der_pkcs7_certificates", refuse)
    ber = (PYCA / "pkcs7" / "amazon-roots.p7b").read_bytes()
    assert len(load_certificates(ber)) == 2  # read with asn1crypto instead


@needs_openssl
def test_openssl_trusted_certificate_and_p7b(tmp_path: Path, ca: Identity) -> None:
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem())
    trusted = subprocess.run(
        ["openssl", "x509", "-in", str(tmp_path / "ca.pem"), "-trustout", "-addtrust", "emailProtection"],
        capture_output=True,
        check=True,
    ).stdout
    assert b"BEGIN TRUSTED CERTIFICATE" in trusted
    assert load_certificates(trusted) == [ca.cert]
    for form in ("PEM", "DER"):
        p7 = subprocess.run(
            ["openssl", "crl2pkcs7", "-nocrl", "-certfile", str(tmp_path / "ca.pem"), "-outform", form],
            capture_output=True,
            check=True,
        ).stdout
        assert load_certificates(p7) == [ca.cert]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"\x00\x01garbage", "not a certificate"),
        (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "no certificate found"),
        (b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n", "damaged"),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "damaged"),
    ],
)
def test_certificate_errors(data: bytes, message: str) -> None:
    with pytest.raises(CertificateLoadError, match=message):
        load_certificates(data)


def test_certificate_data_must_be_bytes() -> None:
    with pytest.raises(CertificateLoadError, match="bytes"):
        load_certificates("-----BEGIN CERTIFICATE-----")  # type: ignore[arg-type]


def test_trust_anchors_deduplicated(ca: Identity, people: dict[str, Identity]) -> None:
    other = make_ca("Other Root")
    blobs = [ca.cert_pem() + other.cert_pem(), ca.cert.public_bytes(DER), other.cert_pem()]
    assert load_trust_anchors(blobs) == [ca.cert, other.cert]
    with pytest.raises(CertificateLoadError):
        load_trust_anchors([ca.cert_pem(), b"nothing"])


# ---------------------------------------------------------------------------------------------- private keys


@pytest.mark.parametrize("kind", ["rsa2048", "p256", "ed25519", "x25519"])
@pytest.mark.parametrize("encoding", [PEM, DER])
def test_pkcs8_plain_and_encrypted(
    people: dict[str, Identity], kind: str, encoding: serialization.Encoding
) -> None:
    key = people[kind].key
    plain = key.private_bytes(encoding, PKCS8, serialization.NoEncryption())
    assert same_key(load_private_key(plain), key)
    assert same_key(load_private_key(plain, b"ignored for a plain key"), key)
    encrypted = key.private_bytes(encoding, PKCS8, serialization.BestAvailableEncryption(b"s3cret"))
    assert same_key(load_private_key(encrypted, b"s3cret"), key)
    with pytest.raises(PasswordRequiredError, match=r"^the key is encrypted: a password is needed$"):
        load_private_key(encrypted)
    with pytest.raises(WrongPasswordError, match=r"^wrong password or damaged key$"):
        load_private_key(encrypted, b"wrong")


@pytest.mark.parametrize("kind", ["rsa2048", "p256"])
def test_traditional_plain_der_and_legacy_pem_encryption(people: dict[str, Identity], kind: str) -> None:
    key = people[kind].key
    for encoding in (PEM, DER):
        plain = key.private_bytes(encoding, TRADITIONAL, serialization.NoEncryption())
        assert same_key(load_private_key(plain), key)
    legacy = key.private_bytes(PEM, TRADITIONAL, serialization.BestAvailableEncryption(b"s3cret"))
    assert b"Proc-Type: 4,ENCRYPTED" in legacy
    assert same_key(load_private_key(legacy, b"s3cret"), key)
    with pytest.raises(PasswordRequiredError):
        load_private_key(legacy)
    with pytest.raises(WrongPasswordError):
        load_private_key(legacy, b"wrong")


@pytest.mark.parametrize("sniff", [True, False])
def test_cryptography_corrects_our_encryption_sniffing(
    monkeypatch: pytest.MonkeyPatch, people: dict[str, Identity], sniff: bool
) -> None:
    key = people["p256"].key
    monkeypatch.setattr(keys, "_pem_key_encrypted", lambda data: sniff)
    for encryption in (serialization.NoEncryption(), serialization.BestAvailableEncryption(b"pw")):
        pem = key.private_bytes(PEM, PKCS8, encryption)
        assert same_key(load_private_key(pem, b"pw"), key)
    with pytest.raises(WrongPasswordError):
        load_private_key(key.private_bytes(PEM, PKCS8, serialization.BestAvailableEncryption(b"pw")), b"bad")


@needs_openssl
def test_keys_written_by_openssl(tmp_path: Path, people: dict[str, Identity]) -> None:
    src = tmp_path / "key.pem"
    src.write_bytes(people["rsa2048"].key_pem())
    variants = {
        "des3.pem": ["openssl", "rsa", "-in", str(src), "-des3", "-traditional", "-passout", "pass:pw"],
        "aes.p8": [
            "openssl",
            "pkcs8",
            "-topk8",
            "-in",
            str(src),
            "-v2",
            "aes-256-cbc",
            "-passout",
            "pass:pw",
        ],
        "aes.p8.der": [
            "openssl",
            "pkcs8",
            "-topk8",
            "-in",
            str(src),
            "-outform",
            "DER",
            "-passout",
            "pass:pw",
        ],
    }
    for name, cmd in variants.items():
        out = subprocess.run(cmd, capture_output=True, check=True).stdout
        assert same_key(load_private_key(out, b"pw"), people["rsa2048"].key), name
        with pytest.raises(PasswordRequiredError):
            load_private_key(out)


def test_vector_keys() -> None:
    cert = x509.load_pem_x509_certificate((RFC9216 / "alice.sign.crt").read_bytes())
    key = load_private_key((RFC9216 / "alice.sign.key").read_bytes())
    assert key_matches_certificate(key, cert)
    carlos = load_private_key((RFC9216 / "carlos.decrypt.key").read_bytes())  # X25519
    assert key_matches_certificate(
        carlos, x509.load_pem_x509_certificate((RFC9216 / "carlos.encrypt.crt").read_bytes())
    )
    # OpenSSL's test files hold the key and the certificate in one PEM file
    both = (OPENSSL / "smrsa1.pem").read_bytes()
    assert key_matches_certificate(load_private_key(both), load_certificates(both)[0])


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"garbage",
        b"\x30\x03\x02\x01\x00",
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    ],
)
def test_not_a_private_key(data: bytes) -> None:
    with pytest.raises(KeyLoadError, match=r"^not a private key$"):
        load_private_key(data)


def test_a_certificate_is_not_a_private_key(people: dict[str, Identity]) -> None:
    with pytest.raises(KeyLoadError, match=r"^not a private key$"):
        load_private_key(people["p256"].cert_pem())
    public = (
        people["p256"].key.public_key().public_bytes(PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(KeyLoadError, match=r"^not a private key$"):
        load_private_key(public)


def test_key_matches_certificate(people: dict[str, Identity]) -> None:
    assert key_matches_certificate(people["p256"].key, people["p256"].cert)
    assert not key_matches_certificate(people["p256"].key, people["rsa2048"].cert)


def _damaged_rsa_der(ident: Identity, **fields: int) -> bytes:
    """``ident``'s RSA key as PKCS#1 DER with some of its private fields XORed with 2 (as by a fault or a
    damaged file): the modulus and the public exponent, so the certificate still matches, are intact."""
    from asn1crypto import keys as asn1_keys

    der = ident.key.private_bytes(DER, TRADITIONAL, serialization.NoEncryption())
    parsed = asn1_keys.RSAPrivateKey.load(der)
    for name, mask in fields.items():
        parsed[name] = parsed[name].native ^ mask
    return bytes(parsed.dump(force=True))


# A damaged CRT value or prime alone: OpenSSL checks each RSA-CRT result and recomputes it with d, so the
# key still signs and decrypts right. With d damaged too, nothing right can come out of the key.
DAMAGES = [
    ({"exponent1": 2}, True),
    ({"coefficient": 2}, True),
    ({"prime1": 2}, True),
    ({"private_exponent": 2}, True),
    ({"private_exponent": 2, "exponent1": 2}, False),
    ({"private_exponent": 2, "coefficient": 2}, False),
]


@pytest.mark.parametrize(
    ("damage", "usable"),
    DAMAGES,
    ids=lambda v: "+".join(v) if isinstance(v, dict) else ("still-right" if v else "refused"),
)
def test_a_damaged_rsa_key_loads_but_never_signs_or_decrypts_wrongly(
    people: dict[str, Identity], damage: dict[str, int], usable: bool
) -> None:
    """Keys load without cryptography's RSA validation (it costs as much as signing 100 MB). A key whose
    parts do not fit together either still works right, or its signature is caught by cms.sign's own
    check before it leaves (SignatureError) and its decryption fails: never a wrong result."""
    from smimekit import cms
    from smimekit.errors import DecryptionError, SignatureError

    alice = people["rsa2048"]
    der = _damaged_rsa_der(alice, **damage)
    reloaded = serialization.load_der_private_key(der, None, unsafe_skip_rsa_key_validation=True)
    encrypted_pem = reloaded.private_bytes(PEM, PKCS8, serialization.BestAvailableEncryption(b"pw"))
    envelope = cms.encrypt(b"secret", [cms.certificate_recipient(alice.cert)])
    keys_loaded: list[Any] = [load_private_key(der), load_private_key(encrypted_pem, b"pw")]
    for key in keys_loaded:
        assert isinstance(key, rsa.RSAPrivateKey)
        assert key_matches_certificate(key, alice.cert)  # the public half is intact: Signer accepts it
        for detached in (True, False):
            if usable:
                sig = cms.sign(b"hello", [cms.Signer(alice.cert, key)], detached=detached)
                assert cms.verify(sig, detached_content=b"hello" if detached else None).ok
            else:
                with pytest.raises(SignatureError, match="faulty"):
                    cms.sign(b"hello", [cms.Signer(alice.cert, key)], detached=detached)
        if usable:
            assert cms.decrypt(envelope, key=key, certificate=alice.cert).read_bytes() == b"secret"
        else:
            with pytest.raises(DecryptionError):
                cms.decrypt(envelope, key=key, certificate=alice.cert)


# ---------------------------------------------------------------------------------------------- PKCS#12


def p12(ident: Identity, ca: Identity, encryption: Any) -> bytes:
    return pkcs12.serialize_key_and_certificates(b"friendly", ident.key, ident.cert, [ca.cert], encryption)


def modern(password: bytes) -> Any:
    return (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(2048)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(password)
    )


def legacy(password: bytes) -> Any:
    return (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(2048)
        .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
        .hmac_hash(hashes.SHA1())
        .build(password)
    )


@pytest.mark.parametrize("style", [modern, legacy])
@pytest.mark.parametrize("kind", ["rsa2048", "p256", "ed25519"])
def test_pkcs12_modern_and_legacy(ca: Identity, people: dict[str, Identity], style: Any, kind: str) -> None:
    ident = people[kind]
    data = p12(ident, ca, style(b"pw"))
    bundle = load_pkcs12(data, b"pw")
    assert isinstance(bundle, KeyBundle)
    assert bundle.certificate == ident.cert and bundle.chain == (ca.cert,)
    assert same_key(bundle.key, ident.key) and bundle.friendly_name == "friendly"
    with pytest.raises(WrongPasswordError, match=r"^wrong password or damaged PKCS#12 file$"):
        load_pkcs12(data, b"wrong")
    with pytest.raises(PasswordRequiredError, match="a password is needed"):
        load_pkcs12(data, None)


def test_pkcs12_without_password(ca: Identity, people: dict[str, Identity]) -> None:
    data = p12(people["p256"], ca, serialization.NoEncryption())
    assert load_pkcs12(data, None).certificate == people["p256"].cert


def test_pkcs12_bundle_is_frozen(ca: Identity, people: dict[str, Identity]) -> None:
    bundle = load_pkcs12(p12(people["p256"], ca, modern(b"pw")), b"pw")
    with pytest.raises(AttributeError):
        bundle.certificate = people["rsa2048"].cert  # type: ignore[misc]


@needs_openssl
@pytest.mark.parametrize("extra", [[], ["-legacy"]])
def test_pkcs12_written_by_openssl(
    tmp_path: Path, ca: Identity, people: dict[str, Identity], extra: list[str]
) -> None:
    ident = people["rsa2048"]
    cert, key = ident.write_pem(tmp_path, "me")
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem())
    out = tmp_path / "me.p12"
    res = subprocess.run(
        ["openssl", "pkcs12", "-export", "-in", str(cert), "-inkey", str(key), "-certfile", str(tmp_path / "ca.pem"),
         "-passout", "pass:pw", "-out", str(out), *extra],
        capture_output=True,
        check=False,
    )  # fmt: skip
    if res.returncode != 0:
        pytest.skip(
            f"openssl pkcs12 {' '.join(extra)} unavailable: {res.stderr.decode(errors='replace')[:200]}"
        )
    bundle = load_pkcs12(out.read_bytes(), b"pw")
    assert bundle.certificate == ident.cert and bundle.chain == (ca.cert,)
    assert key_matches_certificate(bundle.key, bundle.certificate)


@pytest.mark.parametrize("name", ["alice", "bob", "carlos", "dana"])
def test_rfc9216_pkcs12_with_both_keys(name: str) -> None:
    data = (RFC9216 / f"{name}.p12").read_bytes()
    bundles = load_pkcs12_bundles(data, name.encode())
    assert len(bundles) == 2  # the signing key and the encryption key
    sign_cert = x509.load_pem_x509_certificate((RFC9216 / f"{name}.sign.crt").read_bytes())
    enc_cert = x509.load_pem_x509_certificate((RFC9216 / f"{name}.encrypt.crt").read_bytes())
    assert {b.certificate for b in bundles} == {sign_cert, enc_cert}
    for bundle in bundles:
        assert key_matches_certificate(bundle.key, bundle.certificate)
        assert len(bundle.chain) == 1 and bundle.chain[0].subject == bundle.certificate.issuer
        assert bundle.friendly_name == name
    first = load_pkcs12(data, name.encode())
    assert first.certificate == bundles[0].certificate and same_key(first.key, bundles[0].key)
    with pytest.raises(WrongPasswordError):
        load_pkcs12(data, b"not-" + name.encode())


MIMEKIT_PFX = sorted(p.relative_to(MIMEKIT).as_posix() for p in MIMEKIT.rglob("*.pfx"))


@pytest.mark.parametrize("name", MIMEKIT_PFX)
def test_mimekit_pfx(name: str) -> None:
    bundle = load_pkcs12((MIMEKIT / name).read_bytes(), b"no.secret")  # legacy 3DES + RC2-40, SHA-1 MAC
    assert key_matches_certificate(bundle.key, bundle.certificate)
    for issuer, cert in zip(bundle.chain, (bundle.certificate, *bundle.chain), strict=False):
        assert issuer.subject == cert.issuer
    with pytest.raises(WrongPasswordError):
        load_pkcs12((MIMEKIT / name).read_bytes(), b"wrong")


def test_mimekit_pfx_are_all_there() -> None:
    assert len(MIMEKIT_PFX) >= 12


@pytest.mark.parametrize("data", [b"", b"garbage", (RFC9216 / "alice.sign.crt").read_bytes()])
def test_not_pkcs12(data: bytes) -> None:
    with pytest.raises(KeyLoadError, match=r"^not a PKCS#12 file$"):
        load_pkcs12(data, b"pw")


def test_every_error_is_a_smimekit_error() -> None:
    for cls in (KeyLoadError, PasswordRequiredError, WrongPasswordError, CertificateLoadError):
        assert issubclass(cls, SmimekitError)
