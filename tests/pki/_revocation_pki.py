"""Test helpers for revocation: certificates with CRL distribution points and AIA OCSP URLs, CRLs, and
two real servers on 127.0.0.1 — an HTTP server for CRLs (http.server in a thread) and an OCSP responder
(``openssl ocsp`` answering each request read from a file, behind a loopback-only HTTP front, because
``openssl ocsp -port`` would listen on every interface).
"""

from __future__ import annotations

import datetime as dt
import http.server
import shutil
import subprocess
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.testpki import Identity, new_key

DAY = dt.timedelta(days=1)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def issue(
    ca: Identity,
    name: str,
    *,
    email: str | None = None,
    crl_url: str | None = None,
    ocsp_url: str | None = None,
    delta_url: str | None = None,
    is_ca: bool = False,
    responder: bool = False,
    nocheck: bool = True,
    key_kind: str = "p256",
) -> Identity:
    """A certificate issued by ``ca`` (valid from a week ago for a year): an S/MIME end entity for
    ``email``, a CA (``is_ca``) or an OCSP responder (``responder``: id-kp-OCSPSigning, with
    id-pkix-ocsp-nocheck when ``nocheck``), naming the CRL, delta CRL and OCSP URLs given."""
    key = new_key(key_kind)
    now = utcnow()
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, name)]
    if email:
        attrs.append(x509.NameAttribute(NameOID.EMAIL_ADDRESS, email))
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(attrs))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - 7 * DAY)
        .not_valid_after(now + 365 * DAY)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
    )
    usage = dict.fromkeys(
        (
            "digital_signature",
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
            "crl_sign",
            "encipher_only",
            "decipher_only",
        ),
        False,
    )
    if is_ca:
        usage.update(key_cert_sign=True, crl_sign=True)
    else:
        usage.update(digital_signature=True)
    builder = builder.add_extension(x509.KeyUsage(**usage), critical=True)
    if responder:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False
        )
        if nocheck:
            builder = builder.add_extension(x509.OCSPNoCheck(), critical=False)
    elif not is_ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
        )
    if email:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.RFC822Name(email)]), critical=False)
    if crl_url:
        point = x509.DistributionPoint([x509.UniformResourceIdentifier(crl_url)], None, None, None)
        builder = builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)
    if delta_url:
        point = x509.DistributionPoint([x509.UniformResourceIdentifier(delta_url)], None, None, None)
        builder = builder.add_extension(x509.FreshestCRL([point]), critical=False)
    if ocsp_url:
        access = x509.AccessDescription(
            x509.oid.AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url)
        )
        builder = builder.add_extension(x509.AuthorityInformationAccess([access]), critical=False)
    cert = builder.sign(ca.key, hashes.SHA256())
    return Identity(cert, key, () if ca.cert.issuer == ca.cert.subject else (ca.cert, *ca.chain))


def make_crl(
    ca: Identity,
    revoked: tuple[tuple[x509.Certificate, dt.datetime], ...] = (),
    *,
    number: int = 1,
    this_update: dt.datetime | None = None,
    next_update: dt.datetime | None = None,
    delta_of: int | None = None,
    freshest_url: str | None = None,
    reason: x509.ReasonFlags = x509.ReasonFlags.key_compromise,
) -> x509.CertificateRevocationList:
    """A CRL of ``ca`` (a delta CRL of base number ``delta_of`` when given; a base CRL naming its delta
    CRL at ``freshest_url``), fresh by default."""
    now = utcnow()
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(this_update or now - dt.timedelta(hours=1))
        .next_update(next_update or now + DAY)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
        .add_extension(x509.CRLNumber(number), critical=False)
    )
    if delta_of is not None:
        builder = builder.add_extension(x509.DeltaCRLIndicator(delta_of), critical=True)
    if freshest_url is not None:
        point = x509.DistributionPoint([x509.UniformResourceIdentifier(freshest_url)], None, None, None)
        builder = builder.add_extension(x509.FreshestCRL([point]), critical=False)
    for cert, when in revoked:
        entry = (
            x509.RevokedCertificateBuilder()
            .serial_number(cert.serial_number)
            .revocation_date(when)
            .add_extension(x509.CRLReason(reason), critical=False)
            .build()
        )
        builder = builder.add_revoked_certificate(entry)
    return builder.sign(ca.key, hashes.SHA256())


