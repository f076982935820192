"""smime.sign and smime.verify: round trips, the shape of what we emit, and what the report tells."""

from __future__ import annotations

import datetime as dt
import json
import re
import tracemalloc
from pathlib import Path

import pytest

from smimekit import cms, mime, smime
from smimekit.cms import DigestAlgorithm, SignatureScheme
from smimekit.errors import NotSmimeError, SmimeFormatError, UsageError
from smimekit.mime import Message
from tests.testpki import Identity, make_ca, make_ee

T = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def ca() -> Identity:
    return make_ca("smime sign/verify root")


@pytest.fixture(scope="module")
def ids(ca: Identity) -> dict[str, Identity]:
    return {k: make_ee(f"{k}@example.org", ca, key_kind=k) for k in ("rsa2048", "p256", "p384", "ed25519")}


def message(sender: str = "rsa2048@example.org", **kw: object) -> Message:
    args: dict[str, object] = {
        "from_": sender,
        "to": ["bob@example.org"],
        "subject": "Quarterly report",
        "text": "Hello Bob,\n\nthe figures are attached.\n",
        "date": T,
        "message_id": "<q1@example.org>",
    }
    args.update(kw)
    return mime.compose(**args)  # type: ignore[arg-type]


def signer(ident: Identity, **kw: object) -> cms.Signer:
    return cms.Signer(ident.cert, ident.key, **kw)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------- signing


SIGNERS = [
    ("rsa2048", None, None, "sha-256"),
    ("rsa2048", SignatureScheme.RSA_PSS, DigestAlgorithm.SHA384, "sha-384"),
    ("p256", None, None, "sha-256"),
    ("p384", None, DigestAlgorithm.SHA384, "sha-384"),
    ("ed25519", None, None, "sha-512"),
]


@pytest.mark.parametrize(("kind", "scheme", "digest", "micalg"), SIGNERS)
def test_clear_signed_round_trip(
    ids: dict[str, Identity], kind: str, scheme: object, digest: object, micalg: str
) -> None:
    msg = message(f"{kind}@example.org")
    signed = smime.sign(msg, signer(ids[kind], scheme=scheme, digest=digest), signing_time=T)
    assert signed.content_type == "multipart/signed"
    assert signed.params["protocol"] == "application/pkcs7-signature"
    assert signed.params["micalg"] == micalg
    report = smime.verify(mime.parse(signed.to_bytes()), now=T)
    (sig,) = report.signatures
    assert sig.intact and sig.valid and not sig.trusted
    assert sig.reasons == ("no trust anchors were given",)
    assert sig.from_matches and report.from_matches
    assert sig.signing_time == T
    assert sig.signer is not None and sig.signer.emails == (f"{kind}@example.org",)
    assert sig.covered_parts == ("1.1",) and report.unsigned_parts == ()
    assert sig.form == "multipart/signed" and sig.part == "1"
    assert not sig.line_endings_converted and sig.diagnosis is None


@pytest.mark.parametrize("kind", ["rsa2048", "p256", "ed25519"])
def test_opaque_round_trip(ids: dict[str, Identity], kind: str) -> None:
    signed = smime.sign(message(f"{kind}@example.org"), signer(ids[kind]), signing_time=T, opaque=True)
    assert signed.content_type == "application/pkcs7-mime"
    assert signed.params == {"smime-type": "signed-data", "name": "smime.p7m"}
    assert signed.filename == "smime.p7m" and signed.transfer_encoding == "base64"
    report = smime.verify(mime.parse(signed.to_bytes()), now=T)
    (sig,) = report.signatures
    assert sig.intact and sig.valid and sig.form == "signed-data"
    assert report.content is not None and b"the figures are attached" in report.content.to_bytes()


