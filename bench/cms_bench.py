"""smimekit's CMS and S/MIME operations against ``openssl cms``, measured in the same run on the same files.

    python3 bench/cms_bench.py [--quick] [--sizes 100M,1G] [--reps N] [--profile] [--tmpdir DIR]

For each size it writes random binary content and a MIME message of that size (headers, a short text part,
one base64 attachment), a multipart/signed message around the same content, and a P-256 root with RSA-3072
signer and recipient certificates made in code; then times, each run in a fresh process whose peak RSS is
its own, on both sides (see bench/README.md for the exact calls and commands):

1. detached signing of the binary content       ``cms.sign(stream, detached=True)`` / ``cms -sign -binary``
2. detached verification of that content         ``cms.verify(sig, detached_content=stream)`` / ``cms -verify``
3. verifying the multipart/signed message        ``smime.verify(parse_file(...))`` / ``cms -verify``
4. S/MIME encryption (AES-256-CBC, AES-256-GCM)  ``smime.encrypt(parse_file(...))`` / ``cms -encrypt -stream``
   and both written by ``smime.encrypt_to(file, ...)``, the streaming writer the CLI uses
5. S/MIME decryption of OpenSSL's output         ``smime.decrypt(parse_file(...))`` / ``cms -decrypt``

Every output is checked before its time counts: signatures verify (each side's with the other tool too),
decrypted messages have the SHA-256 of the original, and OpenSSL decrypts what smimekit encrypted. Prints a
table with MB/s, best time and peak RSS of each side and their ratio, then one PASS/FAIL line per target of
issue 3 §3. Exits 1 when a check fails (then the timings are not comparable), 0 otherwise.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import gc
import hashlib
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import _bench_util as util
from _bench_util import GiB, MiB, fmt_mib, fmt_size

HERE = os.path.dirname(os.path.abspath(__file__))
OPENSSL = shutil.which("openssl") or "openssl"
LABEL = 32  # width of the operation column
SINGLE_RUN_FROM = GiB  # sizes from here on are run once (best of N below)
DEFAULT_MIN_RATE = 2e6  # bytes/s: a run slower than this at its size times out

# the targets of issue 3 §3: (what, minimum ratio smimekit/OpenSSL)
TARGETS: dict[str, tuple[str, float]] = {
    "sign": ("detached signing of binary content", 1.0),
    "verify": ("detached verification of binary content", 1.0),
    "verify-mime": ("verifying a multipart/signed message", 10.0),
    "encrypt": ("S/MIME encryption", 1.0),
    "decrypt": ("S/MIME decryption", 2.0),
}
TARGET_RSS_MIB = 64.0  # issue 3 §3: peak RSS on a 1 GB message
TARGET_RSS_SIZE = GiB

# ------------------------------------------------------------------------------------------- test data

OUTER = (
    b"Return-Path: <alice@example.org>\r\n"
    b"From: Alice Example <alice@example.org>\r\n"
    b"To: Bob Example <bob@example.org>\r\n"
    b"Subject: Nightly backup 2026-05-14\r\n"
    b"Date: Thu, 14 May 2026 03:00:00 +0000\r\n"
    b"Message-ID: <backup-20260514@example.org>\r\n"
    b"MIME-Version: 1.0\r\n"
)
MIXED = b"----=_bench_mixed_5d1f0c"
SIGNED = b"----=_bench_signed_a3e97b"
ENTITY_HEAD = (
    b'Content-Type: multipart/mixed; boundary="' + MIXED + b'"\r\n\r\n'
    b"This is a multi-part message in MIME format.\r\n"
    b"--" + MIXED + b"\r\n"
    b"Content-Type: text/plain; charset=us-ascii\r\n"
    b"Content-Transfer-Encoding: 7bit\r\n\r\n"
    b"Hello Bob,\r\n\r\nattached is last night's backup.\r\n\r\nAlice\r\n"
    b"--" + MIXED + b"\r\n"
    b'Content-Type: application/x-tar; name="backup.tar"\r\n'
    b'Content-Disposition: attachment; filename="backup.tar"\r\n'
    b"Content-Transfer-Encoding: base64\r\n\r\n"
)
ENTITY_TAIL = b"\r\n--" + MIXED + b"--\r\n"
SIGNED_HEAD = (
    b'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256;\r\n'
    b' boundary="' + SIGNED + b'"\r\n\r\n'
    b"This is an S/MIME signed message\r\n"
    b"--" + SIGNED + b"\r\n"
)
SIGNATURE_HEAD = (
    b"\r\n--" + SIGNED + b"\r\n"
    b'Content-Type: application/pkcs7-signature; name="smime.p7s"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b'Content-Disposition: attachment; filename="smime.p7s"\r\n\r\n'
)
_LINE_IN = 57  # bytes per 76-character base64 line
_CHUNK_LINES = 18396  # lines per ~1 MiB of input


@dataclass(frozen=True)
class Files:
    """The inputs written for one size, with what a correct output must hash to."""

    directory: str
    content: str  # random binary content
    content_size: int
    message: str  # OUTER + the body entity (multipart/mixed with a base64 attachment)
    message_size: int
    message_sha256: str
    entity_offset: int  # where the body entity starts in ``message``
    entity_sha256: str
    attachment_size: int
    signed: str  # OUTER + multipart/signed around the same body entity
    signed_size: int
    gen_seconds: float

    def path(self, name: str) -> str:
        return os.path.join(self.directory, name)


def write_content(path: str, size: int, rng: random.Random) -> None:
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, MiB)
            f.write(rng.randbytes(n))
            left -= n


def write_message(path: str, size: int, rng: random.Random) -> tuple[int, int, str, str]:
    """OUTER, then the body entity with an attachment filling the message to about ``size`` bytes, CRLF
    throughout (canonical already). Returns (message size, attachment size, message and entity SHA-256)."""
    lines = max(1, (size - len(OUTER) - len(ENTITY_HEAD) - len(ENTITY_TAIL)) // 78)
    attachment = lines * _LINE_IN
    whole, entity = hashlib.sha256(), hashlib.sha256()

    def put(f: Any, data: bytes) -> None:
        f.write(data)
        whole.update(data)
        entity.update(data)

    with open(path, "wb") as f:
        f.write(OUTER)
        whole.update(OUTER)
        put(f, ENTITY_HEAD)
        left = attachment
        while left:
            n = min(left, _CHUNK_LINES * _LINE_IN)
            enc = base64.encodebytes(rng.randbytes(n)).replace(b"\n", b"\r\n")
            put(f, enc[:-2] if left == n else enc)  # the delimiter's CRLF ends the last line
            left -= n
        put(f, ENTITY_TAIL)
        written = f.tell()
    return written, attachment, whole.hexdigest(), entity.hexdigest()


def write_signed(path: str, message: str, offset: int, pki: util.Pki) -> None:
    """A multipart/signed message: OUTER, then the body entity of ``message`` (from ``offset``) signed
    detached with smimekit's streaming ``cms.sign``; the signature is checked by both sides later."""
    import datetime as dt

    from smimekit import cms

    cert, key = _load_pair(pki.signer_cert, pki.signer_key)
    with open(message, "rb") as f:
        f.seek(offset)
        der = cms.sign(f, [cms.Signer(cert, key)], detached=True, signing_time=dt.datetime.now(dt.UTC))
    sig = base64.encodebytes(der).replace(b"\n", b"\r\n").rstrip(b"\r\n")
    with open(message, "rb") as src, open(path, "wb") as out:
        out.write(OUTER + SIGNED_HEAD)
        src.seek(offset)
        shutil.copyfileobj(src, out, 4 * MiB)
        out.write(SIGNATURE_HEAD + sig + b"\r\n--" + SIGNED + b"--\r\n")


