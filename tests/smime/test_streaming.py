"""Streaming S/MIME: the canonical form in pieces, sign_to / encrypt_to, and bounded memory on large messages.

The memory tests run each operation on a ~200 MB message in a fresh interpreter and read its peak RSS from
``VmHWM`` (``ru_maxrss`` would not do: Linux carries it over exec from the process that spawned the child,
here the test runner). The 1 GB / 64 MiB target of issue 3 is measured outside the suite; this is the
regression guard at ~200 MB / 100 MiB.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smimekit import cms, mime, smime
from smimekit.cms import ContentCipher
from smimekit.errors import MimeBuildError
from smimekit.mime import Entity, Message, canonicalize, is_canonical, parse
from smimekit.mime.canonical import _crlf_only, _SafetyScan, iter_canonical, iter_canonical_content
from smimekit.smime._mime import content_entity
from tests.mime.test_canonical import raw_messages
from tests.mime.test_compose import messages
from tests.testpki import Identity, make_ca, make_ee

T = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------------------------- oracle

# The canonical form as it was first written, in memory: parse a copy, edit its leaves through the public
# editing API, serialize, make every line ending CRLF. The streaming form must give exactly these bytes —
# also when the way an edited entity is written changes in smimekit.mime.


def _oracle_crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _oracle_safe(data: bytes) -> bool:
    if not data.isascii() or b"\0" in data or data.count(b"\r") != data.count(b"\r\n"):
        return False
    return all(len(line.removesuffix(b"\r")) <= 998 for line in data.split(b"\n"))


def _oracle_leaf(entity: Entity) -> bool:
    return not entity.is_multipart() and entity.message is None


def _oracle_needs(entity: Entity, *, check: bool) -> bool:
    cte = entity.transfer_encoding
    safe = _oracle_safe(entity.raw_body())
    if check and cte not in ("7bit", "8bit", "binary", "quoted-printable", "base64") and not safe:
        raise MimeBuildError("unknown transfer encoding with 8-bit content")
    return cte in ("8bit", "binary") or not safe


def _oracle_text(entity: Entity) -> bool:
    from smimekit.mime.charsets import lookup_codec

    if entity.maintype != "text":
        return False
    codec = lookup_codec(entity.charset)
    return codec is None or "\r\n".encode(codec, "ignore") == b"\r\n"


def _oracle_is_canonical(entity: Entity) -> bool:
    data = entity.to_bytes()
    if data.count(b"\n") != data.count(b"\r\n"):
        return False
    for e in entity.walk():
        if _oracle_leaf(e):
            if _oracle_needs(e, check=False):
                return False
        elif e.transfer_encoding in ("8bit", "binary"):
            return False
    return True


def oracle(entity: Entity) -> bytes:
    data = entity.to_bytes()
    if _oracle_is_canonical(entity):
        return data
    copy = parse(data)
    for e in copy.walk():
        if _oracle_leaf(e):
            if _oracle_needs(e, check=True):
                if not e.separator:
                    e.separator = b"\n"
                cte = "quoted-printable" if _oracle_text(e) else "base64"
                e.set_body(e.decoded(), transfer_encoding=cte)
        elif e.transfer_encoding in ("8bit", "binary"):
            if not e.separator:
                e.separator = b"\n"
            e.set_header("Content-Transfer-Encoding", "7bit")
    return _oracle_crlf(copy.to_bytes())


def oracle_content(message: Entity) -> bytes:
    fields = [h.raw for h in message.headers if h.lname.startswith("content-")]
    if not any(h.lname == "content-type" for h in message.headers):
        fields.insert(0, b"Content-Type: text/plain; charset=us-ascii\r\n")
    return oracle(parse(b"".join(fields) + b"\r\n" + message.raw_body()))


def _outcome(fn: object, *args: object) -> bytes | str:
    try:
        return fn(*args)  # type: ignore[operator, no-any-return]
    except MimeBuildError:
        return "no canonical form"


def check_against_oracle(msg: Message) -> None:
    for entity in msg.walk():
        expected = _outcome(oracle, entity)
        assert _outcome(canonicalize, entity) == expected
        assert _outcome(lambda e: b"".join(iter_canonical(e, 7)), entity) == expected
        assert is_canonical(entity) == _oracle_is_canonical(entity)
        if isinstance(entity, Message):
            content = _outcome(oracle_content, entity)
            assert _outcome(lambda e: b"".join(iter_canonical_content(e)), entity) == content
            assert _outcome(lambda e: b"".join(iter_canonical_content(e, 5)), entity) == content


_TOKENS = st.sampled_from(
    [
        b"--b",
        b"--b--",
        b"\n",
        b"\r\n",
        b"\r",
        b"Content-Transfer-Encoding: 8bit",
        b"Content-Transfer-Encoding: base64",
        b"Content-Transfer-Encoding: binary",
        b"Content-Type: multipart/mixed; boundary=b",
        b"Content-Type: multipart/mixed; boundary=c",
        b"Content-Type: message/rfc822",
        b"Content-Type: text/plain",
        b"--c",
        b"--c--",
        b"X: y",
        b" folded",
        b"no header",
        b"From someone",
        b"\xef\xbb\xbf",
        b"\xff\xfe",
        b"body text",
        b"QUJD",
        b"=",
        b"\x00",
    ]
)


@settings(max_examples=1500, deadline=None)
@given(st.lists(_TOKENS, max_size=40))
def test_canonical_pieces_equal_the_in_memory_form_for_any_token_soup(tokens: list[bytes]) -> None:
    check_against_oracle(parse(b"".join(tokens)))


@settings(max_examples=150, deadline=None)
@given(
    raw_messages(), st.sampled_from([b"", b"From: a@example.org\n", b"Content-Transfer-Encoding: 8bit\r\n"])
)
def test_canonical_pieces_equal_the_in_memory_form_for_multiparts(raw: bytes, extra: bytes) -> None:
    check_against_oracle(parse(extra + raw))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages())
def test_canonical_pieces_equal_the_in_memory_form_for_composed_and_edited_messages(
    kw: dict[str, object],
) -> None:
    msg = mime.compose(**kw)  # type: ignore[arg-type]
    check_against_oracle(msg)
    msg.parts[0].set_header("X-Edited", "yes") if msg.is_multipart() else msg.set_header("X-Edited", "yes")
    check_against_oracle(msg)


def _reference_safe(data: bytes) -> tuple[bool, bool]:
    return _oracle_safe(data), data.count(b"\n") == data.count(b"\r\n")


@st.composite
def _bodies(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):  # lines of one length (the fast path), sometimes with one odd byte
        line = draw(st.sampled_from([b"Q", b"x y", b"QUJD" * 19])) * draw(st.integers(0, 300))
        data = (line + draw(st.sampled_from([b"\n", b"\r\n"]))) * draw(st.integers(0, 40))
        if data and draw(st.booleans()):
            at = draw(st.integers(0, len(data) - 1))
            data = data[:at] + draw(st.sampled_from([b"\r", b"\n", b"=", b"\0", b"\xff", b"-"])) + data[at:]
        return data
    piece = st.sampled_from([b"\r", b"\n", b"\r\n", b"a", b"x" * 500, b"y" * 998, b"z" * 999, b"\0", b"\xc3"])
    return b"".join(draw(st.lists(piece, max_size=30)))


@settings(max_examples=1500, deadline=None)
@given(_bodies(), st.data())
def test_the_7bit_scan_agrees_with_the_definition_however_the_body_is_cut(
    body: bytes, data: st.DataObject
) -> None:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(body)), max_size=6)))
    scan = _SafetyScan()
    for start, end in zip([0, *cuts], [*cuts, len(body)], strict=True):
        scan.feed(body[start:end])
    safe, crlf = _reference_safe(body)
    assert scan.close() == safe
    if safe:
        assert scan.crlf == crlf
    assert _crlf_only(body) == crlf


def _big_8bit_message() -> Message:
    text = "Grüße\nline two\n".encode()
    blob = os.urandom(3 << 20)
    raw = (
        b"From: a@example.org\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + text
        + b"\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        + blob
        + b"\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(blob).replace(b"\n", b"\r\n")
        + b"--b--\r\n"
    )
    return parse(raw)


def test_large_leaves_are_reencoded_in_pieces() -> None:
    msg = _big_8bit_message()
    pieces = list(iter_canonical(msg))
    assert b"".join(pieces) == oracle(msg)
    assert max(map(len, pieces)) <= 3 << 20  # pieces of about a chunk, never the message (~11 MB)
    canon = parse(b"".join(pieces))
    assert [e.transfer_encoding for e in canon.walk()] == ["7bit", "quoted-printable", "base64", "base64"]
    assert canon.parts[1].decoded() == msg.parts[1].decoded() == canon.parts[2].decoded()
    assert b"".join(iter_canonical_content(msg)) == oracle_content(msg)


def test_iter_canonical_leaves_the_message_alone_and_raises_at_the_call() -> None:
    msg = _big_8bit_message()
    before = msg.to_bytes()
    list(iter_canonical(msg))
    assert msg.to_bytes() == before and not msg.modified
    bad = parse(b"Content-Type: application/x\r\nContent-Transfer-Encoding: x-unknown\r\n\r\n\xff\r\n")
    with pytest.raises(MimeBuildError):
        iter_canonical(bad)


# --------------------------------------------------------------------------------------------- APIs


@pytest.fixture(scope="module")
def ca() -> Identity:
    return make_ca("smime streaming root")


@pytest.fixture(scope="module")
def alice(ca: Identity) -> Identity:
    return make_ee("alice@example.org", ca, key_kind="p256")


@pytest.fixture(scope="module")
def bob(ca: Identity) -> Identity:
    return make_ee("bob@example.org", ca)


def _message(size: int) -> Message:
    return mime.compose(
        from_="alice@example.org",
        to=["bob@example.org"],
        subject="streaming",
        text="Grüße\n",
        attachments=[mime.Attachment(bytes(range(256)) * (size // 256), "blob.bin")],
        date=T,
        message_id="<s@example.org>",
    )


def _cms_bytes(msg: Message) -> bytes:
    (part,) = [e for e in msg.walk() if e.content_type == "application/pkcs7-mime"]
    return part.decoded()


@pytest.mark.parametrize("opaque", [False, True], ids=["clear", "opaque"])
def test_sign_to_writes_what_sign_returns(alice: Identity, opaque: bool) -> None:
    msg = _message(4096)
    signer = cms.Signer(alice.cert, alice.key)
    out = io.BytesIO()
    smime.sign_to(out, msg, signer, signing_time=T, opaque=opaque)
    written = parse(out.getvalue())
    returned = smime.sign(msg, signer, signing_time=T, opaque=opaque)
    assert [e.content_type for e in written.walk()] == [e.content_type for e in returned.walk()]
    for signed in (written, returned):
        report = smime.verify(signed, now=T)
        assert report.signatures[0].intact and report.signatures[0].valid
        assert report.content is not None
        assert report.content.to_bytes() == content_entity(msg)


@pytest.mark.parametrize(("size", "ber"), [(1 << 20, False), (10 << 20, True)], ids=["small", "large"])
def test_opaque_signing_streams_large_content_as_ber(alice: Identity, size: int, ber: bool) -> None:
    msg = _message(size)
    signed = smime.sign(msg, cms.Signer(alice.cert, alice.key), signing_time=T, opaque=True)
    der = _cms_bytes(signed)
    assert (der[1] == 0x80) is ber  # indefinite length: streamed; else DER
    report = cms.verify(der)
    assert report.ok and report.content == content_entity(msg)


@pytest.mark.parametrize(("size", "ber"), [(1 << 20, False), (10 << 20, True)], ids=["small", "large"])
def test_encrypt_to_writes_what_encrypt_returns(bob: Identity, size: int, ber: bool) -> None:
    msg = _message(size)
    out = io.BytesIO()
    smime.encrypt_to(out, msg, [bob.cert], cipher=ContentCipher.AES128_CBC)
    for enc in (parse(out.getvalue()), smime.encrypt(msg, [bob.cert])):
        assert (_cms_bytes(enc)[1] == 0x80) is ber
        inner, _ = smime.decrypt(enc, key=bob.key, certificate=bob.cert)
        with inner:
            assert inner.to_bytes().endswith(content_entity(msg))


def test_sign_to_writes_nothing_for_content_without_a_canonical_form(alice: Identity) -> None:
    bad = parse(b"From: a@example.org\r\nContent-Transfer-Encoding: x-unknown\r\n\r\n\xff\r\n")
    out = io.BytesIO()
    with pytest.raises(MimeBuildError):
        smime.sign_to(out, bad, cms.Signer(alice.cert, alice.key), signing_time=T)
    with pytest.raises(MimeBuildError):
        smime.encrypt_to(out, bad, [alice.cert])
    assert out.getvalue() == b""


# --------------------------------------------------------------------------------------------- memory

MAX_RSS_MIB = 100
RAW_BLOCK = 57 * 18396  # ~1 MiB of attachment per block; a multiple of 57 keeps base64 lines whole
BLOCKS = 140  # ~147 MB decoded, ~200 MB encoded

HEAD = (
    b"From: alice@example.org\r\nTo: bob@example.org\r\nSubject: a big attachment\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="xyz"\r\n\r\n'
    b"--xyz\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    b"Gr\xc3\xbc\xc3\x9fe, see the attachment\n"  # 8-bit text with a bare LF: the canonical form edits it
    b"--xyz\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
    b"Content-Disposition: attachment; filename=big.bin\r\n\r\n"
)
TAIL = b"--xyz--\r\n"

# One operation on the message files given, in a fresh interpreter: prints a JSON line with what it found
# and the peak RSS (VmHWM) of the process.
CHILD = textwrap.dedent(
    """
    import datetime as dt, hashlib, json, re, sys
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from smimekit import cms, mime, smime
    from smimekit.cms import ContentCipher

    T = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    op, pki, src, dst = sys.argv[1:5]
    cert = x509.load_pem_x509_certificate(open(pki + "/alice.crt", "rb").read())
    key = load_pem_private_key(open(pki + "/alice.key", "rb").read(), None)
    ca = x509.load_pem_x509_certificate(open(pki + "/root.crt", "rb").read())

    def attachment(msg):
        found = [e for e in msg.walk() if e.filename == "big.bin"]
        h = hashlib.sha256()
        with found[0].decoded_stream() as stream:
            while piece := stream.read(1 << 20):
                h.update(piece)
        return h.hexdigest()

    out = {}
    with mime.parse_file(src) as msg:
        if op == "sign-clear":
            with smime.sign(msg, cms.Signer(cert, key), signing_time=T) as signed, open(dst, "wb") as f:
                signed.write_to(f)
        elif op == "sign-opaque":
            with open(dst, "wb") as f:
                smime.sign_to(f, msg, cms.Signer(cert, key), signing_time=T, opaque=True)
        elif op in ("encrypt-gcm", "encrypt-cbc"):
            cipher = ContentCipher.AES256_GCM if op == "encrypt-gcm" else ContentCipher.AES256_CBC
            with smime.encrypt(msg, [cert], cipher=cipher) as enc, open(dst, "wb") as f:
                enc.write_to(f)
        elif op == "verify":
            report = smime.verify(msg, now=T, anchors=[ca])
            out["ok"] = report.ok
            out["sha256"] = attachment(report.content)
        elif op == "decrypt":
            inner, info = smime.decrypt(msg, key=key, certificate=cert)
            with inner:
                out["sha256"] = attachment(inner)
            out["cipher"] = info.cipher.label
        elif op == "compress":
            with smime.compress(msg) as packed, open(dst, "wb") as f:
                packed.write_to(f)
        elif op == "decompress":
            with smime.decompress(msg, max_size=1 << 30) as inner:
                out["sha256"] = attachment(inner)
        elif op == "open":
            result = smime.open(msg, now=T, keys=[(cert, key)], anchors=[ca])
            out["ok"] = result.ok
            out["layers"] = [layer.kind.value for layer in result.layers]
            with result.inner as inner:
                out["sha256"] = attachment(inner)
    with open("/proc/self/status") as status:
        out["hwm_kib"] = int(re.search(r"VmHWM:\\s+(\\d+) kB", status.read()).group(1))
    print(json.dumps(out))
    """
)

needs_proc = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory, ca: Identity, alice: Identity) -> tuple[Path, str]:
    """A ~200 MB message (8-bit text and a base64 attachment), written in chunks, with the PKI beside it;
    (directory, SHA-256 of the attachment)."""
    root = tmp_path_factory.mktemp("streaming")
    (root / "root.crt").write_bytes(ca.cert_pem())
    alice.write_pem(root, "alice")
    digest = hashlib.sha256()
    block = os.urandom(RAW_BLOCK)
    with (root / "message.eml").open("wb") as f:
        f.write(HEAD)
        for i in range(BLOCKS):
            raw = i.to_bytes(4, "big") + block[4:]  # distinct blocks, cheaply
            digest.update(raw)
            f.write(base64.encodebytes(raw).replace(b"\n", b"\r\n"))
        f.write(TAIL)
    assert (root / "message.eml").stat().st_size > 190_000_000
    return root, digest.hexdigest()


def run(op: str, root: Path, src: str, dst: str = "-") -> dict[str, object]:
    """Run ``op`` in a fresh interpreter; return what it printed after checking its peak RSS."""
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, op, str(root), str(root / src), str(root / dst)],
        capture_output=True,
        check=False,
        timeout=180,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-3000:]
    result: dict[str, object] = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    hwm = int(result["hwm_kib"]) // 1024  # type: ignore[call-overload]
    assert hwm < MAX_RSS_MIB, f"{op} on a {(root / src).stat().st_size >> 20} MiB message peaked at {hwm} MiB"
    return result


@pytest.fixture(scope="module")
def signed_clear(big: tuple[Path, str]) -> Path:
    run("sign-clear", big[0], "message.eml", "clear.eml")
    return big[0] / "clear.eml"


@pytest.fixture(scope="module")
def signed_opaque(big: tuple[Path, str]) -> Path:
    run("sign-opaque", big[0], "message.eml", "opaque.eml")
    return big[0] / "opaque.eml"


@pytest.fixture(scope="module")
def encrypted(big: tuple[Path, str]) -> dict[str, Path]:
    for cipher in ("gcm", "cbc"):
        run(f"encrypt-{cipher}", big[0], "message.eml", f"{cipher}.eml")
    return {c: big[0] / f"{c}.eml" for c in ("gcm", "cbc")}


@pytest.fixture(scope="module")
def compressible(tmp_path_factory: pytest.TempPathFactory, alice: Identity) -> tuple[Path, str]:
    """A ~110 MB message whose attachment compresses well (a 3 KiB random block repeated), with the PKI
    beside it; (directory, SHA-256 of the attachment)."""
    root = tmp_path_factory.mktemp("compress")
    alice.write_pem(root, "alice")
    (root / "root.crt").write_bytes(alice.cert_pem())
    raw = os.urandom(3 << 10) * 342  # 1 MiB of 57-byte lines: every chunk encodes the same
    encoded = base64.encodebytes(raw).replace(b"\n", b"\r\n")
    digest = hashlib.sha256()
    with (root / "message.eml").open("wb") as f:
        f.write(HEAD)
        for _ in range(80):
            digest.update(raw)
            f.write(encoded)
        f.write(TAIL)
    return root, digest.hexdigest()


@needs_proc
@pytest.mark.slow
def test_compressing_and_decompressing_a_large_message_need_bounded_memory(
    compressible: tuple[Path, str],
) -> None:
    root, sha256 = compressible
    run("compress", root, "message.eml", "packed.eml")
    packed = root / "packed.eml"
    assert packed.stat().st_size < (root / "message.eml").stat().st_size // 5
    with mime.parse_file(packed) as msg:
        assert msg.params["smime-type"] == "compressed-data"
        with msg.decoded_stream() as stream:
            assert stream.read(2) == b"\x30\x80"  # streamed BER: the length was not known in advance
    result = run("decompress", root, "packed.eml")
    assert result["sha256"] == sha256


@needs_proc
@pytest.mark.slow
def test_signing_a_large_message_needs_bounded_memory(signed_clear: Path, signed_opaque: Path) -> None:
    with mime.parse_file(signed_clear) as clear:
        assert clear.content_type == "multipart/signed"
        assert clear.parts[0].body_span[1] - clear.parts[0].body_span[0] > 190_000_000
    with mime.parse_file(signed_opaque) as opaque:
        assert opaque.params["smime-type"] == "signed-data"
        with opaque.decoded_stream() as stream:
            assert stream.read(2) == b"\x30\x80"  # streamed BER


@needs_proc
@pytest.mark.slow
@pytest.mark.parametrize("form", ["clear", "opaque"])
def test_verifying_a_large_message_needs_bounded_memory(
    big: tuple[Path, str], signed_clear: Path, signed_opaque: Path, form: str
) -> None:
    result = run("verify", big[0], f"{form}.eml")
    assert result["ok"] is True
    assert result["sha256"] == big[1]


@needs_proc
@pytest.mark.slow
@pytest.mark.parametrize("cipher", ["gcm", "cbc"])
def test_encrypting_and_decrypting_a_large_message_need_bounded_memory(
    big: tuple[Path, str], encrypted: dict[str, Path], cipher: str
) -> None:
    with mime.parse_file(encrypted[cipher]) as enc:
        assert enc.params["smime-type"] == ("authEnveloped-data" if cipher == "gcm" else "enveloped-data")
    result = run("decrypt", big[0], f"{cipher}.eml")
    assert result["sha256"] == big[1]
    assert result["cipher"] == f"AES-256-{cipher.upper()}"


@needs_proc
@pytest.mark.slow
def test_opening_a_large_signed_then_encrypted_message_needs_bounded_memory(
    big: tuple[Path, str], signed_clear: Path
) -> None:
    run("encrypt-gcm", big[0], "clear.eml", "clear-gcm.eml")
    result = run("open", big[0], "clear-gcm.eml")
    assert result["ok"] is True
    assert result["layers"] == ["authEnveloped", "signed"]
    assert result["sha256"] == big[1]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_openssl_reads_the_large_messages(
    big: tuple[Path, str], signed_opaque: Path, encrypted: dict[str, Path]
) -> None:
    root = big[0]
    for args, out in (
        (["-verify", "-in", signed_opaque, "-CAfile", root / "root.crt", "-purpose", "any"], "verified.eml"),
        (
            ["-decrypt", "-in", encrypted["gcm"], "-recip", root / "alice.crt", "-inkey", root / "alice.key"],
            "gcm.out",
        ),
    ):
        done = subprocess.run(
            ["openssl", "cms", *map(str, args), "-out", str(root / out)],
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        with mime.parse_file(root / out) as inner:
            (part,) = [e for e in inner.walk() if e.filename == "big.bin"]
            digest = hashlib.sha256()
            with part.decoded_stream() as stream:
                while piece := stream.read(1 << 20):
                    digest.update(piece)
            assert digest.hexdigest() == big[1]
        (root / out).unlink()
