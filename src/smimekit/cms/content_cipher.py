"""Content encryption: the ciphers of EnvelopedData and AuthEnvelopedData, driven chunk by chunk.

AES-GCM (RFC 5084), AES-CBC (RFC 3565) and ChaCha20-Poly1305 (RFC 8103) for both directions; 3DES-CBC and
RC2-CBC for decryption only. All primitives are pyca/cryptography's; nothing here computes a cipher or a
MAC itself.

ChaCha20-Poly1305: cryptography offers this AEAD only as a one-shot call (``ChaCha20Poly1305.encrypt``
takes and returns the whole message), which would hold a large message in memory. So :class:`_ChaChaPoly`
composes it exactly as RFC 8439 §2.8 specifies, from cryptography's ChaCha20 stream cipher and its Poly1305
MAC and nothing else: the Poly1305 key is the first 32 bytes of ChaCha20 block 0 (§2.6), the content is
encrypted from block 1, and the MAC runs over the AAD, the ciphertext, their zero padding to 16 bytes and
their two lengths as 64-bit little-endian numbers. This is the only way to stream it with cryptography;
tests check it against RFC 8439's own test vector (§2.8.2) and against the one-shot AEAD.

Encryptors write each chunk's ciphertext into one buffer reused from chunk to chunk (``update_into``):
filling a fresh 1 MiB object per chunk costs a page fault per 4 KiB, which was a visible part of
encrypting a large message.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol

from asn1crypto import core
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.decrepit.ciphers import algorithms as decrepit
from cryptography.hazmat.primitives import padding, poly1305
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes

from smimekit.cms import _der
from smimekit.cms._asn1 import PARSE_ERRORS
from smimekit.cms.algorithms import ContentCipher
from smimekit.errors import CmsFormatError, DecryptionError, LegacyAlgorithmError, UnsupportedAlgorithmError

GCM_NONCE_SIZE = 12
TAG_SIZE = 16  # we always write 16-byte tags; RFC 5084's default of 12 is accepted on reading


class GcmParameters(core.Sequence):  # type: ignore[misc]
    """GCMParameters (RFC 5084)."""

    _fields = [  # noqa: RUF012  (asn1crypto schema)
        ("nonce", core.OctetString),
        ("icv_len", core.Integer, {"default": 12}),
    ]


class Rc2CbcParameter(core.Sequence):  # type: ignore[misc]
    """RC2-CBC-Parameter (RFC 2268)."""

    _fields = [  # noqa: RUF012
        ("version", core.Integer, {"optional": True}),
        ("iv", core.OctetString),
    ]


@dataclass(frozen=True)
class CipherParams:
    """A content-encryption AlgorithmIdentifier read from a message: the cipher, its IV/nonce and tag size."""

    cipher: ContentCipher
    iv: bytes
    tag_size: int = 0


class Encryptor(Protocol):
    def update(self, data: bytes | memoryview) -> bytes | memoryview:
        """The ciphertext of ``data``: a view that may be reused by the next call, so use it at once."""
        ...

    def finalize(self) -> bytes: ...


class ChunkDecryptor(Protocol):
    def update(self, data: bytes) -> bytes: ...

    def finalize(self, tag: bytes | None) -> bytes:
        """The last plaintext bytes; raises DecryptionError when the tag or the padding is wrong."""
        ...


# ------------------------------------------------------------------------------------------ parameters


def parse_algorithm(der: bytes, *, legacy_ciphers: bool) -> CipherParams:
    """Read a content-encryption AlgorithmIdentifier; raises UnsupportedAlgorithmError, LegacyAlgorithmError."""
    try:
        alg = _der_algorithm(der)
        dotted, params = alg
        try:
            cipher = ContentCipher(dotted)
        except ValueError:
            raise UnsupportedAlgorithmError(dotted, reason="is not an allowed content cipher") from None
        if cipher.legacy and not legacy_ciphers:
            raise LegacyAlgorithmError(dotted, cipher.label)
        if params is None:
            raise CmsFormatError(f"the {cipher.label} parameters are missing")
        if cipher.aead and cipher is not ContentCipher.CHACHA20_POLY1305:
            gcm = GcmParameters.load(params, strict=True)
            nonce, icv = bytes(gcm["nonce"].native), int(gcm["icv_len"].native)
            if not 12 <= icv <= 16 or not 8 <= len(nonce) <= 64:
                raise CmsFormatError(f"bad GCM parameters: nonce of {len(nonce)} bytes, tag of {icv}")
            return CipherParams(cipher, nonce, icv)
        if cipher is ContentCipher.CHACHA20_POLY1305:
            nonce = bytes(core.OctetString.load(params, strict=True).native)
            if len(nonce) != 12:
                raise CmsFormatError("a ChaCha20-Poly1305 nonce must be 12 bytes")
            return CipherParams(cipher, nonce, TAG_SIZE)
        if cipher is ContentCipher.RC2_CBC:
            iv = _rc2_iv(params)
        else:
            iv = bytes(core.OctetString.load(params, strict=True).native)
        block = 8 if cipher.legacy else 16
        if len(iv) != block:
            raise CmsFormatError(f"the {cipher.label} IV must be {block} bytes, not {len(iv)}")
        return CipherParams(cipher, iv)
    except PARSE_ERRORS as exc:
        raise CmsFormatError(f"cannot parse the content-encryption algorithm: {exc}") from exc


def _der_algorithm(der: bytes) -> tuple[str, bytes | None]:
    from smimekit.cms._envasn1 import AlgorithmIdentifier  # local: keeps this module's imports small

    alg = AlgorithmIdentifier.load(der, strict=True)
    params = alg["parameters"]
    raw = None if isinstance(params, core.Void) else bytes(params.dump())
    return str(alg["algorithm"].dotted), raw


_RC2_BITS = {160: 40, 120: 64, 58: 128}


def _rc2_iv(params: bytes) -> bytes:
    if params[:1] == b"\x04":  # the old form: the IV alone
        return bytes(core.OctetString.load(params, strict=True).native)
    p = Rc2CbcParameter.load(params, strict=True)
    version = p["version"].native
    # RFC 2268: version 58 means 128 effective key bits, the only RC2 variant cryptography offers.
    if version is not None and int(version) != 58:
        bits = _RC2_BITS.get(int(version), int(version))
        raise UnsupportedAlgorithmError(
            "1.2.840.113549.3.2",
            "RC2-CBC",
            reason=f"with {bits} effective key bits is not supported (only 128)",
        )
    return bytes(p["iv"].native)


def algorithm_der(cipher: ContentCipher, iv: bytes) -> bytes:
    """The AlgorithmIdentifier we write for ``cipher`` with ``iv`` (the nonce for AEAD ciphers)."""
    if cipher is ContentCipher.CHACHA20_POLY1305:
        return _der.algorithm(cipher.value, _der.octets(iv))
    if cipher.aead:
        return _der.algorithm(cipher.value, _der.seq(_der.octets(iv), _der.integer(TAG_SIZE)))
    return _der.algorithm(cipher.value, _der.octets(iv))


def new_iv(cipher: ContentCipher) -> bytes:
    return os.urandom(GCM_NONCE_SIZE if cipher.aead else 16)


def ciphertext_length(cipher: ContentCipher, n: int) -> int:
    """Exact ciphertext length for ``n`` plaintext bytes (the tag of AEAD ciphers is stored apart)."""
    return n if cipher.aead else (n // 16 + 1) * 16


# ------------------------------------------------------------------------------------------ encryption


class _Reused:
    """The output buffer of a cipher context, reused from one update to the next: a chunk's ciphertext
    is a view of it, valid until the next update (its consumer writes it out at once). Filling fresh
    1 MiB objects costs a page fault per 4 KiB of output; this does not."""

    def __init__(self, ctx: CipherContext) -> None:
        self._ctx = ctx
        self._buf = bytearray()

    def update(self, data: bytes | memoryview) -> bytes | memoryview:
        if len(data) < 4096:
            return self._ctx.update(data)
        need = len(data) + 15  # update_into asks for a block less one byte of room
        if len(self._buf) < need:
            self._buf = bytearray(need)
        n = self._ctx.update_into(data, self._buf)
        return memoryview(self._buf)[:n]


class _CbcEncryptor:
    """AES-CBC with PKCS#7 padding (RFC 5652 §6.3), added at the end from the length seen."""

    def __init__(self, ctx: CipherContext, block_bits: int) -> None:
        self._ctx = ctx
        self._out = _Reused(ctx)
        self._block = block_bits // 8
        self._size = 0

    def update(self, data: bytes | memoryview) -> bytes | memoryview:
        self._size += len(data)
        return self._out.update(data)

    def finalize(self) -> bytes:
        pad = self._block - self._size % self._block
        return self._ctx.update(bytes([pad]) * pad) + self._ctx.finalize()