def test_the_bytes_signed_are_the_first_part_as_emitted(ids: dict[str, Identity]) -> None:
    msg = message(attachments=[mime.Attachment(b"\x00\x01binary" * 50, "data.bin")], text="caf\u00e9\n")
    signed = smime.sign(msg, signer(ids["rsa2048"]), signing_time=T)
    data = signed.to_bytes()
    first = signed.parts[0]
    start, end = first.span
    content = data[start:end]
    assert content == smime._mime.content_entity(msg)
    der = signed.parts[1].decoded()
    assert cms.verify(der, detached_content=content).ok
    assert b"\n" not in content.replace(b"\r\n", b"")  # canonical: CRLF only
    assert content.isascii()
    # the RFC 5322 fields stay outside, the Content-* fields go inside
    head = data[: data.index(b"\r\n\r\n")]
    for name in (b"From:", b"To:", b"Subject:", b"Date:", b"Message-ID:", b"MIME-Version:"):
        assert re.search(rb"(?m)^" + name, head)
        assert not re.search(rb"(?m)^" + name, content)
    assert content.startswith(b"Content-Type: multipart/mixed")
    sig = signed.parts[1]
    assert sig.content_type == "application/pkcs7-signature"
    assert sig.params["name"] == "smime.p7s" and sig.filename == "smime.p7s"
    assert sig.disposition == "attachment" and sig.transfer_encoding == "base64"


def test_8bit_content_is_made_canonical_before_signing(ids: dict[str, Identity]) -> None:
    raw = (
        b"From: rsa2048@example.org\nSubject: 8bit\nMIME-Version: 1.0\n"
        b"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nGr\xc3\xbc\xc3\x9fe\n"
    )
    signed = smime.sign(mime.parse(raw), signer(ids["rsa2048"]), signing_time=T)
    first = signed.parts[0]
    assert first.transfer_encoding == "quoted-printable"
    assert first.decoded() == "Grüße\r\n".encode()
    assert smime.verify(signed, now=T).signatures[0].intact


def test_message_without_content_type_gets_text_plain(ids: dict[str, Identity]) -> None:
    msg = mime.parse(b"From: rsa2048@example.org\r\nSubject: bare\r\n\r\nJust text.\r\n")
    signed = smime.sign(msg, signer(ids["rsa2048"]), signing_time=T)
    assert signed.parts[0].to_bytes() == b"Content-Type: text/plain; charset=us-ascii\r\n\r\nJust text.\r\n"


def test_several_signers_give_every_micalg(ids: dict[str, Identity]) -> None:
    signers = [signer(ids["rsa2048"]), signer(ids["ed25519"]), signer(ids["p256"])]
    signed = smime.sign(message(), signers, signing_time=T)
    assert signed.params["micalg"] == "sha-256,sha-512"
    assert b'micalg="sha-256,sha-512"' in signed.to_bytes()
    report = smime.verify(signed, now=T)
    assert len(report.signatures) == 3
    assert all(s.intact and s.valid for s in report.signatures)
    assert sorted(s.from_matches for s in report.signatures) == [False, False, True]  # a SET: DER order


def test_sign_checks_its_arguments(ids: dict[str, Identity]) -> None:
    with pytest.raises(UsageError, match="timezone-aware"):
        smime.sign(message(), signer(ids["rsa2048"]), signing_time=dt.datetime(2026, 1, 1))
    with pytest.raises(UsageError, match="at least one signer"):
        smime.sign(message(), [], signing_time=T)
    with pytest.raises(UsageError, match="timezone-aware"):
        smime.verify(message(), now=dt.datetime(2026, 1, 1))


# --------------------------------------------------------------------------------------------- verifying


def test_lf_stored_copy_verifies_and_says_so(ids: dict[str, Identity]) -> None:
    signed = smime.sign(message(), signer(ids["rsa2048"]), signing_time=T).to_bytes()
    stored = mime.parse(signed.replace(b"\r\n", b"\n"))
    report = smime.verify(stored, now=T)
    (sig,) = report.signatures
    assert sig.intact and sig.valid and sig.line_endings_converted
    assert any("LF line endings" in n for n in report.notes)
    assert report.content is not None and b"\r" not in report.content.to_bytes()  # as received
    opened = smime.open(stored, now=T).inner  # open() hands out the content in the form verified
    assert opened.to_bytes().endswith(smime._mime.content_entity(message()).split(b"\r\n\r\n", 1)[1])


def _retype(data: bytes, old: bytes, new: bytes) -> Message:
    assert old in data
    return mime.parse(data.replace(old, new))


