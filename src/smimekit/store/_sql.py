"""The store itself, once for both backends: every method of :class:`~smimekit.store.api.Store` as SQL over
a :class:`~smimekit.store._db.Database`, and the building of the records it returns.

Split by table: :mod:`~smimekit.store._sql_base` (lifecycle, transactions, certificate rows),
:mod:`~smimekit.store._sql_ca` (CAs and the certificates they issued) and this module (certificates, private
keys, the CRL/OCSP cache, correspondents), which puts them together as :class:`SqlStore`."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from smimekit.errors import StoreError, StoreNotFoundError
from smimekit.keys import key_matches_certificate
from smimekit.store._codec import (
    decrypt_private_key,
    email_key,
    encrypt_private_key,
    from_micros,
    name_key,
    normalize_fingerprint,
    serial_key,
    to_micros,
)
from smimekit.store._sql_base import _check_certificate, _now
from smimekit.store._sql_ca import SqlCaTables
from smimekit.store.api import CertificateRecord, CorrespondentRecord, Trust

__all__ = ["SqlStore"]

_OCSP_GRACE = dt.timedelta(days=1)
#: A CRL whose thisUpdate is later than now plus this is refused (a forged CRL "from the future" would
#: otherwise displace every genuine one).
CRL_TIME_TOLERANCE = dt.timedelta(minutes=5)
_MAX_CAPABILITIES = 64


def _crl_key(crl: x509.CertificateRevocationList, *, legacy: bool = False) -> str:
    """Issuer name, issuer key (the authority key identifier), scope (the issuingDistributionPoint) and
    delta-ness: CRLs with the same key replace each other, so a CRL under another key of the same name
    never displaces a CA's own. ``legacy``: the key without the key identifier (how stores keyed CRLs
    before; such a row is replaced by the CA's next CRL, see ``put_crl``)."""
    try:
        scope = crl.extensions.get_extension_for_class(x509.IssuingDistributionPoint).value.public_bytes()
    except x509.ExtensionNotFound:
        scope = b""
    try:
        crl.extensions.get_extension_for_class(x509.DeltaCRLIndicator)
        kind = b"delta"
    except x509.ExtensionNotFound:
        kind = b"full"
    aki = _crl_aki(crl)
    # the first key form (name, scope, kind) is kept for CRLs without an authority key identifier
    parts = (name_key(crl.issuer), scope, kind) + (() if aki is None or legacy else (b"aki:" + aki,))
    return hashlib.sha256(b"\0".join(parts)).hexdigest()


def _crl_aki(crl: x509.CertificateRevocationList) -> bytes | None:
    try:
        return crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    except (x509.ExtensionNotFound, ValueError):
        return None


