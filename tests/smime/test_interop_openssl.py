"""Whole S/MIME messages both ways with the real OpenSSL 3.0 (``openssl smime`` and ``openssl cms``).

We sign -> it verifies the whole MIME message; it signs (detached, opaque, -stream, -text or a full MIME
entity) -> we verify, trusted; we encrypt -> it decrypts to the canonical inner entity; it encrypts
(AES-CBC, AES-GCM, -stream) -> we decrypt; sign+encrypt nested both ways. OpenSSL 3.0 has neither Ed25519
nor ChaCha20-Poly1305 in CMS: those are covered by round trips.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import pytest

from smimekit import cms, mime, smime
from smimekit.cms import ContentCipher, DigestAlgorithm, KeyTransport, SignatureScheme
from smimekit.mime import Message
from smimekit.smime import LayerKind
from smimekit.smime._mime import content_entity
from tests.testpki import NOW, Identity, make_ca, make_ee

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")

T = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
LONG = NOW + dt.timedelta(days=3000)
ENTITY = (
    b'Content-Type: multipart/mixed; boundary="inner"\n\n--inner\nContent-Type: text/plain; charset=utf-8\n'
    b"Content-Transfer-Encoding: quoted-printable\n\nGr=C3=BC=C3=9Fe from OpenSSL.\n--inner\n"
    b"Content-Type: application/octet-stream; name=a.bin\nContent-Transfer-Encoding: base64\n\n"
    b"AAECAwQFBgcICQ==\n--inner--\n"
)


def openssl(*args: str | Path, cwd: Path) -> bytes:
    proc = subprocess.run(["openssl", *map(str, args)], cwd=cwd, capture_output=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return proc.stdout


@pytest.fixture(scope="module")
def ca() -> Identity:
    return make_ca("smime interop root")


@pytest.fixture(scope="module")
def ids(ca: Identity) -> dict[str, Identity]:
    return {
        "rsa": make_ee("alice@example.org", ca, not_after=LONG),
        "ec": make_ee("carol@example.org", ca, key_kind="p256", not_after=LONG),
        "bob": make_ee("bob@example.org", ca, not_after=LONG),
        "dave": make_ee("dave@example.org", ca, key_kind="p384", not_after=LONG),
    }


@pytest.fixture
def work(tmp_path: Path, ca: Identity, ids: dict[str, Identity]) -> Path:
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem())
    for name, ident in ids.items():
        ident.write_pem(tmp_path, name)
    (tmp_path / "entity.txt").write_bytes(ENTITY)
    (tmp_path / "plain.txt").write_bytes(b"Plain text signed by OpenSSL.\nSecond line.\n")
    return tmp_path


def message(sender: str = "alice@example.org") -> Message:
    return mime.compose(
        from_=sender,
        to=["bob@example.org"],
        subject="Interop",
        text="Gr\u00fc\u00dfe \u2014 interop with OpenSSL.\n",
        attachments=[mime.Attachment(bytes(range(256)) * 3, "data.bin")],
        date=T,
        message_id="<interop@example.org>",
        boundary="interop",
    )


def _attime() -> str:
    return str(int(T.timestamp()))


# --------------------------------------------------------------------------------------------- we sign


SIGNERS = [
    ("rsa", None, None),
    ("rsa", SignatureScheme.RSA_PSS, DigestAlgorithm.SHA256),
    ("rsa", None, DigestAlgorithm.SHA512),
    ("ec", None, None),
    ("dave", None, DigestAlgorithm.SHA384),
]


@pytest.mark.parametrize(("who", "scheme", "digest"), SIGNERS)
def test_openssl_verifies_our_clear_signed_message(
    work: Path, ids: dict[str, Identity], who: str, scheme: object, digest: object
) -> None:
    ident = ids[who]
    msg = message()
    signer = cms.Signer(ident.cert, ident.key, scheme=scheme, digest=digest)  # type: ignore[arg-type]
    signed = smime.sign(msg, signer, signing_time=T)
    (work / "signed.eml").write_bytes(signed.to_bytes())
    expected = content_entity(msg)
    # the legacy PKCS#7 API behind "openssl smime" knows no RSA-PSS
    for tool in ("cms",) if scheme is SignatureScheme.RSA_PSS else ("smime", "cms"):
        out = openssl(
            tool, "-verify", "-in", "signed.eml", "-CAfile", "ca.pem", "-attime", _attime(), cwd=work
        )
        assert out == expected
    # the first part's exact span is what was signed
    start, end = signed.parts[0].span
    (work / "part.bin").write_bytes(signed.to_bytes()[start:end])
    (work / "sig.der").write_bytes(signed.parts[1].decoded())
    out = openssl(
        "cms", "-verify", "-binary", "-inform", "DER", "-in", "sig.der", "-content", "part.bin",
        "-CAfile", "ca.pem", "-attime", _attime(), cwd=work,
    )  # fmt: skip
    assert out == expected


@pytest.mark.parametrize("who", ["rsa", "ec"])
def test_openssl_verifies_our_opaque_signed_message(work: Path, ids: dict[str, Identity], who: str) -> None:
    msg = message()
    signed = smime.sign(msg, cms.Signer(ids[who].cert, ids[who].key), signing_time=T, opaque=True)
    (work / "opaque.eml").write_bytes(signed.to_bytes())
    out = openssl("cms", "-verify", "-in", "opaque.eml", "-CAfile", "ca.pem", "-attime", _attime(), cwd=work)
    assert out == content_entity(msg)
    out = openssl(
        "smime", "-verify", "-in", "opaque.eml", "-CAfile", "ca.pem", "-attime", _attime(), cwd=work
    )
    assert out == content_entity(msg)


def test_openssl_verifies_our_lf_stored_signed_message(work: Path, ids: dict[str, Identity]) -> None:
    signed = smime.sign(message(), cms.Signer(ids["rsa"].cert, ids["rsa"].key), signing_time=T)
    (work / "lf.eml").write_bytes(signed.to_bytes().replace(b"\r\n", b"\n"))
    openssl("smime", "-verify", "-in", "lf.eml", "-CAfile", "ca.pem", "-attime", _attime(), cwd=work)


# --------------------------------------------------------------------------------------------- openssl signs


OPENSSL_SIGNS = {
    "detached-text": ("-in", "plain.txt", "-text"),
    "detached-entity": ("-in", "entity.txt"),
    "detached-stream": ("-in", "entity.txt", "-stream"),
    "opaque-entity": ("-in", "entity.txt", "-nodetach"),
    "opaque-stream": ("-in", "entity.txt", "-nodetach", "-stream"),
    "sha384": ("-in", "entity.txt", "-md", "sha384"),
}


@pytest.mark.parametrize("who", ["rsa", "ec"])
@pytest.mark.parametrize("variant", list(OPENSSL_SIGNS))
def test_we_verify_what_openssl_signs(work: Path, ca: Identity, variant: str, who: str) -> None:
    pytest.importorskip("smimekit.pki")
    args = OPENSSL_SIGNS[variant]
    openssl("cms", "-sign", *args, "-signer", f"{who}.crt", "-inkey", f"{who}.key", "-out", "s.eml", cwd=work)
    msg = mime.parse((work / "s.eml").read_bytes())
    report = smime.verify(msg, anchors=[ca.cert], now=dt.datetime.now(dt.UTC))
    (sig,) = report.signatures
    assert sig.intact and sig.valid and sig.trusted and report.ok, sig.reasons
    assert sig.form == ("signed-data" if "-nodetach" in args else "multipart/signed")
    assert report.content is not None
    if variant == "detached-text":
        assert report.content.content_type == "text/plain"
        assert report.content.text() == "Plain text signed by OpenSSL.\r\nSecond line.\r\n"
    else:
        assert report.content.to_bytes() == ENTITY.replace(b"\n", b"\r\n")
        assert [p.content_type for p in report.content.parts] == ["text/plain", "application/octet-stream"]
        assert sig.covered_parts[:3] == ("1.1", "1.1.1", "1.1.2")


def test_we_verify_openssl_smime_sign_with_chain(work: Path, ca: Identity) -> None:
    pytest.importorskip("smimekit.pki")
    sub = make_ca("interop sub CA", issuer=ca)
    erin = make_ee("erin@example.org", sub, not_after=LONG)
    erin.write_pem(work, "erin")
    (work / "sub.pem").write_bytes(sub.cert_pem())
    openssl(
        "smime", "-sign", "-in", "entity.txt", "-signer", "erin.crt", "-inkey", "erin.key",
        "-certfile", "sub.pem", "-out", "s.eml", cwd=work,
    )  # fmt: skip
    report = smime.verify(
        mime.parse((work / "s.eml").read_bytes()), anchors=[ca.cert], now=dt.datetime.now(dt.UTC)
    )
    assert report.ok
    assert report.signatures[0].trust.now is not None
    assert len(report.signatures[0].trust.now.path) == 3


# --------------------------------------------------------------------------------------------- we encrypt


ENCRYPTIONS = [
    ("bob", ContentCipher.AES256_GCM, KeyTransport.RSA_OAEP),
    ("bob", ContentCipher.AES128_GCM, KeyTransport.RSA_OAEP),
    ("bob", ContentCipher.AES256_CBC, KeyTransport.RSA_OAEP),
    ("bob", ContentCipher.AES128_CBC, KeyTransport.RSA_PKCS1V15),
    ("bob", ContentCipher.AES192_CBC, KeyTransport.RSA_PKCS1V15),
    ("ec", ContentCipher.AES256_GCM, KeyTransport.RSA_OAEP),
    ("dave", ContentCipher.AES256_CBC, KeyTransport.RSA_OAEP),
]


@pytest.mark.parametrize(("who", "cipher", "transport"), ENCRYPTIONS, ids=lambda v: getattr(v, "name", v))
def test_openssl_decrypts_what_we_encrypt(
    work: Path, ids: dict[str, Identity], who: str, cipher: ContentCipher, transport: KeyTransport
) -> None:
    msg = message()
    enc = smime.encrypt(msg, [ids[who].cert], cipher=cipher, key_transport=transport)
    (work / "e.eml").write_bytes(enc.to_bytes())
    out = openssl("cms", "-decrypt", "-in", "e.eml", "-recip", f"{who}.crt", "-inkey", f"{who}.key", cwd=work)
    assert out == content_entity(msg)


@pytest.mark.parametrize("tool", ["cms", "smime"])
def test_openssl_decrypts_the_sender_copy_too(work: Path, ids: dict[str, Identity], tool: str) -> None:
    msg = message()
    # the legacy PKCS#7 API behind "openssl smime" knows RSA PKCS#1 v1.5 key transport only
    transport = KeyTransport.RSA_OAEP if tool == "cms" else KeyTransport.RSA_PKCS1V15
    enc = smime.encrypt(
        msg,
        [ids["bob"].cert],
        cipher=ContentCipher.AES256_CBC,
        key_transport=transport,
        include_sender=ids["rsa"].cert,
    )
    (work / "e.eml").write_bytes(enc.to_bytes())
    for who in ("bob", "rsa"):
        out = openssl(
            tool, "-decrypt", "-in", "e.eml", "-recip", f"{who}.crt", "-inkey", f"{who}.key", cwd=work
        )
        assert out == content_entity(msg)


# --------------------------------------------------------------------------------------------- openssl encrypts


OPENSSL_ENCRYPTS = {
    "aes256-cbc": ("cms", "-encrypt", "-aes256", "-recip", "bob.crt"),
    "aes-256-gcm": ("cms", "-encrypt", "-aes-256-gcm", "-recip", "bob.crt"),
    "aes128-cbc-stream": ("cms", "-encrypt", "-aes128", "-stream", "-recip", "bob.crt"),
    "aes-128-gcm-stream": ("cms", "-encrypt", "-aes-128-gcm", "-stream", "-recip", "bob.crt"),
    "oaep": ("cms", "-encrypt", "-aes256", "-recip", "bob.crt", "-keyopt", "rsa_padding_mode:oaep"),
    "smime": ("smime", "-encrypt", "-aes256", "bob.crt"),
}


@pytest.mark.parametrize("variant", list(OPENSSL_ENCRYPTS))
def test_we_decrypt_what_openssl_encrypts(work: Path, ids: dict[str, Identity], variant: str) -> None:
    openssl(
        *OPENSSL_ENCRYPTS[variant][:2],
        "-in",
        "entity.txt",
        "-out",
        "e.eml",
        *OPENSSL_ENCRYPTS[variant][2:],
        cwd=work,
    )
    enc = mime.parse((work / "e.eml").read_bytes())
    inner, info = smime.decrypt(enc, key=ids["bob"].key, certificate=ids["bob"].cert)
    assert info.authenticated is ("gcm" in variant)
    assert inner.parts[0].text() == "Grüße from OpenSSL."
    assert inner.parts[1].decoded() == range10()


def range10() -> bytes:
    return bytes(range(10))


def test_we_decrypt_openssl_key_agreement(work: Path, ids: dict[str, Identity]) -> None:
    openssl("cms", "-encrypt", "-aes256", "-in", "entity.txt", "-out", "e.eml", "-recip", "ec.crt", cwd=work)
    inner, _ = smime.decrypt(mime.parse((work / "e.eml").read_bytes()), key=ids["ec"].key)
    assert inner.parts[1].decoded() == range10()


# --------------------------------------------------------------------------------------------- nested


def test_openssl_signs_and_encrypts_we_open(work: Path, ca: Identity, ids: dict[str, Identity]) -> None:
    pytest.importorskip("smimekit.pki")
    openssl(
        "cms",
        "-sign",
        "-in",
        "entity.txt",
        "-signer",
        "rsa.crt",
        "-inkey",
        "rsa.key",
        "-out",
        "s.eml",
        cwd=work,
    )
    openssl(
        "cms", "-encrypt", "-aes-256-gcm", "-in", "s.eml", "-out", "se.eml", "-recip", "bob.crt", cwd=work
    )
    msg = mime.parse((work / "se.eml").read_bytes())
    result = smime.open(
        msg, keys=[(ids["bob"].cert, ids["bob"].key)], anchors=[ca.cert], now=dt.datetime.now(dt.UTC)
    )
    assert [layer.kind for layer in result.layers] == [LayerKind.AUTH_ENVELOPED, LayerKind.SIGNED]
    assert result.ok
    assert result.inner.parts[0].text() == "Grüße from OpenSSL."


def test_openssl_encrypts_then_signs_we_open(work: Path, ca: Identity, ids: dict[str, Identity]) -> None:
    pytest.importorskip("smimekit.pki")
    openssl("cms", "-encrypt", "-aes256", "-in", "entity.txt", "-out", "e.eml", "-recip", "bob.crt", cwd=work)
    openssl(
        "cms", "-sign", "-in", "e.eml", "-signer", "ec.crt", "-inkey", "ec.key", "-out", "es.eml", cwd=work
    )
    msg = mime.parse((work / "es.eml").read_bytes())
    result = smime.open(msg, keys=[(None, ids["bob"].key)], anchors=[ca.cert], now=dt.datetime.now(dt.UTC))
    assert [layer.kind for layer in result.layers] == [LayerKind.SIGNED, LayerKind.ENVELOPED]
    assert result.ok
    assert result.inner.parts[1].decoded() == range10()


def test_we_sign_and_encrypt_openssl_opens(work: Path, ids: dict[str, Identity]) -> None:
    msg = message()
    signed = smime.sign(msg, cms.Signer(ids["rsa"].cert, ids["rsa"].key), signing_time=T)
    wrapped = smime.encrypt(signed, [ids["bob"].cert], cipher=ContentCipher.AES256_GCM)
    (work / "se.eml").write_bytes(wrapped.to_bytes())
    decrypted = openssl(
        "cms", "-decrypt", "-in", "se.eml", "-recip", "bob.crt", "-inkey", "bob.key", cwd=work
    )
    assert decrypted.startswith(b"Content-Type: multipart/signed")
    (work / "s.eml").write_bytes(decrypted)
    out = openssl("cms", "-verify", "-in", "s.eml", "-CAfile", "ca.pem", "-attime", _attime(), cwd=work)
    assert out == content_entity(msg)


# --------------------------------------------------------------------------------------------- weak algorithms

OPENSSL_CERTS = (
    Path(__file__).resolve().parents[3] / "shared" / "vectors" / "openssl-smime" / "test" / "smime-certs"
)


@pytest.mark.skipif(not OPENSSL_CERTS.is_dir(), reason="the shared vectors are not available")
@pytest.mark.parametrize(
    ("signer", "options", "weak"),
    [("smrsa1024.pem", (), "RSA key of 1024 bits"), ("smrsa1.pem", ("-md", "sha1"), "SHA-1 digest")],
)
def test_weak_algorithms_are_flagged(work: Path, signer: str, options: tuple[str, ...], weak: str) -> None:
    openssl(
        "cms",
        "-sign",
        "-in",
        "entity.txt",
        "-signer",
        OPENSSL_CERTS / signer,
        *options,
        "-out",
        "w.eml",
        cwd=work,
    )
    report = smime.verify(mime.parse((work / "w.eml").read_bytes()), now=dt.datetime.now(dt.UTC))
    (sig,) = report.signatures
    assert sig.intact and sig.valid  # accepted for verification, but flagged
    assert weak in sig.weak and weak in report.weak
    assert report.to_dict()["signatures"][0]["weak"] == [weak]
