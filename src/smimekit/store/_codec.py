"""What both backends share below the SQL: timestamps, fingerprints, e-mail index keys, name and serial
encodings, and the encryption of private keys at rest."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import unicodedata

from asn1crypto import algos as asn1_algos
from asn1crypto import keys as asn1_keys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from smimekit.errors import KeyLoadError, PasswordRequiredError, StoreError, WrongPasswordError
from smimekit.keys import load_private_key

__all__ = [
    "KDF_ROUNDS",
    "decrypt_private_key",
    "email_key",
    "encrypt_private_key",
    "fingerprint_of",
    "from_micros",
    "name_key",
    "normalize_fingerprint",
    "serial_key",
    "to_micros",
]

KDF_ROUNDS = 600_000
"""PBKDF2-HMAC-SHA256 iterations for keys at rest (OWASP's 2023 figure; about 70 ms on a laptop)."""

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def to_micros(when: dt.datetime, *, what: str = "time") -> int:
    """``when`` as microseconds since 1970 UTC. A naive datetime is refused (StoreError)."""
    if not isinstance(when, dt.datetime):
        raise StoreError(f"the {what} must be a datetime, not {type(when).__name__}")
    if when.tzinfo is None or when.utcoffset() is None:
        raise StoreError(f"the {what} must be timezone-aware (a naive datetime is ambiguous)")
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=int(value))


def fingerprint_of(certificate: x509.Certificate) -> str:
    """SHA-256 of the certificate's DER, lower-case hex."""
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


def normalize_fingerprint(text: str) -> str | None:
    """``text`` as lower-case hex without separators (``AB:CD``, ``ab cd``, ``abcd`` are the same); None
    when it is not hex or shorter than 8 digits (too short to name one certificate)."""
    if not isinstance(text, str):
        return None
    cleaned = "".join(c for c in text.strip().lower() if c not in ": ")
    if len(cleaned) < 8 or len(cleaned) > 64 or any(c not in "0123456789abcdef" for c in cleaned):
        return None
    return cleaned


def email_key(address: str) -> str:
    """The index form of an address: the local part as written (NFC), the domain lower-cased with
    A-labels turned into U-labels (RFC 8398 §5), without a final dot; the comparison rule of
    :func:`smimekit.pki.email_matches`."""
    local, _, domain = address.strip().rpartition("@")
    local = unicodedata.normalize("NFC", local)
    labels = []
    for label in domain.rstrip(".").split("."):
        low = label.lower()
        if low.startswith("xn--"):
            # a broken A-label is kept as written: it matches only itself
            with contextlib.suppress(UnicodeError, ValueError):
                low = low[4:].encode("ascii").decode("punycode")
        labels.append(unicodedata.normalize("NFC", low.lower()))
    return f"{local}@{'.'.join(labels)}" if local else ".".join(labels)


def name_key(name: x509.Name) -> bytes:
    """The DER of a distinguished name: how subjects and issuers are compared in the index."""
    return name.public_bytes()


def serial_key(serial: int) -> str:
    """A serial number as the index holds it (decimal text: serials reach 20 octets, beyond BIGINT)."""
    if not isinstance(serial, int) or isinstance(serial, bool):
        raise StoreError(f"a serial number must be an int, not {type(serial).__name__}")
    return str(serial)


# ------------------------------------------------------------------------------- keys at rest


def encrypt_private_key(key: PrivateKeyTypes, passphrase: bytes, *, rounds: int = KDF_ROUNDS) -> bytes:
    """``key`` as encrypted PKCS#8 DER: PBES2 with PBKDF2-HMAC-SHA256 (``rounds`` iterations, 16-byte salt)
    and AES-256-CBC (RFC 8018), readable by ``openssl pkcs8`` and :func:`decrypt_private_key`.

    cryptography's own PKCS#8 encryption uses 2,048 iterations and takes no count, so the PBES2 envelope is
    assembled here from its PBKDF2 and AES. Raises StoreError for an empty passphrase.
    """
    if not isinstance(passphrase, bytes) or not passphrase:
        raise StoreError("a private key is stored only under a non-empty passphrase")
    plain = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    salt, iv = os.urandom(16), os.urandom(16)
    secret = PBKDF2HMAC(hashes.SHA256(), 32, salt, rounds).derive(passphrase)
    padder = padding.PKCS7(128).padder()
    encryptor = Cipher(algorithms.AES256(secret), modes.CBC(iv)).encryptor()
    data = encryptor.update(padder.update(plain) + padder.finalize()) + encryptor.finalize()
    info = asn1_keys.EncryptedPrivateKeyInfo(
        {
            "encryption_algorithm": {
                "algorithm": "pbes2",
                "parameters": {
                    "key_derivation_func": {
                        "algorithm": "pbkdf2",
                        "parameters": {
                            "salt": asn1_algos.Pbkdf2Salt(name="specified", value=salt),
                            "iteration_count": rounds,
                            "prf": {"algorithm": "sha256", "parameters": None},
                        },
                    },
                    "encryption_scheme": {"algorithm": "aes256_cbc", "parameters": iv},
                },
            },
            "encrypted_data": data,
        }
    )
    return bytes(info.dump())


def decrypt_private_key(der: bytes, passphrase: bytes) -> PrivateKeyTypes:
    """The key in encrypted PKCS#8 ``der``. Raises WrongPasswordError (wrong passphrase or damaged data)."""
    if not isinstance(passphrase, bytes) or not passphrase:
        raise WrongPasswordError("the store's passphrase is needed to use a private key")
    try:
        return load_private_key(der, passphrase)
    except PasswordRequiredError:  # pragma: no cover - the store holds encrypted keys only
        raise WrongPasswordError("the stored key is not encrypted; refusing to use it") from None
    except WrongPasswordError:
        raise WrongPasswordError(
            "wrong passphrase for the key in the store (or the key is damaged)"
        ) from None
    except KeyLoadError as exc:
        raise WrongPasswordError(f"the key in the store cannot be read: {exc.reason}") from None