def der(crl: x509.CertificateRevocationList) -> bytes:
    return crl.public_bytes(serialization.Encoding.DER)


# --------------------------------------------------------------------------------------------- servers


@dataclass
class CrlServer:
    """Serves ``files`` (path -> bytes) on 127.0.0.1; ``hits`` counts the requests per path."""

    files: dict[str, bytes] = field(default_factory=dict)
    hits: Counter[str] = field(default_factory=Counter)
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """A request handler that logs nothing (the test output stays clean), with helpers for bodies."""

    def log_message(self, *args: Any) -> None:
        pass

    def read_body(self) -> bytes:
        """The request body (Content-Length bytes; none without the header)."""
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def send_body(self, body: bytes, content_type: str | None = None) -> None:
        """Answer 200 with ``body`` (and ``content_type`` when given)."""
        self.send_response(200)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def crl_server() -> Iterator[CrlServer]:
    state = CrlServer()

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            state.hits[self.path] += 1
            body = state.files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_body(body, "application/pkix-crl")

    with _serving(Handler) as port:
        state.port = port
        yield state


@contextmanager
def _serving(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@dataclass
class OcspResponder:
    """An ``openssl ocsp`` responder for ``ca``, signing with ``signer`` (the CA or a delegated
    responder); ``revoke()`` marks a certificate revoked in its index; ``requests`` counts requests."""

    directory: Path
    ca: Identity
    signer: Identity
    port: int = 0
    requests: int = 0
    entries: dict[int, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/ocsp"

    def add(
        self, cert: x509.Certificate, *, revoked_at: dt.datetime | None = None, reason: str = "keyCompromise"
    ) -> None:
        expiry = cert.not_valid_after_utc.strftime("%y%m%d%H%M%SZ")
        subject = "/" + "/".join(cert.subject.rfc4514_string().split(",")[::-1])
        status, when = "V", ""
        if revoked_at is not None:
            status, when = "R", revoked_at.strftime("%y%m%d%H%M%SZ") + "," + reason
        self.entries[cert.serial_number] = (
            f"{status}\t{expiry}\t{when}\t{cert.serial_number:X}\tunknown\t{subject}\n"
        )
        (self.directory / "index.txt").write_text("".join(self.entries.values()))

    def answer(self, request: bytes) -> bytes:
        with self.lock:
            self.requests += 1
            req, resp = self.directory / "req.der", self.directory / "resp.der"
            req.write_bytes(request)
            resp.unlink(missing_ok=True)
            subprocess.run(
                [
                    "openssl",
                    "ocsp",
                    "-index",
                    str(self.directory / "index.txt"),
                    "-CA",
                    str(self.directory / "ca.pem"),
                    "-rsigner",
                    str(self.directory / "signer.pem"),
                    "-rkey",
                    str(self.directory / "signer.key"),
                    "-reqin",
                    str(req),
                    "-respout",
                    str(resp),
                    "-nmin",
                    "60",
                ],
                check=True,
                capture_output=True,
                timeout=30,
            )
            return resp.read_bytes()


@contextmanager
def ocsp_responder(ca: Identity, signer: Identity | None = None) -> Iterator[OcspResponder]:
    """Run an OCSP responder for ``ca`` on 127.0.0.1 (skips when openssl is not installed)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        responder = OcspResponder(directory, ca, signer or ca)
        (directory / "ca.pem").write_bytes(ca.cert_pem())
        (directory / "signer.pem").write_bytes(responder.signer.cert_pem())
        (directory / "signer.key").write_bytes(responder.signer.key_pem())
        (directory / "index.txt").write_text("")
        (directory / "index.txt.attr").write_text("unique_subject = no\n")

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                self.send_body(responder.answer(self.read_body()), "application/ocsp-response")

        with _serving(Handler) as port:
            responder.port = port
            yield responder


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (for a responder that is down)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