def test_x_pkcs7_and_outlook_variants(ids: dict[str, Identity]) -> None:
    clear = smime.sign(message(), signer(ids["rsa2048"]), signing_time=T).to_bytes()
    for variant in (
        _retype(
            clear,
            b"Content-Type: application/pkcs7-signature",
            b"Content-Type: application/x-pkcs7-signature",
        ),
        _retype(
            clear, b"Content-Type: application/pkcs7-signature", b"Content-Type: application/octet-stream"
        ),
        _retype(
            clear, b'protocol="application/pkcs7-signature"', b'protocol="application/x-pkcs7-signature"'
        ),
    ):
        assert smime.verify(variant, now=T).signatures[0].intact
    opaque = smime.sign(message(), signer(ids["rsa2048"]), signing_time=T, opaque=True).to_bytes()
    for variant in (
        _retype(opaque, b"application/pkcs7-mime; smime-type=signed-data;", b"application/x-pkcs7-mime;"),
        _retype(opaque, b"application/pkcs7-mime; smime-type=signed-data;", b"application/octet-stream;"),
    ):
        (sig,) = smime.verify(variant, now=T).signatures
        assert sig.intact and sig.valid and sig.form == "signed-data"


def _wrap_in_mixed(signed: Message, sender: str = "rsa2048@example.org") -> Message:
    """An unsigned multipart/mixed whose first part is added text and whose second is the signed entity."""
    data = signed.to_bytes()
    body_start = data.index(b"\r\n\r\n") + 4
    ctype = next(h.raw for h in signed.headers if h.lname == "content-type")
    return mime.parse(
        b"From: " + sender.encode() + b"\r\nSubject: fwd\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="outer"\r\n\r\n--outer\r\n'
        b"Content-Type: text/plain\r\n\r\nPlease wire the money to account 666.\r\n--outer\r\n"
        + ctype
        + b"\r\n"
        + data[body_start:]
        + b"\r\n--outer--\r\n"
    )


def test_unsigned_wrapper_is_visible(ids: dict[str, Identity]) -> None:
    signed = smime.sign(message(), signer(ids["rsa2048"]), signing_time=T)
    report = smime.verify(_wrap_in_mixed(signed), now=T)
    (sig,) = report.signatures
    assert sig.intact and sig.valid
    assert sig.part == "1.2" and sig.covered_parts == ("1.2.1",)
    assert report.unsigned_parts == ("1.1",)
    assert not report.fully_signed
    assert report.to_dict()["unsigned_parts"] == ["1.1"]


def test_covered_parts_of_a_multipart_content(ids: dict[str, Identity]) -> None:
    msg = message(html="<p>Hi</p>", attachments=[mime.Attachment(b"x" * 100, "x.bin")])
    report = smime.verify(smime.sign(msg, signer(ids["rsa2048"]), signing_time=T), now=T)
    assert report.signatures[0].covered_parts == ("1.1", "1.1.1", "1.1.1.1", "1.1.1.2", "1.1.2")
    opaque = smime.verify(smime.sign(msg, signer(ids["rsa2048"]), signing_time=T, opaque=True), now=T)
    assert opaque.signatures[0].covered_parts == ("1.1", "1.1.1", "1.1.1.1", "1.1.1.2", "1.1.2")


def test_from_mismatch_is_reported(ids: dict[str, Identity]) -> None:
    msg = message("ceo@example.org")
    report = smime.verify(smime.sign(msg, signer(ids["rsa2048"]), signing_time=T), now=T)
    (sig,) = report.signatures
    assert sig.intact and sig.valid and not sig.from_matches
    assert report.from_addresses == ("ceo@example.org",) and not report.from_matches


def test_trust_against_anchors(ca: Identity, ids: dict[str, Identity]) -> None:
    pytest.importorskip("smimekit.pki")
    signed = smime.sign(message(), signer(ids["rsa2048"]), signing_time=T)
    report = smime.verify(signed, anchors=[ca.cert], now=T)
    (sig,) = report.signatures
    assert sig.trusted and sig.ok and report.ok and report.fully_signed and sig.reasons == ()
    assert sig.trust.now is not None and sig.trust.now.trusted
    assert sig.trust.at_signing_time is not None and sig.trust.at_signing_time.trusted
    other = make_ca("some other root")
    untrusted = smime.verify(signed, anchors=[other.cert], now=T).signatures[0]
    assert untrusted.intact and untrusted.valid and not untrusted.trusted and not untrusted.ok
    assert untrusted.trust.reason and untrusted.trust.reason in untrusted.reasons


