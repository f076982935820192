"""Learning from signed mail: the certificates a signature carried, and what its signer announced.

Only a signature that is intact and valid teaches anything (a forged one must not plant certificates or
capabilities); trust is not required, because a certificate is validated again before anything is
encrypted to it. Harvested certificates are never trust anchors. RFC 8551 §2.5.2 (SMIMECapabilities) and
§2.7.1 (SMIMEEncryptionKeyPreference): the newest signed message wins.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from cryptography import x509

from smimekit.cms.certs import CertificateEntry, SignerIdentifier
from smimekit.errors import StoreError
from smimekit.pki import certificate_email_addresses, email_matches
from smimekit.smime import VerificationReport
from smimekit.store._codec import fingerprint_of
from smimekit.store.api import CertificateRecord, Store

__all__ = ["MAX_CERTIFICATES", "harvest"]

MAX_CERTIFICATES = 32
"""At most this many certificates are taken from one signature (a hostile message may carry thousands)."""


def harvest(store: Store, report: VerificationReport, *, at: dt.datetime) -> list[CertificateRecord]:
    """Keep what the intact and valid signatures of ``report`` teach, and return the records of the
    certificates kept (the signer's first, each once).

    For each such signature: the signer's certificate and the other certificates of the SignedData (source
    ``harvest``, trust left as it was: a new one is no anchor); and for each address of the signer's
    certificate, its SMIMECapabilities and the fingerprint of the encryption certificate its
    SMIMEEncryptionKeyPreference names (found among the message's certificates or the address's
    certificates in the store, and kept only when it names that address too), as of the signing time
    (``at`` when there is none or it lies after ``at``). Raises StoreError (naive ``at``, or the store's own).
    """
    if not isinstance(at, dt.datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise StoreError("harvest() needs a timezone-aware time (at)")
    kept: dict[str, CertificateRecord] = {}
    for sig in report.signatures:
        signer_report = sig.cms
        if not (sig.intact and sig.valid) or signer_report is None or signer_report.certificate is None:
            continue
        signer = signer_report.certificate
        carried = [signer, *(c for c in sig.certificates if c != signer)][:MAX_CERTIFICATES]
        for cert in carried:
            record = store.add_certificate(cert, source="harvest")
            kept.setdefault(record.fingerprint, record)
        when = sig.signing_time if sig.signing_time is not None and sig.signing_time <= at else at
        capabilities = [c.oid for c in signer_report.smime_capabilities]
        preference = signer_report.encryption_key_preference
        for address in certificate_email_addresses(signer):
            preferred = _preferred(store, preference, address, carried) if preference is not None else None
            store.record_correspondent(
                address, capabilities=capabilities, preferred_certificate=preferred, at=when
            )
    return list(kept.values())


def _preferred(
    store: Store, preference: SignerIdentifier, address: str, carried: Sequence[x509.Certificate]
) -> str | None:
    """The fingerprint of the certificate ``preference`` names, when it is one of ``address``."""
    candidates = [CertificateEntry.from_certificate(c) for c in carried]
    candidates += [CertificateEntry.from_certificate(r.certificate) for r in store.find_by_email(address)]
    for entry in candidates:
        cert = entry.certificate
        if cert is None or not preference.matches(entry):
            continue
        if any(email_matches(address, named) for named in certificate_email_addresses(cert)):
            record = store.find_certificate(fingerprint_of(cert))
            if record is not None:
                return record.fingerprint
    return None
