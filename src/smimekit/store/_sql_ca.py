"""The certificate authority tables of the SQL store: the CAs (``cas``) and the certificates each issued
(``issued``), with the records they return; a base class of :class:`~smimekit.store._sql.SqlStore`."""

from __future__ import annotations

import datetime as dt

from cryptography import x509

from smimekit.errors import StoreError, StoreNotFoundError
from smimekit.store._codec import email_key, from_micros, serial_key, to_micros
from smimekit.store._db import Row
from smimekit.store._sql_base import SqlBase, _check_certificate, _now, _utc
from smimekit.store.api import CaRecord, IssuedRecord, RevocationReason

__all__ = ["SqlCaTables"]

_CA_COLUMNS = """a.name, a.fingerprint, c.der, a.crl_url, a.ocsp_url, a.ca_issuers_url, a.is_default
    FROM cas a JOIN certificates c ON c.fingerprint = a.fingerprint"""
_ISSUED_COLUMNS = "ca_fingerprint, serial, fingerprint, email, not_after, revoked_at, reason FROM issued"


class SqlCaTables(SqlBase):
    """The CA methods of :class:`~smimekit.store._sql.SqlStore`."""

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
