"""The one exception hierarchy of smimekit.

::

    SmimekitError                      root: catch this to catch everything smimekit raises
    ├── UsageError                     a caller passed something that cannot work (bad option, missing file)
    ├── MimeError                      MIME parsing, building and decoding
    │   ├── MimeParseError             malformed input under a strict policy (carries the byte offset)
    │   ├── MimeLimitError             a configured limit was exceeded (depth, parts, header size, ...)
    │   ├── MimeDecodeError            a body or header could not be decoded (strict decoding only)
    │   └── MimeBuildError             a message cannot be composed as asked
    └── CryptoError                    CMS and S/MIME (see the S/MIME core)

Every exception reads as a sentence and carries structured fields, so that the command line can print one
clear line and a program can act on the details.
"""

from __future__ import annotations


class SmimekitError(Exception):
    """Root of every exception smimekit raises on purpose."""


class UsageError(SmimekitError):
    """A caller asked for something that cannot work: a bad option, a missing file, a wrong combination."""


# --------------------------------------------------------------------------------------------- MIME


class MimeError(SmimekitError):
    """Something about a MIME message is wrong."""


class MimeParseError(MimeError):
    """Malformed MIME under a strict policy.

    ``offset`` is the byte offset in the input where the problem was found, ``defect`` the name of the
    defect that a lenient parse would have recorded instead.
    """

    def __init__(self, message: str, *, offset: int, defect: str = "") -> None:
        super().__init__(f"{message} (at byte {offset})")
        self.offset = offset
        self.defect = defect


class MimeLimitError(MimeError):
    """A parsing limit was exceeded; ``limit`` names it, ``value`` is its configured value."""

    def __init__(self, limit: str, value: int, *, offset: int) -> None:
        super().__init__(f"the message exceeds the limit {limit}={value} (at byte {offset})")
        self.limit = limit
        self.value = value
        self.offset = offset


class MimeDecodeError(MimeError):
    """A transfer encoding, charset or header could not be decoded (raised only when asked to be strict)."""


class MimeBuildError(MimeError):
    """A message cannot be composed as asked (bad address, unknown charset, conflicting options)."""


# --------------------------------------------------------------------------------------------- crypto


class CryptoError(SmimekitError):
    """Root of the CMS and S/MIME errors."""


# cms signed-data
#   CryptoError
#   ├── CmsFormatError            the input is not a well-formed CMS structure of the expected type
#   ├── UnsupportedAlgorithmError an algorithm is unknown, rejected (MD5) or not allowed for this use
#   └── SignatureError            a signature did not verify (raised when the caller demands validity)


class CmsFormatError(CryptoError):
    """The input is not a well-formed CMS structure of the expected type; ``reason`` says what is wrong."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"malformed CMS data: {reason}")
        self.reason = reason


class UnsupportedAlgorithmError(CryptoError):
    """An algorithm (``oid``, ``name``) is unknown, rejected, or not allowed for the requested use."""

    def __init__(self, oid: str, name: str = "", *, reason: str = "is not supported") -> None:
        label = f"{name} ({oid})" if name else oid
        super().__init__(f"the algorithm {label} {reason}")
        self.oid = oid
        self.name = name
        self.reason = reason


class SignatureError(CryptoError):
    """A signature is not intact or not valid; ``reasons`` lists why, one sentence per problem."""

    def __init__(self, reasons: tuple[str, ...]) -> None:
        super().__init__("the signature does not verify: " + "; ".join(reasons or ("no signer",)))
        self.reasons = reasons


# cms enveloped-data
#   CryptoError
#   ├── CmsFormatError              (above) malformed enveloped, auth-enveloped or compressed data
#   ├── UnsupportedAlgorithmError   (above) a cipher, key transport, KDF or key wrap not on the allow-list
#   │   └── LegacyAlgorithmError    a legacy cipher (3DES, RC2) met without legacy_ciphers=True
#   ├── DecryptionError             the message could not be decrypted: one message, whatever the cause
#   ├── RecipientNotFoundError      no RecipientInfo names the given certificate, key identifier or kind
#   └── DecompressionLimitError     decompressed content would exceed max_size


class LegacyAlgorithmError(UnsupportedAlgorithmError):
    """A legacy content cipher (``oid``, ``name``) was met; it is decrypted only with ``legacy_ciphers=True``."""

    def __init__(self, oid: str, name: str) -> None:
        super().__init__(
            oid,
            name,
            reason="is a legacy cipher; pass legacy_ciphers=True to decrypt it anyway",
        )


class DecryptionError(CryptoError):
    """The message could not be decrypted with the given key.

    Wrong key, bad RSA padding, a wrong password, a failed key unwrap, a bad authentication tag and bad CBC
    padding all raise this one error with this one message, so that it is not an oracle (RFC 3218).
    """

    MESSAGE = "the message could not be decrypted with the given key"

    def __init__(self) -> None:
        super().__init__(self.MESSAGE)


class RecipientNotFoundError(CryptoError):
    """No RecipientInfo of the message is for the given certificate, key identifier or kind of secret.

    ``recipients`` describes the recipients the message names, one sentence-fragment each.
    """

    def __init__(self, wanted: str, recipients: tuple[str, ...]) -> None:
        listed = "; ".join(recipients) if recipients else "none"
        super().__init__(f"the message is not encrypted for {wanted} (its recipients: {listed})")
        self.wanted = wanted
        self.recipients = recipients


class DecompressionLimitError(CryptoError):
    """Decompressed content would be larger than ``limit`` bytes (the ``max_size`` given)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the compressed content expands beyond the limit of {limit} bytes")
        self.limit = limit


