"""EnvelopedData and AuthEnvelopedData (RFC 5652 §6, RFC 5083): encrypt to recipients, decrypt with a key.

Both directions stream in 1 MiB chunks. ``encrypt`` writes DER with definite lengths when the content length
is known in advance (bytes, or a seekable stream), and BER with indefinite lengths otherwise. ``decrypt`` reads
BER or DER, including OpenSSL's ``-stream`` output; authenticated content is released only after its tag has
verified, spooled to a private temporary file when it is larger than ``in_memory_limit``.
"""

from __future__ import annotations

import hmac
import io
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO, cast

from asn1crypto import core
from cryptography import x509

from smimekit.cms import _der
from smimekit.cms._asn1 import PARSE_ERRORS
from smimekit.cms._der import CONTEXT, SEQUENCE, UNIVERSAL, BerReader
from smimekit.cms._recover import RecoveredKey, Secret, recover_cek
from smimekit.cms.algorithms import DEFAULT_CONTENT_CIPHER, ContentCipher
from smimekit.cms.content_cipher import (
    CipherParams,
    algorithm_der,
    ciphertext_length,
    new_decryptor,
    new_encryptor,
    new_iv,
    parse_algorithm,
)
from smimekit.cms.recipients import (
    PasswordRecipient,
    PrivateKey,
    Recipient,
    RecipientType,
    recipient_info,
)
from smimekit.errors import CmsFormatError, DecryptionError, UsageError

DATA_OID = "1.2.840.113549.1.7.1"
ENVELOPED_DATA_OID = "1.2.840.113549.1.7.3"
AUTH_ENVELOPED_DATA_OID = "1.2.840.113549.1.9.16.1.23"
IN_MEMORY_LIMIT = 8 << 20  # decrypted content larger than this goes to a private temporary file
CHUNK = _der.CHUNK


@dataclass(frozen=True)
class DecryptResult:
    """The outcome of a successful decryption.

    ``plaintext`` is bytes, or — when larger than the ``in_memory_limit`` given to decrypt — an open private
    temporary file (mode 0600, already unlinked) positioned at its start; ``size`` is its length in bytes.
    ``legacy`` is True when a legacy cipher (3DES, RC2) was accepted through ``legacy_ciphers=True``.
    """

    plaintext: bytes | BinaryIO = field(repr=False)
    size: int
    cipher: ContentCipher
    recipient_type: RecipientType
    content_type: str
    legacy: bool

    def open(self) -> BinaryIO:
        """A binary stream over the plaintext, positioned at its start."""
        if isinstance(self.plaintext, bytes):
            return io.BytesIO(self.plaintext)
        self.plaintext.seek(0)
        return self.plaintext

    def read_bytes(self) -> bytes:
        """The whole plaintext in memory."""
        return self.plaintext if isinstance(self.plaintext, bytes) else self.open().read()


# ------------------------------------------------------------------------------------------ encryption


def encrypt(
    content: bytes | BinaryIO,
    recipients: Sequence[Recipient],
    *,
    cipher: ContentCipher = DEFAULT_CONTENT_CIPHER,
    content_type: str = DATA_OID,
) -> bytes:
    """ContentInfo of AuthEnvelopedData (GCM, ChaCha20-Poly1305) or EnvelopedData (CBC) for ``recipients``.

    Raises UsageError for no recipients, a legacy cipher or a recipient that cannot be used.
    """
    out = io.BytesIO()
    encrypt_to(out, content, recipients, cipher=cipher, content_type=content_type)
    return out.getvalue()


