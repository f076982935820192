"""smime.encrypt / decrypt / compress / decompress: round trips and the shape of the envelope."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from smimekit import cms, mime, smime
from smimekit.cms import ContentCipher, KeyTransport, RecipientType
from smimekit.errors import (
    DecompressionLimitError,
    DecryptionError,
    NotSmimeError,
    RecipientNotFoundError,
    UsageError,
)
from smimekit.mime import Message
from smimekit.smime._mime import content_entity
from tests.testpki import Identity, make_ca, make_ee

T = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
OUTER = (b"From", b"To", b"Subject", b"Date", b"Message-ID")


@pytest.fixture(scope="module")
def ca() -> Identity:
    return make_ca("smime envelope root")


@pytest.fixture(scope="module")
def ids(ca: Identity) -> dict[str, Identity]:
    out = {k: make_ee(f"{k}@example.org", ca, key_kind=k) for k in ("rsa2048", "p256", "p384", "x25519")}
    out["sender"] = make_ee("sender@example.org", ca)
    return out


def message() -> Message:
    return mime.compose(
        from_="sender@example.org",
        to=["rsa2048@example.org"],
        subject="Secret plans",
        text="Meet at dawn. \u2014 S.\n",
        attachments=[mime.Attachment(bytes(range(256)) * 8, "map.bin")],
        date=T,
        message_id="<plans@example.org>",
        boundary="plans",
    )


def _header_names(msg: Message) -> list[bytes]:
    return [h.name.encode() for h in msg.headers]


@pytest.mark.parametrize("cipher", [c for c in ContentCipher if not c.legacy], ids=lambda c: c.label)
def test_every_cipher_round_trips(ids: dict[str, Identity], cipher: ContentCipher) -> None:
    msg = message()
    enc = smime.encrypt(msg, [ids["rsa2048"].cert], cipher=cipher)
    smime_type = "authEnveloped-data" if cipher.aead else "enveloped-data"
    assert enc.content_type == "application/pkcs7-mime"
    assert enc.params == {"smime-type": smime_type, "name": "smime.p7m"}
    assert enc.filename == "smime.p7m" and enc.disposition == "attachment"
    assert enc.transfer_encoding == "base64"
    for name in OUTER:
        assert name in _header_names(enc)
    assert b"Meet at dawn" not in enc.to_bytes() and b"Secret plans" in enc.to_bytes()
    inner, info = smime.decrypt(
        mime.parse(enc.to_bytes()), key=ids["rsa2048"].key, certificate=ids["rsa2048"].cert
    )
    assert info.cipher is cipher and info.authenticated is cipher.aead and not info.legacy
    assert info.recipient_type is RecipientType.KEY_TRANSPORT
    # the inner message is the canonical body entity with the outer fields put back on top
    assert inner.to_bytes().endswith(content_entity(msg))
    assert inner.headers.get("Subject") == "Secret plans"
    assert inner.parts[0].text() == "Meet at dawn. \u2014 S.\r\n"


@pytest.mark.parametrize("kind", ["p256", "p384", "x25519"])
def test_key_agreement_recipients(ids: dict[str, Identity], kind: str) -> None:
    enc = smime.encrypt(message(), [ids[kind].cert])
    inner, info = smime.decrypt(enc, key=ids[kind].key, certificate=ids[kind].cert)
    assert info.recipient_type is RecipientType.KEY_AGREEMENT
    assert inner.parts[1].decoded() == bytes(range(256)) * 8


def test_rsa_pkcs1v15_and_key_only(ids: dict[str, Identity]) -> None:
    enc = smime.encrypt(message(), [ids["rsa2048"].cert], key_transport=KeyTransport.RSA_PKCS1V15)
    inner, _ = smime.decrypt(enc, key=ids["rsa2048"].key)
    assert inner.subject == "Secret plans"


def test_several_recipients_and_the_sender(ids: dict[str, Identity]) -> None:
    enc = smime.encrypt(message(), [ids["rsa2048"].cert, ids["p256"].cert], include_sender=ids["sender"].cert)
    for who in ("rsa2048", "p256", "sender"):
        inner, _ = smime.decrypt(enc, key=ids[who].key, certificate=ids[who].cert)
        assert inner.subject == "Secret plans"


def test_password_recipient(ids: dict[str, Identity]) -> None:
    enc = smime.encrypt(message(), [cms.PasswordRecipient(b"correct horse")])
    assert enc.params["smime-type"] == "authEnveloped-data"
    result = cms.decrypt(enc.decoded(), password=b"correct horse")
    assert result.read_bytes() == content_entity(message())


def test_wrong_key_and_wrong_certificate(ids: dict[str, Identity]) -> None:
    enc = smime.encrypt(message(), [ids["rsa2048"].cert])
    with pytest.raises(DecryptionError) as err:
        smime.decrypt(enc, key=ids["sender"].key)
    assert str(err.value) == DecryptionError.MESSAGE
    with pytest.raises(RecipientNotFoundError):
        smime.decrypt(enc, key=ids["sender"].key, certificate=ids["sender"].cert)


def test_encrypt_and_decrypt_check_their_input(ids: dict[str, Identity]) -> None:
    with pytest.raises(UsageError, match="at least one recipient"):
        smime.encrypt(message(), [])
    with pytest.raises(UsageError, match="legacy"):
        smime.encrypt(message(), [ids["rsa2048"].cert], cipher=ContentCipher.DES_EDE3_CBC)
    with pytest.raises(UsageError, match="recipient"):
        smime.encrypt(message(), ["bob@example.org"])  # type: ignore[list-item]
    with pytest.raises(NotSmimeError, match="not encrypted"):
        smime.decrypt(message(), key=ids["rsa2048"].key)
    signed = smime.sign(
        message(), cms.Signer(ids["sender"].cert, ids["sender"].key), signing_time=T, opaque=True
    )
    with pytest.raises(NotSmimeError, match="not encrypted"):
        smime.decrypt(signed, key=ids["rsa2048"].key)


def test_outlook_octet_stream_envelope_decrypts(ids: dict[str, Identity]) -> None:
    data = smime.encrypt(message(), [ids["rsa2048"].cert]).to_bytes()
    outlook = data.replace(
        b"Content-Type: application/pkcs7-mime; smime-type=authEnveloped-data;\r\n name=smime.p7m",
        b'Content-Type: application/octet-stream; name="smime.p7m"',
    )
    assert outlook != data
    inner, _ = smime.decrypt(mime.parse(outlook), key=ids["rsa2048"].key)
    assert inner.subject == "Secret plans"


def test_compress_round_trip() -> None:
    msg = message()
    packed = smime.compress(msg)
    assert packed.params == {"smime-type": "compressed-data", "name": "smime.p7z"}
    assert packed.filename == "smime.p7z"
    inner = smime.decompress(mime.parse(packed.to_bytes()))
    assert inner.to_bytes().endswith(content_entity(msg))
    assert inner.subject == "Secret plans"
    with pytest.raises(DecompressionLimitError):
        smime.decompress(packed, max_size=100)
    with pytest.raises(NotSmimeError, match="not compressed"):
        smime.decompress(msg)


def test_large_plaintext_goes_through_a_spool(ids: dict[str, Identity]) -> None:
    blob = bytes(range(256)) * (40 * 1024)  # 10 MiB: past the in-memory limit of the CMS layer
    msg = mime.compose(
        from_="a@example.org", attachments=[mime.Attachment(blob, "big.bin")], date=T, message_id="<b@x>"
    )
    enc = smime.encrypt(msg, [ids["rsa2048"].cert])
    with smime.decrypt(enc, key=ids["rsa2048"].key)[0] as inner:
        assert inner.parts[0].decoded() == blob


@pytest.mark.parametrize(
    "cipher", [ContentCipher.AES256_GCM, ContentCipher.AES256_CBC], ids=lambda c: c.label
)
def test_a_large_encrypted_message_writes_out_the_bytes_it_was_parsed_from(
    ids: dict[str, Identity], cipher: ContentCipher, tmp_path: Path
) -> None:
    """The result of encrypt() is parsed as it is written to its spool (from buffers the writer reuses, not
    copied): written out again, it gives the bytes it was parsed from, and they decrypt."""
    blob = os.urandom(12 << 20)  # past the in-memory size: the result lives in a private file
    msg = mime.compose(
        from_="a@example.org", attachments=[mime.Attachment(blob, "big.bin")], date=T, message_id="<c@x>"
    )
    path = tmp_path / "enc.eml"
    with smime.encrypt(msg, [ids["rsa2048"].cert], cipher=cipher) as enc:
        assert enc.content_type == "application/pkcs7-mime" and not enc.is_multipart()
        assert enc.filename == "smime.p7m" and enc.headers.get("subject") is None
        with path.open("wb") as f:
            f.write(b"")
            enc.write_to(f)
        written = path.read_bytes()
        assert b"".join(enc.iter_bytes()) == written
        assert enc.span == (0, len(written)) and enc.body_span == mime.parse(written).body_span
    with mime.parse_file(path) as again:
        inner, info = smime.decrypt(again, key=ids["rsa2048"].key, certificate=ids["rsa2048"].cert)
        assert info.cipher is cipher
        with inner:
            assert inner.parts[0].decoded() == blob
