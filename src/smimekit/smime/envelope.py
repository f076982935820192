"""Encrypting, decrypting, compressing and decompressing whole messages (RFC 8551 §3.3, §3.6; RFC 3274).

The content of a new layer is the message's body entity in canonical form; the RFC 5322 fields stay on
the ``application/pkcs7-mime`` envelope. When a layer is removed, the outer fields the inner entity lacks
are put back on it (RFC 8551 §3.1), and a disagreement on From or Subject is noted.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import BinaryIO, cast

from cryptography import x509

from smimekit import cms, mime
from smimekit.cms import ContentCipher, KeyTransport
from smimekit.cms.compressed import MAX_SIZE
from smimekit.cms.recipients import (
    KEKRecipient,
    KeyAgreeRecipient,
    KeyTransRecipient,
    PasswordRecipient,
    PrivateKey,
    Recipient,
)
from smimekit.errors import NotSmimeError, UsageError
from smimekit.mime import Entity, Message
from smimekit.smime import _mime
from smimekit.smime._mime import CmsKind
from smimekit.smime.report import DecryptionInfo

__all__ = ["compress", "decompress", "decrypt", "encrypt", "encrypt_to"]

_RECIPIENT_TYPES = (KeyTransRecipient, KeyAgreeRecipient, PasswordRecipient, KEKRecipient)


def encrypt(
    message: Message,
    recipients: Sequence[x509.Certificate | Recipient],
    *,
    cipher: ContentCipher = ContentCipher.AES256_GCM,
    key_transport: KeyTransport = KeyTransport.RSA_OAEP,
    include_sender: x509.Certificate | None = None,
) -> Message:
    """Encrypt ``message`` to ``recipients`` (certificates, or CMS recipients for passwords and KEKs).

    Returns ``application/pkcs7-mime; smime-type=authEnveloped-data`` for GCM and ChaCha20-Poly1305 (the
    default, AES-256-GCM) or ``smime-type=enveloped-data`` for CBC, named ``smime.p7m``. RSA certificates
    get ``key_transport``; EC, X25519 and X448 certificates get key agreement. ``include_sender`` adds the
    sender's own certificate as a recipient, so that the sent copy can be read.

    The content is streamed (see :func:`encrypt_to`); a result larger than 2 MiB lives in a private
    temporary file: close it (or use ``with``) to release the file. To write a large message out, use
    :func:`encrypt_to` instead: it writes the result once, where this writes it to the temporary file first
    (twice the disk writes for a message that is then written out). Raises UsageError for no recipients, a
    legacy cipher or a recipient that cannot be used, MimeBuildError when the content has no canonical form.
    """
    spool = _mime.OutputSpool(large=_mime.is_large(message))
    try:
        encrypt_to(
            cast(BinaryIO, spool),  # write() is all it needs
            message,
            recipients,
            cipher=cipher,
            key_transport=key_transport,
            include_sender=include_sender,
        )
        return spool.message()
    except BaseException:
        spool.discard()
        raise


def encrypt_to(
    out: BinaryIO,
    message: Message,
    recipients: Sequence[x509.Certificate | Recipient],
    *,
    cipher: ContentCipher = ContentCipher.AES256_GCM,
    key_transport: KeyTransport = KeyTransport.RSA_OAEP,
    include_sender: x509.Certificate | None = None,
) -> None:
    """Like :func:`encrypt`, but write the encrypted message to ``out`` instead of returning it.

    The canonical content is produced from the message's source in 1 MiB pieces and encrypted as it is
    read; the base64 body is written about 1.4 MiB at a time, so memory does not grow with the message.
    More than 8 MiB of content is written as streamed BER (indefinite lengths), less as DER. ``out`` gets
    views of buffers that are reused from one write to the next: like any binary stream, it must use (or
    copy) what it is given before its ``write()`` returns. Raises as :func:`encrypt`.
    """
    if not isinstance(message, Message):
        raise UsageError("encrypt() takes a parsed Message (smimekit.mime.parse)")
    if isinstance(recipients, x509.Certificate | str | bytes):
        raise UsageError("recipients must be a sequence of certificates or CMS recipients")
    chosen = [_recipient(r, key_transport) for r in recipients]
    if include_sender is not None:
        chosen.append(_recipient(include_sender, key_transport))
    if not chosen:
        raise UsageError("encryption needs at least one recipient")
    if not isinstance(cipher, ContentCipher):
        raise UsageError("cipher must be a ContentCipher")
    if cipher.legacy:
        raise UsageError(f"{cipher.label} is a legacy cipher and is never used to encrypt")
    content = _mime.content_chunks(message)  # raises MimeBuildError before anything is written
    kind = CmsKind.AUTH_ENVELOPED if cipher.aead else CmsKind.ENVELOPED
    body = _mime.Base64Writer(out, head=_mime.pkcs7_head(message, kind))
    cms.encrypt_to(cast(BinaryIO, body), content, chosen, cipher=cipher)  # write() is all it needs
    body.close()


def _recipient(value: object, key_transport: KeyTransport) -> Recipient:
    if isinstance(value, x509.Certificate):
        return cms.certificate_recipient(value, key_transport=key_transport)
    if isinstance(value, _RECIPIENT_TYPES):
        return value
    raise UsageError(f"a recipient must be a certificate or a CMS recipient, not {type(value).__name__}")


def decrypt(
    message: Message,
    *,
    key: PrivateKey,
    certificate: x509.Certificate | None = None,
    legacy_ciphers: bool = False,
) -> tuple[Message, DecryptionInfo]:
    """Decrypt an ``enveloped-data`` or ``authEnveloped-data`` message with ``key`` (and its
    ``certificate``, which picks the right recipient); returns the inner message and how it was opened.

    Raises NotSmimeError when the message is not encrypted, DecryptionError (one message, whatever went
    wrong) when the key does not open it, RecipientNotFoundError when it is not encrypted for
    ``certificate``, LegacyAlgorithmError for 3DES/RC2 without ``legacy_ciphers=True``, CmsFormatError
    for malformed CMS.
    """
    inner, info, _ = decrypt_layer(message, key=key, certificate=certificate, legacy_ciphers=legacy_ciphers)
    return inner, info


def decrypt_layer(
    message: Entity, *, key: PrivateKey, certificate: x509.Certificate | None, legacy_ciphers: bool
) -> tuple[Message, DecryptionInfo, list[str]]:
    """:func:`decrypt`, also returning notes on the headers."""
    if layer_kind(message) not in (CmsKind.ENVELOPED, CmsKind.AUTH_ENVELOPED):
        raise NotSmimeError("encrypted")
    # A large body is decoded as a stream; the plaintext is spooled to a private temporary file and
    # released only once the tag (or the padding) has been checked.
    with _mime.cms_stream(message) as data:
        result = cms.decrypt(
            data,
            key=key,
            certificate=certificate,
            legacy_ciphers=legacy_ciphers,
            in_memory_limit=_mime.content_limit(message),
        )
    info = DecryptionInfo(
        cipher=result.cipher,
        recipient_type=result.recipient_type,
        authenticated=result.cipher.aead,
        legacy=result.legacy,
        size=result.size,
    )
    inner, notes = unwrap_content(message, result.plaintext)
    return inner, info, notes


def compress(message: Message) -> Message:
    """``application/pkcs7-mime; smime-type=compressed-data`` (``smime.p7z``) holding the canonical body
    entity compressed with zlib (RFC 3274).

    The content is compressed as it is read from the message's source and the result is written as it is
    made, so memory does not grow with the message (a large result lives in a private temporary file:
    close it, or use ``with``). Raises MimeBuildError when the content has no canonical form.
    """
    if not isinstance(message, Message):
        raise UsageError("compress() takes a parsed Message (smimekit.mime.parse)")
    content = _mime.content_chunks(message)  # raises MimeBuildError before anything is written
    spool = _mime.OutputSpool(large=_mime.is_large(message))
    try:
        head = _mime.pkcs7_head(message, CmsKind.COMPRESSED, filename="smime.p7z")
        body = _mime.Base64Writer(spool, head=head)
        cms.compress_to(body, content)
        body.close()
        return spool.message()
    except BaseException:
        spool.discard()
        raise


def decompress(message: Message, *, max_size: int = MAX_SIZE) -> Message:
    """The message inside a ``compressed-data`` message.

    Raises NotSmimeError when the message is not compressed, DecompressionLimitError when the content
    would exceed ``max_size`` bytes, CmsFormatError for malformed data.
    """
    inner, _ = decompress_layer(message, max_size=max_size)
    return inner


def decompress_layer(message: Entity, *, max_size: int) -> tuple[Message, list[str]]:
    """:func:`decompress`, also returning notes on the headers."""
    if layer_kind(message) is not CmsKind.COMPRESSED:
        raise NotSmimeError("compressed")
    # The content is inflated into a spool that is parsed as it is written (in a private temporary file
    # when the message is large), and is released only once the whole stream has inflated correctly.
    spool = _mime.OutputSpool(large=_mime.is_large(message))
    try:
        with _mime.cms_stream(message) as data:
            cms.decompress_to(spool, data, max_size=max_size)
        inner = spool.message()
    except BaseException:
        spool.discard()
        raise
    return merge_outer(message, inner)


def layer_kind(entity: Entity) -> CmsKind | None:
    """What the pkcs7-mime ``entity`` holds, or None when it is not one."""
    return _mime.cms_kind(entity) if _mime.is_pkcs7_mime(entity) else None


def unwrap_content(outer: Entity, content: bytes | BinaryIO) -> tuple[Message, list[str]]:
    """Parse the content of a layer and give it the outer header fields it lacks (RFC 8551 §3.1)."""
    if not isinstance(content, bytes):
        content.seek(0)
    inner = mime.parse(content)
    if not isinstance(content, bytes):
        content.close()  # parse() holds its own descriptor of the spool file
    return merge_outer(outer, inner)


def merge_outer(outer: Entity, inner: Message) -> tuple[Message, list[str]]:
    """``inner`` (the parsed content of a layer) with the outer header fields it lacks (RFC 8551 §3.1),
    and notes where the two disagree on From or Subject."""
    extra, notes = _mime.header_merge(outer, inner)
    if not extra:
        return inner, notes
    with inner:
        return adopt_headers(outer, inner, inner.iter_bytes())


def adopt_headers(outer: Entity, inner: Entity, pieces: Iterable[bytes]) -> tuple[Message, list[str]]:
    """A new message of ``pieces`` (the bytes of ``inner``) with the outer header fields ``inner`` lacks
    put on top, and notes where the two disagree on From or Subject."""
    extra, notes = _mime.header_merge(outer, inner)
    # chained, not unpacked: the pieces of a large message are read one at a time
    pieces = itertools.chain([b"".join(extra)], pieces)
    return _mime.parse_pieces(pieces, large=_mime.is_large(inner)), notes
