"""SignedData interop with the real ``openssl cms`` (OpenSSL 3.0): we sign -> it verifies, it signs -> we verify.

OpenSSL 3.0 cannot sign or verify Ed25519 in CMS; Ed25519 is covered by round trips and the RFC 9216 keys.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from smimekit.cms import DigestAlgorithm, SignatureScheme, Signer, SignerIdentifierType, sign, verify
from tests.cms.conftest import SIGNING_TIME
from tests.testpki import Identity

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")

CONTENT = b"Content-Type: text/plain\r\n\r\nInterop with OpenSSL.\r\n" + bytes(range(256))


def _openssl(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["openssl", *map(str, args)], cwd=cwd, capture_output=True, timeout=60, check=False)


@pytest.fixture
def pki(tmp_path: Path, ca: Identity, identities: dict[str, Identity]) -> Path:
    (tmp_path / "root.pem").write_bytes(ca.cert_pem())
    for kind, ident in identities.items():
        ident.write_pem(tmp_path, kind)
    (tmp_path / "content.bin").write_bytes(CONTENT)
    return tmp_path


SIGNERS = [
    ("rsa2048", SignatureScheme.RSA_PKCS1V15, DigestAlgorithm.SHA256),
    ("rsa2048", SignatureScheme.RSA_PKCS1V15, DigestAlgorithm.SHA512),
    ("rsa2048", SignatureScheme.RSA_PSS, DigestAlgorithm.SHA256),
    ("rsa2048", SignatureScheme.RSA_PSS, DigestAlgorithm.SHA384),
    ("p256", SignatureScheme.ECDSA, DigestAlgorithm.SHA256),
    ("p384", SignatureScheme.ECDSA, DigestAlgorithm.SHA384),
    ("p521", SignatureScheme.ECDSA, DigestAlgorithm.SHA512),
]


def _ids(p: object) -> str:
    return getattr(p, "name", str(p))


# ----------------------------------------------------------------------------- we sign, openssl verifies


@pytest.mark.parametrize("detached", [False, True], ids=["opaque", "detached"])
@pytest.mark.parametrize(("kind", "scheme", "digest"), SIGNERS, ids=_ids)
def test_openssl_verifies_what_we_sign(
    pki: Path,
    identities: dict[str, Identity],
    kind: str,
    scheme: SignatureScheme,
    digest: DigestAlgorithm,
    detached: bool,
) -> None:
    ident = identities[kind]
    der = sign(
        CONTENT,
        [
            Signer(
                ident.cert,
                ident.key,
                scheme=scheme,
                digest=digest,
                encryption_certificate=identities["rsa2048-enc"].cert,
            )
        ],
        detached=detached,
        signing_time=SIGNING_TIME,
    )
    (pki / "sig.der").write_bytes(der)
    args = ["cms", "-verify", "-binary", "-inform", "DER", "-in", "sig.der", "-CAfile", "root.pem"]
    args += ["-purpose", "smimesign", "-attime", str(int(SIGNING_TIME.timestamp())), "-out", "out.bin"]
    if detached:
        args += ["-content", "content.bin"]
    done = _openssl(*args, cwd=pki)
    assert done.returncode == 0, done.stderr.decode()
    assert (pki / "out.bin").read_bytes() == CONTENT


def test_openssl_verifies_several_signers_and_subject_key_identifiers(
    pki: Path, identities: dict[str, Identity]
) -> None:
    signers = [
        Signer(identities["rsa2048"].cert, identities["rsa2048"].key, scheme=SignatureScheme.RSA_PSS),
        Signer(
            identities["p384"].cert,
            identities["p384"].key,
            identifier=SignerIdentifierType.SUBJECT_KEY_IDENTIFIER,
        ),
        Signer(identities["p256"].cert, identities["p256"].key),
    ]
    (pki / "sig.der").write_bytes(sign(CONTENT, signers, detached=True))
    done = _openssl(
        "cms", "-verify", "-binary", "-inform", "DER", "-in", "sig.der", "-content", "content.bin",
        "-CAfile", "root.pem", "-purpose", "any", "-out", "out.bin", cwd=pki,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()


def test_openssl_rejects_what_we_sign_when_the_content_changed(
    pki: Path, identities: dict[str, Identity]
) -> None:
    ident = identities["p256"]
    (pki / "sig.der").write_bytes(sign(CONTENT, [Signer(ident.cert, ident.key)], detached=True))
    (pki / "other.bin").write_bytes(CONTENT + b"!")
    done = _openssl(
        "cms", "-verify", "-binary", "-inform", "DER", "-in", "sig.der", "-content", "other.bin",
        "-CAfile", "root.pem", "-purpose", "any", "-out", "out.bin", cwd=pki,
    )  # fmt: skip
    assert done.returncode != 0


# ----------------------------------------------------------------------------- openssl signs, we verify

OPENSSL_CASES = {
    "rsa-detached": ("rsa2048", ["-md", "sha256"]),
    "rsa-opaque": ("rsa2048", ["-nodetach", "-md", "sha384"]),
    "rsa-stream-opaque": ("rsa2048", ["-nodetach", "-stream"]),
    # With DER output, -stream embeds the content even without -nodetach.
    "rsa-stream-der": ("rsa2048", ["-stream"]),
    "rsa-pss": ("rsa2048", ["-nodetach", "-keyopt", "rsa_padding_mode:pss", "-md", "sha256"]),
    # (OpenSSL 3.0 cannot combine -stream with PSS: "illegal zero content".)
    "rsa-pss-sha512-maxsalt": (
        "rsa2048",
        ["-nodetach", "-md", "sha512", "-keyopt", "rsa_padding_mode:pss", "-keyopt", "rsa_pss_saltlen:max"],
    ),
    "rsa-sha1": ("rsa2048", ["-nodetach", "-md", "sha1"]),
    "rsa-keyid": ("rsa2048", ["-nodetach", "-keyid"]),
    "rsa-noattr": ("rsa2048", ["-nodetach", "-noattr"]),
    "rsa-noattr-detached": ("rsa2048", ["-noattr"]),
    "p256": ("p256", ["-nodetach"]),
    "p384-stream": ("p384", ["-nodetach", "-stream", "-md", "sha384"]),
    "p521-detached": ("p521", ["-md", "sha512"]),
    "ec-noattr": ("p256", ["-noattr", "-nodetach"]),
}


@pytest.mark.parametrize("case", sorted(OPENSSL_CASES))
def test_we_verify_what_openssl_signs(pki: Path, identities: dict[str, Identity], case: str) -> None:
    kind, extra = OPENSSL_CASES[case]
    done = _openssl(
        "cms", "-sign", "-binary", "-in", "content.bin", "-signer", f"{kind}.crt", "-inkey", f"{kind}.key",
        "-outform", "DER", "-out", "sig.der", *extra, cwd=pki,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    der = (pki / "sig.der").read_bytes()
    if "-stream" in extra:
        assert der[1] == 0x80, "openssl -stream writes BER with indefinite lengths"
    detached = "-nodetach" not in extra and "-stream" not in extra
    report = verify(der, detached_content=CONTENT if detached else None)
    (signer,) = report.signers
    assert signer.ok, signer.reasons
    assert signer.certificate == identities[kind].cert
    assert report.content == (None if detached else CONTENT)
    if "rsa_padding_mode:pss" in extra:
        assert signer.signature_algorithm is not None
        assert signer.signature_algorithm.scheme is SignatureScheme.RSA_PSS
    if "sha1" in extra:
        assert signer.weak == ("SHA-1 digest",)
    if "-keyid" in extra:
        assert signer.signer_id.subject_key_identifier is not None
    # The same signature over other content: not intact.
    if detached:
        damaged = verify(der, detached_content=CONTENT[:-1]).signers[0]
        assert not damaged.ok
    else:
        at = der.index(b"Interop")
        damaged = verify(der[:at] + b"X" + der[at + 1 :]).signers[0]
        assert not damaged.intact
        assert damaged.valid is ("-noattr" not in extra)


def test_we_verify_openssl_with_two_signers(pki: Path) -> None:
    done = _openssl(
        "cms", "-sign", "-binary", "-in", "content.bin", "-outform", "DER", "-out", "sig.der", "-md", "sha512",
        "-signer", "rsa2048.crt", "-inkey", "rsa2048.key", "-signer", "p384.crt", "-inkey", "p384.key", cwd=pki,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    with (pki / "content.bin").open("rb") as stream:
        report = verify((pki / "sig.der").read_bytes(), detached_content=stream)
    assert report.ok and len(report.signers) == 2


def test_we_verify_openssl_resigning_our_message(pki: Path, identities: dict[str, Identity]) -> None:
    """openssl adds a signer to a message we signed (``-resign``): both signatures verify."""
    ours = sign(CONTENT, [Signer(identities["p256"].cert, identities["p256"].key)], detached=False)
    (pki / "ours.der").write_bytes(ours)
    done = _openssl(
        "cms", "-resign", "-inform", "DER", "-in", "ours.der", "-outform", "DER", "-out", "both.der",
        "-signer", "rsa2048.crt", "-inkey", "rsa2048.key", "-nodetach", cwd=pki,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    report = verify((pki / "both.der").read_bytes())
    assert report.ok and len(report.signers) == 2
