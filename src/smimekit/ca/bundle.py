"""Keys as the CA takes and hands them out: type checks for what it certifies and signs with, and the
PKCS#12 file ``smimekit ca issue --p12-out`` writes. Pure."""

from __future__ import annotations

from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa, x448, x25519
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
    PrivateKeyTypes,
    PublicKeyTypes,
)
from cryptography.hazmat.primitives.serialization import pkcs12

from smimekit.ca.describe import describe_key
from smimekit.errors import CaError

__all__ = ["MODERN_PKCS12_ROUNDS", "certifiable_key", "issuer_key", "pkcs12_bundle"]

#: PBKDF2-HMAC-SHA256 iterations of a modern PKCS#12 file
MODERN_PKCS12_ROUNDS = 200_000


def certifiable_key(key: PublicKeyTypes) -> CertificatePublicKeyTypes:
    """``key`` if the CA may certify it (BR 7.1.3.1: RSA, EC, EdDSA, X25519/X448); CaError otherwise."""
    if not isinstance(
        key,
        rsa.RSAPublicKey
        | ec.EllipticCurvePublicKey
        | ed25519.Ed25519PublicKey
        | ed448.Ed448PublicKey
        | x25519.X25519PublicKey
        | x448.X448PublicKey,
    ):
        raise CaError(f"a {describe_key(key)} key cannot be certified (BR 7.1.3.1)")
    return key


def issuer_key(key: PrivateKeyTypes) -> CertificateIssuerPrivateKeyTypes:
    """``key`` if a CA can sign with it (RSA, EC, Ed25519); CaError otherwise."""
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        raise CaError(f"a CA key cannot be a {describe_key(key)} key")
    return key


def pkcs12_bundle(
    *,
    name: str,
    key: PrivateKeyTypes,
    certificate: x509.Certificate,
    chain: Sequence[x509.Certificate],
    passphrase: bytes,
    legacy: bool = False,
) -> bytes:
    """``key``, ``certificate`` and its ``chain`` as PKCS#12 protected by ``passphrase``: AES-256-CBC with
    PBKDF2-HMAC-SHA256 and an HMAC-SHA256 MAC, or with ``legacy`` 3DES and SHA-1 (for gpgsm 2.2 and other
    old software). Raises CaError for a key PKCS#12 cannot carry here (X25519) or an empty passphrase."""
    if not passphrase:
        raise CaError("a PKCS#12 file needs a passphrase")
    if not isinstance(
        key,
        rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey,
    ):
        raise CaError(f"PKCS#12 files cannot hold an {describe_key(key)} key here: leave out --p12-out")
    builder = serialization.PrivateFormat.PKCS12.encryption_builder()
    if legacy:
        builder = builder.kdf_rounds(2048).key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
        builder = builder.hmac_hash(hashes.SHA1())
    else:
        builder = builder.kdf_rounds(MODERN_PKCS12_ROUNDS).key_cert_algorithm(
            pkcs12.PBES.PBESv2SHA256AndAES256CBC
        )
        builder = builder.hmac_hash(hashes.SHA256())
    return pkcs12.serialize_key_and_certificates(
        name.encode("utf-8"), key, certificate, list(chain) or None, builder.build(passphrase)
    )
