"""The store's interface: what every backend (SQLite, PostgreSQL) provides, and the records it returns.

Callers (the CLI, the gateway, ``smimekit.net``) program against :class:`Store` only; ``open_store()`` in
:mod:`smimekit.store` picks the backend from the location (a file path: SQLite; ``postgresql://...``:
PostgreSQL). Every method is one transaction: it either happens whole or not at all. Time is always a
parameter (``at``/``now``), never read behind the caller's back, except where a method says so.

Private keys are kept encrypted (PKCS#8, scrypt or PBKDF2 + AES-256); the store never holds a passphrase.
A wrong passphrase raises :class:`~smimekit.errors.WrongPasswordError`; a record that is not there raises
:class:`~smimekit.errors.StoreNotFoundError` (the ``find_*`` methods return None or [] instead); a store
held by another process past the timeout raises :class:`~smimekit.errors.StoreLockedError`.
"""

from __future__ import annotations

import abc
import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

__all__ = [
    "CaRecord",
    "CertificateRecord",
    "CorrespondentRecord",
    "IssuedRecord",
    "RevocationReason",
    "Store",
    "Trust",
]


class Trust(enum.Flag):
    """What a certificate in the store is trusted for as a trust anchor (none: not an anchor)."""

    NONE = 0
    EMAIL_SIGNING = enum.auto()
    """Anchor for verifying signatures (emailProtection, digitalSignature)."""
    EMAIL_ENCRYPTION = enum.auto()
    """Anchor for checking recipient certificates before encrypting."""
    EMAIL = EMAIL_SIGNING | EMAIL_ENCRYPTION


class RevocationReason(enum.Enum):
    """RFC 5280 §5.3.1 reasons, as ``smimekit ca revoke --reason`` names them."""

    UNSPECIFIED = "unspecified"
    KEY_COMPROMISE = "keyCompromise"
    CA_COMPROMISE = "cACompromise"
    AFFILIATION_CHANGED = "affiliationChanged"
    SUPERSEDED = "superseded"
    CESSATION_OF_OPERATION = "cessationOfOperation"
    CERTIFICATE_HOLD = "certificateHold"
    PRIVILEGE_WITHDRAWN = "privilegeWithdrawn"


@dataclass(frozen=True)
class CertificateRecord:
    """One certificate in the store, with what the store knows about it."""

    certificate: x509.Certificate
    fingerprint: str
    """SHA-256 of the DER, lower-case hex without separators (the key for every by-certificate method)."""
    emails: tuple[str, ...]
    """Addresses from the SAN (rfc822Name, SmtpUTF8Mailbox) and the legacy subject emailAddress, as the
    index holds them: the domain lower-cased (IDNA A-labels to U-labels), the local part as written."""
    trust: Trust
    has_private_key: bool
    source: str
    """Where it came from: "import", "harvest", "ca", "ldap", ..."""
    added: dt.datetime


@dataclass(frozen=True)
class CorrespondentRecord:
    """What was learned about a correspondent from their signed mail (RFC 8551 §2.5.2, §2.7.1)."""

    email: str
    capabilities: tuple[str, ...]
    """SMIMECapabilities OIDs in the sender's order of preference (dotted strings)."""
    preferred_certificate: str | None
    """Fingerprint of the encryption certificate they prefer (SMIMEEncryptionKeyPreference), if known."""
    updated: dt.datetime
    """The signing time of the message this was learned from (newer information replaces older only)."""


@dataclass(frozen=True)
class CaRecord:
    """A certificate authority run by ``smimekit ca``: its certificate (whose key is in the store)."""

    name: str
    fingerprint: str
    certificate: x509.Certificate
    crl_url: str | None
    """The CRL distribution point put into what the CA issues."""
    ocsp_url: str | None
    """The OCSP responder URL put into what the CA issues."""
    ca_issuers_url: str | None
    """Where the CA's own certificate is published: the id-ad-caIssuers URL of what it issues."""
    is_default: bool


@dataclass(frozen=True)
class IssuedRecord:
    """A certificate issued by one of our CAs, and whether it was revoked."""

    ca_fingerprint: str
    serial: int
    fingerprint: str
    email: str | None
    not_after: dt.datetime
    revoked_at: dt.datetime | None
    reason: RevocationReason | None