def test_intermediates_from_the_message_and_from_the_caller(ca: Identity) -> None:
    pytest.importorskip("smimekit.pki")
    sub = make_ca("smime sub CA", issuer=ca)
    carol = make_ee("rsa2048@example.org", sub)
    with_chain = smime.sign(message(), signer(carol, extra_certificates=(sub.cert,)), signing_time=T)
    assert smime.verify(with_chain, anchors=[ca.cert], now=T).ok
    bare = smime.sign(message(), signer(carol), signing_time=T)
    assert not smime.verify(bare, anchors=[ca.cert], now=T).ok
    assert smime.verify(bare, anchors=[ca.cert], intermediates=[sub.cert], now=T).ok


def test_report_to_dict_is_json(ids: dict[str, Identity]) -> None:
    report = smime.verify(smime.sign(message(), signer(ids["p256"]), signing_time=T), now=T)
    data = json.loads(json.dumps(report.to_dict()))
    sig = data["signatures"][0]
    assert sig["intact"] is True and sig["trusted"] is False and sig["ok"] is False
    assert sig["signer"]["emails"] == ["p256@example.org"]
    assert len(sig["signer"]["sha256_fingerprint"]) == 64
    assert sig["digest_algorithm"] == "SHA-256" and "ECDSA" in sig["signature_algorithm"]
    assert sig["signing_time"] == T.isoformat()


def test_not_smime_and_malformed() -> None:
    with pytest.raises(NotSmimeError, match="not signed"):
        smime.verify(message(), now=T)
    one_part = mime.parse(
        b'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; boundary=b\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b--\r\n"
    )
    with pytest.raises(SmimeFormatError, match="exactly two parts"):
        smime.verify(one_part, now=T)
    pgp = mime.parse(
        b'Content-Type: multipart/signed; protocol="application/pgp-signature"; boundary=b\r\n\r\n'
        b"--b\r\n\r\nhi\r\n--b\r\nContent-Type: application/pgp-signature\r\n\r\nsig\r\n--b--\r\n"
    )
    with pytest.raises(NotSmimeError):
        smime.verify(pgp, now=T)


@pytest.mark.parametrize("stored", ["crlf", "lf"])
def test_file_backed_verification_streams(tmp_path: Path, ids: dict[str, Identity], stored: str) -> None:
    """A 48 MB signed message verifies from its file without holding it in memory (LF-stored too)."""
    blob = bytes(range(256)) * (48 * 4096)
    msg = message(attachments=[mime.Attachment(blob, "big.bin")])
    data = smime.sign(msg, signer(ids["rsa2048"]), signing_time=T).to_bytes()
    path = tmp_path / "big.eml"
    path.write_bytes(data if stored == "crlf" else data.replace(b"\r\n", b"\n"))
    del blob, msg, data
    with mime.parse_file(path) as on_disk:
        tracemalloc.start()
        try:
            report = smime.verify(on_disk, now=T)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        (sig,) = report.signatures
        assert sig.intact and sig.valid and sig.line_endings_converted is (stored == "lf")
    assert path.stat().st_size > 60_000_000
    assert peak < 8_000_000, peak  # a few 1 MiB chunks, whatever the size of the message


def test_certs_only_message_is_not_a_signature(ids: dict[str, Identity]) -> None:
    der = cms.sign(b"", [signer(ids["rsa2048"])], detached=True, signing_time=T)  # any SignedData will do
    msg = smime._mime.wrap(
        [b"From: rsa2048@example.org\r\n"],
        smime._mime.pkcs7_fields("application/pkcs7-mime", "certs-only", "smime.p7c"),
        smime._mime.base64_body(der),
    )
    with pytest.raises(NotSmimeError):
        smime.verify(msg, now=T)
