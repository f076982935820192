"""S/MIME both ways with the real gpgsm 2.2 (GnuPG's S/MIME tool): RSA signatures, RSA + AES-CBC encryption.

gpgsm reads and writes bare CMS (DER, BER, or base64 with ``--assume-base64``), never a whole MIME message,
so the MIME layer is taken apart (we -> gpgsm) or put together (gpgsm -> we) here, as a mail client that
drives gpgsm does. We sign (RSA PKCS#1 v1.5 and RSA-PSS; detached and opaque) -> it verifies, and rejects
a tampered content or signature; it signs (detached, opaque, with or without the chain) -> we verify,
trusted, and reject tampering; we encrypt (AES-128/192/256-CBC, RSA PKCS#1 v1.5) -> it decrypts; it
encrypts (AES-128/192/256-CBC; 3DES behind our legacy switch) -> we decrypt; it imports and validates a
PEM chain we produce. All offline in a private GNUPGHOME (see ``_gpgsm``).

What gpgsm 2.2.40 (libksba 1.6.3) cannot do, asserted below (for 2.2 only) so that a change shows up:

- decrypt RSA-OAEP key transport: "recp 0 - error getting encrypted session key", then "message
  decryption failed: No secret key <GpgSM>" — for OpenSSL's output as for ours;
- decrypt AuthEnvelopedData (AES-GCM): "error getting IV: Buffer too short", then "message decryption
  failed: Buffer too short <KSBA>" — OpenSSL's too, although gpgsm's NEWS announces AES-GCM decryption in
  2.2.28;
- import PKCS#12 in today's format (PBES2 with AES-256-CBC and PBKDF2-HMAC-SHA256): 'encryptedData error
  at "pkcs5PBES2-params"', "error parsing or decrypting the PKCS#12 file". It takes 3DES/SHA-1 PKCS#12.

RSA-PSS signatures it does verify (since 2.2.21).
"""

from __future__ import annotations

import base64
import datetime as dt
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from asn1crypto import cms as asn1_cms
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from smimekit import cms, mime, smime
from smimekit.cms import ContentCipher, DigestAlgorithm, KeyTransport, SignatureScheme
from smimekit.errors import LegacyAlgorithmError
from smimekit.mime import Message
from smimekit.smime._mime import content_entity
from tests.smime import _gpgsm
from tests.smime._gpgsm import GpgsmHome, sha1_fingerprint
from tests.testpki import NOW, Identity, make_ca, make_ee

pytestmark = pytest.mark.skipif(
    bool(_gpgsm.missing()),
    reason=f"GnuPG's S/MIME tools are not installed (missing: {', '.join(_gpgsm.missing())}); "
    "apt-get install gpgsm gpg-agent",
)

T = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)  # our signing time
# gpgsm's clock (--faked-system-time): it starts there for each call and runs on (2.2 cannot freeze it)
GPGSM_NOW = dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.UTC)
VERIFY_NOW = GPGSM_NOW + dt.timedelta(hours=1)  # ours, when verifying what gpgsm signed
LONG = NOW + dt.timedelta(days=3000)
PASSPHRASE = b"gpgsm interop passphrase"  # under 32 characters: see GpgsmHome.import_identity
# a canonical MIME entity (CRLF, 7-bit) for gpgsm to sign and encrypt
ENTITY = (
    b'Content-Type: multipart/mixed; boundary="inner"\r\n\r\n--inner\r\n'
    b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    b"Gr=C3=BC=C3=9Fe from gpgsm.\r\n--inner\r\n"
    b"Content-Type: application/octet-stream; name=a.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    b"AAECAwQFBgcICQ==\r\n--inner--\r\n"
)
# libgcrypt's algorithm numbers in VALIDSIG
GCRY_MD = {DigestAlgorithm.SHA256: "8", DigestAlgorithm.SHA384: "9", DigestAlgorithm.SHA512: "10"}
GCRY_PK_RSA = "1"


@dataclass(frozen=True)
class Pki:
    root: Identity
    sub: Identity
    alice: Identity  # RSA-2048 under the root
    bob: Identity  # RSA-3072 under the intermediate

    def chain_pem(self) -> bytes:
        """Bob's certificate, then its issuers up to the root: a "fullchain" bundle."""
        return self.bob.cert_pem() + self.sub.cert_pem() + self.root.cert_pem()


