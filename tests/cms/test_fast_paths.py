"""The speed work of issue 3 keeps its promises: ciphers and digests over reused buffers give the same
bytes, a signature is checked before it leaves (the fault-attack countermeasure that makes skipping RSA
key validation safe), and the streamed ChaCha20-Poly1305 matches RFC 8439's own test vector."""

from __future__ import annotations

import hashlib
import io
import os

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from smimekit.cms import ContentCipher, DigestAlgorithm, Signer, decrypt, encrypt_to, sign, verify
from smimekit.cms.content_cipher import _ChaChaPoly, new_encryptor
from smimekit.cms.recipients import KEKRecipient
from smimekit.cms.signed import digest_content
from smimekit.errors import SignatureError, UsageError
from tests.cms.conftest import SIGNING_TIME
from tests.testpki import Identity

# RFC 8439 §2.8.2 (Example and Test Vector for AEAD_CHACHA20_POLY1305)
RFC8439_KEY = bytes(range(0x80, 0xA0))
RFC8439_NONCE = bytes.fromhex("070000004041424344454647")
RFC8439_AAD = bytes.fromhex("50515253c0c1c2c3c4c5c6c7")
RFC8439_PLAINTEXT = (
    b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, "
    b"sunscreen would be it."
)
RFC8439_CIPHERTEXT = bytes.fromhex(
    "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6"
    "3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36"
    "92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"
    "3ff4def08e4b7a9de576d26586cec64b6116"
)
RFC8439_TAG = bytes.fromhex("1ae10b594f09e26a7e902ecbd0600691")


@pytest.mark.parametrize("split", [1, 7, 64, 1000])
def test_streamed_chacha20_poly1305_gives_the_rfc_8439_vector(split: int) -> None:
    enc = _ChaChaPoly(RFC8439_KEY, RFC8439_NONCE, RFC8439_AAD, encrypting=True)
    pieces = [RFC8439_PLAINTEXT[i : i + split] for i in range(0, len(RFC8439_PLAINTEXT), split)]
    ciphertext = b"".join(enc.update(p) for p in pieces) + enc.finalize()
    assert ciphertext == RFC8439_CIPHERTEXT
    assert enc.tag == RFC8439_TAG
    # and cryptography's one-shot AEAD agrees, so the vector is read right
    one_shot = ChaCha20Poly1305(RFC8439_KEY).encrypt(RFC8439_NONCE, RFC8439_PLAINTEXT, RFC8439_AAD)
    assert one_shot == RFC8439_CIPHERTEXT + RFC8439_TAG
    dec = _ChaChaPoly(RFC8439_KEY, RFC8439_NONCE, RFC8439_AAD, encrypting=False)
    assert b"".join(dec.update(c) for c in [RFC8439_CIPHERTEXT[:50], RFC8439_CIPHERTEXT[50:]]) == (
        RFC8439_PLAINTEXT
    )
    dec.verify(RFC8439_TAG)


@pytest.mark.parametrize("cipher", [ContentCipher.AES256_CBC, ContentCipher.AES128_CBC])
@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 4095, 4096, (1 << 20) + 5])
def test_cbc_padding_and_reused_buffers_match_a_plain_cbc(cipher: ContentCipher, size: int) -> None:
    key, iv = os.urandom(cipher.key_size), os.urandom(16)
    data = os.urandom(size)
    enc = new_encryptor(cipher, key, iv)
    out = bytearray()
    for i in range(0, size, 300_000):
        out += enc.update(data[i : i + 300_000])  # each view is used before the next update
    out += enc.finalize()
    pad = 16 - size % 16
    ref = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    assert bytes(out) == ref.update(data + bytes([pad]) * pad) + ref.finalize()


def test_gcm_over_reused_buffers_matches_the_one_shot_aead() -> None:
    key, nonce = os.urandom(32), os.urandom(12)
    data = os.urandom(3 * (1 << 20) + 123)
    enc = new_encryptor(ContentCipher.AES256_GCM, key, nonce)
    out = bytearray()
    for i in range(0, len(data), 1 << 20):
        out += enc.update(data[i : i + (1 << 20)])
    out += enc.finalize()
    assert bytes(out) + enc.tag == AESGCM(key).encrypt(nonce, data, None)  # type: ignore[attr-defined]


@pytest.mark.parametrize("cipher", [ContentCipher.AES256_GCM, ContentCipher.AES256_CBC])
def test_encrypting_pieces_streams_ber_that_decrypts(cipher: ContentCipher) -> None:
    kek = os.urandom(32)
    content = [os.urandom(700_000), b"", os.urandom(3 << 20), b"tail"]
    out = io.BytesIO()
    encrypt_to(out, iter(content), [KEKRecipient(key_id=b"k1", kek=kek)], cipher=cipher)
    der = out.getvalue()
    assert der[:2] == b"\x30\x80"  # the length was not known in advance: indefinite
    result = decrypt(der, kek=kek, kek_id=b"k1")
    assert result.read_bytes() == b"".join(content)
    with pytest.raises(UsageError):
        encrypt_to(io.BytesIO(), iter(["text"]), [KEKRecipient(key_id=b"k1", kek=kek)])  # type: ignore[list-item]


def test_digest_of_a_stream_read_into_one_buffer() -> None:
    data = os.urandom(2 * (1 << 20) + 77)
    digests = digest_content(io.BufferedReader(io.BytesIO(data)), [DigestAlgorithm.SHA256])
    assert digests[DigestAlgorithm.SHA256] == hashlib.sha256(data).digest()


def _faulty(identity: Identity) -> rsa.RSAPrivateKey:
    """``identity``'s RSA key with its private exponent and one CRT exponent damaged (as by a fault):
    the public key is unchanged, and so is cryptography's view of it when validation is skipped."""
    n = identity.key.private_numbers()
    numbers = rsa.RSAPrivateNumbers(n.p, n.q, n.d ^ 2, n.dmp1 ^ 2, n.dmq1, n.iqmp, n.public_numbers)
    return numbers.private_key(unsafe_skip_rsa_key_validation=True)


def test_a_faulty_signing_key_is_caught_before_the_signature_leaves(
    identities: dict[str, Identity],
) -> None:
    alice = identities["rsa2048"]
    bad = _faulty(alice)
    # the damaged key really signs wrongly: without the check its signature would be sent
    sig = bad.sign(b"x", padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(InvalidSignature):
        alice.cert.public_key().verify(sig, b"x", padding.PKCS1v15(), hashes.SHA256())  # type: ignore[union-attr]
    with pytest.raises(SignatureError, match="faulty"):
        sign(b"hello", [Signer(alice.cert, bad)], detached=True, signing_time=SIGNING_TIME)


def test_a_key_loaded_without_validation_signs_and_verifies(identities: dict[str, Identity]) -> None:
    from cryptography.hazmat.primitives import serialization

    alice = identities["rsa2048"]
    key = serialization.load_pem_private_key(alice.key_pem(), None, unsafe_skip_rsa_key_validation=True)
    der = sign(b"hello", [Signer(alice.cert, key)], detached=True, signing_time=SIGNING_TIME)  # type: ignore[arg-type]
    assert verify(der, detached_content=b"hello").ok
