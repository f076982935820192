"""What the CA issues: key types, key uses, the S/MIME BR generations and their fixed values (OIDs, limits).

The CA/Browser Forum S/MIME Baseline Requirements (BR) define mailbox-validated certificates in two current
generations: *strict* (emailProtection only, nothing optional) and *multipurpose* (may add clientAuth and a
few other things). Both are limited to 825 days of validity (BR 6.3.2).
"""

from __future__ import annotations

import datetime as dt
import enum

from cryptography import x509

__all__ = [
    "MAX_SUBSCRIBER_VALIDITY",
    "POLICY_MAILBOX_MULTIPURPOSE",
    "POLICY_MAILBOX_STRICT",
    "Generation",
    "KeyType",
    "Usage",
]

#: id-on-SmtpUTF8Mailbox (RFC 8398/9598): a mailbox with a non-ASCII local part
SMTP_UTF8_MAILBOX = x509.ObjectIdentifier("1.3.6.1.5.5.7.8.9")
#: id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1): a delegated responder certificate is not itself checked
OCSP_NO_CHECK = x509.ObjectIdentifier("1.3.6.1.5.5.7.48.1.5")

#: BR 7.1.6.1: mailbox-validated, strict and multipurpose generations
POLICY_MAILBOX_STRICT = x509.ObjectIdentifier("2.23.140.1.5.1.3")
POLICY_MAILBOX_MULTIPURPOSE = x509.ObjectIdentifier("2.23.140.1.5.1.2")

#: BR 6.3.2: the longest validity of a strict or multipurpose subscriber certificate
MAX_SUBSCRIBER_VALIDITY = dt.timedelta(days=825)
#: what ``smimekit ca issue`` gives when not told otherwise (BR 6.3.2: not the maximum by default)
DEFAULT_SUBSCRIBER_DAYS = 365
DEFAULT_ROOT_DAYS = 3650
DEFAULT_INTERMEDIATE_DAYS = 1825


class KeyType(enum.Enum):
    """The keys the CA generates (``--key-type``)."""

    RSA3072 = "rsa3072"
    P256 = "p256"
    P384 = "p384"
    ED25519 = "ed25519"
    X25519 = "x25519"
    """Key agreement only: an encryption certificate, signed by the CA (an X25519 key cannot sign)."""


class Usage(enum.Enum):
    """What an end-entity certificate's key is for (``--usage``)."""

    SIGNING = "signing"
    ENCRYPTION = "encryption"
    BOTH = "both"


class Generation(enum.Enum):
    """The BR profile generation (``--profile``), named by its certificate policy."""

    STRICT = "strict"
    MULTIPURPOSE = "multipurpose"

    @property
    def policy(self) -> x509.ObjectIdentifier:
        """The BR mailbox-validated policy OID of this generation."""
        return POLICY_MAILBOX_STRICT if self is Generation.STRICT else POLICY_MAILBOX_MULTIPURPOSE