def encrypt_to(
    out: BinaryIO,
    content: bytes | BinaryIO | Iterable[bytes],
    recipients: Sequence[Recipient],
    *,
    cipher: ContentCipher = DEFAULT_CONTENT_CIPHER,
    content_type: str = DATA_OID,
) -> int:
    """Like ``encrypt`` but writes to ``out`` while reading ``content`` in 1 MiB chunks; returns bytes written.

    ``content`` is bytes, a binary stream, or an iterable of byte pieces (taken as they come, without
    being copied). The output is DER when the content length can be known in advance (bytes or a seekable
    stream) and BER with indefinite lengths otherwise. Raises UsageError as ``encrypt`` does.
    """
    if not isinstance(cipher, ContentCipher):
        raise UsageError("cipher must be a ContentCipher")
    if cipher.legacy:
        raise UsageError(f"{cipher.label} is a legacy cipher and is never used to encrypt")
    if not recipients:
        raise UsageError("encryption needs at least one recipient")
    cek = os.urandom(cipher.key_size)
    infos: list[bytes] = []
    all_v0, has_pwri = True, False
    for r in recipients:
        der, version = recipient_info(r, cek)
        infos.append(der)
        all_v0 = all_v0 and version == 0 and not isinstance(r, PasswordRecipient)
        has_pwri = has_pwri or isinstance(r, PasswordRecipient)
    ris = _der.set_of(infos)
    version = 0 if cipher.aead else 3 if has_pwri else 0 if all_v0 else 2
    iv = new_iv(cipher)
    enc = new_encryptor(cipher, cek, iv)
    size = _content_length(content)
    outer_type = AUTH_ENVELOPED_DATA_OID if cipher.aead else ENVELOPED_DATA_OID
    eci_prefix = _der.oid(content_type) + algorithm_der(cipher, iv)
    head = _der.integer(version) + ris
    mac_size = _der.element_size(16) if cipher.aead else 0
    if size is None:
        prefix = (
            _der.header(0x30, None)
            + _der.oid(outer_type)
            + _der.header(0xA0, None)
            + _der.header(0x30, None)
            + head
            + _der.header(0x30, None)
            + eci_prefix
            + _der.header(0xA0, None)
        )
    else:
        clen = ciphertext_length(cipher, size)
        eci_len = len(eci_prefix) + _der.element_size(clen)
        ed_len = len(head) + _der.element_size(eci_len) + mac_size
        ci_len = len(_der.oid(outer_type)) + _der.element_size(_der.element_size(ed_len))
        prefix = (
            _der.header(0x30, ci_len)
            + _der.oid(outer_type)
            + _der.header(0xA0, _der.element_size(ed_len))
            + _der.header(0x30, ed_len)
            + head
            + _der.header(0x30, eci_len)
            + eci_prefix
            + _der.header(0x80, clen)
        )
    out.write(prefix)
    written, seen = len(prefix), 0
    for chunk in _chunks(content):
        seen += len(chunk)
        written += _write_ciphertext(out, enc.update(chunk), indefinite=size is None)
    written += _write_ciphertext(out, enc.finalize(), indefinite=size is None)
    if size is not None and seen != size:
        raise UsageError("the content stream changed length while it was being encrypted")
    tail = b""
    if size is None:
        tail += b"\x00\x00" * 2  # encryptedContent, EncryptedContentInfo
    if cipher.aead:
        tail += _der.octets(getattr(enc, "tag"))  # noqa: B009  (AEAD encryptors expose the tag)
    if size is None:
        tail += b"\x00\x00" * 3  # EnvelopedData, [0], ContentInfo
    out.write(tail)
    return written + len(tail)


def _write_ciphertext(out: BinaryIO, data: bytes | memoryview, *, indefinite: bool) -> int:
    if not data:
        return 0
    if not indefinite:
        out.write(data)
        return len(data)
    head = b"\x04" + _der.length(len(data))  # written apart: joining would copy a 1 MiB chunk
    out.write(head)
    out.write(data)
    return len(head) + len(data)


def _content_length(content: bytes | BinaryIO | Iterable[bytes]) -> int | None:
    if isinstance(content, bytes | bytearray | memoryview):
        return len(content)
    if not hasattr(content, "read"):
        return None  # pieces: the length is known only at their end
    stream = cast(BinaryIO, content)
    try:
        if stream.seekable():
            here = stream.tell()
            end = stream.seek(0, io.SEEK_END)
            stream.seek(here)
            return end - here
    except (AttributeError, OSError, ValueError):
        pass
    return None


def _chunks(content: bytes | BinaryIO | Iterable[bytes]) -> Iterator[bytes | memoryview]:
    if isinstance(content, bytes | bytearray | memoryview):
        view = memoryview(content)
        for i in range(0, len(view), CHUNK):
            yield view[i : i + CHUNK]  # the cipher takes a view: no copy
        return
    if not hasattr(content, "read"):
        for piece in content:
            if not isinstance(piece, bytes | bytearray | memoryview):
                raise UsageError(f"content pieces must be bytes, not {type(piece).__name__}")
            if len(piece) <= CHUNK:
                yield piece
                continue
            view = memoryview(piece)  # a large piece in 1 MiB views: the ciphertext stays chunk-sized
            for i in range(0, len(view), CHUNK):
                yield view[i : i + CHUNK]
        return
    stream = cast(BinaryIO, content)
    while chunk := stream.read(CHUNK):
        yield chunk


