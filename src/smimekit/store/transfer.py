"""Importing files into the store and exporting from it.

Import reads PEM (certificates and private keys, any number of blocks), DER certificates, PKCS#7
certificate files and PKCS#12 files (:func:`read_import`, which needs the file's own password only);
:func:`store_import` then keeps the certificates and, under the store passphrase, the keys that belong to
a certificate. Export writes PKCS#12 (modern: AES-256-CBC, PBKDF2-SHA256, SHA-256 MAC; or legacy: 3DES,
SHA-1 MAC, for old clients) with the chain found in the store, and certificates as PEM or DER.

No file I/O here: bytes in, bytes out; the CLI reads and writes the files.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.hazmat.primitives.serialization.pkcs12 import PBES

from smimekit.errors import (
    CertificateLoadError,
    KeyLoadError,
    PasswordRequiredError,
    StoreError,
    StoreNotFoundError,
    UsageError,
)
from smimekit.keys import key_matches_certificate, load_certificates, load_pkcs12_bundles, load_private_key
from smimekit.store._codec import fingerprint_of
from smimekit.store.api import CertificateRecord, Store, Trust

__all__ = [
    "ImportBundle",
    "ImportResult",
    "Pkcs12Profile",
    "export_certificate",
    "export_pkcs12",
    "find_certificate",
    "issuer_chain",
    "read_import",
    "store_import",
]

MODERN_ROUNDS = 600_000
LEGACY_ROUNDS = 100_000
MAX_CHAIN = 10

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]{1,64})-----\r?\n.*?-----END \1-----", re.DOTALL)


class Pkcs12Profile(enum.Enum):
    """How an exported PKCS#12 file is protected."""

    MODERN = "modern"
    """AES-256-CBC with PBKDF2-HMAC-SHA256 for the key and certificates, an HMAC-SHA256 MAC."""
    LEGACY = "legacy"
    """3DES (pbeWithSHAAnd3-KeyTripleDES-CBC) and an HMAC-SHA1 MAC: for clients that read nothing newer
    (Windows before 10 1709, macOS Keychain before 2023, gpgsm 2.2). No RC2."""


@dataclass(frozen=True)
class ImportBundle:
    """What a file holds: its certificates (in file order) and its private keys."""

    certificates: tuple[x509.Certificate, ...]
    keys: tuple[PrivateKeyTypes, ...]


@dataclass(frozen=True)
class ImportResult:
    """What :func:`store_import` kept: every certificate's record (after the import), and the fingerprints
    of the certificates whose key was stored."""

    certificates: tuple[CertificateRecord, ...]
    keys: tuple[str, ...]


# ----------------------------------------------------------------------------------------- import