class Store(abc.ABC):
    """A certificate and key store. Use it as a context manager, or call :meth:`close`."""

    location: str
    """The SQLite path or the PostgreSQL URL (without its password), for messages."""

    # -- lifecycle ------------------------------------------------------------------------------
    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- certificates ---------------------------------------------------------------------------
    @abc.abstractmethod
    def add_certificate(
        self, certificate: x509.Certificate, *, source: str = "import", trust: Trust | None = None
    ) -> CertificateRecord:
        """Add (or keep) a certificate; ``trust`` not None sets its trust flags. Returns the record."""

    @abc.abstractmethod
    def find_certificate(self, fingerprint: str) -> CertificateRecord | None:
        """By SHA-256 fingerprint (hex; a unique prefix of at least 8 digits is accepted)."""

    @abc.abstractmethod
    def find_by_email(self, email: str) -> list[CertificateRecord]:
        """Every certificate for the address (domain compared case-insensitively), newest notBefore first."""

    @abc.abstractmethod
    def find_by_issuer_serial(self, issuer: x509.Name, serial: int) -> CertificateRecord | None: ...

    @abc.abstractmethod
    def find_by_subject_key_identifier(self, ski: bytes) -> list[CertificateRecord]: ...

    @abc.abstractmethod
    def find_by_subject(self, subject: x509.Name) -> list[CertificateRecord]:
        """Certificates whose subject is ``subject`` (to build paths: issuers of a certificate)."""

    @abc.abstractmethod
    def list_certificates(
        self, *, email: str | None = None, with_keys: bool | None = None
    ) -> list[CertificateRecord]:
        """All certificates (filtered by address, or by having a private key), ordered by first address."""

    @abc.abstractmethod
    def set_trust(self, fingerprint: str, trust: Trust) -> CertificateRecord:
        """Set the trust flags (Trust.NONE: no longer an anchor). StoreNotFoundError if unknown."""

    @abc.abstractmethod
    def trust_anchors(self, purpose: Trust = Trust.EMAIL_SIGNING) -> list[x509.Certificate]:
        """The anchors trusted for ``purpose``."""

    @abc.abstractmethod
    def remove_certificate(self, fingerprint: str) -> None:
        """Remove the certificate and its private key. StoreNotFoundError if unknown."""

    # -- private keys ---------------------------------------------------------------------------
    @abc.abstractmethod
    def add_private_key(self, fingerprint: str, key: PrivateKeyTypes, passphrase: bytes) -> None:
        """Store ``key`` for the certificate (which must be in the store and match the key), encrypted
        with ``passphrase``. Replaces a key stored before for that certificate."""

    @abc.abstractmethod
    def private_key(self, fingerprint: str, passphrase: bytes) -> PrivateKeyTypes:
        """The decrypted key. StoreNotFoundError if none; WrongPasswordError if the passphrase is wrong."""

    @abc.abstractmethod
    def encrypted_private_key(self, fingerprint: str) -> bytes:
        """The key as stored: encrypted PKCS#8 DER (for export without decrypting). StoreNotFoundError."""

    # -- revocation data (a cache for smimekit.net; validity is the caller's business) ------------
    @abc.abstractmethod
    def put_crl(self, crl: x509.CertificateRevocationList, *, url: str | None = None) -> None:
        """Keep a CRL (replacing an older one of the same issuer, scope and delta-ness)."""

    @abc.abstractmethod
    def crls(self, issuer: x509.Name | None = None) -> list[x509.CertificateRevocationList]:
        """Cached CRLs (of ``issuer``), whatever their nextUpdate."""

    @abc.abstractmethod
    def crl_for_url(self, url: str) -> tuple[x509.CertificateRevocationList, dt.datetime] | None:
        """The CRL last fetched from ``url`` and when it was stored."""

    @abc.abstractmethod
    def put_ocsp_response(
        self, fingerprint: str, der: bytes, *, this_update: dt.datetime, next_update: dt.datetime | None
    ) -> None:
        """Keep an OCSP response (DER OCSPResponse) for the certificate with ``fingerprint``."""

    @abc.abstractmethod
    def ocsp_response(self, fingerprint: str, *, now: dt.datetime) -> bytes | None:
        """The cached response for the certificate, if its nextUpdate is after ``now`` (or absent and
        thisUpdate is within a day of ``now``)."""

    # -- correspondents (learned from signed mail) ----------------------------------------------
    @abc.abstractmethod
    def record_correspondent(
        self,
        email: str,
        *,
        capabilities: Sequence[str],
        preferred_certificate: str | None,
        at: dt.datetime,
    ) -> None:
        """Remember what ``email`` announced in a message signed at ``at``; older news does not replace
        newer."""

    @abc.abstractmethod
    def correspondent(self, email: str) -> CorrespondentRecord | None: ...

    # -- certificate authorities --------------------------------------------------------------
    @abc.abstractmethod
    def add_ca(
        self,
        name: str,
        fingerprint: str,
        *,
        crl_url: str | None,
        ocsp_url: str | None,
        default: bool,
        ca_issuers_url: str | None = None,
    ) -> CaRecord:
        """Register a CA whose certificate (and key) is already in the store, with the URLs it puts into
        what it issues. Names are unique. StoreNotFoundError for an unknown certificate; StoreError for a
        name or certificate that is a CA already."""

    @abc.abstractmethod
    def find_ca(self, name: str | None = None) -> CaRecord | None:
        """The CA called ``name``, or the default CA (without a default: the only CA, if there is one)."""

    @abc.abstractmethod
    def list_cas(self) -> list[CaRecord]: ...

    @abc.abstractmethod
    def next_crl_number(self, ca_fingerprint: str) -> int:
        """Allocate the CA's next CRL number (1, 2, ...), atomically across processes and nodes."""

    @abc.abstractmethod
    def record_issued(
        self, ca_fingerprint: str, certificate: x509.Certificate, *, email: str | None
    ) -> IssuedRecord:
        """Remember a certificate the CA issued (it is added to the certificates too)."""

    @abc.abstractmethod
    def revoke_issued(
        self, ca_fingerprint: str, serial: int, *, at: dt.datetime, reason: RevocationReason
    ) -> IssuedRecord:
        """Mark an issued certificate revoked (revoking twice keeps the first date). StoreNotFoundError."""

    @abc.abstractmethod
    def issued(self, ca_fingerprint: str, *, email: str | None = None) -> list[IssuedRecord]:
        """Certificates issued by the CA (for an address), oldest first."""
