"""``smimekit.smime.kind_of``, the public detection the gateway routes mail by (the gateway may not reach
into ``smimekit.smime._mime``)."""

from __future__ import annotations

import pytest

from smimekit import cms, mime, smime
from smimekit.gateway.process import facts_of
from smimekit.smime import SmimeKind, kind_of
from tests.gateway._support import NOW, encrypted_for, message, pki, signed_by


def _opaque(data: bytes) -> bytes:
    ident = pki().alice
    with (
        mime.parse(data) as m,
        smime.sign(m, cms.Signer(ident.cert, ident.key), signing_time=NOW, opaque=True) as s,
    ):
        return s.to_bytes()


def _compressed(data: bytes) -> bytes:
    with mime.parse(data) as m, smime.compress(m) as c:
        return c.to_bytes()


@pytest.mark.parametrize(
    ("make", "kind", "signed", "encrypted"),
    [
        (lambda d: d, None, False, False),
        (lambda d: signed_by(pki().alice, d), SmimeKind.CLEAR_SIGNED, True, False),
        (_opaque, SmimeKind.SIGNED_DATA, True, False),
        (lambda d: encrypted_for(d, pki().bob), SmimeKind.AUTH_ENVELOPED, False, True),
        (_compressed, SmimeKind.COMPRESSED, False, False),
    ],
    ids=["plain", "clear-signed", "opaque-signed", "encrypted", "compressed"],
)
def test_kind_of_and_the_gateway_facts(make, kind, signed, encrypted) -> None:  # type: ignore[no-untyped-def]
    data = make(message())
    with mime.parse(data) as m:
        assert kind_of(m) is kind
        if kind is not None:
            assert (kind.signed, kind.encrypted) == (signed, encrypted)
        facts = facts_of(m)
        assert (facts.signed, facts.encrypted) == (signed, encrypted)


def test_kind_of_looks_at_the_entity_only() -> None:
    data = signed_by(pki().alice, message())
    with mime.parse(data) as m:
        content, signature = m.parts
        assert kind_of(content) is None and kind_of(signature) is None


def test_pkcs7_mime_that_is_not_cms_is_no_kind() -> None:
    data = (
        b"From: a@example.org\r\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\naGVsbG8gd29ybGQ=\r\n"
    )
    with mime.parse(data) as m:
        assert kind_of(m) is None
        assert not facts_of(m).encrypted


def test_enveloped_data_with_cbc() -> None:
    from smimekit.cms import ContentCipher

    with mime.parse(message()) as m, smime.encrypt(m, [pki().bob.cert], cipher=ContentCipher.AES256_CBC) as e:
        data = e.to_bytes()
    with mime.parse(data) as m:
        assert kind_of(m) is SmimeKind.ENVELOPED and kind_of(m).encrypted  # type: ignore[union-attr]
