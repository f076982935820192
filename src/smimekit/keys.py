"""Loading private keys, certificates and PKCS#12 files from bytes.

No file I/O here: the caller (the CLI, the store) reads the files and passes their bytes; passwords are
bytes too, and where they come from (a prompt, a file, the environment) is the caller's business.

Accepted forms:

- certificates: PEM (any number of ``CERTIFICATE``, ``X509 CERTIFICATE``, ``TRUSTED CERTIFICATE`` and
  ``PKCS7`` blocks; other blocks are skipped), DER, and PKCS#7 certs-only files (``.p7b``/``.p7c``,
  PEM or DER, BER indefinite lengths included);
- private keys: PEM or DER; PKCS#8 (plain or encrypted), traditional RSA/EC/DSA (plain or with the
  legacy ``Proc-Type: 4,ENCRYPTED`` PEM encryption);
- PKCS#12: modern (PBES2, AES, SHA-256 MAC) and legacy (3DES, RC2-40, SHA-1 MAC) files, with every key of
  the file (RFC 9216's files hold a signing and an encryption key).

Every failure raises a typed error from :mod:`smimekit.errors` whose message reads as a sentence.
"""

from __future__ import annotations

import base64
import binascii
import re
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from asn1crypto import cms as asn1_cms
from asn1crypto import pkcs12 as asn1_pkcs12
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12

from smimekit.errors import (
    CertificateLoadError,
    KeyLoadError,
    PasswordRequiredError,
    WrongPasswordError,
)

__all__ = [
    "KeyBundle",
    "key_matches_certificate",
    "load_certificates",
    "load_pkcs12",
    "load_pkcs12_bundles",
    "load_private_key",
    "load_trust_anchors",
]

KEY_PASSWORD_NEEDED = "the key is encrypted: a password is needed"
KEY_WRONG_PASSWORD = "wrong password or damaged key"
NOT_A_PRIVATE_KEY = "not a private key"
P12_PASSWORD_NEEDED = "the PKCS#12 file is protected: a password is needed"
P12_WRONG_PASSWORD = "wrong password or damaged PKCS#12 file"
NOT_PKCS12 = "not a PKCS#12 file"

_BEGIN = re.compile(rb"^-----BEGIN ([A-Z0-9 ]{1,64})-----$")
_CERT_LABELS = frozenset({b"CERTIFICATE", b"X509 CERTIFICATE", b"TRUSTED CERTIFICATE"})
_PKCS7_LABELS = frozenset({b"PKCS7", b"CMS"})


@dataclass(frozen=True)
class KeyBundle:
    """A private key with its certificate and the other certificates that came with it.

    ``chain`` holds the certificate's issuers found in the same file, nearest first, then any other
    certificates of the file that belong to no key of it. ``friendly_name`` is the PKCS#12 friendlyName
    of the key, when the file gives one.
    """

    key: PrivateKeyTypes
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()
    friendly_name: str | None = None


# ------------------------------------------------------------------------------------------ certificates


