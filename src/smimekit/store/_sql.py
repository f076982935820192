"""The store itself, once for both backends: every method of :class:`~smimekit.store.api.Store` as SQL over
a :class:`~smimekit.store._db.Database`, and the building of the records it returns."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from smimekit.errors import StoreError, StoreNotFoundError
from smimekit.keys import key_matches_certificate
from smimekit.pki import certificate_email_addresses
from smimekit.store._codec import (
    decrypt_private_key,
    email_key,
    encrypt_private_key,
    fingerprint_of,
    from_micros,
    name_key,
    normalize_fingerprint,
    serial_key,
    to_micros,
)
from smimekit.store._db import Cursor, Database, Row, migrate
from smimekit.store.api import (
    CaRecord,
    CertificateRecord,
    CorrespondentRecord,
    IssuedRecord,
    RevocationReason,
    Store,
    Trust,
)

__all__ = ["SqlStore"]

_CERT_COLUMNS = """c.fingerprint, c.der, c.trust, c.source, c.added,
    CASE WHEN k.fingerprint IS NULL THEN 0 ELSE 1 END, e.email
    FROM certificates c
    LEFT JOIN private_keys k ON k.fingerprint = c.fingerprint
    LEFT JOIN certificate_emails e ON e.fingerprint = c.fingerprint"""
_CA_COLUMNS = """a.name, a.fingerprint, c.der, a.crl_url, a.ocsp_url, a.ca_issuers_url, a.is_default
    FROM cas a JOIN certificates c ON c.fingerprint = a.fingerprint"""
_ISSUED_COLUMNS = "ca_fingerprint, serial, fingerprint, email, not_after, revoked_at, reason FROM issued"
_OCSP_GRACE = dt.timedelta(days=1)
#: A CRL whose thisUpdate is later than now plus this is refused (a forged CRL "from the future" would
#: otherwise displace every genuine one).
CRL_TIME_TOLERANCE = dt.timedelta(minutes=5)
_MAX_CAPABILITIES = 64


def _now() -> int:
    return to_micros(dt.datetime.now(dt.UTC))


def _check_certificate(certificate: object) -> x509.Certificate:
    if not isinstance(certificate, x509.Certificate):
        raise StoreError(f"expected a certificate, not {type(certificate).__name__}")
    return certificate


def _ski(certificate: x509.Certificate) -> bytes | None:
    try:
        return certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except (x509.ExtensionNotFound, ValueError):
        return None


def _utc(certificate: x509.Certificate, which: str) -> int:
    when: dt.datetime = getattr(certificate, f"not_valid_{which}_utc")
    return to_micros(when)


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


class SqlStore(Store):
    """A :class:`Store` over a SQLite or PostgreSQL :class:`Database` (see :func:`smimekit.store.open_store`).

    Opening migrates an older store to the current schema; StoreSchemaError for a newer or foreign one.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self.location = db.location
        self._closed = False
        try:
            migrate(db)
        except BaseException:
            db.close()
            raise

    # -- lifecycle ------------------------------------------------------------------------------
    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._db.close()

    def _tx(self, *, write: bool = False) -> Any:
        if self._closed:
            raise StoreError(f"the store {self.location} is closed")
        return self._db.transaction(write=write)

    # -- records --------------------------------------------------------------------------------
    def _certificates(
        self, cur: Cursor, where: str, params: Sequence[Any], order: str
    ) -> list[CertificateRecord]:
        rows = cur.run(
            f"SELECT {_CERT_COLUMNS} WHERE {where} ORDER BY {order}, c.fingerprint, e.position", params
        )
        grouped: dict[str, list[Row]] = {}
        for row in rows:
            grouped.setdefault(row[0], []).append(row)
        return [self._certificate_record(group) for group in grouped.values()]

    @staticmethod
    def _certificate_record(rows: list[Row]) -> CertificateRecord:
        fingerprint, der, trust, source, added, has_key, _ = rows[0]
        return CertificateRecord(
            certificate=x509.load_der_x509_certificate(bytes(der)),
            fingerprint=fingerprint,
            emails=tuple(r[6] for r in rows if r[6] is not None),
            trust=Trust(int(trust)),
            has_private_key=bool(has_key),
            source=source,
            added=from_micros(added),
        )

    def _resolve(self, cur: Cursor, fingerprint: str, *, table: str = "certificates") -> str | None:
        """The full fingerprint for ``fingerprint`` (or a unique prefix of it) in ``table``; None if none.
        StoreError when a prefix names several."""
        wanted = normalize_fingerprint(fingerprint)
        if wanted is None:
            return None
        if len(wanted) == 64:
            rows = cur.run(f"SELECT fingerprint FROM {table} WHERE fingerprint = ?", (wanted,))
        else:
            rows = cur.run(
                f"SELECT fingerprint FROM {table} WHERE fingerprint LIKE ? LIMIT 2", (wanted + "%",)
            )
        if len(rows) > 1:
            raise StoreError(f"the fingerprint {wanted} names several certificates: give more digits")
        return str(rows[0][0]) if rows else None

    def _require(
        self, cur: Cursor, fingerprint: str, *, table: str = "certificates", what: str = "certificate"
    ) -> str:
        found = self._resolve(cur, fingerprint, table=table)
        if found is None:
            raise StoreNotFoundError(f"no {what} with fingerprint {fingerprint} in the store")
        return found

    def _insert_certificate(
        self, cur: Cursor, cert: x509.Certificate, source: str, trust: Trust | None
    ) -> str:
        fingerprint = fingerprint_of(cert)
        emails = list(dict.fromkeys(email_key(a) for a in certificate_email_addresses(cert)))
        cur.run(
            """INSERT INTO certificates (fingerprint, der, subject, issuer, serial, ski, not_before,
                   not_after, first_email, trust, source, added)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (fingerprint) DO NOTHING""",
            (
                fingerprint,
                cert.public_bytes(serialization.Encoding.DER),
                name_key(cert.subject),
                name_key(cert.issuer),
                serial_key(cert.serial_number),
                _ski(cert),
                _utc(cert, "before"),
                _utc(cert, "after"),
                emails[0] if emails else "",
                (trust or Trust.NONE).value,
                source,
                _now(),
            ),
        )
        if cur.changed():
            for position, address in enumerate(emails):
                cur.run(
                    "INSERT INTO certificate_emails (fingerprint, position, email) VALUES (?, ?, ?)",
                    (fingerprint, position, address),
                )
        elif trust is not None:
            cur.run("UPDATE certificates SET trust = ? WHERE fingerprint = ?", (trust.value, fingerprint))
        return fingerprint

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

    # -- certificate authorities ----------------------------------------------------------------
    @staticmethod
    def _ca_record(row: Row) -> CaRecord:
        name, fingerprint, der, crl_url, ocsp_url, ca_issuers_url, is_default = row
        return CaRecord(
            name=name,
            fingerprint=fingerprint,
            certificate=x509.load_der_x509_certificate(bytes(der)),
            crl_url=crl_url,
            ocsp_url=ocsp_url,
            ca_issuers_url=ca_issuers_url,
            is_default=bool(is_default),
        )

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
        if not isinstance(name, str) or not name.strip():
            raise StoreError("a CA needs a name")
        with self._tx(write=True) as cur:
            found = self._require(cur, fingerprint)
            if cur.run("SELECT 1 FROM cas WHERE name = ?", (name,)):
                raise StoreError(f"a CA named {name!r} is already in the store")
            if cur.run("SELECT 1 FROM cas WHERE fingerprint = ?", (found,)):
                raise StoreError(f"the certificate {found} is already the certificate of a CA")
            if default:
                cur.run("UPDATE cas SET is_default = 0 WHERE is_default <> 0")
            cur.run(
                """INSERT INTO cas (name, fingerprint, crl_url, ocsp_url, ca_issuers_url, is_default,
                       crl_number, created)
                   VALUES (?, ?, ?, ?, ?, ?, 0, ?)""",
                (name, found, crl_url, ocsp_url, ca_issuers_url, 1 if default else 0, _now()),
            )
            return self._ca_record(cur.run(f"SELECT {_CA_COLUMNS} WHERE a.name = ?", (name,))[0])

    def find_ca(self, name: str | None = None) -> CaRecord | None:
        """The CA called ``name``; without a name, the default CA (or the only one, when there is one)."""
        with self._tx() as cur:
            if name is not None:
                rows = cur.run(f"SELECT {_CA_COLUMNS} WHERE a.name = ?", (name,))
            else:
                rows = cur.run(f"SELECT {_CA_COLUMNS} WHERE a.is_default <> 0")
                if not rows:
                    rows = cur.run(f"SELECT {_CA_COLUMNS} ORDER BY a.name LIMIT 2")
                    rows = rows if len(rows) == 1 else []
        return self._ca_record(rows[0]) if rows else None

    def list_cas(self) -> list[CaRecord]:
        with self._tx() as cur:
            return [self._ca_record(r) for r in cur.run(f"SELECT {_CA_COLUMNS} ORDER BY a.name")]

    def next_crl_number(self, ca_fingerprint: str) -> int:
        with self._tx(write=True) as cur:
            found = self._require(cur, ca_fingerprint, table="cas", what="CA")
            # the UPDATE takes the row's write lock until the commit: concurrent callers queue behind it
            cur.run("UPDATE cas SET crl_number = crl_number + 1 WHERE fingerprint = ?", (found,))
            return int(cur.run("SELECT crl_number FROM cas WHERE fingerprint = ?", (found,))[0][0])

    @staticmethod
    def _issued_record(row: Row) -> IssuedRecord:
        ca, serial, fingerprint, email, not_after, revoked_at, reason = row
        return IssuedRecord(
            ca_fingerprint=ca,
            serial=int(serial),
            fingerprint=fingerprint,
            email=email,
            not_after=from_micros(not_after),
            revoked_at=None if revoked_at is None else from_micros(revoked_at),
            reason=None if reason is None else RevocationReason(reason),
        )

    def record_issued(
        self, ca_fingerprint: str, certificate: x509.Certificate, *, email: str | None
    ) -> IssuedRecord:
        cert = _check_certificate(certificate)
        with self._tx(write=True) as cur:
            ca = self._require(cur, ca_fingerprint, table="cas", what="CA")
            serial = serial_key(cert.serial_number)
            if cur.run("SELECT 1 FROM issued WHERE ca_fingerprint = ? AND serial = ?", (ca, serial)):
                raise StoreError(
                    f"the CA already issued a certificate with serial number {cert.serial_number:#x}"
                )
            fingerprint = self._insert_certificate(cur, cert, "ca", None)
            cur.run(
                """INSERT INTO issued (ca_fingerprint, serial, fingerprint, email, email_key, not_after, issued)
                   VALUES (?, ?, ?, ?, ?, ?, ?)""",
                (
                    ca,
                    serial,
                    fingerprint,
                    email,
                    None if email is None else email_key(email),
                    _utc(cert, "after"),
                    _now(),
                ),
            )
            rows = cur.run(f"SELECT {_ISSUED_COLUMNS} WHERE ca_fingerprint = ? AND serial = ?", (ca, serial))
        return self._issued_record(rows[0])

    def revoke_issued(
        self, ca_fingerprint: str, serial: int, *, at: dt.datetime, reason: RevocationReason
    ) -> IssuedRecord:
        if not isinstance(reason, RevocationReason):
            raise StoreError(f"reason must be a RevocationReason, not {type(reason).__name__}")
        when = to_micros(at, what="revocation time")
        with self._tx(write=True) as cur:
            ca = self._require(cur, ca_fingerprint, table="cas", what="CA")
            key = serial_key(serial)
            cur.run(
                """UPDATE issued SET revoked_at = ?, reason = ?
                   WHERE ca_fingerprint = ? AND serial = ? AND revoked_at IS NULL""",
                (when, reason.value, ca, key),
            )
            rows = cur.run(f"SELECT {_ISSUED_COLUMNS} WHERE ca_fingerprint = ? AND serial = ?", (ca, key))
        if not rows:
            raise StoreNotFoundError(f"the CA issued no certificate with serial number {serial:#x}")
        return self._issued_record(rows[0])

    def issued(self, ca_fingerprint: str, *, email: str | None = None) -> list[IssuedRecord]:
        with self._tx() as cur:
            ca = self._require(cur, ca_fingerprint, table="cas", what="CA")
            if email is None:
                rows = cur.run(
                    f"SELECT {_ISSUED_COLUMNS} WHERE ca_fingerprint = ? ORDER BY issued, serial", (ca,)
                )
            else:
                rows = cur.run(
                    f"SELECT {_ISSUED_COLUMNS} WHERE ca_fingerprint = ? AND email_key = ? ORDER BY issued, serial",
                    (ca, email_key(email)),
                )
        return [self._issued_record(r) for r in rows]
