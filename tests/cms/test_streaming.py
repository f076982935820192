"""Streaming SignedData: sign_to writes BER as it reads; the verifier reads a stream, never holding the content.

Sizes stay a few MiB here (past the 1 MiB chunk and the in-memory limits); the ~200 MB memory bounds are
measured in a fresh interpreter at the end and by tests/smime/test_streaming.py on whole messages.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from smimekit.cms import DigestAlgorithm, SignedDataVerifier, Signer, _der, verify
from smimekit.cms.signed import CHUNK_SIZE, sign, sign_to
from smimekit.errors import CmsFormatError, UsageError
from tests.cms.conftest import SIGNING_TIME
from tests.testpki import Identity

CONTENT = os.urandom(3 * CHUNK_SIZE + 12345)
ROOT = Path(__file__).resolve().parents[2]


class Pipe(io.RawIOBase):
    """A stream that cannot seek (like a pipe) and remembers the largest read it was asked for."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)
        self.largest = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        self.largest = max(self.largest, len(b))
        return self._data.readinto(b)


def _openssl(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["openssl", "cms", *args], cwd=cwd, capture_output=True, timeout=60, check=False)


def _signer(ident: Identity, **kw: object) -> Signer:
    return Signer(ident.cert, ident.key, extra_certificates=ident.chain, **kw)  # type: ignore[arg-type]


def _streamed(identities: dict[str, Identity], content: bytes = CONTENT, kind: str = "p256") -> bytes:
    out = io.BytesIO()
    source = Pipe(content)
    written = sign_to(out, source, [_signer(identities[kind])], detached=False, signing_time=SIGNING_TIME)
    assert written == len(out.getvalue())
    assert source.largest <= CHUNK_SIZE
    return out.getvalue()


def _econtent_pieces(der: bytes) -> list[int]:
    """Sizes of the primitive OCTET STRINGs of a constructed eContent."""
    r = _der.BerReader(io.BytesIO(der))
    sizes: list[int] = []
    marker = der.index(bytes.fromhex("a0802480"))
    r.seek(marker + 4)
    while (h := r.header()).number != 0:
        sizes.append(h.length or 0)
        r.skip_content(h)
    return sizes


# --------------------------------------------------------------------------------------------- sign_to


def test_sign_to_streams_an_encapsulated_stream_as_ber(identities: dict[str, Identity]) -> None:
    der = _streamed(identities)
    assert der[:2] == b"\x30\x80"  # ContentInfo of indefinite length
    assert _econtent_pieces(der) == [CHUNK_SIZE] * 3 + [12345]
    report = verify(der)
    assert report.ok and report.content == CONTENT and report.content_size == len(CONTENT)


def test_sign_to_writes_der_from_bytes_and_when_detached(identities: dict[str, Identity]) -> None:
    signer = [_signer(identities["rsa2048"])]
    for content, detached in ((CONTENT, False), (CONTENT, True), (Pipe(CONTENT), True)):
        out = io.BytesIO()
        sign_to(out, content, signer, detached=detached, signing_time=SIGNING_TIME)  # type: ignore[arg-type]
        der = out.getvalue()
        assert der[1] != 0x80  # DER: definite lengths
        report = verify(der, detached_content=CONTENT if detached else None)
        assert report.ok and report.detached is detached
    # sign() reads an encapsulated stream whole and returns DER, as before
    assert verify(sign(Pipe(CONTENT), signer, detached=False)).content == CONTENT  # type: ignore[arg-type]


def test_an_empty_stream_signs_and_verifies(identities: dict[str, Identity]) -> None:
    der = _streamed(identities, b"")
    report = verify(der)
    assert report.ok and report.content == b"" and report.content_size == 0
    assert verify(io.BytesIO(der)).ok


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
@pytest.mark.parametrize("kind", ["rsa2048", "p384", "ed25519"])
def test_openssl_verifies_streamed_ber(
    identities: dict[str, Identity], ca: Identity, tmp_path: Path, kind: str
) -> None:
    (tmp_path / "root.pem").write_bytes(ca.cert_pem())
    (tmp_path / "signed.der").write_bytes(_streamed(identities, kind=kind))
    done = _openssl(
        *("-verify", "-inform", "DER", "-in", "signed.der", "-CAfile", "root.pem", "-purpose", "any"),
        *("-binary", "-out", "content.bin"),
        cwd=tmp_path,
    )
    if kind == "ed25519" and done.returncode != 0:
        pytest.skip("this openssl does not verify Ed25519 in CMS")  # OpenSSL 3.0 lacks it
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "content.bin").read_bytes() == CONTENT


# --------------------------------------------------------------------------------------------- verifying


def test_a_stream_is_verified_without_holding_the_content(identities: dict[str, Identity]) -> None:
    der = _streamed(identities)
    verifier = SignedDataVerifier.from_stream(Pipe(der), in_memory_limit=CHUNK_SIZE)
    report = verifier.finish()
    assert report.ok and not report.detached
    assert report.content is None and report.content_size == len(CONTENT)
    assert report.content_file is not None
    mode = os.fstat(report.content_file.fileno()).st_mode
    assert stat.S_IMODE(mode) == 0o600  # a private file ...
    assert os.fstat(report.content_file.fileno()).st_nlink == 0  # ... that no name leads to
    assert report.open_content().read() == CONTENT


def test_small_content_from_a_stream_stays_in_memory(identities: dict[str, Identity]) -> None:
    report = verify(io.BytesIO(_streamed(identities)))
    assert report.content == CONTENT and report.content_file is None
    assert report.open_content().read() == CONTENT


