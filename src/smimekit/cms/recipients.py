"""Recipients of an enveloped message: who may recover the content-encryption key (CEK), and how.

Key transport (RSA-OAEP, RSA PKCS#1 v1.5; RFC 3560, 8017), ECDH ephemeral-static key agreement (RFC 5753,
P-256/P-384/P-521), X25519/X448 (RFC 8418), passwords (RFC 3211, PBKDF2) and pre-shared key-encryption keys
(KEK, AES key wrap). Recipients are frozen dataclasses; ``certificate_recipient`` picks the right one for a
certificate. Recovering the CEK never tells why it failed: RSA PKCS#1 v1.5 failures continue with a random
CEK (RFC 3218) and every other failure raises the one DecryptionError.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, keywrap
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, x448, x25519
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from cryptography.hazmat.primitives.kdf.x963kdf import X963KDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from smimekit.cms import _der
from smimekit.cms.algorithms import (
    DEFAULT_KEY_TRANSPORT,
    DEFAULT_PBKDF2_ITERATIONS,
    KEY_AGREEMENT_SCHEMES,
    KEY_WRAP_BY_SIZE,
    MGF1_OID,
    OAEP_SHA256_OID,
    PBKDF2_OID,
    PBKDF2_PRF_SHA256,
    PWRI_KEK_OID,
    KeyAgreementKdf,
    KeyTransport,
)
from smimekit.errors import UsageError

RSA_ENCRYPTION_OID = "1.2.840.113549.1.1.1"
EC_PUBLIC_KEY_OID = "1.2.840.10045.2.1"
X25519_OID = "1.3.101.110"
X448_OID = "1.3.101.111"
AES_CBC_BY_SIZE = {16: "2.16.840.1.101.3.4.1.2", 24: "2.16.840.1.101.3.4.1.22", 32: "2.16.840.1.101.3.4.1.42"}
AES_CBC_SIZES = {v: k for k, v in AES_CBC_BY_SIZE.items()}

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | x25519.X25519PrivateKey | x448.X448PrivateKey
_EC_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)


class RecipientType(enum.Enum):
    """The kind of RecipientInfo through which a message was opened."""

    KEY_TRANSPORT = "ktri"
    KEY_AGREEMENT = "kari"
    KEK = "kekri"
    PASSWORD = "pwri"


def _ski(cert: x509.Certificate) -> bytes | None:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return None


def _check_ski(cert: x509.Certificate, use_ski: bool) -> None:
    if use_ski and _ski(cert) is None:
        raise UsageError("the certificate has no subject key identifier to name the recipient by")


@dataclass(frozen=True)
class KeyTransRecipient:
    """An RSA certificate; the CEK is encrypted with RSA-OAEP (SHA-256, the default) or PKCS#1 v1.5.

    ``use_subject_key_identifier`` names the recipient by its SKI instead of issuer and serial number.
    Raises UsageError for a certificate without an RSA key.
    """

    certificate: x509.Certificate
    key_transport: KeyTransport = DEFAULT_KEY_TRANSPORT
    use_subject_key_identifier: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.certificate, x509.Certificate):
            raise UsageError("a recipient certificate must be a cryptography x509.Certificate")
        if not isinstance(self.certificate.public_key(), rsa.RSAPublicKey):
            raise UsageError("key transport needs a certificate with an RSA key")
        if not isinstance(self.key_transport, KeyTransport):
            raise UsageError("key_transport must be a KeyTransport")
        _check_ski(self.certificate, self.use_subject_key_identifier)


@dataclass(frozen=True)
class KeyAgreeRecipient:
    """An EC (P-256/P-384/P-521) or X25519/X448 certificate; ephemeral-static key agreement.

    ``kdf`` defaults by curve: X9.63 KDF with SHA-256/384/512 for P-256/384/521 (RFC 5753), HKDF-SHA-256 for
    X25519 and HKDF-SHA-512 for X448 (RFC 8418). Raises UsageError for any other key.
    """

    certificate: x509.Certificate
    kdf: KeyAgreementKdf | None = None
    use_subject_key_identifier: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.certificate, x509.Certificate):
            raise UsageError("a recipient certificate must be a cryptography x509.Certificate")
        key = self.certificate.public_key()
        ok = isinstance(key, x25519.X25519PublicKey | x448.X448PublicKey) or (
            isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, _EC_CURVES)
        )
        if not ok:
            raise UsageError(
                "key agreement needs a certificate with a P-256, P-384, P-521, X25519 or X448 key"
            )
        if self.kdf is not None and not isinstance(self.kdf, KeyAgreementKdf):
            raise UsageError("kdf must be a KeyAgreementKdf")
        _check_ski(self.certificate, self.use_subject_key_identifier)

    def scheme(self) -> KeyAgreementKdf:
        """The key-agreement scheme used: ``kdf``, or the default for the curve."""
        if self.kdf is not None:
            return self.kdf
        key = self.certificate.public_key()
        if isinstance(key, x25519.X25519PublicKey):
            return KeyAgreementKdf.HKDF_SHA256
        if isinstance(key, x448.X448PublicKey):
            return KeyAgreementKdf.HKDF_SHA512
        assert isinstance(key, ec.EllipticCurvePublicKey)
        bits = key.curve.key_size
        return {256: KeyAgreementKdf.X963_SHA256, 384: KeyAgreementKdf.X963_SHA384}.get(
            bits, KeyAgreementKdf.X963_SHA512
        )


@dataclass(frozen=True)
class PasswordRecipient:
    """A password (RFC 3211): PBKDF2-HMAC-SHA-256 with ``iterations`` derives an AES-256 key-encryption key."""

    password: bytes = field(repr=False)
    iterations: int = DEFAULT_PBKDF2_ITERATIONS

    def __post_init__(self) -> None:
        if not isinstance(self.password, bytes) or not self.password:
            raise UsageError("a password must be non-empty bytes")
        if not isinstance(self.iterations, int) or self.iterations < 1000:
            raise UsageError("PBKDF2 needs at least 1000 iterations")


@dataclass(frozen=True)
class KEKRecipient:
    """A pre-shared AES key-encryption key (16, 24 or 32 bytes) named by ``key_id``; AES key wrap (RFC 3394)."""

    key_id: bytes
    kek: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.key_id, bytes) or not self.key_id:
            raise UsageError("a KEK needs a non-empty key identifier (bytes)")
        if not isinstance(self.kek, bytes) or len(self.kek) not in KEY_WRAP_BY_SIZE:
            raise UsageError("a KEK must be 16, 24 or 32 bytes")


Recipient = KeyTransRecipient | KeyAgreeRecipient | PasswordRecipient | KEKRecipient


def certificate_recipient(
    certificate: x509.Certificate,
    *,
    key_transport: KeyTransport = DEFAULT_KEY_TRANSPORT,
    kdf: KeyAgreementKdf | None = None,
    use_subject_key_identifier: bool = False,
) -> KeyTransRecipient | KeyAgreeRecipient:
    """The recipient for ``certificate``: key transport for RSA, key agreement for EC/X25519/X448 keys."""
    if isinstance(certificate, x509.Certificate) and isinstance(certificate.public_key(), rsa.RSAPublicKey):
        return KeyTransRecipient(certificate, key_transport, use_subject_key_identifier)
    return KeyAgreeRecipient(certificate, kdf, use_subject_key_identifier)


# ------------------------------------------------------------------------------------------ writing


def _issuer_and_serial(cert: x509.Certificate) -> bytes:
    return _der.seq(cert.issuer.public_bytes(), _der.integer(cert.serial_number))


def _oaep_params_der() -> bytes:
    sha256 = _der.algorithm(OAEP_SHA256_OID)
    return _der.seq(_der.explicit(0, sha256), _der.explicit(1, _der.algorithm(MGF1_OID, sha256)))


def recipient_info(recipient: Recipient, cek: bytes) -> tuple[bytes, int]:
    """The DER RecipientInfo that carries ``cek`` to ``recipient``, and its version number."""
    if isinstance(recipient, KeyTransRecipient):
        return _ktri(recipient, cek)
    if isinstance(recipient, KeyAgreeRecipient):
        return _kari(recipient, cek), 3
    if isinstance(recipient, PasswordRecipient):
        return _pwri(recipient, cek), 0
    if isinstance(recipient, KEKRecipient):
        body = (
            _der.integer(4)
            + _der.seq(_der.octets(recipient.key_id))
            + _der.algorithm(KEY_WRAP_BY_SIZE[len(recipient.kek)])
            + _der.octets(keywrap.aes_key_wrap(recipient.kek, cek))
        )
        return _der.tlv(0xA2, body), 4
    raise UsageError(f"not a recipient: {recipient!r}")


def _ktri(r: KeyTransRecipient, cek: bytes) -> tuple[bytes, int]:
    key = r.certificate.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    if r.key_transport is KeyTransport.RSA_OAEP:
        alg = _der.algorithm(KeyTransport.RSA_OAEP.value, _oaep_params_der())
        pad: padding.AsymmetricPadding = padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)
    else:
        alg = _der.algorithm(RSA_ENCRYPTION_OID, b"\x05\x00")
        pad = padding.PKCS1v15()
    if r.use_subject_key_identifier:
        ski = _ski(r.certificate)
        assert ski is not None
        rid, version = _der.implicit_primitive(0, ski), 2
    else:
        rid, version = _issuer_and_serial(r.certificate), 0
    return _der.seq(_der.integer(version), rid, alg, _der.octets(key.encrypt(cek, pad))), version


def _shared_info(wrap_alg_der: bytes, ukm: bytes | None, kek_size: int) -> bytes:
    """ECC-CMS-SharedInfo (RFC 5753 §7.2), the KDF's other info."""
    parts = [wrap_alg_der]
    if ukm is not None:
        parts.append(_der.explicit(0, _der.octets(ukm)))
    parts.append(_der.explicit(2, _der.octets((kek_size * 8).to_bytes(4, "big"))))
    return _der.seq(*parts)


