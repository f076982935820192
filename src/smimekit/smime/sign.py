"""Signing whole messages (RFC 8551 §3.5): clear-signed ``multipart/signed`` or opaque signed-data.

The body entity (the message's Content-* fields and body) is put in canonical form first; the bytes signed
are then emitted untouched as the first part (or as the eContent). The RFC 5322 fields (From, To, Subject,
Date, Message-ID ...) stay on the new top-level entity, outside the signature.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from cryptography import x509

from smimekit import cms
from smimekit.cms import SmimeCapability
from smimekit.errors import UsageError
from smimekit.mime import Message
from smimekit.mime.params import format_params
from smimekit.smime import _mime
from smimekit.smime._mime import CRLF, CmsKind

__all__ = ["micalg", "sign"]

_PREAMBLE = b"This is an S/MIME signed message" + CRLF


def micalg(signers: Sequence[cms.Signer]) -> str:
    """The ``micalg`` parameter (RFC 8551 §3.5.3.2): each signer's digest name, comma-separated, in order."""
    return ",".join(dict.fromkeys(s.signature_algorithm.digest.micalg for s in signers))


def sign(
    message: Message,
    signers: Sequence[cms.Signer] | cms.Signer,
    *,
    signing_time: dt.datetime,
    opaque: bool = False,
    certificates: Sequence[x509.Certificate] = (),
    capabilities: Sequence[SmimeCapability] = cms.DEFAULT_SMIME_CAPABILITIES,
) -> Message:
    """Sign ``message`` and return the signed message.

    Clear-signed by default: ``multipart/signed; protocol="application/pkcs7-signature"; micalg=...`` whose
    first part is the canonical body entity and second part the detached signature (``smime.p7s``). With
    ``opaque=True``: ``application/pkcs7-mime; smime-type=signed-data`` (``smime.p7m``) carrying the content
    inside the signature. ``certificates`` are added to the signature (e.g. intermediates).

    Raises UsageError for no signers or a naive ``signing_time``, MimeBuildError when the content has no
    canonical form, UnsupportedAlgorithmError for algorithms outside the allow-list.
    """
    chosen = (signers,) if isinstance(signers, cms.Signer) else tuple(signers)
    if not chosen:
        raise UsageError("sign() needs at least one signer")
    if not isinstance(message, Message):
        raise UsageError("sign() takes a parsed Message (smimekit.mime.parse)")
    if not isinstance(signing_time, dt.datetime) or signing_time.tzinfo is None:
        raise UsageError("signing_time must be a timezone-aware datetime")
    content = _mime.content_entity(message)
    der = cms.sign(
        content,
        chosen,
        detached=not opaque,
        signing_time=signing_time,
        certificates=certificates,
        capabilities=capabilities,
    )
    if opaque:
        return _mime.wrap_pkcs7(message, CmsKind.SIGNED, der)
    signature = _mime.base64_body(der)
    boundary = _mime.new_boundary(content, signature)
    delim = b"--" + boundary.encode("ascii")
    sig_fields = [
        *_mime.pkcs7_fields("application/pkcs7-signature", None, "smime.p7s"),
        _mime.field("Content-Description", "S/MIME Cryptographic Signature"),
    ]
    body = b"".join(
        [
            _PREAMBLE,
            CRLF + delim + CRLF,
            content,
            CRLF + delim + CRLF,
            *sig_fields,
            CRLF,
            signature,
            CRLF + delim + b"--" + CRLF,
        ]
    )
    ctype = format_params(
        "multipart/signed",
        [("protocol", "application/pkcs7-signature"), ("micalg", micalg(chosen)), ("boundary", boundary)],
    )
    signed = _mime.wrap(_mime.outer_fields(message), [_mime.field("Content-Type", ctype)], body)
    first = signed.parts[0] if signed.is_multipart() and signed.parts else None
    if first is None or first.to_bytes() != content:
        # the bytes signed must be the bytes emitted; anything else is a bug, never a message to send
        raise AssertionError("the signed content does not re-parse to the bytes that were signed")
    return signed
