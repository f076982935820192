"""Reading certificate, key and PKCS#12 files named on the command line and turning them into library
objects (with :mod:`smimekit.keys` doing the parsing). Every error names the file it is about.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import click
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from .. import keys
from ..errors import CertificateLoadError, KeyLoadError, PasswordRequiredError, UsageError, WrongPasswordError
from ._common import STDIO, read_bytes, reason
from ._secrets import PasswordSource, password_file_option, unlock

__all__ = [
    "KeyPair",
    "cert_file_option",
    "is_address",
    "key_options",
    "key_pairs",
    "read_certificates",
    "read_crls",
    "read_trust_anchors",
    "recipient_certificate",
    "signing_pair",
]

F = TypeVar("F", bound=Callable[..., object])
_FILE = click.Path(dir_okay=False, allow_dash=True)
#: A trust directory holding more files than this is refused rather than read (a wrong directory).
MAX_TRUST_FILES = 10_000
MAX_TRUST_FILE_SIZE = 16 << 20
#: A CRL file holding more CRLs than this is refused rather than read.
MAX_CRLS_PER_FILE = 1000
_PEM_CRL = re.compile(rb"-----BEGIN X509 CRL-----\s.*?-----END X509 CRL-----", re.DOTALL)


@dataclass(frozen=True)
class KeyPair:
    """A private key with its certificate (None for a ``--key`` given alone, where that is allowed) and
    the other certificates that came with it (issuers first)."""

    certificate: x509.Certificate | None
    key: PrivateKeyTypes
    chain: tuple[x509.Certificate, ...] = ()


def _name(path: str) -> str:
    return "stdin" if path == STDIO else path


def _certificate_error(path: str, exc: CertificateLoadError) -> CertificateLoadError:
    return CertificateLoadError(f"{_name(path)}: {exc.reason}")


def read_certificates(path: str, *, what: str = "certificate file") -> list[x509.Certificate]:
    """The certificates in the file at ``path`` (PEM bundle, DER or PKCS#7; ``-``: stdin)."""
    data = read_bytes(path, what=what)
    try:
        return keys.load_certificates(data)
    except CertificateLoadError as exc:
        raise _certificate_error(path, exc) from None


def read_private_key(path: str, secrets: PasswordSource) -> PrivateKeyTypes:
    """The private key in the file at ``path`` (PEM or DER, PKCS#8 or traditional, encrypted or not)."""
    data = read_bytes(path, what="key file")
    try:
        return unlock(lambda pw: keys.load_private_key(data, pw), secrets, name=_name(path))
    except (PasswordRequiredError, WrongPasswordError):
        raise
    except KeyLoadError as exc:
        raise KeyLoadError(f"{_name(path)}: {exc.reason}") from None


def read_pkcs12(path: str, secrets: PasswordSource) -> list[keys.KeyBundle]:
    """Every key of the PKCS#12 file at ``path``, with its certificate and chain."""
    data = read_bytes(path, what="PKCS#12 file")
    try:
        return unlock(
            lambda pw: keys.load_pkcs12_bundles(data, pw), secrets, name=_name(path), what="PKCS#12 file"
        )
    except (PasswordRequiredError, WrongPasswordError):
        raise
    except KeyLoadError as exc:
        raise KeyLoadError(f"{_name(path)}: {exc.reason}") from None


def key_options(command: F) -> F:
    """Decorator: ``--cert``, ``--key``, ``--p12`` and ``--password-file``, for commands that need a key."""
    command = password_file_option(command)
    command = click.option(
        "--p12",
        metavar="FILE",
        type=_FILE,
        help="A PKCS#12 file (.p12/.pfx) with the key and its certificate, in place of --cert and --key.",
    )(command)
    command = click.option(
        "--key",
        metavar="FILE",
        type=_FILE,
        help="Your private key: PEM or DER, PKCS#8 or traditional, encrypted or not.",
    )(command)
    return cert_file_option(
        "Your certificate (PEM or DER; further certificates in the file are taken as its chain)."
    )(command)


def cert_file_option(help_text: str) -> Callable[[F], F]:
    """Decorator: the ``--cert FILE`` option with ``help_text``."""
    return click.option("--cert", metavar="FILE", type=_FILE, help=help_text)


def key_pairs(
    *, cert: str | None, key: str | None, p12: str | None, secrets: PasswordSource, cert_required: bool
) -> list[KeyPair]:
    """The keys given as ``--cert``/``--key`` or ``--p12``: one pair, or every key of the PKCS#12 file.

    With ``cert_required=False`` a ``--key`` alone gives a pair without a certificate. Raises UsageError
    for a wrong combination of options or a key that does not belong to the certificate.
    """
    if p12 is not None:
        if cert is not None or key is not None:
            raise UsageError("give either --p12 or --cert and --key, not both")
        return [KeyPair(b.certificate, b.key, b.chain) for b in read_pkcs12(p12, secrets)]
    if key is None:
        wanted = "--cert and --key" if cert_required else "--key (and --cert)"
        raise UsageError(f"give your key with {wanted}, or with --p12")
    if cert is None:
        if cert_required:
            raise UsageError("--key needs its certificate: give --cert too")
        return [KeyPair(None, read_private_key(key, secrets))]
    certificates = read_certificates(cert)
    private_key = read_private_key(key, secrets)
    mine = next((c for c in certificates if keys.key_matches_certificate(private_key, c)), None)
    if mine is None:
        raise UsageError(f"the key in {_name(key)} does not belong to the certificate in {_name(cert)}")
    return [KeyPair(mine, private_key, tuple(c for c in certificates if c is not mine))]


def signing_pair(pairs: Sequence[KeyPair]) -> KeyPair:
    """The pair to sign with: the first whose certificate allows digital signatures (else the first)."""
    for pair in pairs:
        if pair.certificate is None:
            continue
        try:
            usage = pair.certificate.extensions.get_extension_for_class(x509.KeyUsage).value
        except (x509.ExtensionNotFound, ValueError):
            return pair
        if usage.digital_signature:
            return pair
    return pairs[0]


def is_address(value: str) -> bool:
    """True when a ``--to``/``--from`` value names an e-mail address rather than a file: it holds an
    ``@``, no ``/``, and no file of that name exists."""
    return value != STDIO and "@" in value and "/" not in value and not os.path.exists(value)


def recipient_certificate(value: str) -> x509.Certificate:
    """The recipient certificate in the file ``value``: its first certificate (the others are taken as
    its chain)."""
    return read_certificates(value, what="recipient certificate")[0]


def read_crls(path: str) -> list[x509.CertificateRevocationList]:
    """The CRLs in the file at ``path``: PEM (any number of ``X509 CRL`` blocks) or DER (one or more
    CRLs one after the other). Raises UsageError naming the file when it holds none or a broken one."""
    data = read_bytes(path, what="CRL file")
    blobs = _PEM_CRL.findall(data) if b"-----BEGIN" in data else _der_elements(data, path)
    if not blobs:
        raise UsageError(f"{_name(path)}: no CRL found (expected PEM 'X509 CRL' blocks or DER)")
    if len(blobs) > MAX_CRLS_PER_FILE:
        raise UsageError(f"{_name(path)}: more than {MAX_CRLS_PER_FILE} CRLs in one file")
    out = []
    for n, blob in enumerate(blobs, 1):
        try:
            crl = x509.load_pem_x509_crl(blob) if blob.startswith(b"-----") else x509.load_der_x509_crl(blob)
        except ValueError as exc:
            raise UsageError(f"{_name(path)}: CRL {n} cannot be read: {exc}") from None
        out.append(crl)
    return out


def _der_elements(data: bytes, path: str) -> list[bytes]:
    """``data`` cut into its top-level DER elements (definite lengths only, as DER has them)."""
    out, pos = [], 0
    while pos < len(data):
        if data[pos] != 0x30 or pos + 2 > len(data):
            raise UsageError(f"{_name(path)}: not a CRL (neither PEM nor DER) at byte {pos}")
        first, head = data[pos + 1], 2
        if first < 0x80:
            length = first
        else:
            count = first & 0x7F
            if count == 0 or count > 4 or pos + 2 + count > len(data):
                raise UsageError(f"{_name(path)}: not a CRL (a bad DER length) at byte {pos}")
            length = int.from_bytes(data[pos + 2 : pos + 2 + count], "big")
            head += count
        end = pos + head + length
        if end > len(data):
            raise UsageError(f"{_name(path)}: the CRL at byte {pos} is truncated")
        out.append(data[pos:end])
        pos = end
        if len(out) > MAX_CRLS_PER_FILE:
            break
    return out


def read_trust_anchors(paths: Iterable[str]) -> list[x509.Certificate]:
    """The trust anchors in each path: a PEM bundle, a DER file or a directory of PEM/DER files.

    In a directory, hidden files and files holding no certificate (a README, a CRL) are skipped; a
    directory with no certificate at all is an error, as is an unreadable named file.
    """
    blobs: list[bytes] = []
    for path in paths:
        if path != STDIO and os.path.isdir(path):
            blobs.extend(_directory_blobs(path))
        else:
            data = read_bytes(path, what="trust anchor file")
            try:
                keys.load_certificates(data)
            except CertificateLoadError as exc:
                raise _certificate_error(path, exc) from None
            blobs.append(data)
    return keys.load_trust_anchors(blobs)


def _directory_blobs(path: str) -> list[bytes]:
    try:
        names = sorted(os.listdir(path))
    except OSError as exc:
        raise UsageError(f"cannot read trust directory {path}: {reason(exc)}") from exc
    if len(names) > MAX_TRUST_FILES:
        raise UsageError(f"trust directory {path} holds more than {MAX_TRUST_FILES} files")
    found: list[bytes] = []
    for name in names:
        full = os.path.join(path, name)
        if name.startswith(".") or not os.path.isfile(full) or os.path.getsize(full) > MAX_TRUST_FILE_SIZE:
            continue
        data = read_bytes(full, what="trust anchor file")
        try:
            keys.load_certificates(data)
        except CertificateLoadError:
            continue  # not a certificate file: directories of anchors often hold other files too
        found.append(data)
    if not found:
        raise CertificateLoadError(f"{path}: the directory holds no certificate")
    return found
