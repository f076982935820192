"""A test PKI built in code: a root CA, an intermediate and end-entity certificates of every key type.

Everything is generated with pyca/cryptography so that the tests need no files; ``write_pem`` puts them on
disk for the real tools (openssl, gpgsm).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa, x448, x25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Identity:
    cert: x509.Certificate
    key: Any  # a private key object of cryptography
    chain: tuple[x509.Certificate, ...] = ()  # issuers, nearest first, without the root

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def write_pem(self, directory: Path, stem: str) -> tuple[Path, Path]:
        """Write ``stem.crt`` and ``stem.key`` (PKCS#8, unencrypted) and return their paths."""
        c, k = directory / f"{stem}.crt", directory / f"{stem}.key"
        c.write_bytes(self.cert_pem())
        k.write_bytes(self.key_pem())
        return c, k


def new_key(kind: str) -> Any:
    """``rsa2048``, ``rsa3072``, ``p256``, ``p384``, ``p521``, ``ed25519``, ``ed448``, ``x25519``, ``x448``."""
    if kind.startswith("rsa"):
        return rsa.generate_private_key(65537, int(kind[3:]))
    curves = {"p256": ec.SECP256R1, "p384": ec.SECP384R1, "p521": ec.SECP521R1}
    if kind in curves:
        return ec.generate_private_key(curves[kind]())
    gens = {
        "ed25519": ed25519.Ed25519PrivateKey,
        "ed448": ed448.Ed448PrivateKey,
        "x25519": x25519.X25519PrivateKey,
        "x448": x448.X448PrivateKey,
    }
    return gens[kind].generate()


def _sign_hash(key: Any) -> hashes.HashAlgorithm | None:
    return None if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey) else hashes.SHA256()


def make_ca(
    name: str = "smimekit Test Root CA", *, key_kind: str = "p256", issuer: Identity | None = None
) -> Identity:
    """A root CA, or an intermediate CA when ``issuer`` is given."""
    key = new_key(key_kind)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    signer_key = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=30))
        .not_valid_after(NOW + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False
        )
    cert = builder.sign(signer_key, _sign_hash(signer_key))
    chain = (issuer.cert, *issuer.chain) if issuer and not _is_root(issuer) else ()
    return Identity(cert, key, chain)


def _is_root(ident: Identity) -> bool:
    return ident.cert.issuer == ident.cert.subject


def make_ee(
    email: str,
    ca: Identity,
    *,
    key_kind: str = "rsa2048",
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    signing: bool = True,
    encryption: bool = True,
) -> Identity:
    """An S/MIME end-entity certificate for ``email`` issued by ``ca``."""
    key = new_key(key_kind)
    is_agreement = key_kind in ("x25519", "x448")
    is_ec = key_kind.startswith("p")
    ku = x509.KeyUsage(
        digital_signature=signing and not is_agreement,
        content_commitment=False,
        key_encipherment=encryption and key_kind.startswith("rsa"),
        data_encipherment=False,
        key_agreement=encryption and (is_agreement or is_ec),
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, email.split("@")[0].title()),
                    x509.NameAttribute(NameOID.EMAIL_ADDRESS, email),
                ]
            )
        )
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or NOW - dt.timedelta(days=1))
        .not_valid_after(not_after or NOW + dt.timedelta(days=825))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(ku, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(email)]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
        .sign(ca.key, _sign_hash(ca.key))
    )
    chain = () if _is_root(ca) else (ca.cert, *ca.chain)
    return Identity(cert, key, chain)