class SqlStore(SqlCaTables):
    """A :class:`Store` over a SQLite or PostgreSQL :class:`Database` (see :func:`smimekit.store.open_store`).

    Opening migrates an older store to the current schema; StoreSchemaError for a newer or foreign one.
    """

    # -- certificates ---------------------------------------------------------------------------
    def add_certificate(
        self, certificate: x509.Certificate, *, source: str = "import", trust: Trust | None = None
    ) -> CertificateRecord:
        cert = _check_certificate(certificate)
        if trust is not None and not isinstance(trust, Trust):
            raise StoreError(f"trust must be a Trust, not {type(trust).__name__}")
        with self._tx(write=True) as cur:
            fingerprint = self._insert_certificate(cur, cert, str(source), trust)
            return self._certificates(cur, "c.fingerprint = ?", (fingerprint,), "c.fingerprint")[0]

    def find_certificate(self, fingerprint: str) -> CertificateRecord | None:
        with self._tx() as cur:
            found = self._resolve(cur, fingerprint)
            if found is None:
                return None
            return self._certificates(cur, "c.fingerprint = ?", (found,), "c.fingerprint")[0]

    def find_by_email(self, email: str) -> list[CertificateRecord]:
        if not isinstance(email, str) or "@" not in email:
            return []
        with self._tx() as cur:
            return self._certificates(
                cur,
                "c.fingerprint IN (SELECT fingerprint FROM certificate_emails WHERE email = ?)",
                (email_key(email),),
                "c.not_before DESC",
            )

    def find_by_issuer_serial(self, issuer: x509.Name, serial: int) -> CertificateRecord | None:
        with self._tx() as cur:
            found = self._certificates(
                cur,
                "c.issuer = ? AND c.serial = ?",
                (name_key(issuer), serial_key(serial)),
                "c.not_before DESC",
            )
        return found[0] if found else None

    def find_by_subject_key_identifier(self, ski: bytes) -> list[CertificateRecord]:
        with self._tx() as cur:
            return self._certificates(cur, "c.ski = ?", (bytes(ski),), "c.not_before DESC")

    def find_by_subject(self, subject: x509.Name) -> list[CertificateRecord]:
        with self._tx() as cur:
            return self._certificates(cur, "c.subject = ?", (name_key(subject),), "c.not_before DESC")

    def list_certificates(
        self, *, email: str | None = None, with_keys: bool | None = None
    ) -> list[CertificateRecord]:
        where, params = ["1 = 1"], []
        if email is not None:
            where.append("c.fingerprint IN (SELECT fingerprint FROM certificate_emails WHERE email = ?)")
            params.append(email_key(email))
        if with_keys is not None:
            where.append("k.fingerprint IS NOT NULL" if with_keys else "k.fingerprint IS NULL")
        with self._tx() as cur:
            # certificates without an address (CAs) after those with one
            order = "CASE WHEN c.first_email = '' THEN 1 ELSE 0 END, c.first_email, c.not_before DESC"
            return self._certificates(cur, " AND ".join(where), params, order)

    def set_trust(self, fingerprint: str, trust: Trust) -> CertificateRecord:
        if not isinstance(trust, Trust):
            raise StoreError(f"trust must be a Trust, not {type(trust).__name__}")
        with self._tx(write=True) as cur:
            found = self._require(cur, fingerprint)
            cur.run("UPDATE certificates SET trust = ? WHERE fingerprint = ?", (trust.value, found))
            return self._certificates(cur, "c.fingerprint = ?", (found,), "c.fingerprint")[0]

    def trust_anchors(self, purpose: Trust = Trust.EMAIL_SIGNING) -> list[x509.Certificate]:
        if not isinstance(purpose, Trust) or purpose == Trust.NONE:
            raise StoreError(
                "trust_anchors() needs a purpose (Trust.EMAIL_SIGNING or Trust.EMAIL_ENCRYPTION)"
            )
        with self._tx() as cur:
            rows = cur.run(
                "SELECT der FROM certificates WHERE (trust & ?) = ? ORDER BY added, fingerprint",
                (purpose.value, purpose.value),
            )
        return [x509.load_der_x509_certificate(bytes(r[0])) for r in rows]

    def remove_certificate(self, fingerprint: str) -> None:
        with self._tx(write=True) as cur:
            found = self._require(cur, fingerprint)
            ca = cur.run("SELECT name FROM cas WHERE fingerprint = ?", (found,))
            if ca:
                raise StoreError(f"the certificate {found} belongs to the CA {ca[0][0]!r}: it is kept")
            cur.run("DELETE FROM private_keys WHERE fingerprint = ?", (found,))
            cur.run("DELETE FROM certificate_emails WHERE fingerprint = ?", (found,))
            cur.run("DELETE FROM ocsp_responses WHERE fingerprint = ?", (found,))
            cur.run("DELETE FROM certificates WHERE fingerprint = ?", (found,))

    # -- private keys ---------------------------------------------------------------------------
    def add_private_key(self, fingerprint: str, key: PrivateKeyTypes, passphrase: bytes) -> None:
        with self._tx() as cur:
            found = self._require(cur, fingerprint)
            der = cur.run("SELECT der FROM certificates WHERE fingerprint = ?", (found,))[0][0]
        if not key_matches_certificate(key, x509.load_der_x509_certificate(bytes(der))):
            raise StoreError(f"the private key does not belong to the certificate {found}")
        encrypted = encrypt_private_key(key, passphrase)  # outside the transaction: the KDF takes a while
        with self._tx(write=True) as cur:
            self._require(cur, found)  # it may have been removed meanwhile
            cur.run(
                """INSERT INTO private_keys (fingerprint, encrypted, added) VALUES (?, ?, ?)
                   ON CONFLICT (fingerprint) DO UPDATE SET encrypted = excluded.encrypted, added = excluded.added""",
                (found, encrypted, _now()),
            )

    def encrypted_private_key(self, fingerprint: str) -> bytes:
        with self._tx() as cur:
            found = self._require(cur, fingerprint)
            rows = cur.run("SELECT encrypted FROM private_keys WHERE fingerprint = ?", (found,))
        if not rows:
            raise StoreNotFoundError(f"the store holds no private key for the certificate {found}")
        return bytes(rows[0][0])

    def private_key(self, fingerprint: str, passphrase: bytes) -> PrivateKeyTypes:
        return decrypt_private_key(self.encrypted_private_key(fingerprint), passphrase)

    # -- revocation data ------------------------------------------------------------------------
    def put_crl(self, crl: x509.CertificateRevocationList, *, url: str | None = None) -> None:
        if not isinstance(crl, x509.CertificateRevocationList):
            raise StoreError(f"expected a CRL, not {type(crl).__name__}")
        this_update = crl.last_update_utc
        if this_update > dt.datetime.now(dt.UTC) + CRL_TIME_TOLERANCE:
            raise StoreError(
                f"the CRL of {crl.issuer.rfc4514_string()} is dated in the future"
                f" ({this_update:%Y-%m-%d %H:%M:%S} UTC) and is not stored"
            )
        der = crl.public_bytes(serialization.Encoding.DER)
        next_update = crl.next_update_utc
        now = _now()
        key, legacy = _crl_key(crl), _crl_key(crl, legacy=True)
        with self._tx(write=True) as cur:
            cur.run(
                """INSERT INTO crls (crl_key, issuer, this_update, next_update, der, stored)
                   VALUES (?, ?, ?, ?, ?, ?)
                   ON CONFLICT (crl_key) DO UPDATE SET this_update = excluded.this_update,
                       next_update = excluded.next_update, der = excluded.der, stored = excluded.stored
                   WHERE crls.this_update <= excluded.this_update""",
                (
                    key,
                    name_key(crl.issuer),
                    to_micros(this_update),
                    None if next_update is None else to_micros(next_update),
                    der,
                    now,
                ),
            )
            if key != legacy:  # a row stored under the older key form, of this same CA key: superseded
                rows = cur.run("SELECT der, this_update FROM crls WHERE crl_key = ?", (legacy,))
                if rows and rows[0][1] <= to_micros(this_update):
                    try:
                        same_key = _crl_aki(x509.load_der_x509_crl(bytes(rows[0][0]))) == _crl_aki(crl)
                    except ValueError:
                        same_key = False
                    if same_key:
                        cur.run("DELETE FROM crls WHERE crl_key = ?", (legacy,))
            if url is not None:
                cur.run(
                    """INSERT INTO crl_urls (url, der, stored) VALUES (?, ?, ?)
                       ON CONFLICT (url) DO UPDATE SET der = excluded.der, stored = excluded.stored""",
                    (str(url), der, now),
                )

    def crls(self, issuer: x509.Name | None = None) -> list[x509.CertificateRevocationList]:
        with self._tx() as cur:
            if issuer is None:
                rows = cur.run("SELECT der FROM crls ORDER BY this_update DESC, crl_key")
            else:
                rows = cur.run(
                    "SELECT der FROM crls WHERE issuer = ? ORDER BY this_update DESC, crl_key",
                    (name_key(issuer),),
                )
        return [x509.load_der_x509_crl(bytes(r[0])) for r in rows]

    def crl_for_url(self, url: str) -> tuple[x509.CertificateRevocationList, dt.datetime] | None:
        with self._tx() as cur:
            rows = cur.run("SELECT der, stored FROM crl_urls WHERE url = ?", (str(url),))
        if not rows:
            return None
        return x509.load_der_x509_crl(bytes(rows[0][0])), from_micros(rows[0][1])

    def put_ocsp_response(
        self, fingerprint: str, der: bytes, *, this_update: dt.datetime, next_update: dt.datetime | None
    ) -> None:
        wanted = normalize_fingerprint(fingerprint)
        if wanted is None or len(wanted) != 64:
            raise StoreError(f"{fingerprint!r} is not a SHA-256 fingerprint")
        params = (
            wanted,
            bytes(der),
            to_micros(this_update, what="thisUpdate"),
            None if next_update is None else to_micros(next_update, what="nextUpdate"),
            _now(),
        )
        with self._tx(write=True) as cur:
            cur.run(
                """INSERT INTO ocsp_responses (fingerprint, der, this_update, next_update, stored)
                   VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT (fingerprint) DO UPDATE SET der = excluded.der,
                       this_update = excluded.this_update, next_update = excluded.next_update,
                       stored = excluded.stored
                   WHERE ocsp_responses.this_update <= excluded.this_update""",
                params,
            )

    def ocsp_response(self, fingerprint: str, *, now: dt.datetime) -> bytes | None:
        at = to_micros(now, what="now")
        wanted = normalize_fingerprint(fingerprint)
        if wanted is None:
            return None
        with self._tx() as cur:
            rows = cur.run(
                "SELECT der, this_update, next_update FROM ocsp_responses WHERE fingerprint = ?", (wanted,)
            )
        if not rows:
            return None
        der, this_update, next_update = rows[0]
        if next_update is not None:
            fresh = this_update <= at < next_update
        else:
            fresh = abs(at - this_update) <= _OCSP_GRACE // dt.timedelta(microseconds=1)
        return bytes(der) if fresh else None

    # -- correspondents -------------------------------------------------------------------------
    def record_correspondent(
        self,
        email: str,
        *,
        capabilities: Sequence[str],
        preferred_certificate: str | None,
        at: dt.datetime,
    ) -> None:
        if not isinstance(email, str) or "@" not in email:
            raise StoreError(f"{email!r} is not an e-mail address")
        caps = [str(c) for c in capabilities][:_MAX_CAPABILITIES]
        if any(not c or any(ch not in "0123456789." for ch in c) for c in caps):
            raise StoreError("capabilities must be dotted OIDs")
        preferred = None
        if preferred_certificate is not None:
            preferred = normalize_fingerprint(preferred_certificate)
            if preferred is None or len(preferred) != 64:
                raise StoreError(f"{preferred_certificate!r} is not a SHA-256 fingerprint")
        with self._tx(write=True) as cur:
            cur.run(
                """INSERT INTO correspondents (email, capabilities, preferred_certificate, updated)
                   VALUES (?, ?, ?, ?)
                   ON CONFLICT (email) DO UPDATE SET capabilities = excluded.capabilities,
                       preferred_certificate = excluded.preferred_certificate, updated = excluded.updated
                   WHERE correspondents.updated <= excluded.updated""",
                (email_key(email), " ".join(caps), preferred, to_micros(at, what="signing time")),
            )

    def correspondent(self, email: str) -> CorrespondentRecord | None:
        if not isinstance(email, str):
            return None
        with self._tx() as cur:
            rows = cur.run(
                "SELECT email, capabilities, preferred_certificate, updated FROM correspondents WHERE email = ?",
                (email_key(email),),
            )
        if not rows:
            return None
        address, caps, preferred, updated = rows[0]
        return CorrespondentRecord(address, tuple(caps.split()), preferred, from_micros(updated))