def _derive_kek(scheme_oid: str, z: bytes, wrap_alg_der: bytes, kek_size: int, ukm: bytes | None) -> bytes:
    spec = KEY_AGREEMENT_SCHEMES[scheme_oid]
    info = _shared_info(wrap_alg_der, ukm, kek_size)
    if spec.kind == "hkdf":
        return HKDF(spec.hash, kek_size, salt=None, info=info).derive(z)
    return X963KDF(spec.hash, kek_size, info).derive(z)


def _kari(r: KeyAgreeRecipient, cek: bytes) -> bytes:
    peer = r.certificate.public_key()
    z: bytes
    if isinstance(peer, x25519.X25519PublicKey):
        eph25519 = x25519.X25519PrivateKey.generate()
        z, alg_oid = eph25519.exchange(peer), X25519_OID
        point = eph25519.public_key().public_bytes_raw()
    elif isinstance(peer, x448.X448PublicKey):
        eph448 = x448.X448PrivateKey.generate()
        z, alg_oid = eph448.exchange(peer), X448_OID
        point = eph448.public_key().public_bytes_raw()
    else:
        assert isinstance(peer, ec.EllipticCurvePublicKey)
        eph = ec.generate_private_key(peer.curve)
        z, alg_oid = eph.exchange(ec.ECDH(), peer), EC_PUBLIC_KEY_OID
        point = eph.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    wrap_size = len(cek) if len(cek) in KEY_WRAP_BY_SIZE else 32
    wrap_alg = _der.algorithm(KEY_WRAP_BY_SIZE[wrap_size])
    scheme = r.scheme().value
    kek = _derive_kek(scheme, z, wrap_alg, wrap_size, None)
    originator = _der.tlv(0xA1, _der.algorithm(alg_oid) + _der.tlv(0x03, b"\x00" + point))
    if r.use_subject_key_identifier:
        ski = _ski(r.certificate)
        assert ski is not None
        rid = _der.explicit(0, _der.octets(ski))
    else:
        rid = _issuer_and_serial(r.certificate)
    encrypted_keys = _der.seq(_der.seq(rid, _der.octets(keywrap.aes_key_wrap(kek, cek))))
    body = _der.integer(3) + _der.explicit(0, originator) + _der.algorithm(scheme, wrap_alg) + encrypted_keys
    return _der.tlv(0xA1, body)