def load_certificates(data: bytes) -> list[x509.Certificate]:
    """Every certificate in ``data`` (PEM bundle, DER, or PKCS#7 certs-only in PEM or DER), in order.

    Raises CertificateLoadError when none can be read or a certificate block is damaged.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise CertificateLoadError(f"certificate data must be bytes, not {type(data).__name__}")
    data = bytes(data)
    if not data.strip():
        raise CertificateLoadError("the certificate data is empty")
    if b"-----BEGIN " in data:
        return _certificates_from_pem(data)
    return _certificates_from_der(data)


def _pem_blocks(data: bytes) -> Iterator[tuple[bytes, list[bytes]]]:
    """(label, body lines) of every complete PEM block in ``data``, in one linear pass."""
    label: bytes | None = None
    body: list[bytes] = []
    for raw in data.splitlines():
        line = raw.strip()
        begin = _BEGIN.match(line)
        if begin:
            label, body = begin.group(1), []
        elif label is not None and line == b"-----END " + label + b"-----":
            yield label, body
            label = None
        elif label is not None:
            body.append(line)


def _certificates_from_pem(data: bytes) -> list[x509.Certificate]:
    out: list[x509.Certificate] = []
    for label, body in _pem_blocks(data):
        if label not in _CERT_LABELS and label not in _PKCS7_LABELS:
            continue  # keys, CRLs and parameters may share a PEM file with certificates
        der = _pem_body(body, label)
        if label in _PKCS7_LABELS:
            out.extend(_certificates_from_pkcs7(der))
        elif label == b"TRUSTED CERTIFICATE":
            # OpenSSL's trusted form: the certificate followed by its trust settings
            out.append(_der_certificate(der[: _first_tlv_length(der)]))
        else:
            out.append(_der_certificate(der))
    if not out:
        raise CertificateLoadError("no certificate found in the PEM data")
    return out


def _pem_body(lines: list[bytes], label: bytes) -> bytes:
    if any(b":" in ln for ln in lines):
        raise CertificateLoadError(f"the PEM block {label.decode()} has headers; it is not a certificate")
    try:
        return base64.b64decode(b"".join(lines), validate=True)
    except (binascii.Error, ValueError):
        raise CertificateLoadError(f"a PEM block {label.decode()} is damaged (bad base64)") from None


def _certificates_from_der(data: bytes) -> list[x509.Certificate]:
    try:
        return [x509.load_der_x509_certificate(data)]
    except ValueError:
        pass
    try:
        return _certificates_from_pkcs7(data)
    except CertificateLoadError as exc:
        if exc.reason == "the PKCS#7 data holds no certificate":
            raise
    raise CertificateLoadError("not a certificate, a PEM bundle or a PKCS#7 certificate file")


def _certificates_from_pkcs7(der: bytes) -> list[x509.Certificate]:
    try:
        with warnings.catch_warnings():
            # cryptography warns on BER input and parses it anyway; BER is legitimate in PKCS#7
            warnings.filterwarnings("ignore", message="PKCS#7 certificates could not be parsed as DER")
            certs = pkcs7.load_der_pkcs7_certificates(der)
    except (ValueError, UnsupportedAlgorithm):
        certs = _certificates_from_ber_pkcs7(der)  # BER (indefinite lengths) as some Windows tools write
    if not certs:
        raise CertificateLoadError("the PKCS#7 data holds no certificate")
    return list(certs)


def _certificates_from_ber_pkcs7(der: bytes) -> list[x509.Certificate]:
    try:
        info = asn1_cms.ContentInfo.load(der)
        if info["content_type"].native != "signed_data":
            raise CertificateLoadError("the PKCS#7 data is not a SignedData")
        choices = info["content"]["certificates"]
        ders = [] if choices.native is None else [c.chosen.dump() for c in choices if c.name == "certificate"]
    except CertificateLoadError:
        raise
    except Exception:  # asn1crypto raises many types on malformed input; all mean "not PKCS#7"
        raise CertificateLoadError("not a PKCS#7 certificate file") from None
    return [_der_certificate(d) for d in ders]


def _der_certificate(der: bytes) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise CertificateLoadError(f"a certificate is damaged: {exc}") from None


def _first_tlv_length(der: bytes) -> int:
    """Length in bytes of the first DER element of ``der`` (header included)."""
    if len(der) < 2:
        raise CertificateLoadError("a certificate is damaged: too short")
    first = der[1]
    if first < 0x80:
        return 2 + first
    n = first & 0x7F
    if n == 0 or n > 4 or len(der) < 2 + n:
        raise CertificateLoadError("a certificate is damaged: bad length")
    return 2 + n + int.from_bytes(der[2 : 2 + n], "big")


def load_trust_anchors(blobs: Iterable[bytes]) -> list[x509.Certificate]:
    """The certificates of every blob (each read as by ``load_certificates``), duplicates removed.

    Raises CertificateLoadError when a blob holds no readable certificate.
    """
    seen: set[bytes] = set()
    out: list[x509.Certificate] = []
    for blob in blobs:
        for cert in load_certificates(blob):
            der = cert.public_bytes(serialization.Encoding.DER)
            if der not in seen:
                seen.add(der)
                out.append(cert)
    return out


# ------------------------------------------------------------------------------------------ private keys


def load_private_key(data: bytes, password: bytes | None = None) -> PrivateKeyTypes:
    """The private key in ``data`` (PEM or DER; PKCS#8 or traditional; encrypted or not).

    A password given for a key that is not encrypted is ignored. Raises PasswordRequiredError when the key
    is encrypted and no password was given, WrongPasswordError when the password does not open it, and
    KeyLoadError ("not a private key") for anything else.

    An RSA key is not checked for consistency as it loads (cryptography's costly
    ``unsafe_skip_rsa_key_validation``; why that is safe here is told at ``_SKIP_RSA_CHECK``): a damaged
    key loads, and then never signs or decrypts wrongly (SignatureError, DecryptionError).
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise KeyLoadError(f"key data must be bytes, not {type(data).__name__}")
    if password is not None and not isinstance(password, bytes):
        raise KeyLoadError("the password must be bytes")
    data = bytes(data)
    if b"-----BEGIN " in data:
        return _load_key(data, password, serialization.load_pem_private_key, _pem_key_encrypted(data))
    return _load_key(data, password, serialization.load_der_private_key, _der_key_encrypted(data))


# Why RSA keys are loaded with ``unsafe_skip_rsa_key_validation=True``: cryptography otherwise runs
# OpenSSL's full RSA_check_key on every load (primality of p and q, d*e = 1 mod lambda(n), the CRT values),
# 0.1-0.2 s for RSA-3072 and more for 4096 bits: as much as signing 100 MB. What the check guards against
# is a key whose parts do not fit together, and every use smimekit makes of a private key catches that:
# - OpenSSL checks each RSA-CRT result (signing and decryption) with the public exponent and recomputes it
#   with d when it is wrong, so a damaged CRT value or prime never yields a faulty result that would leak
#   the factors of the modulus;
# - ``cms.sign`` verifies every signature it makes with the certificate's public key before it leaves
#   (the fault-attack countermeasure of smimekit/cms/signed.py) and raises SignatureError, and
#   ``cms.Signer`` checks that the key belongs to the certificate: a key that cannot sign right never
#   signs;
# - a wrong decryption result fails the padding (or the AEAD tag) check: a DecryptionError.
# The keys are the user's own, read from their files; tests/test_keys.py damages each part in turn.
_SKIP_RSA_CHECK: Final = True  # see above


def _load_key(data: bytes, password: bytes | None, loader: Any, encrypted: bool) -> PrivateKeyTypes:
    """Load with ``loader``; ``encrypted`` is our sniffing, corrected by cryptography's TypeError."""
    if encrypted and not password:
        raise PasswordRequiredError(KEY_PASSWORD_NEEDED)
    try:
        key: PrivateKeyTypes = loader(
            data, password if encrypted else None, unsafe_skip_rsa_key_validation=_SKIP_RSA_CHECK
        )
        return key
    except TypeError:  # cryptography says the opposite of our sniffing about the encryption
        encrypted = not encrypted
    except (ValueError, UnsupportedAlgorithm):
        raise (
            WrongPasswordError(KEY_WRONG_PASSWORD) if encrypted else KeyLoadError(NOT_A_PRIVATE_KEY)
        ) from None
    if encrypted and password is None:
        raise PasswordRequiredError(KEY_PASSWORD_NEEDED)
    try:
        key = loader(data, password if encrypted else None, unsafe_skip_rsa_key_validation=_SKIP_RSA_CHECK)
    except (TypeError, ValueError, UnsupportedAlgorithm):
        raise (
            WrongPasswordError(KEY_WRONG_PASSWORD) if encrypted else KeyLoadError(NOT_A_PRIVATE_KEY)
        ) from None
    return key


def _pem_key_encrypted(data: bytes) -> bool:
    for label, body in _pem_blocks(data):
        if label == b"ENCRYPTED PRIVATE KEY":
            return True
        if label.endswith(b"PRIVATE KEY"):
            return b"Proc-Type: 4,ENCRYPTED" in body
    return False


def _der_key_encrypted(data: bytes) -> bool:
    from asn1crypto import keys as asn1_keys

    try:
        info = asn1_keys.EncryptedPrivateKeyInfo.load(data, strict=True)
        info["encryption_algorithm"]["algorithm"].native  # noqa: B018 - forces the parse
        return isinstance(info["encrypted_data"].native, bytes)
    except Exception:  # asn1crypto raises many types on malformed input; all mean "not encrypted PKCS#8"
        return False


def key_matches_certificate(key: PrivateKeyTypes, certificate: x509.Certificate) -> bool:
    """True when ``certificate`` holds the public key of ``key`` (False also when either is unreadable)."""
    try:
        mine = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        theirs = certificate.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return mine == theirs


# ------------------------------------------------------------------------------------------ PKCS#12


def load_pkcs12(data: bytes, password: bytes | None) -> KeyBundle:
    """The first key of a PKCS#12 file with its certificate and chain.

    A file with several keys (a signing and an encryption key) gives the first; ``load_pkcs12_bundles``
    gives them all. Raises PasswordRequiredError, WrongPasswordError, or KeyLoadError ("not a PKCS#12
    file", "the PKCS#12 file holds no private key", "... no certificate for its key").
    """
    return load_pkcs12_bundles(data, password)[0]


def load_pkcs12_bundles(data: bytes, password: bytes | None) -> list[KeyBundle]:
    """Every key of a PKCS#12 file, each with its certificate and chain, in the order of the file.

    The MAC and the encryption are checked by pyca/cryptography; the keys beyond the first are read
    from the file's unencrypted SafeContents (where PKCS#12 writers put the shrouded key bags). Raises
    as ``load_pkcs12``; further keys without a certificate in the file are left out.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise KeyLoadError(f"PKCS#12 data must be bytes, not {type(data).__name__}")
    if password is not None and not isinstance(password, bytes):
        raise KeyLoadError("the password must be bytes")
    data = bytes(data)
    first_key, certs, used_password = _open_pkcs12(data, password)
    if first_key is None:
        raise KeyLoadError("the PKCS#12 file holds no private key")
    keys = _pkcs12_keys(data, used_password, first_key)
    taken = [next((c for c in certs if key_matches_certificate(k, c)), None) for k, _ in keys]
    if taken[0] is None:
        raise KeyLoadError("the PKCS#12 file holds no certificate for its key")
    bundles = []
    for (key, name), cert in zip(keys, taken, strict=True):
        if cert is None:
            continue  # a further key without a certificate cannot sign or decrypt S/MIME: skipped
        others = [c for c in certs if all(c is not t for t in taken)]
        bundles.append(KeyBundle(key, cert, _order_chain(cert, others), name))
    return bundles


def _open_pkcs12(
    data: bytes, password: bytes | None
) -> tuple[PrivateKeyTypes | None, list[x509.Certificate], bytes | None]:
    # A file "without" a password is protected with either no password or an empty one: try both.
    attempts = [password] if password is not None else [None, b""]
    for attempt in attempts:
        try:
            with warnings.catch_warnings():
                # cryptography warns (and still succeeds) on BER-encoded files such as MimeKit's
                warnings.filterwarnings("ignore", message="PKCS#12 bundle could not be parsed as DER")
                key, cert, extra = pkcs12.load_key_and_certificates(data, attempt)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            continue
        certs = ([cert] if cert is not None else []) + list(extra)
        return key, certs, attempt
    if not _looks_like_pfx(data):
        raise KeyLoadError(NOT_PKCS12)
    if not password:
        raise PasswordRequiredError(P12_PASSWORD_NEEDED)
    raise WrongPasswordError(P12_WRONG_PASSWORD)


def _looks_like_pfx(data: bytes) -> bool:
    try:
        pfx = asn1_pkcs12.Pfx.load(data)
        return bool(pfx["version"].native == "v3" and pfx["auth_safe"]["content_type"].native)
    except Exception:  # asn1crypto raises many types on malformed input
        return False


@dataclass(frozen=True)
class _KeyBag:
    der: bytes
    shrouded: bool
    friendly_name: str | None


def _pkcs12_keys(
    data: bytes, password: bytes | None, first_key: PrivateKeyTypes
) -> list[tuple[PrivateKeyTypes, str | None]]:
    """Every key of the file with its friendlyName, ``first_key`` (cryptography's choice) first.

    The key bags of the unencrypted SafeContents are read with asn1crypto; a key bag is decrypted only
    when there are several. (cryptography validates the first key as it opens the file; the others are
    loaded without that check, as by ``load_private_key``.)
    """
    try:
        bags = _key_bags(data)
    except Exception:  # asn1crypto raises many types; the file already opened, so fall back quietly
        bags = []
    if len(bags) <= 1:
        return [(first_key, bags[0].friendly_name if bags else None)]

    def load(bag: _KeyBag) -> PrivateKeyTypes:
        # not validated, as in _load_key (see _SKIP_RSA_CHECK): the file's MAC was checked, and a damaged
        # key can make neither a signature that leaves nor a decryption that passes
        return serialization.load_der_private_key(
            bag.der, password if bag.shrouded else None, unsafe_skip_rsa_key_validation=_SKIP_RSA_CHECK
        )

    out: list[tuple[PrivateKeyTypes, str | None]] = [(first_key, bags[0].friendly_name)]
    try:
        for bag in bags[1:]:
            key = load(bag)
            if _same_key(key, first_key):  # cryptography chose another bag than the first: put it right
                out[0] = (first_key, bag.friendly_name)
                other = load(bags[0])
                if not any(_same_key(other, k) for k, _ in out):
                    out.append((other, bags[0].friendly_name))
            elif not any(_same_key(key, k) for k, _ in out):
                out.append((key, bag.friendly_name))
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return out[:1]
    return out


def _key_bags(data: bytes) -> list[_KeyBag]:
    out: list[_KeyBag] = []
    pfx = asn1_pkcs12.Pfx.load(data)
    for info in pfx.authenticated_safe:
        if info["content_type"].native == "data":  # encrypted SafeContents: cryptography's key covers those
            _collect_bags(asn1_pkcs12.SafeContents.load(info["content"].native), out, depth=0)
    return out


def _collect_bags(contents: Any, out: list[_KeyBag], *, depth: int) -> None:
    if depth > 4:
        return
    for bag in contents:
        kind = bag["bag_id"].native
        if kind == "safe_contents":
            _collect_bags(bag["bag_value"], out, depth=depth + 1)
            continue
        if kind not in ("key_bag", "pkcs8_shrouded_key_bag"):
            continue
        name = None
        for attr in bag["bag_attributes"]:
            if attr["type"].native == "friendly_name" and len(attr["values"]):
                name = str(attr["values"][0].native)
        out.append(_KeyBag(bag["bag_value"].untag().dump(force=True), kind != "key_bag", name))


def _same_key(a: PrivateKeyTypes, b: PrivateKeyTypes) -> bool:
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return a.public_key().public_bytes(*fmt) == b.public_key().public_bytes(*fmt)


def _order_chain(cert: x509.Certificate, others: list[x509.Certificate]) -> tuple[x509.Certificate, ...]:
    """The issuers of ``cert`` among ``others`` (nearest first, by name), then the rest in file order."""
    chain: list[x509.Certificate] = []
    pool = list(others)
    current = cert
    while current.issuer != current.subject:
        issuer = next((c for c in pool if c.subject == current.issuer), None)
        if issuer is None:
            break
        chain.append(issuer)
        pool.remove(issuer)
        current = issuer
    return (*chain, *pool)
