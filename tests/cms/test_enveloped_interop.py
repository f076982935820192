"""Interoperability with the real ``openssl cms`` in both directions (OpenSSL 3.0 has no X25519 in CMS and
no ChaCha20-Poly1305: those are covered by published vectors in test_enveloped_vectors.py)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from smimekit.cms.algorithms import ContentCipher, KeyTransport
from smimekit.cms.enveloped import decrypt, encrypt
from smimekit.cms.recipients import KEKRecipient, KeyTransRecipient, PasswordRecipient, certificate_recipient
from smimekit.errors import LegacyAlgorithmError
from tests.testpki import Identity, make_ca, make_ee

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")

CONTENT = b"Content-Type: text/plain\r\n\r\nInteroperability, both ways.\r\n"
KEK = bytes.fromhex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")


def openssl(*args: str | Path, stdin: bytes = b"") -> bytes:
    done = subprocess.run(
        ["openssl", *map(str, args)], input=stdin, capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout


@pytest.fixture(scope="module")
def pki() -> dict[str, Identity]:
    ca = make_ca()
    return {k: make_ee(f"{k}@example.org", ca, key_kind=k) for k in ("rsa2048", "p256", "p384")}


@pytest.fixture
def files(tmp_path: Path, pki: dict[str, Identity]) -> dict[str, tuple[Path, Path]]:
    return {k: ident.write_pem(tmp_path, k) for k, ident in pki.items()}


# ------------------------------------------------------------------------------------------ we encrypt


CASES = [
    ("rsa2048", KeyTransport.RSA_PKCS1V15, ContentCipher.AES256_CBC),
    ("rsa2048", KeyTransport.RSA_OAEP, ContentCipher.AES128_CBC),
    ("rsa2048", KeyTransport.RSA_OAEP, ContentCipher.AES256_GCM),
    ("rsa2048", KeyTransport.RSA_PKCS1V15, ContentCipher.AES128_GCM),
    ("p256", None, ContentCipher.AES256_GCM),
    ("p256", None, ContentCipher.AES192_CBC),
    ("p384", None, ContentCipher.AES256_CBC),
    ("p384", None, ContentCipher.AES128_GCM),
]


@pytest.mark.parametrize(("kind", "transport", "cipher"), CASES, ids=lambda v: getattr(v, "name", v))
def test_openssl_decrypts_what_we_encrypt(tmp_path, pki, files, kind, transport, cipher) -> None:
    cert = pki[kind].cert
    recipient = KeyTransRecipient(cert, transport) if transport else certificate_recipient(cert)
    msg = tmp_path / "msg.der"
    msg.write_bytes(encrypt(CONTENT, [recipient], cipher=cipher))
    crt, key = files[kind]
    out = openssl("cms", "-decrypt", "-inform", "DER", "-in", msg, "-recip", crt, "-inkey", key, "-binary")
    assert out == CONTENT


def test_openssl_decrypts_a_message_to_several_recipients(tmp_path, pki, files) -> None:
    recipients = [certificate_recipient(pki[k].cert) for k in ("rsa2048", "p256", "p384")]
    msg = tmp_path / "msg.der"
    msg.write_bytes(encrypt(CONTENT, [*recipients, KEKRecipient(b"\x0c\x0f\xee", KEK)]))
    for kind in ("rsa2048", "p256", "p384"):
        crt, key = files[kind]
        args = ("cms", "-decrypt", "-inform", "DER", "-in", msg, "-recip", crt, "-inkey", key, "-binary")
        assert openssl(*args) == CONTENT


def test_openssl_decrypts_our_password_recipient(tmp_path) -> None:
    msg = tmp_path / "msg.der"
    msg.write_bytes(
        encrypt(CONTENT, [PasswordRecipient(b"s3cret", iterations=2048)], cipher=ContentCipher.AES256_CBC)
    )
    assert (
        openssl("cms", "-decrypt", "-inform", "DER", "-in", msg, "-pwri_password", "s3cret", "-binary")
        == CONTENT
    )


def test_openssl_decrypts_our_kek_recipient(tmp_path) -> None:
    msg = tmp_path / "msg.der"
    msg.write_bytes(encrypt(CONTENT, [KEKRecipient(b"\xc0\xfe\xe0", KEK)], cipher=ContentCipher.AES128_CBC))
    args = ("-secretkey", KEK.hex(), "-secretkeyid", "C0FEE0")
    assert openssl("cms", "-decrypt", "-inform", "DER", "-in", msg, *args, "-binary") == CONTENT


# ------------------------------------------------------------------------------------------ openssl encrypts


@pytest.mark.parametrize("stream", [False, True], ids=["der", "stream-ber"])
@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("rsa2048", ["-aes-256-cbc"]),
        ("rsa2048", ["-aes-128-cbc", "-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha256"]),
        ("rsa2048", ["-aes-256-gcm"]),
        ("p256", ["-aes-128-gcm"]),
        ("p384", ["-aes-192-cbc"]),
    ],
    ids=["rsa-cbc", "rsa-oaep", "rsa-gcm", "p256-gcm", "p384-cbc"],
)
def test_we_decrypt_what_openssl_encrypts(tmp_path, pki, files, kind, options, stream) -> None:
    src = tmp_path / "in.txt"
    src.write_bytes(CONTENT * 50)
    crt, _ = files[kind]
    extra = ["-stream"] if stream else []
    out = openssl(
        "cms", "-encrypt", "-binary", "-in", src, "-outform", "DER", *extra, "-recip", crt, *options
    )
    if stream:
        assert out[1] == 0x80  # indefinite length: OpenSSL's streamed BER
    result = decrypt(out, key=pki[kind].key, certificate=pki[kind].cert)
    assert result.plaintext == CONTENT * 50
    assert decrypt(out, key=pki[kind].key).plaintext == CONTENT * 50


def test_we_decrypt_openssl_password_and_kek_recipients(tmp_path) -> None:
    src = tmp_path / "in.txt"
    src.write_bytes(CONTENT)
    pw = openssl(
        "cms", "-encrypt", "-binary", "-in", src, "-outform", "DER", "-aes-256-cbc", "-pwri_password", "pw1"
    )
    assert decrypt(pw, password=b"pw1").plaintext == CONTENT
    kek = openssl(
        "cms", "-encrypt", "-binary", "-in", src, "-outform", "DER", "-stream", "-aes-128-cbc",
        "-secretkey", KEK.hex(), "-secretkeyid", "C0FEE0",
    )  # fmt: skip
    assert decrypt(kek, kek=KEK, kek_id=b"\xc0\xfe\xe0").plaintext == CONTENT


def test_openssl_des3_needs_the_legacy_switch(tmp_path, pki, files) -> None:
    src = tmp_path / "in.txt"
    src.write_bytes(CONTENT)
    crt, _ = files["rsa2048"]
    out = openssl("cms", "-encrypt", "-binary", "-in", src, "-outform", "DER", "-des3", "-recip", crt)
    with pytest.raises(LegacyAlgorithmError, match="legacy_ciphers=True"):
        decrypt(out, key=pki["rsa2048"].key)
    result = decrypt(out, key=pki["rsa2048"].key, legacy_ciphers=True)
    assert result.plaintext == CONTENT
    assert result.legacy
    assert result.cipher is ContentCipher.DES_EDE3_CBC
