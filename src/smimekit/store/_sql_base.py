"""The ground both halves of the SQL store stand on: opening and closing, the transaction, and the
certificate rows every other table points to (resolving a fingerprint, inserting a certificate, building a
:class:`~smimekit.store.api.CertificateRecord`). See :mod:`smimekit.store._sql`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from smimekit.errors import StoreError, StoreNotFoundError
from smimekit.pki import certificate_email_addresses
from smimekit.store._codec import (
    email_key,
    fingerprint_of,
    from_micros,
    name_key,
    normalize_fingerprint,
    serial_key,
    to_micros,
)
from smimekit.store._db import Cursor, Database, Row, migrate
from smimekit.store.api import CertificateRecord, Store, Trust

__all__ = ["SqlBase"]

_CERT_COLUMNS = """c.fingerprint, c.der, c.trust, c.source, c.added,
    CASE WHEN k.fingerprint IS NULL THEN 0 ELSE 1 END, e.email
    FROM certificates c
    LEFT JOIN private_keys k ON k.fingerprint = c.fingerprint
    LEFT JOIN certificate_emails e ON e.fingerprint = c.fingerprint"""


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


class SqlBase(Store):
    """The part of :class:`~smimekit.store._sql.SqlStore` every table needs; abstract on its own."""

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
