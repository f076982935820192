"""Helpers shared by the benchmarks: peak RSS of this process and of an external tool, sizes, a test PKI.

Imports stay at the standard library (cryptography is imported where the PKI is made), so that a fresh
benchmark process that imports this module keeps the interpreter's baseline.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass

MiB = 1 << 20
GiB = 1 << 30
_TIME = "/usr/bin/time"  # GNU time: reports the ru_maxrss of its own child, which it forks small


def peak_rss_kib() -> int:
    """Peak RSS of this process in KiB, from ``VmHWM`` in /proc/self/status.

    ``VmHWM`` belongs to this process image alone; ``ru_maxrss`` is used only where /proc is missing,
    because exec() carries over the high-water mark of the (v)forking parent into it.
    """
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS


def parse_size(text: str) -> int:
    """``100M``, ``1G``, ``512K`` or a plain byte count; the suffixes are binary (MiB, GiB)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]?)i?B?\s*", text, re.IGNORECASE)
    if not m:
        raise ValueError(f"not a size: {text!r}")
    scale = {"": 1, "K": 1 << 10, "M": MiB, "G": GiB}[m.group(2).upper()]
    return int(float(m.group(1)) * scale)


def fmt_size(n: int) -> str:
    if n >= GiB and n % GiB == 0:
        return f"{n // GiB} GiB"
    if n >= MiB:
        return f"{n / MiB:.0f} MiB"
    return f"{n / 1024:.0f} KiB"


def fmt_mib(kib: float | None) -> str:
    if kib is None:
        return "?"
    mib = kib / 1024
    return f"{mib / 1024:.2f} GiB" if mib >= 1024 else f"{mib:.1f} MiB"


def limit_address_space(limit: int | None) -> None:
    """Cap the address space of the calling process (used between fork and exec), so that a run that
    needs far more memory than planned fails with an error instead of pushing the machine into swap."""
    if limit:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


# --------------------------------------------------------------------------------------------- tools


@dataclass(frozen=True)
class ToolRun:
    """One run of an external command: wall time (seconds), its peak RSS (KiB), exit status, stderr."""

    seconds: float
    peak_kib: int | None
    returncode: int
    stderr: str


def rss_method() -> str:
    if os.path.exists(_TIME):
        return "GNU time (the tool's own ru_maxrss)"
    return "VmHWM polled every ms (a lower bound)"


def run_tool(cmd: Sequence[str], *, timeout: float, mem_limit: int | None = None) -> ToolRun:
    """Run ``cmd`` and measure its wall time and peak RSS.

    With GNU time the peak is the tool's ``ru_maxrss`` as seen by ``time``, which forks it from its own
    small image (ours would carry this process's high-water mark over). Without it, ``VmHWM`` of the
    child is polled from /proc (monotonic, so a lower bound that misses at most the last millisecond).
    """
    if os.path.exists(_TIME):
        with tempfile.NamedTemporaryFile("r", prefix="bench-rss-", suffix=".txt") as out:
            full = [_TIME, "-f", "%M", "-o", out.name, *cmd]
            t0 = time.perf_counter()
            proc = subprocess.run(
                full,
                capture_output=True,
                timeout=timeout,
                check=False,
                preexec_fn=(lambda: limit_address_space(mem_limit)) if mem_limit else None,
            )
            dt = time.perf_counter() - t0
            lines = [s for s in out.read().split() if s.isdigit()]
        peak = int(lines[-1]) if lines else None
        stderr = proc.stderr.decode(errors="replace")
        stderr = "\n".join(s for s in stderr.splitlines() if not s.startswith("Command exited with"))
        return ToolRun(dt, peak, proc.returncode, stderr)
    return _run_polled(cmd, timeout=timeout, mem_limit=mem_limit)


def _run_polled(cmd: Sequence[str], *, timeout: float, mem_limit: int | None) -> ToolRun:
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        list(cmd),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=(lambda: limit_address_space(mem_limit)) if mem_limit else None,
    )
    peak = 0
    status = f"/proc/{proc.pid}/status"
    while proc.poll() is None:
        try:
            with open(status, "rb") as f:
                for line in f:
                    if line.startswith(b"VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
        except OSError:
            pass
        if time.perf_counter() - t0 > timeout:
            proc.kill()
            proc.wait()
            raise subprocess.TimeoutExpired(list(cmd), timeout)
        time.sleep(0.001)
    dt = time.perf_counter() - t0
    assert proc.stderr is not None
    stderr = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    return ToolRun(dt, peak or None, proc.returncode, stderr)


def startup_seconds(cmd: Sequence[str], reps: int = 7) -> float:
    """The best wall time of ``cmd`` (a run doing no work, e.g. ``openssl version``): the cost of starting
    the process through :func:`run_tool`, subtracted from the tool's timings."""
    return min(run_tool(cmd, timeout=30).seconds for _ in range(reps))


def have(tool: str) -> bool:
    return shutil.which(tool) is not None


# --------------------------------------------------------------------------------------------- PKI


@dataclass(frozen=True)
class Pki:
    """Paths of the PEM files of a small S/MIME PKI: a root CA, a signer and a recipient."""

    root: str
    signer_cert: str
    signer_key: str
    recipient_cert: str
    recipient_key: str
    signer_email: str
    rsa_bits: int


def make_pki(directory: str, *, rsa_bits: int = 3072) -> Pki:
    """Write a P-256 root CA and two RSA end-entity certificates (a signer, a recipient) issued by it,
    with the S/MIME profile that ``openssl cms -verify`` and smimekit's path validation expect."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "smimekit bench root")])
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=30))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )

    def pem(obj: x509.Certificate) -> bytes:
        return obj.public_bytes(serialization.Encoding.PEM)

    def ee(email: str, name: str) -> tuple[str, str]:
        key = rsa.generate_private_key(65537, rsa_bits)
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, email.split("@")[0].title()),
                x509.NameAttribute(NameOID.EMAIL_ADDRESS, email),
            ]
        )
        ku = x509.KeyUsage(True, False, True, False, False, False, False, False, False)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(root_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=825))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(ku, critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(email)]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False
            )
            .sign(root_key, hashes.SHA256())
        )
        cert_path, key_path = os.path.join(directory, f"{name}.crt"), os.path.join(directory, f"{name}.key")
        with open(cert_path, "wb") as f:
            f.write(pem(cert))
        with open(key_path, "wb") as f:
            f.write(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
        return cert_path, key_path

    root_path = os.path.join(directory, "root.pem")
    with open(root_path, "wb") as f:
        f.write(pem(root))
    signer_cert, signer_key = ee("alice@example.org", "signer")
    recipient_cert, recipient_key = ee("bob@example.org", "recipient")
    return Pki(
        root_path, signer_cert, signer_key, recipient_cert, recipient_key, "alice@example.org", rsa_bits
    )