def read_import(data: bytes, password: bytes | None = None) -> ImportBundle:
    """The certificates and keys of ``data``: PEM, DER or PKCS#7 certificates, PEM or DER private keys,
    or a PKCS#12 file. ``password`` is the file's own (PKCS#12, or an encrypted key).

    Raises PasswordRequiredError / WrongPasswordError (the file's password; a caller may ask and retry),
    CertificateLoadError or KeyLoadError (damaged), UsageError (none of these forms).
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise UsageError(f"import data must be bytes, not {type(data).__name__}")
    data = bytes(data)
    if not data.strip():
        raise UsageError("the file to import is empty")
    if b"-----BEGIN " in data:
        return _read_pem(data, password)
    try:
        return ImportBundle(tuple(load_certificates(data)), ())
    except CertificateLoadError:
        pass
    try:
        bundles = load_pkcs12_bundles(data, password)
    except PasswordRequiredError:
        raise
    except KeyLoadError as exc:
        if exc.reason != "not a PKCS#12 file":
            raise
    else:
        certs: list[x509.Certificate] = []
        for bundle in bundles:
            certs.extend(c for c in (bundle.certificate, *bundle.chain) if c not in certs)
        return ImportBundle(tuple(certs), tuple(b.key for b in bundles))
    try:
        return ImportBundle((), (load_private_key(data, password),))
    except PasswordRequiredError:
        raise
    except KeyLoadError as exc:
        if exc.reason != "not a private key":
            raise
    raise UsageError("not a certificate, a private key or a PKCS#12 file (PEM, DER, PKCS#7 or PKCS#12)")


def _read_pem(data: bytes, password: bytes | None) -> ImportBundle:
    keys: list[PrivateKeyTypes] = []
    for match in _PEM_BLOCK.finditer(data):
        if match.group(1).endswith(b"PRIVATE KEY"):
            keys.append(load_private_key(match.group(0), password))
    try:
        certs = tuple(load_certificates(data))
    except CertificateLoadError as exc:
        if not keys or exc.reason != "no certificate found in the PEM data":
            raise
        certs = ()
    return ImportBundle(certs, tuple(keys))


def _certificate_for_key(
    store: Store, key: PrivateKeyTypes, among: tuple[x509.Certificate, ...]
) -> str | None:
    """The fingerprint of the certificate (of the file, else of the store) that holds ``key``'s public key."""
    for cert in among:
        if key_matches_certificate(key, cert):
            return fingerprint_of(cert)
    try:
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key()).digest  # type: ignore[arg-type]
    except (TypeError, ValueError, UnsupportedAlgorithm):
        ski = None
    candidates = store.find_by_subject_key_identifier(ski) if ski is not None else []
    for record in (*candidates, *store.list_certificates()):
        if key_matches_certificate(key, record.certificate):
            return record.fingerprint
    return None


def store_import(
    store: Store,
    bundle: ImportBundle,
    *,
    passphrase: bytes | None,
    trust: Trust | None = None,
    source: str = "import",
) -> ImportResult:
    """Keep the certificates of ``bundle`` (with ``trust`` when given: every certificate of the file), and
    each key, encrypted under ``passphrase``, for its certificate (of the file or already in the store).

    Raises StoreError when a key has no certificate (nothing is stored then) or when keys come without a
    passphrase; the other store errors as the store raises them.
    """
    key_targets: list[tuple[PrivateKeyTypes, str]] = []
    for key in bundle.keys:
        target = _certificate_for_key(store, key, bundle.certificates)
        if target is None:
            raise StoreError(
                "a private key of the file has no certificate in the file or the store: import that first"
            )
        key_targets.append((key, target))
    if key_targets and not passphrase:
        raise StoreError("the file holds a private key: a passphrase is needed to keep it in the store")
    records = [store.add_certificate(cert, source=source, trust=trust) for cert in bundle.certificates]
    stored: list[str] = []
    for key, target in key_targets:
        store.add_private_key(target, key, passphrase or b"")
        stored.append(target)
    refreshed = tuple(store.find_certificate(r.fingerprint) or r for r in records)
    return ImportResult(refreshed, tuple(dict.fromkeys(stored)))


# ----------------------------------------------------------------------------------------- export


def find_certificate(store: Store, what: str, *, with_key: bool = False) -> CertificateRecord:
    """The certificate named by ``what``: an e-mail address (the newest certificate of that address, with
    a private key when ``with_key``) or a fingerprint (or a unique prefix of 8+ digits).

    Raises StoreNotFoundError.
    """
    if "@" in what:
        found = [r for r in store.find_by_email(what) if r.has_private_key or not with_key]
        if not found:
            kind = "certificate with a private key" if with_key else "certificate"
            raise StoreNotFoundError(f"no {kind} for {what} in the store")
        return found[0]
    record = store.find_certificate(what)
    if record is None:
        raise StoreNotFoundError(f"no certificate with fingerprint {what} in the store")
    if with_key and not record.has_private_key:
        raise StoreNotFoundError(f"the store holds no private key for the certificate {record.fingerprint}")
    return record


