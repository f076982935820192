"""Certificates the store tests need beyond tests/testpki.py: EAI addresses, legacy subject-only addresses,
CRLs."""

from __future__ import annotations

import datetime as dt
from typing import Any

from asn1crypto import core as asn1_core
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from smimekit.pki.addresses import SMTP_UTF8_MAILBOX
from tests.testpki import NOW, Identity, new_key


def custom_ee(
    ca: Identity,
    *,
    cn: str,
    san: list[x509.GeneralName] | None,
    subject_email: str | None = None,
    key_kind: str = "p256",
    not_before: dt.datetime | None = None,
) -> Identity:
    """An end-entity certificate with exactly the names given (``san`` None: no subjectAltName)."""
    key = new_key(key_kind)
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if subject_email:
        attrs.append(x509.NameAttribute(NameOID.EMAIL_ADDRESS, subject_email))
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(attrs))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=365))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if san is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return Identity(builder.sign(ca.key, hashes.SHA256()), key)


def utf8_mailbox(address: str) -> x509.OtherName:
    """An SmtpUTF8Mailbox otherName (RFC 8398)."""
    return x509.OtherName(SMTP_UTF8_MAILBOX, asn1_core.UTF8String(address).dump())


def make_crl(
    ca: Identity, *, this_update: dt.datetime, revoked: tuple[int, ...] = (), number: int = 1
) -> Any:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(this_update)
        .next_update(this_update + dt.timedelta(days=7))
        .add_extension(x509.CRLNumber(number), critical=False)
    )
    for serial in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(this_update).build()
        )
    return builder.sign(ca.key, hashes.SHA256())
