"""smime.open: every layer unwrapped, reported outermost first, with the outer headers carried inward."""

from __future__ import annotations

import base64
import datetime as dt

import pytest

from smimekit import cms, mime, smime
from smimekit.errors import (
    DecryptionError,
    NotSmimeError,
    RecipientNotFoundError,
    SmimeFormatError,
    SmimeLayerLimitError,
    UsageError,
)
from smimekit.mime import Message
from smimekit.smime import LayerKind, _mime
from smimekit.smime._mime import content_entity
from tests.testpki import Identity, make_ca, make_ee

T = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def ca() -> Identity:
    return make_ca("smime open root")


@pytest.fixture(scope="module")
def alice(ca: Identity) -> Identity:
    return make_ee("alice@example.org", ca)


@pytest.fixture(scope="module")
def bob(ca: Identity) -> Identity:
    return make_ee("bob@example.org", ca, key_kind="p256")


def message() -> Message:
    return mime.compose(
        from_="alice@example.org",
        to=["bob@example.org"],
        subject="Layers",
        text="The innermost words.\n",
        date=T,
        message_id="<layers@example.org>",
    )


def _kinds(result: smime.OpenResult) -> list[LayerKind]:
    return [layer.kind for layer in result.layers]


def test_sign_then_encrypt(alice: Identity, bob: Identity) -> None:
    msg = message()
    wrapped = smime.encrypt(smime.sign(msg, cms.Signer(alice.cert, alice.key), signing_time=T), [bob.cert])
    result = smime.open(mime.parse(wrapped.to_bytes()), keys=[(bob.cert, bob.key)], now=T)
    assert _kinds(result) == [LayerKind.AUTH_ENVELOPED, LayerKind.SIGNED]
    assert result.signed and result.encrypted
    verification = result.layers[1].verification
    assert verification is not None and verification.signatures[0].intact and verification.from_matches
    assert result.layers[0].decryption is not None
    assert result.inner.to_bytes().endswith(content_entity(msg))
    assert result.inner.subject == "Layers" and result.inner.headers.get("From") == "alice@example.org"
    assert not result.ok  # no trust anchors were given
    assert result.to_dict()["layers"][0]["kind"] == "authEnveloped"


def test_encrypt_then_sign_and_triple_wrap(alice: Identity, bob: Identity) -> None:
    signer = cms.Signer(alice.cert, alice.key)
    enc_signed = smime.sign(smime.encrypt(message(), [bob.cert]), signer, signing_time=T)
    result = smime.open(enc_signed, keys=[(None, bob.key)], now=T)
    assert _kinds(result) == [LayerKind.SIGNED, LayerKind.AUTH_ENVELOPED]
    assert result.inner.parts == [] and result.inner.text() == "The innermost words.\r\n"

    triple = smime.sign(
        smime.encrypt(
            smime.sign(message(), signer, signing_time=T, opaque=True),
            [bob.cert],
            cipher=cms.ContentCipher.AES128_CBC,
        ),
        signer,
        signing_time=T,
    )
    result = smime.open(triple, keys=[(bob.cert, bob.key)], now=T)
    assert _kinds(result) == [LayerKind.SIGNED, LayerKind.ENVELOPED, LayerKind.SIGNED]
    assert all(layer.verification.signatures[0].intact for layer in result.layers if layer.verification)
    assert result.inner.subject == "Layers"


def test_compressed_inside_encryption(bob: Identity) -> None:
    wrapped = smime.encrypt(smime.compress(message()), [bob.cert])
    result = smime.open(wrapped, keys=[(bob.cert, bob.key)], now=T)
    assert _kinds(result) == [LayerKind.AUTH_ENVELOPED, LayerKind.COMPRESSED]
    assert result.inner.text() == "The innermost words.\r\n"
    assert not result.signed and result.ok


def test_trusted_when_anchored(ca: Identity, alice: Identity, bob: Identity) -> None:
    pytest.importorskip("smimekit.pki")
    wrapped = smime.encrypt(
        smime.sign(message(), cms.Signer(alice.cert, alice.key), signing_time=T), [bob.cert]
    )
    assert smime.open(wrapped, keys=[(bob.cert, bob.key)], anchors=[ca.cert], now=T).ok


def test_outer_headers_carried_inward_and_differences_noted(alice: Identity) -> None:
    signed = smime.sign(message(), cms.Signer(alice.cert, alice.key), signing_time=T)
    result = smime.open(signed, now=T)
    assert result.inner.subject == "Layers"  # the signed entity had Content-* fields only
    assert result.notes == ()
    result = smime.open(_signed_entity_with_inner_headers(alice), now=T)
    assert result.inner.subject == "Real subject"  # the signed one wins over the outer one
    assert any("Subject inside" in n and "Real subject" in n and "Outer subject" in n for n in result.notes)


def _signed_entity_with_inner_headers(alice: Identity) -> Message:
    """An opaque signed message whose signed content carries its own From and Subject (RFC 8551 §3.1)."""
    content = b"From: alice@example.org\r\nSubject: Real subject\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
    der = cms.sign(content, [cms.Signer(alice.cert, alice.key)], detached=False, signing_time=T)
    outer = mime.parse(b"From: alice@example.org\r\nSubject: Outer subject\r\n\r\n")
    return _mime.wrap_pkcs7(outer, _mime.CmsKind.SIGNED, der)