def test_content_not_kept_is_not_spooled(identities: dict[str, Identity]) -> None:
    report = verify(io.BytesIO(_streamed(identities)), keep_content=False)
    assert report.ok and report.content is None and report.content_file is None
    assert report.content_size == len(CONTENT)
    with pytest.raises(UsageError, match="not kept"):
        report.open_content()


def test_a_detached_signature_read_from_a_stream_takes_the_content_in_pieces(
    identities: dict[str, Identity],
) -> None:
    der = sign(CONTENT, [_signer(identities["p384"])], detached=True, signing_time=SIGNING_TIME)
    verifier = SignedDataVerifier.from_stream(Pipe(der))
    assert verifier.detached
    for i in range(0, len(CONTENT), 100_000):
        verifier.update(CONTENT[i : i + 100_000])
    report = verifier.finish()
    assert report.ok and report.detached and report.content_size is None
    with pytest.raises(UsageError, match="detached"):
        report.open_content()
    assert not verify(io.BytesIO(der), detached_content=io.BytesIO(CONTENT[:-1])).ok


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_openssl_stream_output_is_read_as_a_stream(identities: dict[str, Identity], tmp_path: Path) -> None:
    ident = identities["rsa2048"]
    ident.write_pem(tmp_path, "signer")
    (tmp_path / "content.bin").write_bytes(CONTENT)
    done = _openssl(
        *("-sign", "-stream", "-nodetach", "-binary", "-outform", "DER", "-in", "content.bin"),
        *("-signer", "signer.crt", "-inkey", "signer.key", "-out", "signed.ber"),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    der = (tmp_path / "signed.ber").read_bytes()
    assert der[1] == 0x80 and len(set(_econtent_pieces(der)[:-1])) == 1  # BER in equal pieces (4 KiB)
    with (tmp_path / "signed.ber").open("rb") as f:
        report = verify(f, in_memory_limit=CHUNK_SIZE)
        assert f.tell() == len(der)  # read to its end from where it stood; the caller's file stays open
    assert report.ok and report.open_content().read() == CONTENT


def test_a_digest_the_signed_data_does_not_announce_is_computed_in_a_second_pass(
    identities: dict[str, Identity],
) -> None:
    der = bytearray(_streamed(identities))  # signed with SHA-256
    sha256, sha384 = DigestAlgorithm.SHA256.identifier_der(), DigestAlgorithm.SHA384.identifier_der()
    at = der.index(sha256)  # its first use: the SET of digestAlgorithms, which now announces SHA-384 only
    der[at : at + len(sha256)] = sha384
    for data in (bytes(der), io.BytesIO(bytes(der))):
        (signer,) = verify(data).signers  # type: ignore[arg-type]
        assert signer.intact and not signer.valid
        assert any("digestAlgorithms" in r for r in signer.reasons)


def test_every_truncated_stream_is_a_typed_error(identities: dict[str, Identity]) -> None:
    der = _streamed(identities, b"x" * 5000)
    for cut in [*range(0, 400), *range(len(der) - 600, len(der)), 2000, 4000]:
        with pytest.raises(CmsFormatError):
            verify(Pipe(der[:cut]))
    with pytest.raises(CmsFormatError, match="after the message"):
        verify(io.BytesIO(der + b"\x00"))
    with pytest.raises(CmsFormatError, match="PEM"):
        verify(io.BytesIO(b"-----BEGIN PKCS7-----\n"))
    with pytest.raises(CmsFormatError, match="empty"):
        verify(io.BytesIO(b""))


# --------------------------------------------------------------------------------------------- memory

CHILD = textwrap.dedent(
    """
    import datetime as dt, hashlib, json, re, sys
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from smimekit.cms import Signer, verify
    from smimekit.cms.signed import sign_to

    content, signed, crt, key = sys.argv[1:5]
    signer = Signer(
        x509.load_pem_x509_certificate(open(crt, "rb").read()), load_pem_private_key(open(key, "rb").read(), None)
    )
    with open(content, "rb") as src, open(signed, "wb") as out:
        sign_to(out, src, [signer], detached=False, signing_time=dt.datetime.now(dt.UTC))
    with open(signed, "rb") as f:
        report = verify(f)
        digest = hashlib.sha256()
        with report.open_content() as kept:
            while piece := kept.read(1 << 20):
                digest.update(piece)
    with open("/proc/self/status") as status:
        hwm = int(re.search(r"VmHWM:\\s+(\\d+) kB", status.read()).group(1))
    print(json.dumps({"ok": report.ok, "sha256": digest.hexdigest(), "hwm_kib": hwm}))
    """
)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_signing_and_verifying_200_mb_needs_bounded_memory(
    identities: dict[str, Identity], tmp_path: Path
) -> None:
    crt, key = identities["p256"].write_pem(tmp_path, "signer")
    digest = hashlib.sha256()
    block = os.urandom(1 << 20)
    with (tmp_path / "content.bin").open("wb") as f:
        for i in range(200):
            piece = i.to_bytes(4, "big") + block[4:]
            digest.update(piece)
            f.write(piece)
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            str(tmp_path / "content.bin"),
            str(tmp_path / "signed.ber"),
            str(crt),
            str(key),
        ],
        capture_output=True,
        timeout=180,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-3000:]
    result = json.loads(proc.stdout.decode().splitlines()[-1])
    assert result["ok"] is True and result["sha256"] == digest.hexdigest()
    assert result["hwm_kib"] < 100 * 1024, f"peaked at {result['hwm_kib'] >> 10} MiB"
    with (tmp_path / "signed.ber").open("rb") as f:
        assert f.read(2) == b"\x30\x80"  # streamed BER