def _pwri_wrap(kek: bytes, iv: bytes, cek: bytes) -> bytes:
    """RFC 3211 §2.3.1: length, check bytes, CEK and random padding, CBC-encrypted twice."""
    block = bytes([len(cek)]) + bytes(b ^ 0xFF for b in cek[:3]) + cek
    total = max(32, -(-len(block) // 16) * 16)
    block += os.urandom(total - len(block))
    first = Cipher(algorithms.AES(kek), modes.CBC(iv)).encryptor()
    inner = first.update(block) + first.finalize()
    second = Cipher(algorithms.AES(kek), modes.CBC(inner[-16:])).encryptor()
    return second.update(inner) + second.finalize()


def _pwri_unwrap(kek: bytes, iv: bytes, wrapped: bytes) -> bytes | None:
    """RFC 3211 §2.3.2; None when the check bytes or the length do not hold."""
    if len(wrapped) < 32 or len(wrapped) % 16:
        return None

    def cbc_decrypt(key_iv: bytes, data: bytes) -> bytes:
        ctx = Cipher(algorithms.AES(kek), modes.CBC(key_iv)).decryptor()
        return ctx.update(data) + ctx.finalize()

    last_inner = cbc_decrypt(wrapped[-32:-16], wrapped[-16:])
    inner = cbc_decrypt(last_inner, wrapped)
    plain = cbc_decrypt(iv, inner)
    n = plain[0]
    check = bytes(a ^ b for a, b in zip(plain[1:4], plain[4:7], strict=True))
    if n < 3 or n > len(plain) - 4 or check != b"\xff\xff\xff":
        return None
    return plain[4 : 4 + n]


def _pwri(r: PasswordRecipient, cek: bytes) -> bytes:
    salt, iv = os.urandom(16), os.urandom(16)
    kek = PBKDF2HMAC(hashes.SHA256(), 32, salt, r.iterations).derive(r.password)
    kdf = _der.tlv(
        0xA0,
        _der.oid(PBKDF2_OID)
        + _der.seq(
            _der.octets(salt), _der.integer(r.iterations), _der.algorithm(PBKDF2_PRF_SHA256, b"\x05\x00")
        ),
    )
    kea = _der.algorithm(PWRI_KEK_OID, _der.algorithm(AES_CBC_BY_SIZE[32], _der.octets(iv)))
    body = _der.integer(0) + kdf + kea + _der.octets(_pwri_wrap(kek, iv, cek))
    return _der.tlv(0xA3, body)
