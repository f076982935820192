"""The HTTP OCSP responder (smimekit.net.ocsp_serve) on a free loopback port, asked by the real openssl
and by plain HTTP clients."""

from __future__ import annotations

import base64
import http.client
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from smimekit import ca
from smimekit.errors import UsageError
from smimekit.net.ocsp_serve import OcspServer, parse_bind
from smimekit.store import RevocationReason
from tests.ca._support import ENDPOINTS, NOW, Hierarchy, openssl, pem


@pytest.fixture(scope="module")
def leaves(hierarchy: Hierarchy) -> tuple[x509.Certificate, x509.Certificate]:
    def leaf(email: str) -> x509.Certificate:
        key = ca.generate_key(ca.KeyType.P256)
        return ca.issue_certificate(
            issuer=hierarchy.sub, public_key=key.public_key(), email=email, now=NOW, endpoints=ENDPOINTS
        )  # type: ignore[arg-type]

    return leaf("good@example.org"), leaf("revoked@example.org")


@pytest.fixture
def server(hierarchy: Hierarchy, leaves: tuple[x509.Certificate, x509.Certificate]) -> Iterator[OcspServer]:
    good, revoked = leaves
    status = {
        good.serial_number: (ca.CertStatus.GOOD, None),
        revoked.serial_number: (
            ca.CertStatus.REVOKED,
            ca.Revoked(revoked.serial_number, NOW, RevocationReason.KEY_COMPROMISE),
        ),
    }
    responders = [
        ca.OcspResponder(hierarchy.sub.certificate, hierarchy.sub.key),
        ca.OcspResponder(hierarchy.root.certificate, hierarchy.root.key),
    ]

    def lookup(issuer: x509.Certificate, serial: int) -> tuple[ca.CertStatus, ca.Revoked | None]:
        return status.get(serial, (ca.CertStatus.UNKNOWN, None))  # type: ignore[return-value]

    def respond(request: bytes) -> bytes:
        return ca.build_ocsp_response(request, responders=responders, lookup=lookup, now=NOW)

    with OcspServer("127.0.0.1", 0, respond) as running:
        yield running


def _ask(tmp_path: Path, h: Hierarchy, server: OcspServer, cert: x509.Certificate) -> str:
    root, sub = h.write(tmp_path)
    leaf = tmp_path / "leaf.pem"
    leaf.write_bytes(pem(cert))
    out = openssl("ocsp", "-issuer", sub, "-cert", leaf, "-url", server.url, "-CAfile", root, "-resp_text")
    assert "Response verify OK" in out.stderr + out.stdout, out.stderr
    return out.stdout


def test_openssl_gets_good_and_revoked_with_its_nonce(
    tmp_path: Path,
    hierarchy: Hierarchy,
    server: OcspServer,
    leaves: tuple[x509.Certificate, x509.Certificate],
) -> None:
    good, revoked = leaves
    assert server.url.startswith("http://127.0.0.1:")
    text = _ask(tmp_path, hierarchy, server, good)
    assert "leaf.pem: good" in text and "OCSP Nonce" in text
    text = _ask(tmp_path, hierarchy, server, revoked)
    assert "leaf.pem: revoked" in text and "Reason: keyCompromise" in text


def _post(
    server: OcspServer, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, bytes, str | None]:
    parsed = urllib.parse.urlsplit(server.url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
    try:
        conn.request(
            "POST", "/", body=body, headers={"Content-Type": "application/ocsp-request", **(headers or {})}
        )
        response = conn.getresponse()
        return response.status, response.read(), response.getheader("Content-Type")
    finally:
        conn.close()


def _get(server: OcspServer, path: str) -> tuple[int, bytes]:
    parsed = urllib.parse.urlsplit(server.url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_get_requests_and_bad_requests(
    hierarchy: Hierarchy, server: OcspServer, leaves: tuple[x509.Certificate, x509.Certificate]
) -> None:
    good, _ = leaves
    request = (
        ocsp.OCSPRequestBuilder().add_certificate(good, hierarchy.sub.certificate, hashes.SHA256()).build()
    )
    der = request.public_bytes(serialization.Encoding.DER)
    status, body = _get(server, "/" + urllib.parse.quote(base64.b64encode(der).decode(), safe=""))
    assert status == 200 and ocsp.load_der_ocsp_response(body).certificate_status is ocsp.OCSPCertStatus.GOOD
    status, body, kind = _post(server, der)
    assert (status, kind) == (200, "application/ocsp-response")
    assert ocsp.load_der_ocsp_response(body).serial_number == good.serial_number
    # garbage gets an OCSP malformedRequest, not an HTTP error or a dead thread
    for answer in (_post(server, b"\x30\x03junk")[1], _get(server, "/%%%not-base64")[1]):
        assert (
            ocsp.load_der_ocsp_response(answer).response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
        )
    # too large a body is refused before it is read
    status, _, _ = _post(server, b"", headers={"Content-Length": str(10**9)})
    assert status == 413
    # and the server still answers afterwards
    assert _post(server, der)[0] == 200


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1"])
def test_a_public_address_is_refused_without_allow_public(host: str) -> None:
    with pytest.raises(UsageError, match="not a loopback address"):
        OcspServer(host, 0, lambda request: b"")


def test_get_paths_decode_with_or_without_percent_encoding() -> None:
    from smimekit.ca import decode_ocsp_get_path

    der = b"\x30\x03\xff\xff\xfb"  # base-64 "MAP///s=": slashes and padding
    assert decode_ocsp_get_path("/MAP///s=") == der
    assert decode_ocsp_get_path("/MAP%2F%2F%2Fs%3D") == der
    assert decode_ocsp_get_path("/") is None and decode_ocsp_get_path("/not base64!") is None


def test_parse_bind() -> None:
    assert parse_bind("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_bind("[::1]:8443") == ("::1", 8443)
    for bad in ("127.0.0.1", "127.0.0.1:http", ":80", "127.0.0.1:70000"):
        with pytest.raises(UsageError):
            parse_bind(bad)


def test_stop_frees_the_port(hierarchy: Hierarchy) -> None:
    running = OcspServer("127.0.0.1", 0, lambda request: b"\x30\x03\x0a\x01\x02")
    running.start()
    port = int(running.url.rsplit(":", 1)[1].strip("/"))
    running.stop()
    again = OcspServer("127.0.0.1", port, lambda request: b"")
    again.stop()