def write_files(directory: str, size: int, pki: util.Pki, seed: int = 1) -> Files:
    t0 = time.perf_counter()
    rng = random.Random(seed)
    content = os.path.join(directory, "content.bin")
    write_content(content, size, rng)
    message = os.path.join(directory, "message.eml")
    msize, attachment, msg_sha, entity_sha = write_message(message, size, rng)
    signed = os.path.join(directory, "signed.eml")
    write_signed(signed, message, len(OUTER), pki)
    # the 3 GB of dirty pages of a 1 GiB set would be written back during the first rows, throttling
    # whichever tool writes most then: write them out now, untimed
    os.sync()
    return Files(
        directory=directory,
        content=content,
        content_size=size,
        message=message,
        message_size=msize,
        message_sha256=msg_sha,
        entity_offset=len(OUTER),
        entity_sha256=entity_sha,
        attachment_size=attachment,
        signed=signed,
        signed_size=os.path.getsize(signed),
        gen_seconds=time.perf_counter() - t0,
    )


def sha256_file(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


_KEY_SECONDS = [0.0]  # time spent in _load_pair, reported by the child


def _load_pair(cert_path: str, key_path: str) -> tuple[Any, Any]:
    """Certificate and private key from PEM files, the key with smimekit's own loader (as the CLI does)."""
    from cryptography import x509

    from smimekit.keys import load_private_key

    t0 = time.perf_counter()
    with open(cert_path, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    with open(key_path, "rb") as f:
        key = load_private_key(f.read())
    _KEY_SECONDS[0] += time.perf_counter() - t0
    return cert, key


# ------------------------------------------------------------------------------------------- the child
# One smimekit operation in a fresh process: ``cms_bench.py _child JSON``. Everything is imported first;
# the timed part is key loading, the operation and writing its output (gc off); prints one JSON line.


def _child_sign(p: dict[str, Any]) -> tuple[bool, str]:
    import datetime as dt

    from smimekit import cms

    cert, key = _load_pair(p["cert"], p["key"])
    with open(p["content"], "rb") as f:
        der = cms.sign(f, [cms.Signer(cert, key)], detached=True, signing_time=dt.datetime.now(dt.UTC))
    with open(p["out"], "wb") as out:
        out.write(der)
    return True, f"{len(der)} bytes of signature"


def _child_verify(p: dict[str, Any]) -> tuple[bool, str]:
    from smimekit import cms

    with open(p["sig"], "rb") as f:
        der = f.read()
    with open(p["content"], "rb") as f:
        report = cms.verify(der, detached_content=f)
    return report.ok, "; ".join(r for s in report.signers for r in s.reasons)


def _child_verify_mime(p: dict[str, Any]) -> tuple[bool, str]:
    import datetime as dt

    from cryptography import x509

    from smimekit import smime
    from smimekit.mime import parse_file

    with open(p["root"], "rb") as f:
        root = x509.load_pem_x509_certificate(f.read())
    with parse_file(p["message"]) as msg:
        report = smime.verify(msg, now=dt.datetime.now(dt.UTC), anchors=[root])
    reasons = [r for s in report.signatures for r in s.reasons]
    return report.ok and len(report.signatures) == 1, "; ".join(reasons)


def _child_encrypt(p: dict[str, Any]) -> tuple[bool, str]:
    from cryptography import x509

    from smimekit import smime
    from smimekit.cms import ContentCipher
    from smimekit.mime import parse_file

    with open(p["cert"], "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    cipher = ContentCipher[p["cipher"]]
    with parse_file(p["message"]) as msg:
        if p.get("api") == "encrypt_to":  # the streaming writer: no Message is built
            with open(p["out"], "wb") as out:
                smime.encrypt_to(out, msg, [cert], cipher=cipher)
        else:
            encrypted = smime.encrypt(msg, [cert], cipher=cipher)
            with encrypted, open(p["out"], "wb") as out:
                encrypted.write_to(out)
    return True, ""


def _child_decrypt(p: dict[str, Any]) -> tuple[bool, str]:
    from smimekit import smime
    from smimekit.mime import parse_file

    cert, key = _load_pair(p["cert"], p["key"])
    with parse_file(p["message"]) as msg:
        inner, info = smime.decrypt(msg, key=key, certificate=cert)
        with inner, open(p["out"], "wb") as out:
            inner.write_to(out)
    return True, info.cipher.label


CHILD_OPS: dict[str, Callable[[dict[str, Any]], tuple[bool, str]]] = {
    "sign": _child_sign,
    "verify": _child_verify,
    "verify-mime": _child_verify_mime,
    "encrypt": _child_encrypt,
    "decrypt": _child_decrypt,
}


PRELOAD = (
    "cryptography.x509",
    "smimekit.cms",
    "smimekit.keys",
    "smimekit.mime",
    "smimekit.pki",
    "smimekit.smime",
)


def child_main(arg: str) -> None:
    import cProfile
    import importlib
    import io
    import pstats

    # imported before the baseline and the clock (smime.verify imports pki lazily, the rest on first use)
    for module in PRELOAD:
        importlib.import_module(module)
    params = json.loads(arg)
    work = CHILD_OPS[params["op"]]
    import_seconds = 0.0
    if params["op"] == "encrypt":
        # smimekit imports numpy on the first 1 MiB block it base64-encodes (a 4x faster line layout): an
        # import like the others, once per process, so it is not timed either; its time is reported
        t0 = time.perf_counter()
        importlib.import_module("numpy")
        import_seconds = time.perf_counter() - t0
    base = util.peak_rss_kib()
    prof = cProfile.Profile() if params.get("profile") else None
    gc.collect()
    gc.disable()
    t0 = time.perf_counter()
    try:
        if prof:
            prof.enable()
        ok, detail = work(params)
    except Exception as exc:  # reported to the parent, which marks the run as failed
        ok, detail = False, f"{type(exc).__name__}: {exc}"
    finally:
        if prof:
            prof.disable()
    seconds = time.perf_counter() - t0
    gc.enable()
    result: dict[str, Any] = {
        "seconds": seconds,
        "base_kib": base,
        "peak_kib": util.peak_rss_kib(),
        "ok": ok,
        "detail": detail,
        "key_seconds": _KEY_SECONDS[0],
        "import_seconds": import_seconds,
    }
    if prof:
        out = io.StringIO()
        stats = pstats.Stats(prof, stream=out)
        stats.sort_stats("tottime").print_stats(int(params["profile"]))
        stats.sort_stats("cumulative").print_stats(int(params["profile"]))
        result["profile"] = out.getvalue()
    print(json.dumps(result))


# ------------------------------------------------------------------------------------------- running


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_kib: int | None
    ok: bool
    detail: str = ""
    base_kib: int | None = None
    key_seconds: float = 0.0  # of ``seconds``, spent loading the private key (smimekit side)
    import_seconds: float = 0.0  # not in ``seconds``: numpy's import before the clock (smimekit side)


@dataclass(frozen=True)
class Env:
    mem_limit: int | None
    min_rate: float
    openssl_startup: float


def run_ours(params: dict[str, Any], nbytes: int, env: Env) -> tuple[Run, dict[str, Any]]:
    cmd = [sys.executable, os.path.abspath(__file__), "_child", json.dumps(params)]
    timeout = 60 + nbytes / env.min_rate
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            preexec_fn=(lambda: util.limit_address_space(env.mem_limit)) if env.mem_limit else None,
        )
    except subprocess.TimeoutExpired:
        return Run(timeout, None, False, f"timed out after {timeout:.0f} s"), {}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        return Run(0.0, None, False, f"the process failed ({proc.returncode}): {tail}"), {}
    r = json.loads(lines[-1])
    run = Run(r["seconds"], r["peak_kib"], r["ok"], r["detail"], r["base_kib"], r["key_seconds"])
    return dataclasses.replace(run, import_seconds=r.get("import_seconds", 0.0)), r


def run_openssl(args: Sequence[str], nbytes: int, env: Env) -> Run:
    timeout = 60 + nbytes / env.min_rate
    try:
        t = util.run_tool([OPENSSL, *args], timeout=timeout, mem_limit=env.mem_limit)
    except subprocess.TimeoutExpired:
        return Run(timeout, None, False, f"timed out after {timeout:.0f} s")
    detail = "" if t.returncode == 0 else (t.stderr.strip().splitlines() or ["?"])[0]
    return Run(max(t.seconds - env.openssl_startup, 1e-6), t.peak_kib, t.returncode == 0, detail)


def expect_digest(run: Run, path: str, sha256: str, what: str) -> Run:
    """``run``, failed unless the file at ``path`` hashes to ``sha256``."""
    if not run.ok:
        return run
    if not os.path.exists(path):
        return dataclasses.replace(run, ok=False, detail=f"no {what} was written")
    if sha256_file(path) != sha256:
        return dataclasses.replace(run, ok=False, detail=f"the {what} differs from the original")
    return run


@dataclass(frozen=True)
class Row:
    """One operation at one size, both sides."""

    key: str
    label: str
    target: str
    nbytes: int  # bytes counted for MB/s
    ours: dict[str, Any]  # child parameters
    theirs: list[str]  # openssl arguments
    ours_digest: tuple[str, str] | None = None  # (output path, SHA-256 it must have)
    theirs_digest: tuple[str, str] | None = None
    cross: tuple[tuple[str, Callable[[], str | None]], ...] = ()  # (what, check -> error or None)
    cleanup: tuple[str, ...] = ()  # files to delete once the row is done
    outputs: tuple[str, ...] = ()  # (smimekit's, OpenSSL's) file written by a run, deleted before its run


@dataclass
class Result:
    row: Row
    size: int
    ours: list[Run] = field(default_factory=list)
    theirs: list[Run] = field(default_factory=list)
    cross: list[tuple[str, str | None]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        runs = self.ours + self.theirs
        return bool(runs) and all(r.ok for r in runs) and all(err is None for _, err in self.cross)

    @staticmethod
    def _best(runs: list[Run]) -> float | None:
        good = [r.seconds for r in runs if r.ok]
        return min(good) if good and len(good) == len(runs) else None

    @property
    def ours_best(self) -> float | None:
        return self._best(self.ours)

    @property
    def theirs_best(self) -> float | None:
        return self._best(self.theirs)

    def mbps(self, best: float | None) -> float | None:
        return None if best is None else self.row.nbytes / 1e6 / best

    @property
    def ratio(self) -> float | None:
        a, b = self.ours_best, self.theirs_best
        return None if a is None or b is None or not self.ok else b / a

    @staticmethod
    def peak(runs: list[Run]) -> int | None:
        peaks = [r.peak_kib for r in runs if r.peak_kib is not None]
        return max(peaks) if peaks else None

    @property
    def problems(self) -> list[str]:
        out = [f"smimekit: {r.detail}" for r in self.ours if not r.ok]
        out += [f"openssl: {r.detail}" for r in self.theirs if not r.ok]
        out += [f"{what}: {err}" for what, err in self.cross if err]
        return list(dict.fromkeys(out))


def openssl_check(
    args: Sequence[str], nbytes: int, env: Env, expect: tuple[str, str] | None = None
) -> str | None:
    run = run_openssl(args, nbytes, env)
    if expect is not None:
        run = expect_digest(run, expect[0], expect[1], "output")
    return None if run.ok else run.detail


def rows_for(f: Files, pki: util.Pki, env: Env) -> list[Row]:
    p = f.path
    sign = ["-sign", "-binary", "-in", f.content, "-signer", pki.signer_cert, "-inkey", pki.signer_key]
    verify_detached = ["cms", "-verify", "-binary", "-content", f.content, "-inform", "DER"]
    trust = ["-CAfile", pki.root, "-out", os.devnull]
    rows = [
        Row(
            "sign",
            "sign, detached, binary",
            "sign",
            f.content_size,
            {
                "op": "sign",
                "content": f.content,
                "cert": pki.signer_cert,
                "key": pki.signer_key,
                "out": p("ours.p7s"),
            },
            ["cms", *sign, "-outform", "DER", "-out", p("openssl.p7s")],
            cross=(
                (
                    "openssl verifies smimekit's signature",
                    lambda: openssl_check(
                        [*verify_detached, "-in", p("ours.p7s"), *trust], f.content_size, env
                    ),
                ),
            ),
            cleanup=(p("ours.p7s"),),
            outputs=(p("ours.p7s"), p("openssl.p7s")),
        ),
        Row(
            "verify",
            "verify, detached, binary",
            "verify",
            f.content_size,
            {"op": "verify", "content": f.content, "sig": p("openssl.p7s")},
            [*verify_detached, "-in", p("openssl.p7s"), *trust],
            cleanup=(f.content, p("openssl.p7s")),
        ),
        Row(
            "verify-mime",
            "verify multipart/signed",
            "verify-mime",
            f.signed_size,
            {"op": "verify-mime", "message": f.signed, "root": pki.root},
            ["cms", "-verify", "-in", f.signed, *trust],
            cleanup=(f.signed,),
        ),
    ]
    decrypt = ["cms", "-decrypt", "-recip", pki.recipient_cert, "-inkey", pki.recipient_key]
    encrypts = (
        ("AES256_CBC", "-aes256", "cbc", "encrypt"),
        ("AES256_GCM", "-aes-256-gcm", "gcm", "encrypt"),
        ("AES256_CBC", "-aes256", "cbc", "encrypt_to"),
        ("AES256_GCM", "-aes-256-gcm", "gcm", "encrypt_to"),
    )
    for cipher, flag, tag, api in encrypts:
        suffix = "" if api == "encrypt" else "-to"
        ours_out, theirs_out = p(f"ours-{tag}{suffix}.eml"), p(f"openssl-{tag}.eml")
        check_out = p(f"check-{tag}{suffix}.eml")
        rows.append(
            Row(
                f"encrypt-{tag}{suffix}",
                f"encrypt AES-256-{tag.upper()}" + ("" if api == "encrypt" else ", encrypt_to"),
                "encrypt",
                f.message_size,
                {
                    "op": "encrypt",
                    "api": api,
                    "message": f.message,
                    "cert": pki.recipient_cert,
                    "cipher": cipher,
                    "out": ours_out,
                },
                [
                    "cms",
                    "-encrypt",
                    "-stream",
                    flag,
                    "-in",
                    f.message,
                    "-out",
                    theirs_out,
                    pki.recipient_cert,
                ],
                cross=(
                    (
                        "openssl decrypts smimekit's message to the body entity",
                        lambda ours_out=ours_out, check_out=check_out: openssl_check(  # type: ignore[misc]
                            [*decrypt, "-in", ours_out, "-out", check_out],
                            f.message_size,
                            env,
                            (check_out, f.entity_sha256),
                        ),
                    ),
                ),
                cleanup=(ours_out, check_out),
                outputs=(ours_out, theirs_out),
            )
        )
    for tag in ("cbc", "gcm"):
        source = p(f"openssl-{tag}.eml")
        rows.append(
            Row(
                f"decrypt-{tag}",
                f"decrypt AES-256-{tag.upper()}",
                "decrypt",
                f.message_size,
                {
                    "op": "decrypt",
                    "message": source,
                    "cert": pki.recipient_cert,
                    "key": pki.recipient_key,
                    "out": p("ours-plain.eml"),
                },
                [
                    "cms",
                    "-decrypt",
                    "-in",
                    source,
                    "-recip",
                    pki.recipient_cert,
                    "-inkey",
                    pki.recipient_key,
                    "-out",
                    p("openssl-plain.eml"),
                ],
                ours_digest=(p("ours-plain.eml"), f.message_sha256),
                theirs_digest=(p("openssl-plain.eml"), f.message_sha256),
                cleanup=(source, p("ours-plain.eml"), p("openssl-plain.eml")),
            )
        )
    return rows


# rows whose OpenSSL output is the input of rows of other targets (run once when only those are measured)
_INPUT_ROWS = {"sign": {"verify"}, "encrypt-cbc": {"decrypt"}, "encrypt-gcm": {"decrypt"}}


def measure(row: Row, size: int, reps: int, env: Env) -> Result:
    """``reps`` rounds, alternating which side goes first; every output is checked, then the cross-checks."""
    res = Result(row, size)
    print(f"  {row.label} at {fmt_size(size)} ...", file=sys.stderr, flush=True)
    for rep in range(reps):
        sides = ("ours", "theirs") if rep % 2 == 0 else ("theirs", "ours")
        for side in sides:
            mine = row.ours_digest if side == "ours" else row.theirs_digest
            stale = [mine[0]] if mine else []
            stale += row.outputs[:1] if side == "ours" else row.outputs[1:]
            for path in stale:
                # a stale output must not pass for this run's, and both sides write a new file (rewriting
                # a truncated one makes ext4 flush it on close: auto_da_alloc)
                if os.path.exists(path):
                    os.unlink(path)
            if side == "ours":
                run, _ = run_ours(row.ours, row.nbytes, env)
                if row.ours_digest:
                    run = expect_digest(run, *row.ours_digest, "decrypted message")
                res.ours.append(run)
            else:
                run = run_openssl(row.theirs, row.nbytes, env)
                if row.theirs_digest:
                    run = expect_digest(run, *row.theirs_digest, "decrypted message")
                res.theirs.append(run)
    for what, check in row.cross:
        res.cross.append((what, check()))
    return res


# ------------------------------------------------------------------------------------------- report


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _f(x: float | None, fmt: str) -> str:
    return "—" if x is None else format(x, fmt)


def print_size(files: Files, results: list[Result], reps: int, bits: int) -> None:
    size = results[0].size if results else 0
    rounds = f"best of {reps}" if reps > 1 else "1 run"
    print(
        f"\n{fmt_size(size)} — content {files.content_size / 1e6:.1f} MB random; message {files.message_size / 1e6:.1f} MB "
        f"(one base64 attachment of {files.attachment_size / 1e6:.1f} MB); multipart/signed "
        f"{files.signed_size / 1e6:.1f} MB; written in {files.gen_seconds:.1f} s; {rounds}"
    )
    head = f"{'MB/s':>8} {'best s':>8} {'peak RSS':>10}"
    print(f"{'':{LABEL}} {'smimekit':^28}   {'openssl cms':^28}   {'ratio':>7}  checks")
    print(f"{'operation':{LABEL}} {head}   {head}")
    for r in results:
        ours, theirs = r.ours_best, r.theirs_best
        ratio = r.ratio
        print(
            f"{r.row.label:{LABEL}} {_f(r.mbps(ours), '8.1f'):>8} {_f(ours, '8.3f'):>8} "
            f"{fmt_mib(Result.peak(r.ours)):>10}   {_f(r.mbps(theirs), '8.1f'):>8} {_f(theirs, '8.3f'):>8} "
            f"{fmt_mib(Result.peak(r.theirs)):>10}   {_f(ratio, '6.2f') + '×' if ratio else '     —'}  "
            f"{'ok' if r.ok else 'FAILED'}"
        )
    for r in results:
        for problem in r.problems:
            print(f"  ! {r.row.label}: {problem}")
    cross = Counter(what for r in results for what, err in r.cross if err is None)
    if cross:
        print("  cross-checks passed: " + "; ".join(f"{what} ({n}×)" for what, n in cross.items()))
    keys = [run.key_seconds for r in results for run in r.ours if run.key_seconds]
    if keys:
        print(
            f"  smimekit's times include loading the RSA-{bits} private key with smimekit.keys.load_private_key: "
            f"{1000 * min(keys):.0f}-{1000 * max(keys):.0f} ms;"
        )
        without = [
            f"{r.row.key} {r.theirs_best / (best.seconds - best.key_seconds):.2f}×"
            for r in results
            if r.ratio is not None and r.theirs_best is not None
            for best in [min(r.ours, key=lambda run: run.seconds)]
            if best.key_seconds
        ]
        print("  without that, the ratios would be: " + ", ".join(without))
    imports = [run.import_seconds for r in results for run in r.ours if run.import_seconds]
    if imports:
        counted = [
            f"{r.row.key} {r.theirs_best / (best.seconds + best.import_seconds):.2f}×"
            for r in results
            if r.ratio is not None and r.theirs_best is not None
            for best in [min(r.ours, key=lambda run: run.seconds)]
            if best.import_seconds
        ]
        print(
            f"  numpy's import ({1000 * min(imports):.0f}-{1000 * max(imports):.0f} ms, once per process) is not "
            "timed, like every import; counting it, the ratios would be: " + ", ".join(counted)
        )
    bases = [run.base_kib for r in results for run in r.ours if run.base_kib]
    if bases:
        numpy_note = " (encryption: with numpy's)" if imports else ""
        print(
            f"  (smimekit's peak RSS includes {fmt_mib(min(bases))}-{fmt_mib(max(bases))} of interpreter and "
            f"imports{numpy_note})"
        )


def print_targets(results: list[Result], sizes: Sequence[int]) -> None:
    print("\ntargets (issue 3 §3)")
    for key, (what, minimum) in TARGETS.items():
        mine = [r for r in results if r.row.target == key]
        if not mine:
            continue  # not measured in this run (--only)
        parts, ok = [], bool(mine)
        for r in mine:
            ratio = r.ratio
            ok &= ratio is not None and ratio >= minimum
            name = r.row.label.split(" ", 1)[1] if len({x.row.key for x in mine}) > 1 else ""
            where = " ".join(x for x in (name, "at", fmt_size(r.size)) if x)
            parts.append(f"{_f(ratio, '.2f')}× {where}" if ratio else f"not measured {where}")
        print(f"  {verdict(ok)}  {what} ≥ {minimum:.1f}× OpenSSL: " + ", ".join(parts))
        streaming = [r for r in mine if r.row.key.endswith("-to")]
        if key == "encrypt" and streaming:
            # the two APIs do different work: encrypt() builds a parsed Message (spooled, then written out
            # by write_to), encrypt_to() writes the message once, as `smimekit encrypt` does
            ratios = [r.ratio for r in streaming]
            both = all(x is not None and x >= minimum for x in ratios)
            print(
                f"        of which the streaming writer (encrypt_to, as the CLI uses) alone: {verdict(both)} "
                + ", ".join(f"{_f(x, '.2f')}×" for x in ratios)
            )
    biggest = max(sizes)
    at = [r for r in results if r.size == biggest]
    peaks = [(r.row.key, Result.peak(r.ours)) for r in at]
    worst = max((p for _, p in peaks if p is not None), default=None)
    ok = worst is not None and worst / 1024 <= TARGET_RSS_MIB and all(p is not None for _, p in peaks)
    note = "" if biggest >= TARGET_RSS_SIZE else f" — measured at {fmt_size(biggest)}, not 1 GiB"
    detail = ", ".join(f"{label} {fmt_mib(p)}" for label, p in peaks)
    print(f"  {verdict(ok)}  smimekit peak RSS ≤ {TARGET_RSS_MIB:.0f} MiB on a 1 GiB message{note}: {detail}")


def profile_missed(results: list[Result], size: int, pki: util.Pki, tmp: str, env: Env, top: int) -> None:
    """cProfile, in the child, each smimekit operation that missed its target at some size; at ``size``."""
    missed = {r.row.key for r in results if r.ratio is None or r.ratio < TARGETS[r.row.target][1]}
    if not missed:
        return
    directory = os.path.join(tmp, "profile")
    os.mkdir(directory)
    files = write_files(directory, size, pki)
    rows = rows_for(files, pki, env)
    for row in rows:  # OpenSSL's outputs are the inputs of the verify and decrypt rows
        if row.key in _INPUT_ROWS:
            run_openssl(row.theirs, row.nbytes, env)
    for row in rows:
        if row.key not in missed:
            continue
        run, raw = run_ours({**row.ours, "profile": top}, row.nbytes, env)
        print(
            f"\n=== cProfile of smimekit's {row.label} at {fmt_size(size)} ({run.seconds:.2f} s profiled) ==="
        )
        if not run.ok:
            print(f"(the profiled run failed: {run.detail})")
        text = raw.get("profile", "")
        print("\n".join(line for line in text.splitlines() if line.strip()))
    shutil.rmtree(directory, ignore_errors=True)


# ------------------------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100 MiB only (smoke run, under 3 minutes)")
    ap.add_argument("--sizes", default=None, help="comma-separated sizes, e.g. 100M,1G (default 100M,1G)")
    ap.add_argument("--reps", type=int, default=3, help="runs per side below 1 GiB, best of (default 3)")
    ap.add_argument(
        "--profile", action="store_true", help="cProfile each smimekit operation that misses its target"
    )
    ap.add_argument("--profile-top", type=int, default=25, help="functions shown per profile listing")
    ap.add_argument("--tmpdir", default=None, help="where to write the test data (default: $TMPDIR or /tmp)")
    ap.add_argument(
        "--mem-limit", default="16G", help="address-space cap of every run, so a runaway fails (0: none)"
    )
    ap.add_argument("--rsa-bits", type=int, default=3072, help="RSA key size of signer and recipient")
    ap.add_argument(
        "--only",
        default=None,
        help=f"comma-separated targets to measure, of: {', '.join(TARGETS)} (default: all)",
    )
    args = ap.parse_args(argv)
    only = set(TARGETS) if args.only is None else {t.strip() for t in args.only.split(",") if t.strip()}
    if not only or only - set(TARGETS):
        ap.error(f"--only takes targets among: {', '.join(TARGETS)}")
    sizes = [util.parse_size(s) for s in (args.sizes or ("100M" if args.quick else "100M,1G")).split(",")]
    started = time.perf_counter()
    if not util.have(OPENSSL):
        print("openssl is not installed: nothing to compare with", file=sys.stderr)
        return 2

    try:
        version = metadata.version("smimekit")
    except metadata.PackageNotFoundError:
        version = "?"
    ossl_version = subprocess.run([OPENSSL, "version"], capture_output=True, text=True, check=False).stdout
    ossl_version = ossl_version.split(" (")[0].strip()
    env = Env(
        mem_limit=util.parse_size(args.mem_limit) or None,
        min_rate=DEFAULT_MIN_RATE,
        openssl_startup=util.startup_seconds([OPENSSL, "version"]),
    )
    name = "quick" if args.quick else ("full" if args.sizes is None else "custom")
    print(
        f"smimekit CMS/S-MIME benchmark ({name} run) — smimekit {version} vs {ossl_version.strip()} (openssl cms)"
    )
    print(
        f"{platform.python_implementation()} {platform.python_version()} on {platform.system()} "
        f"{platform.machine()}, {os.cpu_count()} CPUs (load average {os.getloadavg()[0]:.1f} at start); "
        f"best of {max(1, args.reps)} below 1 GiB, 1 run from 1 GiB; every run in a fresh process"
    )
    print(
        f"keys: RSA-{args.rsa_bits} signer and recipient under a P-256 root; openssl's peak RSS via "
        f"{util.rss_method()}; its process start ({env.openssl_startup * 1000:.1f} ms) is subtracted, "
        "as smimekit's interpreter start and imports are not timed"
    )

    results: list[Result] = []
    failed = False
    with tempfile.TemporaryDirectory(prefix="smimekit-cms-bench-", dir=args.tmpdir) as tmp:
        pki = util.make_pki(tmp, rsa_bits=args.rsa_bits)
        for size in sizes:
            free = shutil.disk_usage(tmp).free
            need = 9 * size + GiB
            if free < need:
                print(
                    f"\n{fmt_size(size)}: skipped, {free / GiB:.1f} GiB free in {tmp} (needs {need / GiB:.1f})"
                )
                continue
            directory = os.path.join(tmp, f"size-{size}")
            os.mkdir(directory)
            files = write_files(directory, size, pki)
            reps = 1 if size >= SINGLE_RUN_FROM else max(1, args.reps)
            done = []
            rows = rows_for(files, pki, env)
            for row in rows:
                if row.target not in only:
                    if row.key in _INPUT_ROWS and _INPUT_ROWS[row.key] & only:
                        run_openssl(row.theirs, row.nbytes, env)  # its output is a selected row's input
                    continue
                done.append(measure(row, size, reps, env))
                for path in row.cleanup:
                    if os.path.exists(path):
                        os.unlink(path)
            shutil.rmtree(directory, ignore_errors=True)
            if done:
                print_size(files, done, reps, pki.rsa_bits)
            results += done
            failed |= not all(r.ok for r in done)
        if results:
            print_targets(results, sizes)
        if args.profile and results:
            profile_missed(results, min(sizes), pki, tmp, env, args.profile_top)
    print(f"\n(run took {time.perf_counter() - started:.0f} s)")
    if failed:
        print(
            "ERROR: a check failed (see the ! lines above); those timings are not comparable", file=sys.stderr
        )
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "_child":
        child_main(sys.argv[2])
    else:
        sys.exit(main())