class _GcmEncryptor:
    def __init__(self, key: bytes, nonce: bytes, aad: bytes) -> None:
        self._ctx = Cipher(algorithms.AES(key), modes.GCM(nonce)).encryptor()
        if aad:
            self._ctx.authenticate_additional_data(aad)
        self._out = _Reused(self._ctx)
        self.tag = b""

    def update(self, data: bytes | memoryview) -> bytes | memoryview:
        return self._out.update(data)

    def finalize(self) -> bytes:
        out = self._ctx.finalize()
        self.tag = self._ctx.tag
        return out


class _ChaChaPoly:
    """RFC 8439 §2.8 AEAD over cryptography's ChaCha20 and Poly1305, usable chunk by chunk."""

    def __init__(self, key: bytes, nonce: bytes, aad: bytes, *, encrypting: bool) -> None:
        block0 = Cipher(algorithms.ChaCha20(key, b"\x00" * 4 + nonce), None).encryptor()
        self._mac = poly1305.Poly1305(block0.update(b"\x00" * 32))
        self._mac.update(aad + _pad16(len(aad)))
        self._ctx = Cipher(algorithms.ChaCha20(key, (1).to_bytes(4, "little") + nonce), None).encryptor()
        self._aad_len = len(aad)
        self._ct_len = 0
        self._encrypting = encrypting
        self.tag = b""

    def update(self, data: bytes | memoryview) -> bytes:
        out = self._ctx.update(data)
        self._mac.update(out if self._encrypting else data)
        self._ct_len += len(data)
        return out

    def _lengths(self) -> None:
        self._mac.update(_pad16(self._ct_len))
        self._mac.update(self._aad_len.to_bytes(8, "little") + self._ct_len.to_bytes(8, "little"))

    def finalize(self) -> bytes:
        self._lengths()
        self.tag = self._mac.finalize()
        return b""

    def verify(self, tag: bytes) -> None:
        self._lengths()
        self._mac.verify(tag)


