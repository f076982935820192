"""What the store knows about one message's people: the sender's signing key, the recipients' usable
and trusted encryption certificates, the internal recipients' private keys.

:func:`gather` asks the store and returns the :class:`~smimekit.gateway.decide.Knowledge` that
:func:`~smimekit.gateway.decide.decide` reads, with the :class:`Material` (certificates and keys) behind it.
Decrypted keys, senders' signers and positive certificate verdicts are cached (:class:`KeyCache`,
:class:`SignerCache`, :class:`TrustCache`). Revocation counts as the policy says: CRLs of the store that are
still current, and what the fetcher gets online (see :mod:`smimekit.gateway.revocation`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from smimekit import cms, pki
from smimekit.cms.recipients import PrivateKey
from smimekit.errors import StoreNotFoundError
from smimekit.gateway.decide import Envelope, Knowledge, MessageFacts
from smimekit.gateway.policy import Policy, normalize_address
from smimekit.gateway.revocation import current_crls
from smimekit.pki import RevocationFetcher, RevocationMode
from smimekit.pki.profile import KeyPurpose, key_usage_problem, validity_problem
from smimekit.selection import validate_with_revocation
from smimekit.store import CertificateRecord, Store, Trust

__all__ = ["MAX_CHAIN", "KeyCache", "Material", "SignerCache", "TrustCache", "gather", "validate_recipient"]

MAX_CHAIN = 8


@dataclass
class Material:
    """The certificates and keys behind a :class:`Knowledge`: the sender's signer, each encryptable
    recipient's certificate, and the (certificate, key) pairs of each internal recipient."""

    signer: cms.Signer | None = None
    certificates: dict[str, x509.Certificate] = field(default_factory=dict)
    keys: dict[str, list[tuple[x509.Certificate, PrivateKey]]] = field(default_factory=dict)


class KeyCache:
    """Private keys decrypted once per process (scrypt is slow on purpose), by certificate fingerprint."""

    def __init__(self) -> None:
        self._keys: dict[str, PrivateKeyTypes] = {}
        self._lock = threading.Lock()

    def get(self, store: Store, fingerprint: str, passphrase: bytes) -> PrivateKeyTypes:
        with self._lock:
            key = self._keys.get(fingerprint)
        if key is None:
            key = store.private_key(fingerprint, passphrase)
            with self._lock:
                self._keys[fingerprint] = key
        return key


class SignerCache:
    """Each internal sender's :class:`~smimekit.cms.Signer` (certificate, unlocked key, intermediates),
    remembered for ``ttl`` seconds: a burst of mail from one sender asks the store once. A certificate that
    is no longer valid at the message's time is not used from the cache; a key removed from the store or a
    newer certificate takes effect within ``ttl``. Bounded: it forgets everything rather than grow."""

    def __init__(self, ttl: float = 60.0, *, limit: int = 10_000) -> None:
        self.ttl = ttl
        self.limit = limit
        self._entries: dict[str, tuple[cms.Signer, float]] = {}
        self._lock = threading.Lock()

    def get(self, sender: str, clock: float, at: dt.datetime) -> cms.Signer | None:
        with self._lock:
            entry = self._entries.get(sender)
        if entry is None or entry[1] <= clock or validity_problem(entry[0].certificate, at) is not None:
            return None
        return entry[0]

    def put(self, sender: str, signer: cms.Signer, clock: float) -> None:
        with self._lock:
            if len(self._entries) >= self.limit:
                self._entries.clear()
            self._entries[sender] = (signer, clock + self.ttl)


def _chain(store: Store, cert: x509.Certificate) -> list[x509.Certificate]:
    """Issuers of ``cert`` the store holds, nearest first (for path building)."""
    found: list[x509.Certificate] = []
    current = cert
    for _ in range(MAX_CHAIN):
        if current.issuer == current.subject:
            break
        issuers = [r.certificate for r in store.find_by_subject(current.issuer)]
        issuers = [c for c in issuers if c not in found and c != current]
        if not issuers:
            break
        found.extend(issuers)
        current = issuers[0]
    return found


def _signing_record(records: list[CertificateRecord], at: dt.datetime) -> CertificateRecord | None:
    for rec in records:
        cert = rec.certificate
        if (
            rec.has_private_key
            and validity_problem(cert, at) is None
            and (key_usage_problem(cert, KeyPurpose.SIGNING) is None)
        ):
            return rec
    return None


class TrustCache:
    """Recipient certificates found usable and trusted, remembered for ``ttl`` seconds (path validation
    costs milliseconds; mail to the same people comes in bursts). Only positive verdicts are kept, and
    each is re-checked against the store's records: a certificate removed from the store, or no longer
    the one preferred, is not used from the cache. A CRL imported later takes effect within ``ttl``."""

    def __init__(self, ttl: float = 60.0) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def get(self, address: str, now: float) -> str | None:
        with self._lock:
            entry = self._entries.get(address)
        return entry[0] if entry is not None and entry[1] > now else None

    def put(self, address: str, fingerprint: str, now: float) -> None:
        with self._lock:
            if len(self._entries) > 100_000:  # bounded: forget everything rather than grow
                self._entries.clear()
            self._entries[address] = (fingerprint, now + self.ttl)


