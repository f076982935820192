"""Tampering and transit damage: each fails with the right reason, and damage is diagnosed but never accepted."""

from __future__ import annotations

import base64
import datetime as dt
import re

import pytest

from smimekit import cms, mime, smime
from smimekit.cms import ContentCipher
from smimekit.errors import CmsFormatError, DecryptionError, SmimeFormatError
from smimekit.mime import Message
from tests.testpki import Identity, make_ca, make_ee

T = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
TEXT = (
    "Dear Bob,\n\nPlease find the signed figures below. Gr\u00fc\u00dfe aus M\u00fcnchen \u2014 and a line long enough "
    "to need a soft line break in quoted-printable, which is what gateways like to re-wrap.\n\nAlice\n"
)


@pytest.fixture(scope="module")
def alice() -> Identity:
    return make_ee("alice@example.org", make_ca("smime tamper root"))


def _message(**kw: object) -> Message:
    args: dict[str, object] = {
        "from_": "alice@example.org",
        "to": ["bob@example.org"],
        "subject": "Figures",
        "text": TEXT,
        "date": T,
        "message_id": "<fig@example.org>",
        "boundary": "fig",
    }
    args.update(kw)
    return mime.compose(**args)  # type: ignore[arg-type]


def _signed(alice: Identity, msg: Message | None = None, **kw: object) -> bytes:
    return smime.sign(msg or _message(), cms.Signer(alice.cert, alice.key), signing_time=T, **kw).to_bytes()  # type: ignore[arg-type]


def _first_part(data: bytes) -> tuple[int, int]:
    return mime.parse(data).parts[0].span


def _edit_first_part(data: bytes, edit: object) -> Message:
    start, end = _first_part(data)
    new = edit(data[start:end])  # type: ignore[operator]
    assert new != data[start:end]
    return mime.parse(data[:start] + new + data[end:])


def _sig(msg: Message) -> smime.SignatureReport:
    (sig,) = smime.verify(msg, now=T).signatures
    return sig


# --------------------------------------------------------------------------------------------- tampering


def test_flipped_byte_in_signed_content(alice: Identity) -> None:
    sig = _sig(_edit_first_part(_signed(alice), lambda c: c.replace(b"Dear Bob", b"Dear Rob")))
    assert not sig.intact and not sig.ok
    assert any("messageDigest" in r for r in sig.reasons), sig.reasons
    assert sig.diagnosis is None


def test_flipped_byte_in_a_signed_header(alice: Identity) -> None:
    sig = _sig(_edit_first_part(_signed(alice), lambda c: c.replace(b"charset=utf-8", b"charset=utf-7", 1)))
    assert not sig.intact and any("messageDigest" in r for r in sig.reasons)


def test_changed_outer_header_is_not_covered(alice: Identity) -> None:
    data = _signed(alice).replace(b"Subject: Figures", b"Subject: Invoice")
    sig = _sig(mime.parse(data))
    assert sig.intact and sig.valid  # RFC 8551: the outer header fields are not signed


def _replace_signature(data: bytes, edit: object) -> Message:
    msg = mime.parse(data)
    part = msg.parts[1]
    start, end = part.body_span
    der = edit(part.decoded())  # type: ignore[operator]
    b64 = base64.encodebytes(der).replace(b"\n", b"\r\n")
    return mime.parse(data[:start] + b64 + data[end:])


def test_flipped_byte_in_the_signature(alice: Identity) -> None:
    sig = _sig(_replace_signature(_signed(alice), lambda d: d[:-1] + bytes([d[-1] ^ 1])))
    assert sig.intact and not sig.valid and not sig.ok
    assert any("signature" in r for r in sig.reasons), sig.reasons


def test_mangled_signature_structure(alice: Identity) -> None:
    with pytest.raises(CmsFormatError, match="malformed CMS data"):
        smime.verify(_replace_signature(_signed(alice), lambda d: d[:40] + b"\xff" * 8 + d[48:]), now=T)