def _pad16(n: int) -> bytes:
    return b"\x00" * (-n % 16)


class AeadEncryptor(Protocol):
    tag: bytes

    def update(self, data: bytes | memoryview) -> bytes | memoryview:
        """As :meth:`Encryptor.update`."""
        ...

    def finalize(self) -> bytes: ...


def new_encryptor(
    cipher: ContentCipher, key: bytes, iv: bytes, *, aad: bytes = b""
) -> Encryptor | AeadEncryptor:
    """An encryptor for ``cipher``; AEAD encryptors expose ``tag`` after finalize(). Legacy ciphers raise."""
    if cipher.legacy:
        raise LegacyAlgorithmError(cipher.value, cipher.label)
    if cipher is ContentCipher.CHACHA20_POLY1305:
        return _ChaChaPoly(key, iv, aad, encrypting=True)
    if cipher.aead:
        return _GcmEncryptor(key, iv, aad)
    return _CbcEncryptor(Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor(), 128)


# ------------------------------------------------------------------------------------------ decryption


class _CbcDecryptor:
    def __init__(self, ctx: CipherContext, block_bits: int) -> None:
        self._ctx = ctx
        self._unpad = padding.PKCS7(block_bits).unpadder()

    def update(self, data: bytes) -> bytes:
        return self._unpad.update(self._ctx.update(data))

    def finalize(self, tag: bytes | None) -> bytes:
        try:
            return self._unpad.update(self._ctx.finalize()) + self._unpad.finalize()
        except ValueError:
            raise DecryptionError() from None


class _GcmDecryptor:
    def __init__(self, key: bytes, params: CipherParams, aad: bytes) -> None:
        self._ctx = Cipher(
            algorithms.AES(key), modes.GCM(params.iv, min_tag_length=params.tag_size)
        ).decryptor()
        if aad:
            self._ctx.authenticate_additional_data(aad)

    def update(self, data: bytes) -> bytes:
        return self._ctx.update(data)

    def finalize(self, tag: bytes | None) -> bytes:
        try:
            return self._ctx.finalize_with_tag(tag or b"")
        except (InvalidTag, ValueError):
            raise DecryptionError() from None


class _ChaChaDecryptor:
    def __init__(self, key: bytes, params: CipherParams, aad: bytes) -> None:
        self._aead = _ChaChaPoly(key, params.iv, aad, encrypting=False)

    def update(self, data: bytes) -> bytes:
        return self._aead.update(data)

    def finalize(self, tag: bytes | None) -> bytes:
        try:
            self._aead.verify(tag or b"")
        except InvalidSignature:
            raise DecryptionError() from None
        return b""


def new_decryptor(params: CipherParams, key: bytes, *, aad: bytes = b"") -> ChunkDecryptor:
    """A decryptor for ``params``; a key of the wrong length raises DecryptionError (not an oracle)."""
    cipher = params.cipher
    if len(key) != cipher.key_size:
        raise DecryptionError()
    try:
        if cipher is ContentCipher.CHACHA20_POLY1305:
            return _ChaChaDecryptor(key, params, aad)
        if cipher.aead:
            return _GcmDecryptor(key, params, aad)
        if cipher is ContentCipher.DES_EDE3_CBC:
            ctx = Cipher(decrepit.TripleDES(key), modes.CBC(params.iv)).decryptor()
            return _CbcDecryptor(ctx, 64)
        if cipher is ContentCipher.RC2_CBC:
            return _CbcDecryptor(Cipher(decrepit.RC2(key), modes.CBC(params.iv)).decryptor(), 64)
        return _CbcDecryptor(Cipher(algorithms.AES(key), modes.CBC(params.iv)).decryptor(), 128)
    except ValueError:
        raise DecryptionError() from None
