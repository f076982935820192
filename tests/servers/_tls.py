"""A throw-away CA and a server certificate for 127.0.0.1 / localhost, made in code for the test servers."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.testpki import make_ca


@dataclass(frozen=True)
class ServerTls:
    """PEM files: ``ca_pem`` (the CA that clients trust), ``cert_pem`` and ``key_pem`` (the server's)."""

    ca_pem: Path
    cert_pem: Path
    key_pem: Path

    def client_context(self) -> ssl.SSLContext:
        """An ``ssl.SSLContext`` that verifies the server against ``ca_pem`` (host name 127.0.0.1 or localhost)."""
        return ssl.create_default_context(cafile=str(self.ca_pem))


def make_server_tls(
    directory: Path,
    *,
    name: str = "smimekit test server",
    hosts: tuple[str, ...] = ("localhost", "127.0.0.1"),
) -> ServerTls:
    """Write a new CA and a server certificate for ``hosts`` (DNS names and IP addresses) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = make_ca(f"{name} CA")
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([_general_name(h) for h in hosts]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
        .sign(ca.key, hashes.SHA256())
    )
    out = ServerTls(directory / "ca.pem", directory / "server.crt", directory / "server.key")
    out.ca_pem.write_bytes(ca.cert_pem())
    out.cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    out.key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    out.key_pem.chmod(0o600)
    return out


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)
