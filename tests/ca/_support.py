"""What the CA tests share: the issuance time, URLs, a root -> intermediate hierarchy (RSA-3072) made with
smimekit.ca itself, and helpers to hand certificates to the real openssl."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from smimekit import ca

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=5)
"""Issuance time: a little in the past, as openssl and gpgsm check validity against the real clock."""
ENDPOINTS = ca.Endpoints(
    crl_url="http://127.0.0.1/sub.crl",
    ocsp_url="http://127.0.0.1/ocsp",
    ca_issuers_url="http://127.0.0.1/sub.der",
)
ROOT_ENDPOINTS = ca.Endpoints(crl_url="http://127.0.0.1/root.crl", ca_issuers_url="http://127.0.0.1/root.der")


@dataclass(frozen=True)
class Hierarchy:
    root: ca.CaSigner
    sub: ca.CaSigner

    def write(self, directory: Path) -> tuple[Path, Path]:
        """root.pem and sub.pem in ``directory``."""
        root, sub = directory / "root.pem", directory / "sub.pem"
        root.write_bytes(pem(self.root.certificate))
        sub.write_bytes(pem(self.sub.certificate))
        return root, sub


def pem(*certificates: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


def key_pem(key: object) -> bytes:
    return key.private_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def openssl(
    *args: str | Path, check: bool = True, input: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    proc = subprocess.run(
        ["openssl", *map(str, args)],
        capture_output=True,
        input=input.decode("latin-1") if input is not None else None,
        text=True,
        timeout=60,
        check=False,
    )
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def make_hierarchy() -> Hierarchy:
    root_key = ca.generate_key(ca.KeyType.RSA3072)
    root_cert = ca.create_ca(name="smimekit CA Test Root", key=root_key, now=NOW - dt.timedelta(days=1))  # type: ignore[arg-type]
    root = ca.CaSigner(root_cert, root_key)  # type: ignore[arg-type]
    sub_key = ca.generate_key(ca.KeyType.RSA3072)
    sub_cert = ca.create_ca(
        name="smimekit CA Test Intermediate",
        key=sub_key,  # type: ignore[arg-type]
        now=NOW - dt.timedelta(days=1),
        parent=root,
        parent_endpoints=ROOT_ENDPOINTS,
    )
    return Hierarchy(root, ca.CaSigner(sub_cert, sub_key))  # type: ignore[arg-type]
