"""Binary content must survive canonicalization untouched: MimeKit's mixed line-ending octet stream.

``octet-stream-with-mixed-line-endings.dat`` (MimeKit test data) holds CR, LF and CRLF in one binary blob.
Canonicalizing for signing converts line endings of text, never of binary data: the attachment must be
transfer-encoded (base64) and decode back to the exact bytes after signing, encrypting and opening, and the
real ``openssl cms`` must accept the signature.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import pytest

from smimekit import cms, mime, smime
from tests.testpki import Identity, make_ca, make_ee

DAT = (
    Path(__file__).resolve().parents[3]
    / "shared/vectors/mimekit-testdata/UnitTests/TestData/smime/octet-stream-with-mixed-line-endings.dat"
)
T = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def pki() -> tuple[Identity, Identity]:
    ca = make_ca("binary canonical root")
    return ca, make_ee("alice@example.org", ca)


def _message(data: bytes, cte: str | None = None) -> mime.Message:
    att = mime.Attachment(data, "mixed.dat", "application/octet-stream", transfer_encoding=cte)
    return mime.compose(
        allow_8bit=cte == "binary",
        from_="alice@example.org",
        to=["bob@example.org"],
        subject="binary",
        text="see attachment",
        attachments=[att],
        date=T,
        message_id="<bin@example.org>",
    )


def _attachment(msg: mime.Message) -> bytes:
    leaves = [e for e in msg.walk() if e.filename == "mixed.dat"]
    assert len(leaves) == 1
    return leaves[0].decoded()


def test_vector_really_mixes_line_endings() -> None:
    data = DAT.read_bytes()
    bare_lf = data.count(b"\n") - data.count(b"\r\n")
    bare_cr = data.count(b"\r") - data.count(b"\r\n")
    assert data.count(b"\r\n") and bare_lf and bare_cr


def test_signed_binary_attachment_keeps_its_bytes(pki: tuple[Identity, Identity], tmp_path: Path) -> None:
    ca, alice = pki
    data = DAT.read_bytes()
    signed = smime.sign(_message(data), cms.Signer(alice.cert, alice.key), signing_time=T)
    report = smime.verify(signed, now=T, anchors=[ca.cert])
    assert report.ok, report
    assert _attachment(report.content if isinstance(report.content, mime.Message) else signed) == data
    assert _attachment(mime.parse(signed.to_bytes())) == data

    if shutil.which("openssl"):
        (tmp_path / "m.eml").write_bytes(signed.to_bytes())
        ca_pem = tmp_path / "ca.pem"
        ca_pem.write_bytes(ca.cert_pem())
        res = subprocess.run(
            ["openssl", "cms", "-verify", "-in", str(tmp_path / "m.eml"), "-CAfile", str(ca_pem)],
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert res.returncode == 0, res.stderr
        assert _attachment(mime.parse(res.stdout)) == data


@pytest.mark.parametrize("cte", [None, "base64", "binary"])
def test_sign_then_encrypt_round_trip(pki: tuple[Identity, Identity], cte: str | None) -> None:
    ca, alice = pki
    data = DAT.read_bytes()
    original = _message(data, cte)
    if cte == "binary":
        assert b"Content-Transfer-Encoding: binary" in original.to_bytes()
    sealed = smime.encrypt(
        smime.sign(original, cms.Signer(alice.cert, alice.key), signing_time=T), [alice.cert]
    )
    opened = smime.open(sealed, keys=[(alice.cert, alice.key)], anchors=[ca.cert], now=T)
    assert _attachment(opened.inner) == data
    assert all(layer.ok for layer in opened.layers if hasattr(layer, "ok"))