def issuer_chain(store: Store, certificate: x509.Certificate) -> tuple[x509.Certificate, ...]:
    """The issuers of ``certificate`` found in the store, nearest first, up to and including a
    self-signed one (each checked to have signed the one before)."""
    chain: list[x509.Certificate] = []
    current = certificate
    for _ in range(MAX_CHAIN):
        if current.issuer == current.subject and _issued_by(current, current):
            break
        issuer = next(
            (
                r.certificate
                for r in store.find_by_subject(current.issuer)
                if _issued_by(current, r.certificate)
            ),
            None,
        )
        if issuer is None or issuer in chain or issuer == certificate:
            break
        chain.append(issuer)
        current = issuer
    return tuple(chain)


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def export_pkcs12(
    store: Store,
    fingerprint: str,
    *,
    passphrase: bytes,
    password: bytes,
    profile: Pkcs12Profile = Pkcs12Profile.MODERN,
) -> bytes:
    """A PKCS#12 file with the certificate ``fingerprint``, its private key (opened with the store's
    ``passphrase``) and its chain from the store, protected with ``password``.

    Raises StoreNotFoundError (no such certificate or key), WrongPasswordError, StoreError (empty password).
    """
    if not isinstance(password, bytes) or not password:
        raise StoreError("a PKCS#12 file is exported only with a non-empty password")
    if not isinstance(profile, Pkcs12Profile):
        raise StoreError(f"profile must be a Pkcs12Profile, not {type(profile).__name__}")
    record = store.find_certificate(fingerprint)
    if record is None:
        raise StoreNotFoundError(f"no certificate with fingerprint {fingerprint} in the store")
    key = store.private_key(record.fingerprint, passphrase)
    builder = serialization.PrivateFormat.PKCS12.encryption_builder()
    if profile is Pkcs12Profile.MODERN:
        builder = builder.kdf_rounds(MODERN_ROUNDS).key_cert_algorithm(PBES.PBESv2SHA256AndAES256CBC)
        builder = builder.hmac_hash(hashes.SHA256())
    else:
        builder = builder.kdf_rounds(LEGACY_ROUNDS).key_cert_algorithm(PBES.PBESv1SHA1And3KeyTripleDESCBC)
        builder = builder.hmac_hash(hashes.SHA1())
    name = (record.emails[0] if record.emails else record.fingerprint[:16]).encode("utf-8")
    chain = issuer_chain(store, record.certificate)
    try:
        return pkcs12.serialize_key_and_certificates(
            name,
            key,  # type: ignore[arg-type]
            record.certificate,
            list(chain) or None,
            builder.build(password),
        )
    except (TypeError, ValueError, UnsupportedAlgorithm) as exc:  # X25519/X448 keys have no PKCS#12 form here
        raise StoreError(f"this key cannot be exported as PKCS#12 ({type(key).__name__}): {exc}") from None


def export_certificate(
    store: Store,
    fingerprint: str,
    *,
    encoding: serialization.Encoding = serialization.Encoding.PEM,
    with_chain: bool = False,
) -> bytes:
    """The certificate ``fingerprint`` as PEM or DER; ``with_chain`` (PEM only) appends its issuers from
    the store. Raises StoreNotFoundError, StoreError (a chain in DER)."""
    if encoding not in (serialization.Encoding.PEM, serialization.Encoding.DER):
        raise StoreError("certificates are exported as PEM or DER")
    record = store.find_certificate(fingerprint)
    if record is None:
        raise StoreNotFoundError(f"no certificate with fingerprint {fingerprint} in the store")
    if encoding is serialization.Encoding.DER:
        if with_chain:
            raise StoreError("a DER file holds one certificate: export the chain as PEM")
        return record.certificate.public_bytes(encoding)
    certs = (record.certificate, *(issuer_chain(store, record.certificate) if with_chain else ()))
    return b"".join(c.public_bytes(encoding) for c in certs)