# ------------------------------------------------------------------------------------------ decryption


@dataclass(frozen=True)
class _Envelope:
    """What precedes the encrypted content, and the headers the trailing fields are read against."""

    auth: bool
    infos: bytes
    content_type: str
    algorithm: bytes
    content: _der.Header
    outer: tuple[_der.Header, _der.Header, _der.Header, _der.Header]  # ContentInfo, [0], EnvelopedData, ECI

    @property
    def content_offset(self) -> int:
        """The offset of the encrypted content's header."""
        return self.content.offset


def _oid_value(der: bytes) -> str:
    return str(core.ObjectIdentifier.load(der, strict=True).dotted)


def _parse(r: BerReader) -> _Envelope:
    """Read up to and including the header of the encrypted content (the reader is left at its value)."""
    ci = r.expect(UNIVERSAL, SEQUENCE, "a ContentInfo", constructed=True)
    outer_type = _oid_value(r.element(limit=256))
    if outer_type not in (ENVELOPED_DATA_OID, AUTH_ENVELOPED_DATA_OID):
        raise CmsFormatError(f"the content type {outer_type} is not enveloped-data or auth-enveloped-data")
    auth = outer_type == AUTH_ENVELOPED_DATA_OID
    wrapper = r.expect(CONTEXT, 0, "the [0] content of the ContentInfo", constructed=True)
    ed = r.expect(UNIVERSAL, SEQUENCE, "an EnvelopedData", constructed=True)
    core.Integer.load(r.element(limit=64), strict=True)
    nxt = r.next_in(ed)
    if nxt is not None and nxt.is_(CONTEXT, 0):
        r.element()  # originatorInfo: certificates and CRLs of the originator, not needed to decrypt
    infos = r.element()
    if infos[:1] != b"\x31":
        raise CmsFormatError("expected the RecipientInfos SET")
    eci = r.expect(UNIVERSAL, SEQUENCE, "an EncryptedContentInfo", constructed=True)
    content_type = _oid_value(r.element(limit=256))
    algorithm = r.element(limit=4096)
    nxt = r.next_in(eci)
    if nxt is None or not nxt.is_(CONTEXT, 0):
        raise CmsFormatError("the message carries no encrypted content (detached content is not supported)")
    content = r.header()
    if content.length is not None and content.content_offset + content.length > r.size:
        raise CmsFormatError(f"the data is truncated: an element at byte {content.offset} runs past the end")
    return _Envelope(auth, infos, content_type, algorithm, content, (ci, wrapper, ed, eci))


def _parse_tail(r: BerReader, env: _Envelope) -> tuple[bytes | None, bytes | None]:
    """Read what follows the encrypted content (the reader is just after it): (authAttrs, mac)."""
    ci, wrapper, ed, eci = env.outer
    r.end(eci)
    auth_attrs = mac = None
    nxt = r.next_in(ed)
    if nxt is not None and nxt.is_(CONTEXT, 1):
        raw = r.element()
        if env.auth:
            auth_attrs = raw
    if env.auth:
        mac = bytes(core.OctetString.load(r.element(limit=1024), strict=True).native)
        nxt = r.next_in(ed)
        if nxt is not None and nxt.is_(CONTEXT, 2):
            r.element()  # unauthAttrs
    r.end(ed)
    r.end(wrapper)
    r.end(ci)
    if not r.at_end():
        raise CmsFormatError(f"unexpected data after the message at byte {r.tell()}")
    return auth_attrs, mac


def _aad(auth_attrs: bytes | None) -> bytes:
    """RFC 5083 §2.1: the AAD is the DER of authAttrs with the SET OF tag in place of [1] IMPLICIT."""
    if auth_attrs is None:
        return b""
    if auth_attrs[1:2] == b"\x80":
        raise CmsFormatError("authenticated attributes must be DER encoded")
    return b"\x31" + auth_attrs[1:]