@pytest.fixture(scope="module")
def pki() -> Pki:
    root = make_ca("gpgsm interop root", key_kind="rsa2048")
    sub = make_ca("gpgsm interop sub CA", key_kind="rsa2048", issuer=root)
    return Pki(
        root=root,
        sub=sub,
        alice=make_ee("alice@example.org", root, not_after=LONG),
        bob=make_ee("bob@example.org", sub, key_kind="rsa3072", not_after=LONG),
    )


def new_home(directory: Path, pki: Pki) -> GpgsmHome:
    home = GpgsmHome(directory / "gnupg", passphrase=PASSPHRASE, faked_time=GPGSM_NOW)
    home.trust(pki.root.cert)
    return home


@pytest.fixture(scope="module")
def gpgsm(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[GpgsmHome]:
    """A GnuPG home holding the CA certificates, trusting the root, and holding Alice's and Bob's keys
    (imported from legacy PKCS#12, which carry no root)."""
    directory = tmp_path_factory.mktemp("gpgsm")
    with new_home(directory, pki) as home:
        home.import_certificates(pki.root.cert_pem() + pki.sub.cert_pem(), directory / "cas.pem")
        for name, ident in (("alice", pki.alice), ("bob", pki.bob)):
            home.import_identity(ident, directory / f"{name}.p12")
        assert home.secret_keys() == {sha1_fingerprint(pki.alice.cert), sha1_fingerprint(pki.bob.cert)}
        yield home


def message() -> Message:
    return mime.compose(
        from_="alice@example.org",
        to=["bob@example.org"],
        subject="Interop with gpgsm",
        text="Gr\u00fc\u00dfe \u2014 interop with gpgsm.\n",
        attachments=[mime.Attachment(bytes(range(256)) * 3, "data.bin")],
        date=T,
        message_id="<gpgsm-interop@example.org>",
        boundary="gpgsm-interop",
    )


def b64(der: bytes) -> bytes:
    return base64.encodebytes(der).replace(b"\n", b"\r\n")


def multipart_signed(content: bytes, signature: bytes, micalg: str = "sha-256") -> Message:
    """What a mail client makes of gpgsm's detached signature: ``multipart/signed`` around ``content``."""
    return mime.parse(
        b"From: alice@example.org\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; '
        + f"micalg={micalg}".encode()
        + b'; boundary="=_gpgsm"\r\n\r\n--=_gpgsm\r\n'
        + content
        + b"\r\n--=_gpgsm\r\nContent-Type: application/pkcs7-signature; name=smime.p7s\r\n"
        b"Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=smime.p7s\r\n\r\n"
        + b64(signature)
        + b"\r\n--=_gpgsm--\r\n"
    )


def pkcs7_mime(smime_type: str, body: bytes) -> Message:
    """``application/pkcs7-mime`` around ``body``, base64 text (CRLF or LF lines)."""
    body = body.replace(b"\r\n", b"\n").rstrip(b"\n").replace(b"\n", b"\r\n") + b"\r\n"
    return mime.parse(
        b"From: alice@example.org\r\nMIME-Version: 1.0\r\n"
        + f"Content-Type: application/pkcs7-mime; smime-type={smime_type}; name=smime.p7m\r\n".encode()
        + b"Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=smime.p7m\r\n\r\n"
        + body
    )


def flip(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1 :]


def signature_offset(signed: bytes) -> int:
    """Where the first signer's signature value sits in a SignedData (DER or gpgsm's BER)."""
    info = asn1_cms.ContentInfo.load(signed)
    value = info["content"]["signer_infos"][0]["signature"].native
    assert signed.count(value) == 1
    return signed.index(value) + len(value) // 2


# --------------------------------------------------------------------------------------------- PEM chain


def test_gpgsm_imports_and_validates_our_pem_chain(tmp_path: Path, pki: Pki) -> None:
    with new_home(tmp_path, pki) as home:
        run = home.import_certificates(pki.chain_pem(), tmp_path / "chain.pem")
        fingerprints = [sha1_fingerprint(c.cert) for c in (pki.bob, pki.sub, pki.root)]
        assert [line[2] for line in run.status if line[0] == "IMPORT_OK"] == fingerprints
        counts = run.get("IMPORT_RES")  # processed, without user id, imported, ...
        assert counts is not None and counts[:3] == ("3", "0", "3"), run
        # gpgsm links each certificate to its issuer and validates the chain up to the trusted root
        # (f: fully valid, u: ultimately trusted); nothing else is in the keybox
        listing = home.run("--with-colons", "--with-validation", "--list-keys").colons()
        bob, sub, root = fingerprints
        assert listing == {bob: ("f", sub), sub: ("f", root), root: ("u", root)}
        # and encrypts to Bob on the strength of that chain; we decrypt
        (tmp_path / "entity.txt").write_bytes(ENTITY)
        home.run(
            "--encrypt",
            "--recipient",
            "bob@example.org",
            "--output",
            tmp_path / "e.der",
            tmp_path / "entity.txt",
        )
        result = cms.decrypt((tmp_path / "e.der").read_bytes(), key=pki.bob.key, certificate=pki.bob.cert)
        assert result.read_bytes() == ENTITY


def test_gpgsm_22_imports_only_legacy_pkcs12(tmp_path: Path, pki: Pki) -> None:
    """gpgsm 2.2 refuses what cryptography writes by default (PBES2: AES-256-CBC, PBKDF2-HMAC-SHA256) and
    takes the legacy 3DES/SHA-1 format that the fixture uses."""
    if _gpgsm.version()[:2] != (2, 2):
        pytest.skip("documents the limits of gpgsm 2.2")
    modern = pkcs12.serialize_key_and_certificates(
        b"alice", pki.alice.key, pki.alice.cert, None, serialization.BestAvailableEncryption(PASSPHRASE)
    )
    (tmp_path / "modern.p12").write_bytes(modern)
    with new_home(tmp_path, pki) as home:
        run = home.run("--import", tmp_path / "modern.p12", secret=True, check=False)
        assert run.returncode != 0 and 'error at "pkcs5PBES2-params"' in run.stderr, run
        assert "error parsing or decrypting the PKCS#12 file" in run.stderr, run
        home.import_identity(pki.alice, tmp_path / "legacy.p12")
        assert home.secret_keys() == {sha1_fingerprint(pki.alice.cert)}


# --------------------------------------------------------------------------------------------- we sign


WE_SIGN = {
    "rsa2048-sha256": ("alice", None, None),
    "rsa2048-sha512": ("alice", None, DigestAlgorithm.SHA512),
    "rsa3072-sha384-intermediate": ("bob", None, DigestAlgorithm.SHA384),
    "rsa-pss-sha256": ("alice", SignatureScheme.RSA_PSS, DigestAlgorithm.SHA256),
}


@pytest.mark.parametrize("variant", list(WE_SIGN))
def test_gpgsm_verifies_our_detached_signature(
    gpgsm: GpgsmHome, pki: Pki, tmp_path: Path, variant: str
) -> None:
    who, scheme, digest = WE_SIGN[variant]
    ident: Identity = getattr(pki, who)
    msg = message()
    signer = cms.Signer(ident.cert, ident.key, scheme=scheme, digest=digest)
    signed = smime.sign(msg, signer, signing_time=T, certificates=ident.chain)
    # gpgsm reads no MIME: hand it the first part's exact bytes and the decoded signature part
    start, end = signed.parts[0].span
    content = signed.to_bytes()[start:end]
    assert content == content_entity(msg)
    (tmp_path / "content.bin").write_bytes(content)
    (tmp_path / "sig.der").write_bytes(signed.parts[1].decoded())
    run = gpgsm.run("--verify", tmp_path / "sig.der", tmp_path / "content.bin")
    fpr = sha1_fingerprint(ident.cert)
    goodsig, validsig = run.get("GOODSIG"), run.get("VALIDSIG")
    assert goodsig is not None and validsig is not None, run
    assert goodsig[0] == validsig[0] == fpr
    assert validsig[2] == T.strftime("%Y%m%dT%H%M%S")  # our signingTime attribute
    assert validsig[6:8] == (GCRY_PK_RSA, GCRY_MD[digest or DigestAlgorithm.SHA256])
    assert run.get("TRUST_FULLY") is not None, run  # chain to the trusted root, validated offline
    assert "BADSIG" not in run.keywords()


@pytest.mark.parametrize("form", ["der", "base64"])
def test_gpgsm_verifies_our_opaque_signature(gpgsm: GpgsmHome, pki: Pki, tmp_path: Path, form: str) -> None:
    msg = message()
    signed = smime.sign(msg, cms.Signer(pki.alice.cert, pki.alice.key), signing_time=T, opaque=True)
    if form == "der":
        (tmp_path / "opaque.p7m").write_bytes(signed.decoded())
        options: tuple[str, ...] = ()
    else:  # the base64 body of our smime.p7m, as it is in the message
        (tmp_path / "opaque.p7m").write_bytes(signed.raw_body())
        options = ("--assume-base64",)
    out = tmp_path / "content.out"
    run = gpgsm.run(*options, "--verify", "--output", out, tmp_path / "opaque.p7m")
    assert run.get("GOODSIG") is not None and run.get("TRUST_FULLY") is not None, run
    assert out.read_bytes() == content_entity(msg)


@pytest.mark.parametrize("where", ["content", "signature"])
def test_gpgsm_rejects_our_signature_tampered(gpgsm: GpgsmHome, pki: Pki, tmp_path: Path, where: str) -> None:
    msg = message()
    signed = smime.sign(msg, cms.Signer(pki.alice.cert, pki.alice.key), signing_time=T)
    content, sig = signed.parts[0].to_bytes(), signed.parts[1].decoded()
    if where == "content":
        content = flip(content, content.index(b"filename=data.bin"))
    else:
        sig = flip(sig, signature_offset(sig))
    (tmp_path / "content.bin").write_bytes(content)
    (tmp_path / "sig.der").write_bytes(sig)
    run = gpgsm.run("--verify", tmp_path / "sig.der", tmp_path / "content.bin", check=False)
    assert run.returncode != 0, run
    assert "BADSIG" in run.keywords() and "GOODSIG" not in run.keywords(), run


# --------------------------------------------------------------------------------------------- gpgsm signs


def gpgsm_sign(gpgsm: GpgsmHome, tmp_path: Path, *options: str, who: str = "alice@example.org") -> bytes:
    (tmp_path / "entity.txt").write_bytes(ENTITY)
    out = tmp_path / "signed.p7"
    run = gpgsm.run("--local-user", who, *options, "--output", out, tmp_path / "entity.txt", secret=True)
    assert run.get("SIG_CREATED") is not None, run
    return out.read_bytes()


GPGSM_SIGNS = {
    "rsa2048-default": ("alice", None, ()),
    "rsa2048-sha512": ("alice", DigestAlgorithm.SHA512, ("--digest-algo", "SHA512")),
    # gpgsm's default puts in every certificate but the root (--include-certs -2); -1: the root too
    "rsa3072-intermediate-with-root": ("bob", None, ("--include-certs", "-1")),
    # no certificates at all: the signer's and its issuer's must come from elsewhere (our intermediates)
    "rsa3072-intermediate-no-certs": ("bob", None, ("--include-certs", "0")),
}


@pytest.mark.parametrize("variant", list(GPGSM_SIGNS))
def test_we_verify_gpgsm_detached_signature(gpgsm: GpgsmHome, pki: Pki, tmp_path: Path, variant: str) -> None:
    who, digest, options = GPGSM_SIGNS[variant]
    ident: Identity = getattr(pki, who)
    der = gpgsm_sign(gpgsm, tmp_path, "--detach-sign", *options, who=f"{who}@example.org")
    given = (ident.cert, *ident.chain) if "0" in options else ()
    expected = digest or DigestAlgorithm.SHA256  # gpgsm 2.2's default
    # at the CMS level, over the content bytes
    report = cms.verify(der, detached_content=ENTITY, extra_certificates=given)
    (signer,) = report.signers
    assert report.ok and report.detached, signer.reasons
    assert signer.certificate == ident.cert
    assert signer.digest_algorithm is expected
    assert signer.signing_time is not None
    assert GPGSM_NOW <= signer.signing_time < GPGSM_NOW + dt.timedelta(minutes=1)
    # as the multipart/signed a mail client makes of it
    msg = multipart_signed(ENTITY, der, micalg=expected.micalg)
    verdict = smime.verify(msg, anchors=[pki.root.cert], intermediates=given, now=VERIFY_NOW)
    (sig,) = verdict.signatures
    assert sig.intact and sig.valid and sig.trusted and verdict.ok, sig.reasons
    assert sig.trust.now is not None and len(sig.trust.now.path) == 2 + len(ident.chain)
    assert sig.form == "multipart/signed"
    assert sig.signer is not None and sig.signer.emails == (f"{who}@example.org",)
    assert sig.from_matches is (who == "alice")
    assert verdict.content is not None and verdict.content.to_bytes() == ENTITY
    # without a trust anchor: intact and valid, but not trusted
    untrusted = smime.verify(msg, intermediates=given, now=VERIFY_NOW).signatures[0]
    assert untrusted.intact and untrusted.valid and not untrusted.trusted


@pytest.mark.parametrize("form", ["der", "base64"])
def test_we_verify_gpgsm_opaque_signature(gpgsm: GpgsmHome, pki: Pki, tmp_path: Path, form: str) -> None:
    signed = gpgsm_sign(gpgsm, tmp_path, "--sign", *(("--base64",) if form == "base64" else ()))
    der = base64.b64decode(signed) if form == "base64" else signed
    assert der[:2] == b"\x30\x80"  # gpgsm writes BER with indefinite lengths
    report = cms.verify(der)
    assert report.ok and not report.detached and report.content == ENTITY
    msg = pkcs7_mime("signed-data", signed if form == "base64" else b64(signed))
    verdict = smime.verify(msg, anchors=[pki.root.cert], now=VERIFY_NOW)
    (sig,) = verdict.signatures
    assert sig.ok and verdict.ok, sig.reasons
    assert sig.form == "signed-data"
    assert verdict.content is not None and verdict.content.to_bytes() == ENTITY
    assert verdict.content.parts[0].text() == "Grüße from gpgsm."


@pytest.mark.parametrize("where", ["content", "signature"])
def test_we_reject_gpgsm_signature_tampered(gpgsm: GpgsmHome, pki: Pki, tmp_path: Path, where: str) -> None:
    der = gpgsm_sign(gpgsm, tmp_path, "--detach-sign")
    content = ENTITY
    if where == "content":
        content = flip(content, content.index(b"from gpgsm"))
    else:
        der = flip(der, signature_offset(der))
    verdict = smime.verify(multipart_signed(content, der), anchors=[pki.root.cert], now=VERIFY_NOW)
    (sig,) = verdict.signatures
    assert not verdict.ok and not sig.ok
    if where == "content":
        assert not sig.intact, sig.reasons
    else:
        assert sig.intact and not sig.valid, sig.reasons
    assert sig.reasons


# --------------------------------------------------------------------------------------------- we encrypt


@pytest.mark.parametrize(
    "cipher", [ContentCipher.AES128_CBC, ContentCipher.AES192_CBC, ContentCipher.AES256_CBC]
)
@pytest.mark.parametrize("who", ["alice", "bob"])
def test_gpgsm_decrypts_what_we_encrypt(
    gpgsm: GpgsmHome, pki: Pki, tmp_path: Path, who: str, cipher: ContentCipher
) -> None:
    msg = message()
    ident: Identity = getattr(pki, who)
    enc = smime.encrypt(msg, [ident.cert], cipher=cipher, key_transport=KeyTransport.RSA_PKCS1V15)
    (tmp_path / "e.p7m").write_bytes(enc.decoded())
    run = gpgsm.run("--decrypt", "--output", tmp_path / "out", tmp_path / "e.p7m", secret=True)
    assert run.get("DECRYPTION_OKAY") is not None, run
    assert (tmp_path / "out").read_bytes() == content_entity(msg)


def test_gpgsm_decrypts_our_base64_body_with_two_recipients(
    gpgsm: GpgsmHome, pki: Pki, tmp_path: Path
) -> None:
    msg = message()
    enc = smime.encrypt(
        msg,
        [pki.bob.cert],
        cipher=ContentCipher.AES256_CBC,
        key_transport=KeyTransport.RSA_PKCS1V15,
        include_sender=pki.alice.cert,
    )
    (tmp_path / "e.b64").write_bytes(enc.raw_body())
    run = gpgsm.run(
        "--assume-base64", "--decrypt", "--output", tmp_path / "out", tmp_path / "e.b64", secret=True
    )
    assert run.get("DECRYPTION_OKAY") is not None, run
    assert (tmp_path / "out").read_bytes() == content_entity(msg)


GPGSM_22_CANNOT = {
    "rsa-oaep": (
        ContentCipher.AES256_CBC,
        KeyTransport.RSA_OAEP,
        ("-aes256", "-keyopt", "rsa_padding_mode:oaep"),
        "error getting encrypted session key",
    ),
    "aes-gcm": (
        ContentCipher.AES256_GCM,
        KeyTransport.RSA_PKCS1V15,
        ("-aes-256-gcm",),
        "error getting IV: Buffer too short",
    ),
}


@pytest.mark.parametrize("source", ["smimekit", "openssl"])
@pytest.mark.parametrize("variant", list(GPGSM_22_CANNOT))
def test_gpgsm_22_cannot_decrypt(
    gpgsm: GpgsmHome, pki: Pki, tmp_path: Path, variant: str, source: str
) -> None:
    """gpgsm 2.2 knows neither RSA-OAEP key transport nor AuthEnvelopedData: ours and OpenSSL's alike."""
    if _gpgsm.version()[:2] != (2, 2):
        pytest.skip("documents the limits of gpgsm 2.2")
    cipher, transport, openssl_options, error = GPGSM_22_CANNOT[variant]
    if source == "smimekit":
        enc = smime.encrypt(message(), [pki.alice.cert], cipher=cipher, key_transport=transport)
        (tmp_path / "e.p7m").write_bytes(enc.decoded())
    else:
        if shutil.which("openssl") is None:
            pytest.skip("openssl is not installed")
        (tmp_path / "entity.txt").write_bytes(ENTITY)
        (tmp_path / "alice.crt").write_bytes(pki.alice.cert_pem())
        subprocess.run(
            ["openssl", "cms", "-encrypt", "-in", "entity.txt", "-outform", "DER", "-out", "e.p7m",
             "-recip", "alice.crt", *openssl_options],  # -keyopt applies to the -recip before it
            cwd=tmp_path, capture_output=True, timeout=30, check=True,
        )  # fmt: skip
    run = gpgsm.run("--decrypt", "--output", tmp_path / "out", tmp_path / "e.p7m", secret=True, check=False)
    assert run.returncode != 0 and run.get("DECRYPTION_FAILED") is not None, run
    assert error in run.stderr, run


# --------------------------------------------------------------------------------------------- gpgsm encrypts


GPGSM_CIPHERS = {
    "default": ((), ContentCipher.AES128_CBC),
    "AES": (("--cipher-algo", "AES"), ContentCipher.AES128_CBC),
    "AES192": (("--cipher-algo", "AES192"), ContentCipher.AES192_CBC),
    "AES256": (("--cipher-algo", "AES256"), ContentCipher.AES256_CBC),
}


@pytest.mark.parametrize("variant", list(GPGSM_CIPHERS))
def test_we_decrypt_what_gpgsm_encrypts(gpgsm: GpgsmHome, pki: Pki, tmp_path: Path, variant: str) -> None:
    options, cipher = GPGSM_CIPHERS[variant]
    (tmp_path / "entity.txt").write_bytes(ENTITY)
    out = tmp_path / "e.p7m"
    gpgsm.run(
        *options, "--encrypt", "--recipient", "alice@example.org", "--recipient", "bob@example.org",
        "--output", out, tmp_path / "entity.txt",
    )  # fmt: skip
    der = out.read_bytes()
    for ident in (pki.alice, pki.bob):
        result = cms.decrypt(der, key=ident.key, certificate=ident.cert)
        assert result.read_bytes() == ENTITY and result.cipher is cipher
        inner, info = smime.decrypt(
            pkcs7_mime("enveloped-data", b64(der)), key=ident.key, certificate=ident.cert
        )
        assert inner.to_bytes().endswith(ENTITY)  # with the outer From put back on (RFC 8551 §3.1)
        assert inner.parts[1].decoded() == bytes(range(10))
        assert info.cipher is cipher and not info.authenticated and not info.legacy


def test_we_decrypt_gpgsm_3des_only_when_asked(gpgsm: GpgsmHome, pki: Pki, tmp_path: Path) -> None:
    (tmp_path / "entity.txt").write_bytes(ENTITY)
    out = tmp_path / "e.p7m"
    gpgsm.run(
        "--cipher-algo",
        "3DES",
        "--encrypt",
        "--recipient",
        "alice@example.org",
        "--output",
        out,
        tmp_path / "entity.txt",
    )
    msg = pkcs7_mime("enveloped-data", b64(out.read_bytes()))
    with pytest.raises(LegacyAlgorithmError):
        smime.decrypt(msg, key=pki.alice.key, certificate=pki.alice.cert)
    inner, info = smime.decrypt(msg, key=pki.alice.key, certificate=pki.alice.cert, legacy_ciphers=True)
    assert info.cipher is ContentCipher.DES_EDE3_CBC and info.legacy
    assert inner.to_bytes().endswith(ENTITY)
