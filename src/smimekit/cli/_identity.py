"""The certificate and key store in the S/MIME commands: which store, and the keys, certificates and trust
anchors the commands take from it when no file gives them.

The choices themselves (which certificate signs, which key opens a message) are made by
:mod:`smimekit.selection`; this module opens the store the command line names, unlocks private keys with
the password sources of :mod:`._secrets`, and words what is missing as one line for the user. What
verified signatures teach goes back into the store (:func:`harvest_signers`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, overload

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa, x448, x25519
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from .. import selection
from ..cms.recipients import PrivateKey
from ..errors import NotSmimeError, PasswordRequiredError, RecipientNotFoundError, StoreError
from ..mime import Entity
from ..recipients import RecipientId, message_recipients
from ..store.api import CertificateRecord, Store, Trust
from ._keys import KeyPair, read_trust_anchors
from ._secrets import PasswordSource, unlock
from ._store import cli_store_location, open_cli_store

if TYPE_CHECKING:
    from ..smime import VerificationReport

__all__ = [
    "Key",
    "StoreKeys",
    "decryption_keys",
    "harvest_signers",
    "optional_store",
    "required_store",
    "signing_identity",
    "store_anchors",
    "store_intermediates",
    "trust_anchors",
]

Key = tuple[x509.Certificate | None, PrivateKey]
"""A decryption key with its certificate (None for a key file given alone), as smime.open takes them."""


def _location() -> str | None:
    return cli_store_location()


def _exists(location: str | None) -> bool:
    """Whether the store at ``location`` (None: the default one) is there to be read, without creating it."""
    if location is not None and "://" in location:
        return True  # a database server: opening it tells
    path = Path(location) if location is not None else _default_path()
    return path is not None and path.exists()


def _default_path() -> Path | None:
    from ..store import default_location

    found = default_location()
    return None if "://" in found else Path(found)


@contextlib.contextmanager
def optional_store() -> Iterator[Store | None]:
    """The store named by ``--store``/``$SMIMEKIT_STORE`` (or the default one) when it exists, else None:
    the commands then work with what their options give, as they did before there was a store. A store
    that exists but cannot be opened is an error (StoreError), never silently ignored."""
    location = _location()
    if not _exists(location):
        yield None
        return
    with open_cli_store() as store:
        yield store


@contextlib.contextmanager
def required_store(
    purpose: str, *, first: str = "import your keys first (smimekit keys import)"
) -> Iterator[Store]:
    """The store the command needs for ``purpose`` (a phrase: "to sign as alice@example.org"); a store
    that is not there is never created. Raises StoreError when there is none yet, whose message
    suggests ``first`` (what makes one) or naming another store."""
    location = _location()
    if not _exists(location):
        where = location or "the default location"
        raise StoreError(
            f"no certificate store at {where} {purpose}: {first}, "
            "or name the store with --store or SMIMEKIT_STORE"
        )
    with open_cli_store() as store:
        yield store


def _unlock(store: Store, record: CertificateRecord, secrets: PasswordSource) -> PrivateKeyTypes:
    """The private key of ``record``, decrypted with the password from ``secrets`` (asked for once)."""

    def load(password: bytes | None) -> PrivateKeyTypes:
        if password is None:
            raise PasswordRequiredError("the key is encrypted")  # keys in the store always are
        return store.private_key(record.fingerprint, password)

    who = record.emails[0] if record.emails else record.fingerprint[:16]
    return unlock(load, secrets, name=f"the store's key for {who}", what="key")


def signing_identity(store: Store, email: str, *, secrets: PasswordSource, at: dt.datetime) -> KeyPair:
    """The key, certificate and chain to sign as ``email``: see :func:`smimekit.selection.signing_certificate`."""
    record = selection.signing_certificate(store, email, at=at)
    key = _unlock(store, record, secrets)
    return KeyPair(record.certificate, key, selection.issuer_chain(store, record.certificate))


def _usable(store: Store, record: CertificateRecord, secrets: PasswordSource) -> Key | None:
    key = _unlock(store, record, secrets)
    return (record.certificate, key) if isinstance(key, PrivateKey) else None


def decryption_keys(store: Store, message: Entity, *, secrets: PasswordSource) -> list[Key]:
    """The keys of the store that the encrypted layer of ``message`` names as recipients, unlocked.

    Raises NotSmimeError when ``message`` holds no encrypted layer reachable without decrypting,
    RecipientNotFoundError naming the recipients when the store has a key for none of them (exit 1),
    PasswordRequiredError or WrongPasswordError when a key cannot be unlocked.
    """
    recipients = message_recipients(message)
    records = selection.decryption_candidates(store, recipients)
    if not records:
        raise _no_key(recipients)
    keys = [key for record in records if (key := _usable(store, record, secrets)) is not None]
    if not keys:
        raise _no_key(recipients)
    return keys


def _no_key(recipients: Sequence[RecipientId]) -> RecipientNotFoundError:
    """A negative verdict (exit 1): the store has no key for any recipient the message names."""
    return RecipientNotFoundError("any key in the store", tuple(r.describe() for r in recipients))


class StoreKeys(Sequence[Key]):
    """The keys for ``smimekit open``: those the message's reachable encrypted layer names, or — when its
    encrypted layer lies inside an opaque signature and cannot be read before unwrapping — every key of
    the store that can decrypt, each unlocked only when ``open`` comes to try it."""

    def __init__(self, store: Store, message: Entity, secrets: PasswordSource) -> None:
        self._store = store
        self._secrets = secrets
        self._loaded: dict[int, Key] = {}
        self.recipients: tuple[RecipientId, ...] = ()
        try:
            self.recipients = message_recipients(message)
        except NotSmimeError:  # not encrypted where it can be seen: any key may be needed further in
            records = store.list_certificates(with_keys=True)
        else:
            records = selection.decryption_candidates(store, self.recipients)
        self._records = [r for r in records if _can_decrypt(r.certificate)]

    def __len__(self) -> int:
        return len(self._records)

    @overload
    def __getitem__(self, index: int) -> Key: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Key]: ...

    def __getitem__(self, index: int | slice) -> Key | Sequence[Key]:
        if isinstance(index, slice):
            return [self[i] for i in range(len(self._records))[index]]
        if index < 0:
            index += len(self._records)
        if not 0 <= index < len(self._records):
            raise IndexError(index)
        if index not in self._loaded:
            record = self._records[index]
            key = _unlock(self._store, record, self._secrets)
            if not isinstance(key, PrivateKey):  # the certificate said otherwise: a damaged store
                raise StoreError(
                    f"the store's key for {record.fingerprint[:16]} does not match its certificate"
                )
            self._loaded[index] = (record.certificate, key)
        return self._loaded[index]

    def no_key_error(self) -> RecipientNotFoundError:
        """What to say when no key of the store opens the message."""
        return _no_key(self.recipients)


def _can_decrypt(certificate: x509.Certificate) -> bool:
    try:
        key = certificate.public_key()
    except ValueError:
        return False
    return isinstance(
        key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | x25519.X25519PublicKey | x448.X448PublicKey
    )


def store_anchors(store: Store | None, purpose: Trust) -> list[x509.Certificate]:
    """The store's trust anchors for ``purpose`` (none without a store)."""
    return [] if store is None else store.trust_anchors(purpose)


def store_intermediates(store: Store | None) -> list[x509.Certificate]:
    """The CA certificates of the store, to build paths with (none without a store)."""
    return [] if store is None else selection.known_intermediates(store)


def trust_anchors(store: Store | None, purpose: Trust, trust: Sequence[str]) -> list[x509.Certificate]:
    """The store's trust anchors for ``purpose``, then those of the ``--trust`` files and directories."""
    return [*store_anchors(store, purpose), *(read_trust_anchors(trust) if trust else [])]


def harvest_signers(store: Store | None, reports: Iterable[VerificationReport], at: dt.datetime) -> list[str]:
    """Keep in the store what the intact and valid signatures of ``reports`` teach (the certificates
    they carry, their signers' capabilities and encryption preference); returns the fingerprints kept,
    each once. Nothing without a store. The certificates kept are no trust anchors: a recipient
    certificate is validated before anything is encrypted to it."""
    if store is None:
        return []
    from ..store.harvest import harvest

    kept: dict[str, None] = {}
    for report in reports:
        for record in harvest(store, report, at=at):
            kept.setdefault(record.fingerprint)
    return list(kept)