def decrypt(
    data: bytes | BinaryIO,
    *,
    key: PrivateKey | None = None,
    certificate: x509.Certificate | None = None,
    password: bytes | None = None,
    kek: bytes | None = None,
    kek_id: bytes | None = None,
    legacy_ciphers: bool = False,
    in_memory_limit: int = IN_MEMORY_LIMIT,
) -> DecryptResult:
    """Decrypt an EnvelopedData or AuthEnvelopedData ContentInfo (BER or DER).

    Give ``key`` (and, better, its ``certificate``, which selects the RecipientInfo), or ``password``, or
    ``kek`` (with ``kek_id`` to select its KEKRecipientInfo). Raises DecryptionError — one message, whatever
    went wrong — when the secret does not open the message; RecipientNotFoundError when no RecipientInfo is
    for the certificate or kind of secret given; LegacyAlgorithmError for 3DES/RC2 without
    ``legacy_ciphers=True``; UnsupportedAlgorithmError, CmsFormatError for other input; UsageError for bad
    arguments.
    """
    secret = _secret(key, certificate, password, kek, kek_id)
    stream = _der.forward(data)
    try:
        return _decrypt(
            BerReader(stream), secret, legacy_ciphers=legacy_ciphers, in_memory_limit=in_memory_limit
        )
    finally:
        if stream is not data:
            stream.close()  # the private copy of a stream that cannot seek (or of the bytes given)


def _decrypt(r: BerReader, secret: Secret, *, legacy_ciphers: bool, in_memory_limit: int) -> DecryptResult:
    try:
        env = _parse(r)
        params = parse_algorithm(env.algorithm, legacy_ciphers=legacy_ciphers)
        if params.cipher.aead != env.auth:
            raise CmsFormatError(f"{params.cipher.label} does not belong in this kind of enveloped data")
    except PARSE_ERRORS as exc:
        raise CmsFormatError(f"cannot parse the enveloped data: {exc}") from exc
    recovered: RecoveredKey = recover_cek(env.infos, params.cipher.key_size, secret, legacy=legacy_ciphers)
    # One pass: the content is decrypted as it is read, then the fields after it (authAttrs, mac) are read.
    # The AAD (authAttrs) follows the content, so the content is decrypted without it; the keystream of GCM
    # and ChaCha20 does not depend on the AAD, so when authAttrs are present the (unreleased) plaintext is
    # encrypted again with them, which yields the same ciphertext and the tag to check. Nothing is released
    # before the tag or the padding has been checked.
    spool = _der.Spool(in_memory_limit)
    try:
        decryptor = new_decryptor(params, recovered.cek)
        for batch in r.string_batches(env.content):
            spool.write(decryptor.update(batch))
        try:
            auth_attrs, mac = _parse_tail(r, env)
            aad = _aad(auth_attrs)
        except PARSE_ERRORS as exc:
            raise CmsFormatError(f"cannot parse the enveloped data: {exc}") from exc
        if env.auth and (mac is None or len(mac) != params.tag_size):
            raise DecryptionError()
        if aad:
            assert mac is not None
            _check_tag(spool, params, recovered.cek, aad, mac)
        else:
            spool.write(decryptor.finalize(mac))
    except BaseException:
        spool.discard()
        raise
    return DecryptResult(
        plaintext=spool.result(),
        size=spool.size,
        cipher=params.cipher,
        recipient_type=recovered.recipient_type,
        content_type=env.content_type,
        legacy=params.cipher.legacy,
    )


def _check_tag(spool: _der.Spool, params: CipherParams, cek: bytes, aad: bytes, mac: bytes) -> None:
    """Check ``mac`` over ``aad`` and the content by encrypting the spooled plaintext again (AEAD only)."""
    try:
        enc = new_encryptor(params.cipher, cek, params.iv, aad=aad)
    except ValueError:
        raise DecryptionError() from None
    for chunk in spool.chunks():
        enc.update(chunk)
    enc.finalize()
    tag = getattr(enc, "tag")  # noqa: B009  (AEAD encryptors expose the tag)
    if not hmac.compare_digest(tag[: len(mac)], mac):
        raise DecryptionError()


def _secret(
    key: PrivateKey | None,
    certificate: x509.Certificate | None,
    password: bytes | None,
    kek: bytes | None,
    kek_id: bytes | None,
) -> Secret:
    given = sum(x is not None for x in (key, password, kek))
    if given != 1:
        raise UsageError("decrypt needs exactly one of key=, password= or kek=")
    if certificate is not None and key is None:
        raise UsageError("certificate= selects the recipient for key=; give the key too")
    if certificate is not None and not isinstance(certificate, x509.Certificate):
        raise UsageError("certificate must be a cryptography x509.Certificate")
    if password is not None and not isinstance(password, bytes):
        raise UsageError("password must be bytes")
    if kek is not None and not isinstance(kek, bytes):
        raise UsageError("kek must be bytes")
    if kek_id is not None and kek is None:
        raise UsageError("kek_id= selects the recipient for kek=; give the KEK too")
    return Secret(key=key, certificate=certificate, password=password, kek=kek, kek_id=kek_id)
