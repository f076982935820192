"""Signing whole messages (RFC 8551 §3.5): clear-signed ``multipart/signed`` or opaque signed-data.

The body entity (the message's Content-* fields and body) is put in canonical form first; the bytes signed
are then emitted untouched as the first part (or as the eContent). The RFC 5322 fields (From, To, Subject,
Date, Message-ID ...) stay on the new top-level entity, outside the signature. Everything streams: the
canonical content is produced in pieces from the message's source, digested as it is written, and the
new message goes to a stream (:func:`sign_to`) or a private spool (:func:`sign`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import BinaryIO, cast

from cryptography import x509

from smimekit import cms
from smimekit.cms import SmimeCapability
from smimekit.cms.signed import sign_to as sign_to_cms
from smimekit.errors import UsageError
from smimekit.mime import Message
from smimekit.mime.params import format_params
from smimekit.smime import _mime
from smimekit.smime._mime import CRLF, CmsKind

__all__ = ["micalg", "sign", "sign_to"]

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

    The content is streamed (see :func:`sign_to`); a result larger than 8 MiB lives in a private temporary
    file: close it (or use ``with``) to release the file. Raises UsageError for no signers or a naive
    ``signing_time``, MimeBuildError when the content has no canonical form, UnsupportedAlgorithmError for
    algorithms outside the allow-list.
    """
    spool = _mime.OutputSpool(large=isinstance(message, Message) and _mime.is_large(message))
    try:
        span = _write_signed(
            _mime.CheckedWriter(spool, check=False),
            message,
            signers,
            signing_time=signing_time,
            opaque=opaque,
            certificates=certificates,
            capabilities=capabilities,
        )
        signed = spool.message()
    except BaseException:
        spool.discard()
        raise
    if span is not None and _first_span(signed) != span:
        signed.close()
        raise AssertionError(_MISMATCH)
    return signed


def sign_to(
    out: BinaryIO,
    message: Message,
    signers: Sequence[cms.Signer] | cms.Signer,
    *,
    signing_time: dt.datetime,
    opaque: bool = False,
    certificates: Sequence[x509.Certificate] = (),
    capabilities: Sequence[SmimeCapability] = cms.DEFAULT_SMIME_CAPABILITIES,
) -> None:
    """Like :func:`sign`, but write the signed message to ``out`` instead of returning it.

    The canonical content is produced from the message's source in 1 MiB pieces and written as it is
    digested: the bytes signed are the bytes written, and memory does not grow with the message. A
    clear-signed message is checked as it is written (its first part must span exactly the bytes signed).
    An opaque signature of more than 8 MiB of content is streamed BER (indefinite lengths), else DER.
    Raises as :func:`sign`.
    """
    writer = _mime.CheckedWriter(out, check=not opaque)
    span = _write_signed(
        writer,
        message,
        signers,
        signing_time=signing_time,
        opaque=opaque,
        certificates=certificates,
        capabilities=capabilities,
    )
    parsed = writer.parsed()
    if span is not None and (parsed is None or _first_span(parsed) != span):
        raise AssertionError(_MISMATCH)


# the bytes signed must be the bytes emitted; anything else is a bug, never a message to send
_MISMATCH = "the signed content does not re-parse to the bytes that were signed"


def _first_span(signed: Message) -> tuple[int, int] | None:
    """Where the first part of a multipart/signed lies in what was written."""
    return signed.parts[0].span if signed.is_multipart() and signed.parts else None


def _write_signed(
    out: _mime.CheckedWriter,
    message: Message,
    signers: Sequence[cms.Signer] | cms.Signer,
    *,
    signing_time: dt.datetime,
    opaque: bool,
    certificates: Sequence[x509.Certificate],
    capabilities: Sequence[SmimeCapability],
) -> tuple[int, int] | None:
    """Write the signed message to ``out``; returns the span of the signed first part when clear-signed."""
    chosen = (signers,) if isinstance(signers, cms.Signer) else tuple(signers)
    if not chosen:
        raise UsageError("sign() needs at least one signer")
    if not all(isinstance(s, cms.Signer) for s in chosen):
        raise UsageError("signers must be Signer instances")
    if not isinstance(message, Message):
        raise UsageError("sign() takes a parsed Message (smimekit.mime.parse)")
    if not isinstance(signing_time, dt.datetime) or signing_time.tzinfo is None:
        raise UsageError("signing_time must be a timezone-aware datetime")
    if opaque:
        content = _mime.content_input(message)
        body = _mime.Base64Writer(out, head=_mime.pkcs7_head(message, CmsKind.SIGNED))
        sign_to_cms(
            cast(BinaryIO, body),  # write() is all it needs
            content,
            chosen,
            detached=False,
            signing_time=signing_time,
            certificates=certificates,
            capabilities=capabilities,
        )
        body.close()
        return None

    pieces = _mime.content_pieces(message)  # raises MimeBuildError now, before anything is written
    # A random boundary of 128 bits cannot be in the content unless the content was made after it; the
    # check of the first part's span (by the caller) would catch it anyway.
    boundary = _mime.new_boundary()
    delim = b"--" + boundary.encode("ascii")
    ctype = format_params(
        "multipart/signed",
        [("protocol", "application/pkcs7-signature"), ("micalg", micalg(chosen)), ("boundary", boundary)],
    )
    outer = _mime.outer_fields(message)
    if not any(f[:13].lower() == b"mime-version:" for f in outer):
        outer.append(b"MIME-Version: 1.0\r\n")
    head = b"".join([*outer, _mime.field("Content-Type", ctype), CRLF, _PREAMBLE, CRLF, delim, CRLF])
    out.write(head)
    start = out.pos

    def emitted() -> Iterator[bytes]:
        for piece in pieces:
            out.write(piece)  # the bytes written are the bytes read (and digested) by cms.sign
            yield piece

    der = cms.sign(
        _mime.reader(emitted()),
        chosen,
        detached=True,
        signing_time=signing_time,
        certificates=certificates,
        capabilities=capabilities,
    )
    end = out.pos
    sig_fields = [
        *_mime.pkcs7_fields("application/pkcs7-signature", None, "smime.p7s"),
        _mime.field("Content-Description", "S/MIME Cryptographic Signature"),
    ]
    tail = [CRLF, delim, CRLF, *sig_fields, CRLF, _mime.base64_body(der), CRLF, delim, b"--", CRLF]
    out.write(b"".join(tail))
    return (start, end)