def test_truncated_signed_message(alice: Identity) -> None:
    data = _signed(alice)
    sig_start = data.index(b"Content-Type: application/pkcs7-signature")
    with pytest.raises(CmsFormatError):
        smime.verify(mime.parse(data[: sig_start + 400]), now=T)
    with pytest.raises(SmimeFormatError, match="exactly two parts"):
        smime.verify(mime.parse(data[: sig_start - 200]), now=T)
    opaque = _signed(alice, opaque=True)
    with pytest.raises(CmsFormatError):
        smime.verify(mime.parse(opaque[: len(opaque) // 2]), now=T)


def _envelope_der_edit(enc: Message, edit: object) -> Message:
    data = enc.to_bytes()
    start, end = enc.body_span
    der = edit(enc.decoded())  # type: ignore[operator]
    return mime.parse(data[:start] + base64.encodebytes(der).replace(b"\n", b"\r\n") + data[end:])


@pytest.mark.parametrize(
    "cipher", [ContentCipher.AES256_GCM, ContentCipher.CHACHA20_POLY1305], ids=lambda c: c.label
)
def test_flipped_ciphertext_or_tag(alice: Identity, cipher: ContentCipher) -> None:
    enc = smime.encrypt(_message(), [alice.cert], cipher=cipher)
    der = enc.decoded()
    middle = len(der) - 200  # inside the ciphertext, before the tag
    for position in (middle, len(der) - 1):
        damaged = _envelope_der_edit(enc, lambda d, p=position: d[:p] + bytes([d[p] ^ 0x20]) + d[p + 1 :])
        with pytest.raises(DecryptionError) as err:
            smime.decrypt(damaged, key=alice.key, certificate=alice.cert)
        assert str(err.value) == DecryptionError.MESSAGE
    assert der  # the undamaged one opens
    assert smime.decrypt(enc, key=alice.key)[0].subject == "Figures"


def test_cbc_padding_damage_and_wrong_key(alice: Identity) -> None:
    enc = smime.encrypt(_message(), [alice.cert], cipher=ContentCipher.AES256_CBC)
    # the last byte of the next-to-last block flips the padding byte of the last block
    damaged = _envelope_der_edit(enc, lambda d: d[:-17] + bytes([d[-17] ^ 0xFF]) + d[-16:])
    with pytest.raises(DecryptionError) as padding:
        smime.decrypt(damaged, key=alice.key)
    other = make_ee("alice@example.org", make_ca("other root"))
    with pytest.raises(DecryptionError) as wrong_key:
        smime.decrypt(enc, key=other.key)
    assert str(padding.value) == str(wrong_key.value) == DecryptionError.MESSAGE


def test_truncated_encrypted_message(alice: Identity) -> None:
    data = smime.encrypt(_message(), [alice.cert]).to_bytes()
    with pytest.raises((CmsFormatError, DecryptionError)):
        smime.decrypt(mime.parse(data[: len(data) - 300]), key=alice.key)


# --------------------------------------------------------------------------------------------- diagnosis


def _diagnosed(msg: Message) -> str:
    sig = _sig(msg)
    assert not sig.intact and not sig.ok
    assert sig.diagnosis is not None
    assert sig.diagnosis.startswith("the content was altered in transit by ")
    return sig.diagnosis


def test_diagnosis_line_endings(alice: Identity) -> None:
    def body_to_lf(content: bytes) -> bytes:
        head, sep, body = content.partition(b"\r\n\r\n")
        return head + sep + body.replace(b"\r\n", b"\n")

    assert "from CRLF to LF" in _diagnosed(_edit_first_part(_signed(alice), body_to_lf))


def test_diagnosis_trailing_white_space(alice: Identity) -> None:
    def pad(content: bytes) -> bytes:
        head, sep, body = content.partition(b"\r\n\r\n")
        return head + sep + body.replace(b"\r\n", b"  \r\n")

    assert "white space" in _diagnosed(_edit_first_part(_signed(alice), pad))


def _rewrap_qp(body: bytes, width: int) -> bytes:
    logical = body.replace(b"=\r\n", b"").split(b"\r\n")
    out = []
    for line in logical:
        pieces, cur, i = [], b"", 0
        while i < len(line):
            token = line[i : i + 3] if line[i : i + 1] == b"=" else line[i : i + 1]
            if len(cur) + len(token) > width - 1:
                pieces.append(cur + b"=")
                cur = b""
            cur += token
            i += len(token)
        pieces.append(cur)
        out.append(b"\r\n".join(pieces))
    return b"\r\n".join(out)


def test_diagnosis_quoted_printable_rewrapped(alice: Identity) -> None:
    def rewrap(content: bytes) -> bytes:
        head, sep, body = content.partition(b"\r\n\r\n")
        assert b"=\r\n" in body
        return head + sep + _rewrap_qp(body, 40)

    assert "quoted-printable" in _diagnosed(_edit_first_part(_signed(alice), rewrap))


def test_diagnosis_base64_rewrapped(alice: Identity) -> None:
    msg = _message(attachments=[mime.Attachment(bytes(range(256)) * 4, "data.bin")])

    def rewrap(content: bytes) -> bytes:
        m = re.search(rb"filename=data.bin\r\n\r\n([A-Za-z0-9+/=\r\n]+?)\r\n--", content)
        assert m
        flat = m.group(1).replace(b"\r\n", b"")
        lines = b"\r\n".join(flat[i : i + 64] for i in range(0, len(flat), 64)) + b"\r\n"
        return content[: m.start(1)] + lines + content[m.end(1) :]

    assert "base64" in _diagnosed(_edit_first_part(_signed(alice, msg), rewrap))


def test_diagnosis_header_refolded(alice: Identity) -> None:
    note = "x" * 40 + " " + "y" * 40
    raw = (
        "From: alice@example.org\r\nSubject: Figures\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: text/plain; charset=us-ascii; x-note="{note}"\r\n\r\nThe figures.\r\n'
    ).encode()
    data = _signed(alice, mime.parse(raw))
    assert f'x-note="{note}"'.encode() in data  # signed unfolded
    refolded = _edit_first_part(data, lambda c: c.replace(b"; x-note=", b";\r\n x-note="))
    assert "re-folded" in _diagnosed(refolded)


def test_lf_only_copy_is_accepted_not_diagnosed(alice: Identity) -> None:
    sig = _sig(mime.parse(_signed(alice).replace(b"\r\n", b"\n")))
    assert sig.intact and sig.valid and sig.line_endings_converted and sig.diagnosis is None


def test_oversized_signature_part_is_refused(alice: Identity) -> None:
    data = _signed(alice)
    msg = mime.parse(data)
    start, end = msg.parts[1].body_span
    huge = data[:start] + (b"A" * 76 + b"\r\n") * 150_000 + data[end:]
    with pytest.raises(SmimeFormatError, match="too large"):
        smime.verify(mime.parse(huge), now=T)