# smime
#   CryptoError
#   └── SmimeError                  an S/MIME message (RFC 8551) cannot be handled as asked
#       ├── NotSmimeError           the message (or the part asked for) is not signed, encrypted or compressed
#       ├── SmimeFormatError        an S/MIME structure is malformed (``part`` names where)
#       └── SmimeLayerLimitError    open() met more nested S/MIME layers than ``max_layers``
# (decryption failures raise DecryptionError above: one message, whatever the cause)


class SmimeError(CryptoError):
    """Root of the S/MIME errors."""


class NotSmimeError(SmimeError):
    """The message is not signed, encrypted or compressed with S/MIME (``wanted`` says what was looked for)."""

    def __init__(self, wanted: str = "signed or encrypted") -> None:
        super().__init__(f"the message is not {wanted}")
        self.wanted = wanted


class SmimeFormatError(SmimeError):
    """An S/MIME structure is malformed; ``part`` is the MIME part path ("" for the whole message)."""

    def __init__(self, reason: str, *, part: str = "") -> None:
        where = f"part {part}" if part else "the message"
        super().__init__(f"{where} is not valid S/MIME: {reason}")
        self.reason = reason
        self.part = part


class SmimeLayerLimitError(SmimeError):
    """More nested S/MIME layers than ``limit`` (the ``max_layers`` given to open())."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the message nests more than {limit} S/MIME layers")
        self.limit = limit


# keys and pki
#   SmimekitError
#   ├── KeyLoadError               a private key or PKCS#12 file cannot be read (``reason`` says why)
#   │   ├── PasswordRequiredError  it is encrypted and no password was given (a CLI may prompt and retry)
#   │   └── WrongPasswordError     the password is wrong, or the encrypted data is damaged
#   ├── CertificateLoadError       no certificate can be read from the data (``reason`` says why)
#   ├── PkiError                   path validation was given arguments that cannot work (naive time, bad address)
#   ├── StoreError                 the certificate and key store cannot do what was asked (``reason``)
#   │   ├── StoreLockedError       another process holds the store (or the database is unreachable); retry later
#   │   ├── StoreNotFoundError     no such certificate, key, CA or correspondent in the store
#   │   └── StoreSchemaError       the store was written by a newer smimekit, or is not a smimekit store
#   ├── CaError                    a certificate authority operation cannot be done (``reason``)
#   ├── NetError                   the network: a server that refuses, goes away or cannot be reached
#   │   └── FetchError             a CRL, OCSP response, certificate or LDAP entry could not be fetched
#   └── GatewayError               the gateway's configuration or policy cannot work (``reason``)
# (an untrusted certificate is not an error: validate_path() returns a PathResult whose verdict must be read)


class KeyLoadError(SmimekitError):
    """A private key or PKCS#12 file cannot be read; ``reason`` is the sentence shown."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PasswordRequiredError(KeyLoadError):
    """The key or PKCS#12 file is encrypted and no password was given."""


class WrongPasswordError(KeyLoadError):
    """The password does not open the key or PKCS#12 file (or the encrypted data is damaged)."""


class CertificateLoadError(SmimekitError):
    """No certificate can be read from the data; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PkiError(SmimekitError):
    """The PKI layer was given arguments that cannot work (``reason``): a naive datetime, a malformed address,
    something that is not a certificate. Never raised for an untrusted certificate."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Reasoned(SmimekitError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class StoreError(_Reasoned):
    """The certificate and key store cannot do what was asked; ``reason`` is the sentence shown."""


class StoreLockedError(StoreError):
    """The store is busy (another process holds a lock past the timeout) or its database is unreachable."""


class StoreNotFoundError(StoreError):
    """No such certificate, private key, CA or correspondent in the store."""


class StoreSchemaError(StoreError):
    """The file or database is not a smimekit store, or was written by a newer version of smimekit."""


class CaError(_Reasoned):
    """A certificate authority operation cannot be done (no CA yet, bad CSR, unknown certificate, ...)."""


class NetError(_Reasoned):
    """A network operation failed: refused, timed out, TLS verification failed, the server went away."""


class FetchError(NetError):
    """A CRL, OCSP response, certificate or directory entry could not be fetched or was unusable."""


class GatewayError(_Reasoned):
    """The gateway's configuration or policy cannot work; ``reason`` names the setting."""
