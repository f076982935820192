"""``smimekit.smime.kind_of``, the public detection the gateway routes mail by (the gateway may not reach
into ``smimekit.smime._mime``)."""

from __future__ import annotations

import base64

import pytest
from asn1crypto import core

from smimekit import cms, mime, smime
from smimekit.gateway.decide import Envelope, Knowledge, Verdict, decide
from smimekit.gateway.policy import EncryptMode, Policy
from smimekit.gateway.process import facts_of
from smimekit.smime import SmimeKind, kind_of
from smimekit.smime._mime import IN_MEMORY
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


# ----------------------------------------------------------- only a real envelope is "already encrypted"


def _pkcs7_mime(der: bytes, smime_type: str = "enveloped-data") -> bytes:
    return (
        b"From: alice@example.org\r\nTo: carol@partner.example\r\nSubject: figures\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: application/pkcs7-mime; smime-type=" + smime_type.encode() + b"; name=smime.p7m\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(der).replace(b"\n", b"\r\n")
    )


def _tlv(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _der_length(len(body)) + body


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


PLAINTEXT = b"Quarterly figures: revenue 12.3M, do not share " * 3
ENVELOPED_OID = core.ObjectIdentifier("1.2.840.113549.1.7.3").dump()
AUTH_ENVELOPED_OID = core.ObjectIdentifier("1.2.840.113549.1.9.16.1.23").dump()


def _real_envelope_der() -> bytes:
    data = encrypted_for(message(), pki().bob)
    with mime.parse(data) as m:
        return m.decoded()


def _fake_prefix() -> bytes:
    """The review's reproduction: the envelopedData OID, then plaintext in an OCTET STRING."""
    return _tlv(0x30, ENVELOPED_OID + _tlv(0xA0, core.OctetString(PLAINTEXT).dump()))


def _no_recipients() -> bytes:
    """A well-formed EnvelopedData whose RecipientInfos SET is empty (SIZE (1..MAX) in RFC 5652)."""
    eci = _tlv(
        0x30,
        core.ObjectIdentifier("1.2.840.113549.1.7.1").dump()
        + _tlv(
            0x30,
            core.ObjectIdentifier("2.16.840.1.101.3.4.1.42").dump() + core.OctetString(b"\0" * 16).dump(),
        )
        + _tlv(0x80, PLAINTEXT),
    )
    ed = _tlv(0x30, core.Integer(0).dump() + _tlv(0x31, b"") + eci)
    return _tlv(0x30, ENVELOPED_OID + _tlv(0xA0, ed))


def _auth_ids(der: bytes) -> bytes:
    """``der`` (authEnveloped) relabelled as enveloped-data: the MAC is then trailing garbage."""
    return der.replace(AUTH_ENVELOPED_OID, ENVELOPED_OID, 1)


@pytest.mark.parametrize(
    "make",
    [
        _fake_prefix,
        _no_recipients,
        lambda: _real_envelope_der()[:-40],  # truncated
        lambda: _real_envelope_der() + core.OctetString(PLAINTEXT).dump(),  # plaintext after the end
        lambda: _auth_ids(_real_envelope_der()),
        lambda: b"",  # empty body: the smime-type parameter alone says enveloped-data
    ],
    ids=["fake-prefix", "no-recipients", "truncated", "trailing-plaintext", "wrong-content-type", "empty"],
)
def test_what_only_looks_encrypted_is_plaintext(make) -> None:  # type: ignore[no-untyped-def]
    data = _pkcs7_mime(make())
    with mime.parse(data) as m:
        assert kind_of(m) is None
        assert not facts_of(m).encrypted


def test_a_fake_envelope_to_a_required_recipient_is_refused_not_relayed() -> None:
    """Review finding: a pkcs7-mime part holding plaintext after the envelopedData OID went out unchanged
    to a recipient for whom encryption is required, as "already encrypted by the sender"."""
    policy = Policy(internal_domains=frozenset({"example.org"}), encrypt=EncryptMode.REQUIRED)
    envelope = Envelope("alice@example.org", ("carol@partner.example",))
    with mime.parse(_pkcs7_mime(_fake_prefix())) as m:
        facts = facts_of(m)
    refused = decide(facts, envelope, policy, Knowledge(can_sign=True))
    assert refused.verdict is Verdict.REJECT and refused.missing == ("carol@partner.example",)
    with_cert = decide(facts, envelope, policy, Knowledge(encryptable=frozenset({"carol@partner.example"})))
    assert with_cert.verdict is Verdict.DELIVER and [c.encrypt for c in with_cert.copies] == [True]
    # a real envelope keeps its exemption
    with mime.parse(_pkcs7_mime(_real_envelope_der(), "authEnveloped-data")) as m:
        real = decide(facts_of(m), envelope, policy, Knowledge())
    assert real.verdict is Verdict.DELIVER and real.reason == "already encrypted by the sender"


def test_a_large_real_envelope_is_still_encrypted() -> None:
    """The whole structure is read as a stream: a message larger than what is held in memory."""
    body = ("line of the report " * 4 + "\n") * 120_000  # 9 MB, 12 MB in base64
    data = encrypted_for(message(body=body), pki().bob)
    with mime.parse(data) as m:
        start, end = m.body_span
        assert end - start > IN_MEMORY * 4 // 3 + 4096  # streamed, not decoded in memory
        assert kind_of(m) is SmimeKind.AUTH_ENVELOPED
    with mime.parse(data[: len(data) - 200]) as cut:
        assert kind_of(cut) is None  # cut short: no envelope