def validate_recipient(
    cert: x509.Certificate,
    *,
    store: Store,
    anchors: list[x509.Certificate],
    address: str,
    at: dt.datetime,
    revocation: RevocationMode,
    fetcher: RevocationFetcher | None,
) -> pki.PathResult:
    """Whether ``cert`` is trusted to encrypt to ``address`` at ``at``: a path to one of ``anchors``, and
    its revocation status as ``revocation`` says, from the store's current CRLs and what ``fetcher`` gets
    for the path found (asked only when the path is trusted otherwise: revocation data cannot make an
    untrusted certificate trusted). Never raises for an untrusted certificate."""
    return validate_with_revocation(
        cert,
        purpose=KeyPurpose.ENCRYPTION,
        email=address,
        at=at,
        anchors=anchors,
        intermediates=_chain(store, cert),
        crls=current_crls(store, at),
        revocation=revocation,
        fetcher=fetcher,
    )


def _encryption_certificate(
    store: Store,
    address: str,
    at: dt.datetime,
    cache: TrustCache | None = None,
    *,
    revocation: RevocationMode = RevocationMode.SOFT,
    fetcher: RevocationFetcher | None = None,
) -> x509.Certificate | None:
    """A usable, trusted encryption certificate for ``address``: the one the correspondent prefers when it
    is usable, else the newest usable one."""
    records = store.find_by_email(address)
    if not records:
        return None
    preferred = None
    with contextlib.suppress(StoreNotFoundError):
        known = store.correspondent(address)
        preferred = known.preferred_certificate if known is not None else None
    records.sort(key=lambda r: r.fingerprint != preferred)
    clock = time.monotonic()
    cached = cache.get(address, clock) if cache is not None else None
    if cached is not None and records[0].fingerprint == cached:
        cert = records[0].certificate
        if not pki.check_recipient_certificate(cert, at=at, email=address):
            return cert
    anchors = store.trust_anchors(Trust.EMAIL_ENCRYPTION)
    if not anchors:
        return None
    for rec in records:
        cert = rec.certificate
        if pki.check_recipient_certificate(cert, at=at, email=address):
            continue
        result = validate_recipient(
            cert,
            store=store,
            anchors=anchors,
            address=address,
            at=at,
            revocation=revocation,
            fetcher=fetcher,
        )
        if result.trusted:
            if cache is not None:
                cache.put(address, rec.fingerprint, clock)
            return cert
    return None


def gather(
    store: Store,
    envelope: Envelope,
    facts: MessageFacts,
    policy: Policy,
    *,
    now: dt.datetime,
    passphrase: bytes | None,
    keys: KeyCache,
    trust: TrustCache | None = None,
    signers: SignerCache | None = None,
    fetcher: RevocationFetcher | None = None,
) -> tuple[Knowledge, Material]:
    """Ask the store what :func:`decide` needs for this message, and keep the material behind it.
    Recipients' certificates are checked for revocation as ``policy.revocation`` says, with ``fetcher``
    (None: only the store's current CRLs).

    Raises StoreError (StoreLockedError: retry later), WrongPasswordError when the passphrase does not
    open a key that is needed.
    """
    material = Material()
    if policy.is_internal(envelope.sender):
        sender = normalize_address(envelope.sender)
        if policy.sign and not facts.signed and not facts.encrypted and passphrase is not None:
            material.signer = _signer(store, sender, now, passphrase, keys, signers)
        if not facts.encrypted:
            for rcpt in envelope.recipients:
                address = normalize_address(rcpt)
                cert = _encryption_certificate(
                    store, address, now, trust, revocation=policy.revocation, fetcher=fetcher
                )
                if cert is not None:
                    material.certificates[address] = cert
    elif facts.encrypted and policy.decrypt and passphrase is not None:
        for rcpt in envelope.recipients:
            address = normalize_address(rcpt)
            if not policy.is_internal(address):
                continue
            pairs = []
            for rec in store.list_certificates(email=address, with_keys=True):
                pairs.append((rec.certificate, keys.get(store, rec.fingerprint, passphrase)))
            if pairs:
                material.keys[address] = pairs  # type: ignore[assignment]
    knowledge = Knowledge(
        can_sign=material.signer is not None,
        encryptable=frozenset(material.certificates),
        decryptable=frozenset(material.keys),
    )
    return knowledge, material


def _signer(
    store: Store,
    sender: str,
    now: dt.datetime,
    passphrase: bytes,
    keys: KeyCache,
    signers: SignerCache | None,
) -> cms.Signer | None:
    """The sender's signer: a valid signing certificate with its key from the store, and its
    intermediates; from ``signers`` when it was looked up lately."""
    clock = time.monotonic()
    if signers is not None:
        cached = signers.get(sender, clock, now)
        if cached is not None:
            return cached
    rec = _signing_record(store.list_certificates(email=sender, with_keys=True), now)
    if rec is None:
        return None
    key = keys.get(store, rec.fingerprint, passphrase)
    signer = cms.Signer(
        rec.certificate,
        key,  # type: ignore[arg-type]  # a signing key: checked by Signer itself
        # the intermediates; the root is the recipient's business
        extra_certificates=tuple(c for c in _chain(store, rec.certificate) if c.issuer != c.subject),
    )
    if signers is not None:
        signers.put(sender, signer, clock)
    return signer
