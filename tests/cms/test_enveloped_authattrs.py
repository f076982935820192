"""AuthEnvelopedData with authenticated attributes (RFC 5083 §2.1): they follow the encrypted content but are
the AEAD's additional data, so the one-pass reader must bind them after decrypting — and refuse a message
whose attributes were removed or altered.

We do not write authAttrs ourselves, so the test builds such messages: it encrypts with the DER of the
attributes as AAD and splices the ``[1] authAttrs`` field in before the MAC.
"""

from __future__ import annotations

import io
import os
from typing import Any

import pytest

from smimekit import cms
from smimekit.cms import _der, enveloped
from smimekit.cms.algorithms import ContentCipher
from smimekit.errors import CmsFormatError, DecryptionError
from tests.testpki import Identity, make_ca, make_ee

_ATTR = _der.seq(_der.oid("1.2.840.113549.1.9.3"), _der.set_of([_der.oid("1.2.840.113549.1.7.1")]))
_AAD = b"\x31" + _der.length(len(_ATTR)) + _ATTR  # the SET OF attributes, as the AAD (RFC 5083 §2.2)


class _Unseekable(io.RawIOBase):
    def __init__(self, data: bytes) -> None:
        self._b = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        return self._b.readinto(b)


@pytest.fixture(scope="module")
def bob() -> Identity:
    return make_ee("bob@example.org", make_ca("authattrs root"))


def _with_auth_attrs(
    monkeypatch: pytest.MonkeyPatch, bob: Identity, cipher: ContentCipher, content: bytes
) -> tuple[bytes, bytes]:
    """(message with authAttrs, the same ciphertext and tag without them)."""
    original = enveloped.new_encryptor

    def with_aad(ci: Any, key: bytes, iv: bytes, aad: bytes = b"") -> Any:
        return original(ci, key, iv, aad=_AAD)

    monkeypatch.setattr(enveloped, "new_encryptor", with_aad)
    out = io.BytesIO()
    enveloped.encrypt_to(
        out, io.BufferedReader(_Unseekable(content)), [cms.KeyTransRecipient(bob.cert)], cipher=cipher
    )
    monkeypatch.setattr(enveloped, "new_encryptor", original)
    plain = out.getvalue()
    # indefinite-length output: ... encryptedContentInfo EOCs, mac OCTET STRING (16), three closing EOCs
    assert plain.endswith(b"\x00" * 6)
    mac = plain[-6 - 18 : -6]
    assert mac[:2] == b"\x04\x10"
    head = plain[: -6 - 18]
    return head + b"\xa1" + _AAD[1:] + mac + b"\x00" * 6, plain


@pytest.mark.parametrize("cipher", [ContentCipher.AES256_GCM, ContentCipher.CHACHA20_POLY1305])
def test_auth_attrs_are_bound_to_the_content(
    monkeypatch: pytest.MonkeyPatch, bob: Identity, cipher: ContentCipher
) -> None:
    content = os.urandom(3 << 20)
    good, without = _with_auth_attrs(monkeypatch, bob, cipher, content)
    assert cms.decrypt(good, key=bob.key, certificate=bob.cert).read_bytes() == content
    stream = io.BufferedReader(_Unseekable(good))
    assert cms.decrypt(stream, key=bob.key, certificate=bob.cert).read_bytes() == content

    # the attributes removed: the tag no longer holds
    with pytest.raises(DecryptionError, match=DecryptionError.MESSAGE):
        cms.decrypt(without, key=bob.key, certificate=bob.cert)
    # an attribute byte changed: refused, as a decryption failure or as malformed input, never accepted
    bad = bytearray(good)
    bad[-6 - 18 - 3] ^= 1
    with pytest.raises((DecryptionError, CmsFormatError)):
        cms.decrypt(bytes(bad), key=bob.key, certificate=bob.cert)