def test_keys_are_tried_in_order(alice: Identity, bob: Identity) -> None:
    wrapped = smime.encrypt(message(), [bob.cert])
    result = smime.open(wrapped, keys=[(alice.cert, alice.key), (bob.cert, bob.key)], now=T)
    assert result.inner.subject == "Layers"
    with pytest.raises(RecipientNotFoundError):
        smime.open(wrapped, keys=[(alice.cert, alice.key)], now=T)
    with pytest.raises(RecipientNotFoundError):
        smime.open(wrapped, now=T)
    rsa_only = smime.encrypt(message(), [alice.cert])
    other = make_ee("alice@example.org", make_ca("x"))
    with pytest.raises(DecryptionError) as err:
        smime.open(rsa_only, keys=[(None, other.key)], now=T)
    assert str(err.value) == DecryptionError.MESSAGE


def test_limits_and_plain_messages(bob: Identity) -> None:
    msg = message()
    for _ in range(3):
        msg = smime.compress(msg)
    assert len(smime.open(msg, now=T).layers) == 3
    with pytest.raises(SmimeLayerLimitError, match="more than 2"):
        smime.open(msg, now=T, max_layers=2)
    with pytest.raises(NotSmimeError):
        smime.open(message(), now=T)
    with pytest.raises(UsageError):
        smime.open(message(), now=T, max_layers=0)


def test_signed_part_inside_an_unsigned_message(alice: Identity) -> None:
    signed = smime.sign(message(), cms.Signer(alice.cert, alice.key), signing_time=T).to_bytes()
    head, _, body = signed.partition(b"\r\n\r\n")
    ctype = head[head.index(b"Content-Type:") :]
    mixed = mime.parse(
        b'From: alice@example.org\r\nContent-Type: multipart/mixed; boundary="o"\r\n\r\n--o\r\n'
        b"Content-Type: text/plain\r\n\r\nadded later\r\n--o\r\n"
        + ctype
        + b"\r\n\r\n"
        + body
        + b"\r\n--o--\r\n"
    )
    result = smime.open(mixed, now=T)
    assert _kinds(result) == [LayerKind.SIGNED]
    verification = result.layers[0].verification
    assert verification is not None and verification.unsigned_parts == ("1.1",)
    assert verification.signatures[0].intact
    assert "unsigned message" in result.layers[0].notes[0]


def _declared(content_type: str, body: bytes) -> bytes:
    """A whole message that declares itself S/MIME with ``content_type`` and carries ``body`` in base64."""
    return (
        b"From: alice@example.org\r\nTo: bob@example.org\r\nSubject: Broken\r\nMIME-Version: 1.0\r\n"
        + b"Content-Type: " + content_type.encode() + b"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(body).replace(b"\n", b"\r\n")
    )  # fmt: skip


ID_DATA = bytes.fromhex("300f06092a864886f70d010701a0020400")  # a CMS ContentInfo of plain id-data


@pytest.mark.parametrize(
    ("content_type", "body", "why"),
    [
        ('application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"', b"Not CMS at all", "not CMS"),
        ("application/x-pkcs7-mime; smime-type=signed-data", b"\x30\x82garbage" * 8, "not CMS"),
        ('application/octet-stream; name="smime.p7m"', b"Not CMS at all", "not CMS"),
        ("application/pkcs7-mime", ID_DATA, "content type is 1.2.840.113549.1.7.1, not signed, enveloped"),
        ("application/pkcs7-mime", b"", "body is empty"),
    ],
    ids=["pkcs7-mime", "x-pkcs7-mime", "octet-stream-p7m", "id-data", "empty"],
)
def test_declared_smime_without_readable_cms_is_a_format_error_not_plain(
    bob: Identity, content_type: str, body: bytes, why: str
) -> None:
    msg = mime.parse(_declared(content_type, body))
    # not NotSmimeError: a caller would show the message as plain, unsigned mail
    with pytest.raises(SmimeFormatError) as err:
        smime.open(msg, keys=[(bob.cert, bob.key)], now=T)
    declared = content_type.split(";")[0]
    assert f"it is declared {declared}" in err.value.reason and why in err.value.reason
    assert "holds no S/MIME data" in str(err.value)


def test_octet_stream_p7m_error_names_the_file(bob: Identity) -> None:
    msg = mime.parse(_declared('application/octet-stream; name="report.p7m"', b"Not CMS at all"))
    with pytest.raises(SmimeFormatError) as err:
        smime.open(msg, now=T)
    assert "it is declared application/octet-stream named 'report.p7m'" in err.value.reason


def test_an_unreadable_layer_inside_encryption_is_a_format_error(bob: Identity) -> None:
    inner = mime.parse(_declared('application/pkcs7-mime; name="smime.p7m"', b"Not CMS at all"))
    wrapped = smime.encrypt(inner, [bob.cert])
    with pytest.raises(SmimeFormatError) as err:
        smime.open(mime.parse(wrapped.to_bytes()), keys=[(bob.cert, bob.key)], now=T)
    assert err.value.reason.startswith(
        "the content of its authEnveloped layer is declared application/pkcs7-mime"
    )


def test_an_octet_stream_not_named_p7m_is_plain() -> None:
    with pytest.raises(NotSmimeError):
        smime.open(mime.parse(_declared('application/octet-stream; name="data.bin"', b"Not CMS")), now=T)
