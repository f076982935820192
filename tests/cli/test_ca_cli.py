"""``smimekit ca`` and the store, as a user drives them: init, issue, revoke, crl, list, ocsp-serve, with
openssl checking what comes out and one real responder process answering openssl's OCSP requests."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

import smimekit
from smimekit import ca
from smimekit.cli.main import cli
from smimekit.pki import PathFailure, validate_path
from smimekit.store import Trust, open_store
from tests.ca._support import openssl
from tests.smime import _gpgsm

PASSPHRASE = "correct horse battery"


@dataclass(frozen=True)
class Env:
    directory: Path
    store: Path
    password: Path

    def run(self, *args: str, code: int = 0, password: bool = True) -> Result:
        extra = ["--password-file", str(self.password)] if password and args[:2] in _NEEDS_PASSWORD else []
        result = CliRunner().invoke(cli, ["--store", str(self.store), *args, *extra], catch_exceptions=False)
        assert result.exit_code == code, (result.exit_code, result.output)
        assert "Traceback" not in result.output
        return result

    def fails(self, *args: str, code: int = 2, password: bool = True) -> str:
        """The one line a failing command prints."""
        result = self.run(*args, code=code, password=password)
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("smimekit: error: "), result.stderr
        return lines[0]


_NEEDS_PASSWORD = {("ca", "init"), ("ca", "issue"), ("ca", "crl"), ("ca", "ocsp-serve")}


def _env(directory: Path) -> Env:
    directory.mkdir(parents=True, exist_ok=True)
    password = directory / "password"
    password.write_text(PASSPHRASE + "\n", encoding="utf-8")
    return Env(directory, directory / "store.sqlite3", password)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Env:
    """A store with a root 'Example CA' (with CRL, OCSP and caIssuers URLs) and an intermediate
    'Example Sub'."""
    env = _env(tmp_path_factory.mktemp("ca-cli"))
    out = env.run(
        "ca", "init", "--name", "Example CA", "--cert-out", str(env.directory / "root.pem"),
        "--crl-url", "http://127.0.0.1/root.crl", "--ocsp-url", "http://127.0.0.1/ocsp",
        "--ca-issuers-url", "http://127.0.0.1/root.der",
    ).stdout  # fmt: skip
    assert out.startswith("Created root CA (trusted for e-mail in the store) 'Example CA'")
    env.run(
        "ca", "init", "--name", "Example Sub", "--parent", "Example CA", "--key-type", "p384",
        "--cert-out", str(env.directory / "sub.pem"), "--crl-url", "http://127.0.0.1/sub.crl",
        "--ocsp-url", "http://127.0.0.1/ocsp", "--ca-issuers-url", "http://127.0.0.1/sub.der",
    )  # fmt: skip
    return env


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificates(path.read_bytes())[0]


def _ca_issuers(certificate: x509.Certificate) -> list[str]:
    aia = certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    return [
        str(a.access_location.value)
        for a in aia
        if a.access_method == x509.oid.AuthorityInformationAccessOID.CA_ISSUERS
    ]


def _verify(env: Env, leaf: Path, purpose: str) -> bool:
    proc = openssl(
        "verify", "-purpose", purpose, "-CAfile", env.directory / "root.pem",
        "-untrusted", env.directory / "sub.pem", leaf, check=False,
    )  # fmt: skip
    return proc.returncode == 0


# ----------------------------------------------------------------------------------------- init, issue


def test_init_makes_a_trusted_root_and_an_intermediate_in_the_store(pki: Env) -> None:
    root, sub = _cert(pki.directory / "root.pem"), _cert(pki.directory / "sub.pem")
    assert root.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Example CA"
    assert sub.issuer == root.subject
    openssl("verify", "-CAfile", pki.directory / "root.pem", pki.directory / "sub.pem")
    with open_store(pki.store) as store:
        assert store.trust_anchors(Trust.EMAIL_SIGNING) == [root]
        assert store.trust_anchors(Trust.EMAIL_ENCRYPTION) == [root]
        default = store.find_ca()
        assert default is not None and default.name == "Example CA"
        records = {r.name: r for r in store.list_cas()}
        assert records["Example Sub"].crl_url == "http://127.0.0.1/sub.crl"
        assert records["Example Sub"].ca_issuers_url == "http://127.0.0.1/sub.der"
    assert _ca_issuers(sub) == ["http://127.0.0.1/root.der"]  # where the root's certificate is
    # the intermediate carries its parent's CRL and OCSP URLs; both lint clean
    for name in ("root.pem", "sub.pem"):
        result = pki.run("cert", "lint", str(pki.directory / name))
        assert result.stdout == "", result.stdout
    listing = json.loads(pki.run("ca", "list", "--json").stdout)["cas"]
    assert [(c["name"], c["kind"], c["default"]) for c in listing] == [
        ("Example CA", "root", True),
        ("Example Sub", "intermediate", False),
    ]
    assert listing[1]["key"] == "EC P-384" and listing[0]["issued"] >= 1  # the root issued the intermediate
    assert [c["ca_issuers_url"] for c in listing] == ["http://127.0.0.1/root.der", "http://127.0.0.1/sub.der"]


@pytest.mark.parametrize(
    ("options", "sign", "encrypt"),
    [((), True, True), (("--usage", "signing"), True, False), (("--usage", "encryption"), False, True)],
)
def test_issue_for_each_usage_is_accepted_by_openssl_for_it_only(
    pki: Env, options: tuple[str, ...], sign: bool, encrypt: bool
) -> None:
    email = f"{options[1] if options else 'both'}@example.org"
    cert_out = pki.directory / f"{email}.pem"
    out = pki.run(
        "ca", "issue", "--email", email, "--ca", "Example Sub", "--cert-out", str(cert_out), *options
    ).stdout
    assert out.startswith(f"Issued a certificate for {email} by 'Example Sub': serial ")
    assert (_verify(pki, cert_out, "smimesign"), _verify(pki, cert_out, "smimeencrypt")) == (sign, encrypt)
    lint = pki.run("cert", "lint", "--fail-on-warning", str(cert_out))
    assert lint.stdout == "" and lint.stderr.count("no deviation from the S/MIME BR") == 3  # leaf, sub, root
    with open_store(pki.store) as store:
        [record] = store.find_by_email(email)
        assert record.has_private_key and record.certificate == _cert(cert_out)


def test_a_ca_with_every_url_issues_certificates_that_lint_clean(tmp_path: Path) -> None:
    env = _env(tmp_path / "urls")
    urls = ["--crl-url", "http://ca.example/a.crl", "--ocsp-url", "http://ocsp.example/"]
    env.run("ca", "init", "--name", "Full CA", "--key-type", "p256", *urls,
            "--ca-issuers-url", "http://ca.example/full.der")  # fmt: skip
    env.run("ca", "init", "--name", "Plain CA", "--key-type", "p256", "--no-default", *urls)
    full, plain = tmp_path / "full.pem", tmp_path / "plain.pem"
    env.run("ca", "issue", "--email", "kim@example.org", "--key-type", "p256", "--cert-out", str(full))
    env.run("ca", "issue", "--email", "lee@example.org", "--key-type", "p256", "--ca", "Plain CA",
            "--cert-out", str(plain))  # fmt: skip
    assert _ca_issuers(_cert(full)) == ["http://ca.example/full.der"]

    clean = env.run("cert", "lint", "--fail-on-warning", str(full))  # exit 0, asserted by run()
    assert clean.stdout == ""  # no deviation, so no warning line either
    assert clean.stderr.splitlines() == [
        f"{full} #1: no deviation from the S/MIME BR (subscriber certificate, mailbox-validated strict)",
        f"{full} #2: no deviation from the S/MIME BR (root CA certificate)",
    ]
    # without the URL the same profile draws the BR's recommendation (and --fail-on-warning fails)
    warned = env.run("cert", "lint", str(plain)).stdout
    assert warned == (
        f"{plain} #1: BR 7.1.2.3(c): authorityInformationAccess should contain an id-ad-caIssuers URL "
        "(warning)\n"
    )
    env.run("cert", "lint", "--fail-on-warning", str(plain), code=1)


@pytest.mark.parametrize(
    ("key_type", "purpose"), [("ed25519", "signing"), ("x25519", "encryption"), ("p256", "both")]
)
def test_issue_other_key_types(pki: Env, key_type: str, purpose: str) -> None:
    email = f"{key_type}@example.org"
    cert_out = pki.directory / f"{key_type}.pem"
    pki.run(
        "ca",
        "issue",
        "--email",
        email,
        "--key-type",
        key_type,
        "--profile",
        "multipurpose",
        "--cert-out",
        str(cert_out),
    )
    info = ca.describe_certificate(_cert(cert_out))
    assert info.key == {"ed25519": "Ed25519", "x25519": "X25519", "p256": "EC P-256"}[key_type]
    expected = {
        "signing": ("digitalSignature",),
        "encryption": ("keyAgreement",),
        "both": ("digitalSignature", "keyAgreement"),
    }
    assert info.key_usage == expected[purpose]
    assert info.policies == ("2.23.140.1.5.1.2 (S/MIME BR mailbox-validated multipurpose)",)
    assert pki.run("cert", "lint", str(cert_out)).exit_code == 0
    with open_store(pki.store) as store:
        [record] = store.find_by_email(email)
        key = store.private_key(record.fingerprint, PASSPHRASE.encode())
        assert key.public_key() == record.certificate.public_key()


def test_issue_writes_a_modern_or_a_legacy_pkcs12(pki: Env) -> None:
    for legacy, algorithm in (
        (False, "PBES2, PBKDF2, AES-256-CBC"),
        (True, "pbeWithSHA1And3-KeyTripleDES-CBC"),
    ):
        p12 = pki.directory / f"p12-{legacy}.p12"
        pki.run("ca", "issue", "--email", f"p12-{legacy}@example.org", "--ca", "Example Sub", "--p12-out", str(p12),
                *(["--legacy-p12"] if legacy else []))  # fmt: skip
        loaded = pkcs12.load_pkcs12(p12.read_bytes(), PASSPHRASE.encode())
        assert loaded.key is not None and loaded.cert is not None
        assert loaded.cert.certificate.public_key() == loaded.key.public_key()
        assert [c.certificate.subject.rfc4514_string() for c in loaded.additional_certs] == [
            "CN=Example Sub",
            "CN=Example CA",
        ]
        info = openssl("pkcs12", "-in", p12, "-passin", f"pass:{PASSPHRASE}", "-info", "-noout")
        assert algorithm in info.stderr + info.stdout


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_a_pkcs12_file_is_private_and_may_have_its_own_password(pki: Env) -> None:
    old_umask = os.umask(0o022)  # a plain file would be 0644
    try:
        shared = pki.directory / "shared.p12"
        shared.write_bytes(b"an older, world-readable file")
        shared.chmod(0o644)
        result = pki.run("ca", "issue", "--email", "p12-shared@example.org", "--key-type", "p256",
                         "--p12-out", str(shared))  # fmt: skip
        assert _mode(shared) == 0o600
        warning = [line for line in result.stderr.splitlines() if "warning" in line]
        assert len(warning) == 1 and "store passphrase" in warning[0] and "--p12-password-file" in warning[0]
        pkcs12.load_pkcs12(shared.read_bytes(), PASSPHRASE.encode())  # the default stays: the passphrase

        own = pki.directory / "own.p12"
        secret = pki.directory / "p12-password"
        secret.write_text("a password of its own\n")
        result = pki.run("ca", "issue", "--email", "p12-own@example.org", "--key-type", "p256",
                         "--p12-out", str(own), "--p12-password-file", str(secret))  # fmt: skip
        assert "warning" not in result.stderr and _mode(own) == 0o600
        loaded = pkcs12.load_pkcs12(own.read_bytes(), b"a password of its own")
        assert loaded.key is not None
        with pytest.raises(ValueError):
            pkcs12.load_pkcs12(own.read_bytes(), PASSPHRASE.encode())
    finally:
        os.umask(old_umask)
    cert_out = pki.directory / "public.pem"
    pki.run(
        "ca", "issue", "--email", "p12-cert@example.org", "--key-type", "p256", "--cert-out", str(cert_out)
    )
    assert _mode(cert_out) == 0o644  # a certificate is public: the usual mode
    assert "--p12-out only" in pki.fails(
        "ca", "issue", "--email", "x@example.org", "--p12-password-file", str(secret)
    )


def test_issue_from_a_csr_takes_only_its_key(pki: Env) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ceo@bank.example")]))
        .sign(key, hashes.SHA256())
    )
    path = pki.directory / "req.csr"
    path.write_bytes(csr.public_bytes(serialization.Encoding.DER))
    cert_out = pki.directory / "csr.pem"
    pki.run(
        "ca",
        "issue",
        "--email",
        "dora@example.org",
        "--csr",
        str(path),
        "--usage",
        "signing",
        "--cert-out",
        str(cert_out),
    )
    cert = _cert(cert_out)
    assert cert.public_key() == key.public_key()
    assert ca.describe_certificate(cert).addresses == ("dora@example.org",)
    assert cert.issuer.rfc4514_string() == "CN=Example CA"  # the default CA
    with open_store(pki.store) as store:
        [record] = store.find_by_email("dora@example.org")
        assert not record.has_private_key


# ------------------------------------------------------------------------------------------ revocation


def test_revoke_then_crl_lists_the_serial_with_its_reason(pki: Env) -> None:
    cert_out = pki.directory / "eve.pem"
    pki.run("ca", "issue", "--email", "eve@example.org", "--ca", "Example Sub", "--cert-out", str(cert_out))
    serial = f"{_cert(cert_out).serial_number:X}"
    out = pki.run("ca", "revoke", "--email", "eve@example.org", "--reason", "keyCompromise").stdout
    assert out == f"Revoked serial {serial} (eve@example.org) of 'Example Sub': keyCompromise\n"
    again = pki.run("ca", "revoke", "--serial", serial.lower()).stdout
    assert "revoked already" in again
    crl_path = pki.directory / "sub.crl"
    first = pki.run("ca", "crl", "-o", str(crl_path), "--ca", "Example Sub").stdout
    assert first.startswith("CRL number ") and "1 revoked" in first
    chain = pki.directory / "chain.pem"
    chain.write_bytes((pki.directory / "sub.pem").read_bytes() + (pki.directory / "root.pem").read_bytes())
    text = openssl("crl", "-in", crl_path, "-CAfile", chain, "-noout", "-text")
    assert "verify OK" in text.stderr + text.stdout
    printed = serial.rjust(len(serial) + len(serial) % 2, "0")  # openssl prints whole octets
    assert f"Serial Number: {printed}" in text.stdout and "Key Compromise" in text.stdout
    number = (
        x509.load_pem_x509_crl(crl_path.read_bytes())
        .extensions.get_extension_for_class(x509.CRLNumber)
        .value.crl_number
    )
    pki.run("ca", "crl", "-o", str(crl_path), "--ca", "Example Sub", "--der")
    crl = x509.load_der_x509_crl(crl_path.read_bytes())
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == number + 1
    # the newest CRL is in the store, for verifications against it: eve is refused, others are not
    with open_store(pki.store) as store:
        [cached] = store.crls(crl.issuer)
        assert cached.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == number + 1
        common = {
            "anchors": store.trust_anchors(Trust.EMAIL_SIGNING),
            "intermediates": [_cert(pki.directory / "sub.pem")],
            "crls": store.crls(),
            "at": dt.datetime.now(dt.UTC),
        }
    assert validate_path(_cert(cert_out), **common).failure is PathFailure.REVOKED  # type: ignore[arg-type]
    pki.run(
        "ca",
        "issue",
        "--email",
        "ivan@example.org",
        "--ca",
        "Example Sub",
        "--cert-out",
        str(pki.directory / "ivan.pem"),
    )
    # issued after ``at`` was taken, and valid at it all the same: new certificates are backdated a little
    assert validate_path(_cert(pki.directory / "ivan.pem"), **common).trusted  # type: ignore[arg-type]
    # the root's CRL does not list the intermediate's certificates
    pki.run("ca", "crl", "-o", str(pki.directory / "root.crl"))
    assert len(x509.load_pem_x509_crl((pki.directory / "root.crl").read_bytes())) == 0


# ------------------------------------------------------------------------------------------ ocsp-serve


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _serving(pki: Env, *options: str) -> Iterator[str]:
    """``smimekit ca ocsp-serve OPTIONS`` as its own process on a free loopback port; yields its URL."""
    port = _free_port()
    src = str(Path(smimekit.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)}
    env.pop("SMIMEKIT_PASSWORD", None)
    proc = subprocess.Popen(
        [sys.executable, "-c", "from smimekit.cli.main import main; main()", "--store", str(pki.store),
         "ca", "ocsp-serve", "--bind", f"127.0.0.1:{port}", *options],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.communicate()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the responder did not start listening"
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert b"OCSP responder stopped" in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.fixture
def responder(pki: Env) -> Iterator[str]:
    with _serving(pki, "--password-file", str(pki.password)) as url:
        yield url


def _status(pki: Env, url: str, leaf: Path) -> str:
    out = openssl(
        "ocsp", "-issuer", pki.directory / "sub.pem", "-cert", leaf, "-url", url,
        "-CAfile", pki.directory / "root.pem", "-resp_text",
    )  # fmt: skip
    assert "Response verify OK" in out.stderr + out.stdout
    return out.stdout


def test_ocsp_serve_says_good_then_revoked(pki: Env, responder: str) -> None:
    leaf = pki.directory / "frank.pem"
    pki.run("ca", "issue", "--email", "frank@example.org", "--ca", "Example Sub", "--cert-out", str(leaf))
    single = pki.directory / "frank-only.pem"
    single.write_bytes(_cert(leaf).public_bytes(serialization.Encoding.PEM))
    assert f"{single}: good" in _status(pki, responder, single)
    pki.run("ca", "revoke", "--email", "frank@example.org", "--reason", "superseded")
    text = _status(pki, responder, single)
    assert f"{single}: revoked" in text and "Reason: superseded" in text
    # the root answers for the intermediate too
    out = openssl("ocsp", "-issuer", pki.directory / "root.pem", "-cert", pki.directory / "sub.pem", "-url", responder,
                  "-CAfile", pki.directory / "root.pem")  # fmt: skip
    assert "sub.pem: good" in out.stdout


def _delegated_responder(
    pki: Env, ca_name: str, stem: str, *, age: dt.timedelta = dt.timedelta(minutes=5)
) -> tuple[x509.Certificate, Path, Path]:
    """A delegated OCSP responder certificate of the CA, made with the library as docs/ca.md shows; its
    certificate and (unencrypted) key files."""
    with open_store(pki.store) as store:
        record = store.find_ca(ca_name)
        assert record is not None
        key = ca.issuer_key(store.private_key(record.fingerprint, PASSPHRASE.encode()))
        responder_key = ec.generate_private_key(ec.SECP256R1())
        cert = ca.issue_ocsp_responder(
            issuer=ca.CaSigner(record.certificate, key),
            public_key=responder_key.public_key(),
            now=dt.datetime.now(dt.UTC) - age,
            days=1,
        )
        store.record_issued(record.fingerprint, cert, email=None)
    cert_path, key_path = pki.directory / f"{stem}.pem", pki.directory / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        responder_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert, cert_path, key_path


def test_ocsp_serve_with_a_delegated_responder_needs_no_ca_key(pki: Env) -> None:
    responder_cert, cert_path, key_path = _delegated_responder(pki, "Example Sub", "sub-ocsp")
    leaf = pki.directory / "olga.pem"
    pki.run("ca", "issue", "--email", "olga@example.org", "--ca", "Example Sub", "--cert-out", str(leaf))
    single = pki.directory / "olga-only.pem"
    single.write_bytes(_cert(leaf).public_bytes(serialization.Encoding.PEM))
    saved = pki.directory / "olga.ocsp"
    # no passphrase at all: the intermediate's key stays locked in the store
    options = ("--ca", "Example Sub", "--responder-cert", str(cert_path), "--responder-key", str(key_path))
    with _serving(pki, *options) as url:
        out = openssl(
            "ocsp", "-issuer", pki.directory / "sub.pem", "-cert", single, "-url", url,
            "-CAfile", pki.directory / "root.pem", "-respout", saved,
        )  # fmt: skip
        assert "Response verify OK" in out.stderr + out.stdout and f"{single}: good" in out.stdout
        response = ocsp.load_der_ocsp_response(saved.read_bytes())
        assert response.certificates == [responder_cert]  # signed by the delegated responder
        assert (
            response.responder_key_hash
            == x509.SubjectKeyIdentifier.from_public_key(responder_cert.public_key()).digest
        )
        # the root is not served by this process
        root_out = openssl("ocsp", "-issuer", pki.directory / "root.pem", "-cert", pki.directory / "sub.pem",
                           "-url", url, "-CAfile", pki.directory / "root.pem", check=False)  # fmt: skip
        assert "unauthorized" in (root_out.stdout + root_out.stderr).lower()


def test_ocsp_serve_refuses_unfit_responder_certificates(pki: Env) -> None:
    _, cert_path, key_path = _delegated_responder(pki, "Example Sub", "sub-ocsp-2")
    bind = ("ca", "ocsp-serve", "--bind", f"127.0.0.1:{_free_port()}")
    line = pki.fails(*bind, "--responder-cert", str(cert_path))
    assert "one --responder-key for each --responder-cert" in line
    not_ocsp = pki.directory / "sub.pem"  # a CA certificate without id-kp-OCSPSigning is no responder
    line = pki.fails(*bind, "--responder-cert", str(not_ocsp), "--responder-key", str(key_path))
    assert "not an OCSP responder certificate" in line
    other_key = pki.directory / "other.key"
    other_key.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    line = pki.fails(*bind, "--ca", "Example Sub", "--responder-cert", str(cert_path), "--responder-key",
                     str(other_key))  # fmt: skip
    assert "does not belong to the responder certificate" in line
    line = pki.fails(*bind, "--ca", "Example CA", "--responder-cert", str(cert_path), "--responder-key",
                     str(key_path))  # fmt: skip
    assert "would not be used: none of 'Example CA' issued it" in line
    _, old_cert, old_key = _delegated_responder(pki, "Example Sub", "sub-ocsp-old", age=dt.timedelta(days=2))
    line = pki.fails(*bind, "--ca", "Example Sub", "--responder-cert", str(old_cert), "--responder-key",
                     str(old_key))  # fmt: skip
    assert "is not valid now" in line


# ----------------------------------------------------------------------------------------------- help


def test_help_lists_every_ca_command_with_a_whole_summary() -> None:
    top = CliRunner().invoke(cli, ["--help"], terminal_width=80)
    assert top.exit_code == 0 and "  ca " in top.output
    group = CliRunner().invoke(cli, ["ca", "--help"], terminal_width=80)
    assert group.exit_code == 0, group.output
    listed = group.output.split("Commands:\n", 1)[1].splitlines()
    assert [line.split()[0] for line in listed] == ["crl", "init", "issue", "list", "ocsp-serve", "revoke"]
    assert all(line.rstrip().endswith(".") and not line.rstrip().endswith("...") for line in listed), listed
    serve = CliRunner().invoke(cli, ["ca", "ocsp-serve", "--help"], terminal_width=80)
    assert serve.exit_code == 0, serve.output
    assert serve.output.startswith("Usage: smimekit ca ocsp-serve [OPTIONS]")
    for option in ("--bind HOST:PORT", "--ca NAME", "--allow-public", "--responder-cert FILE",
                   "--responder-key FILE", "--password-file FILE", "--store PATH|URL"):  # fmt: skip
        assert option in serve.output, option


# --------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "command",
    [
        ("ca", "list"),
        ("ca", "list", "--json"),
        ("ca", "crl", "-o", "out.crl"),
        ("ca", "issue", "--email", "a@example.org"),
        ("ca", "revoke", "--email", "a@example.org"),
        ("ca", "ocsp-serve", "--bind", "127.0.0.1:PORT"),
    ],
)
def test_commands_but_init_never_create_a_store(tmp_path: Path, command: tuple[str, ...]) -> None:
    """A mistyped --store must not silently create an empty store (and its directory)."""
    env = _env(tmp_path)
    missing = tmp_path / "no-such-dir" / "nx.db"
    line = Env(tmp_path, missing, env.password).fails(
        *(a.replace("PORT", str(_free_port())) for a in command)
    )
    assert f"no certificate store at {missing}" in line and "smimekit ca init" in line
    assert not missing.parent.exists() and not (tmp_path / "out.crl").exists()


def test_errors_are_one_line(tmp_path: Path, pki: Env) -> None:
    empty = _env(tmp_path / "empty")
    open_store(empty.store).close()  # a store without a CA
    assert "there is no CA in the store yet" in empty.fails("ca", "issue", "--email", "a@example.org")
    assert "there is no CA in the store yet" in empty.fails("ca", "crl", "-o", str(tmp_path / "x.crl"))
    assert "there is no CA in the store yet" in empty.fails("ca", "revoke", "--email", "a@example.org")
    assert "No CA yet" in empty.run("ca", "list").stdout

    wrong = _env(tmp_path / "wrong")
    wrong.password.write_text("not the passphrase\n")
    line = Env(wrong.directory, pki.store, wrong.password).fails("ca", "issue", "--email", "a@example.org")
    assert "does not open the key of CA 'Example CA'" in line
    line = Env(wrong.directory, pki.store, wrong.password).fails("ca", "init", "--name", "Second Root")
    assert "does not open the keys already in the store" in line  # one passphrase per store
    pki.run("ca", "issue", "--email", "grace@example.org", "--ca", "Example Sub")
    line = Env(wrong.directory, pki.store, wrong.password).fails(
        "ca", "revoke", "--email", "grace@example.org", "--password-file", str(wrong.password)
    )
    assert "does not open the key of CA 'Example Sub'" in line
    with open_store(pki.store) as store:
        sub = store.find_ca("Example Sub")
        assert sub is not None
        assert all(r.revoked_at is None for r in store.issued(sub.fingerprint, email="grace@example.org"))
    line = Env(wrong.directory, pki.store, wrong.password).fails("ca", "crl", "-o", str(tmp_path / "x.crl"))
    assert "does not open the key" in line and not (tmp_path / "x.crl").exists()

    assert "no certificate issued to nobody@example.org" in pki.fails(
        "ca", "revoke", "--email", "nobody@example.org"
    )
    assert "no certificate issued to serial ABC" in pki.fails("ca", "revoke", "--serial", "abc")
    assert "no CA named 'Nope'" in pki.fails("ca", "issue", "--email", "a@example.org", "--ca", "Nope")
    assert "exists already" in pki.fails("ca", "init", "--name", "Example CA")
    assert "the CA keys are kept encrypted" in pki.fails(
        "ca", "issue", "--email", "a@example.org", password=False
    )
    assert "can only sign" in pki.fails(
        "ca", "issue", "--email", "a@example.org", "--key-type", "ed25519", "--usage", "both"
    )
    assert "X25519" in pki.fails(
        "ca",
        "issue",
        "--email",
        "a@example.org",
        "--key-type",
        "x25519",
        "--p12-out",
        str(tmp_path / "x.p12"),
    )
    assert "cannot be used with --csr" in pki.fails(
        "ca", "issue", "--email", "a@example.org", "--csr", "x.csr", "--p12-out", "x.p12"
    )
    assert "not a plain e-mail address" in pki.fails("ca", "issue", "--email", "not-an-address")
    assert "http://" in pki.fails("ca", "init", "--name", "X", "--crl-url", "ldap://x/")
    assert "ca issuers url must be an http:// URL" in pki.fails(
        "ca", "init", "--name", "X", "--ca-issuers-url", "https://x/root.der"
    )
    junk = tmp_path / "junk.csr"
    junk.write_bytes(b"junk")
    assert "not a certificate signing request" in pki.fails(
        "ca", "issue", "--email", "a@example.org", "--csr", str(junk)
    )
    assert "not a loopback address" in pki.fails("ca", "ocsp-serve", "--bind", f"0.0.0.0:{_free_port()}")
    assert "HOST:PORT" in pki.fails("ca", "ocsp-serve", "--bind", "localhost")


def test_the_password_may_come_from_the_environment(tmp_path: Path) -> None:
    env = _env(tmp_path / "envpw")
    result = CliRunner().invoke(
        cli, ["--store", str(env.store), "ca", "init", "--name", "Env CA", "--key-type", "p256"],
        env={"SMIMEKIT_PASSWORD": "from the environment"}, catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    with open_store(env.store) as store:
        record = store.find_ca("Env CA")
        assert record is not None
        store.private_key(record.fingerprint, b"from the environment")


def test_the_outside_flow_with_the_store_from_the_environment(tmp_path: Path) -> None:
    """Exactly the commands outside checks rely on, with SMIMEKIT_STORE naming the store."""
    env = _env(tmp_path / "outside")
    runner_env = {"SMIMEKIT_STORE": str(env.store)}
    password = ["--password-file", str(env.password)]

    def run(*args: str) -> Result:
        result = CliRunner().invoke(cli, [*args, *password], env=runner_env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result

    run("ca", "init", "--name", "Example CA", "--cert-out", str(tmp_path / "ca.pem"))
    run("ca", "issue", "--email", "user@example.com", "--p12-out", str(tmp_path / "user.p12"))
    loaded = pkcs12.load_pkcs12((tmp_path / "user.p12").read_bytes(), PASSPHRASE.encode())
    assert loaded.cert is not None
    serial = loaded.cert.certificate.serial_number
    run("ca", "revoke", "--email", "user@example.com")
    run("ca", "crl", "-o", str(tmp_path / "ca.crl"))
    text = openssl("crl", "-in", tmp_path / "ca.crl", "-CAfile", tmp_path / "ca.pem", "-noout", "-text")
    assert "verify OK" in text.stderr + text.stdout
    hex_serial = f"{serial:X}".rjust(len(f"{serial:X}") + len(f"{serial:X}") % 2, "0")
    assert f"Serial Number: {hex_serial}" in text.stdout
    assert env.store.exists()


@pytest.mark.skipif(
    bool(_gpgsm.missing()), reason="GnuPG's S/MIME tools are not installed (apt-get install gpgsm gpg-agent)"
)
def test_gpgsm_imports_a_legacy_pkcs12_from_ca_issue(tmp_path: Path, pki: Env) -> None:
    assert len(PASSPHRASE) < 32  # gpgsm 2.2 cannot import PKCS#12 with longer passphrases
    root = _cert(pki.directory / "root.pem")
    with _gpgsm.GpgsmHome(
        tmp_path / "gnupg", passphrase=PASSPHRASE.encode(), faked_time=dt.datetime.now(dt.UTC)
    ) as home:
        home.trust(root)
        # gpgsm 2.2 refuses about one PKCS#12 in 64 for the salts it was given (see _gpgsm): a fresh one then
        for attempt in range(_gpgsm.ATTEMPTS):
            p12 = tmp_path / f"henry-{attempt}.p12"
            pki.run(
                "ca",
                "issue",
                "--email",
                "henry@example.org",
                "--ca",
                "Example Sub",
                "--p12-out",
                str(p12),
                "--legacy-p12",
            )
            run = home.run("--import", p12, secret=True, check=False)
            if run.returncode == 0 or "error parsing or decrypting the PKCS#12 file" not in run.stderr:
                break
        assert run.returncode == 0, str(run)
        cert = pkcs12.load_pkcs12(p12.read_bytes(), PASSPHRASE.encode()).cert
        assert cert is not None
        assert _gpgsm.sha1_fingerprint(cert.certificate) in home.secret_keys()
        listing = home.run("--with-colons", "--list-keys", "henry@example.org").colons()
        assert listing[_gpgsm.sha1_fingerprint(cert.certificate)][1] == _gpgsm.sha1_fingerprint(
            _cert(pki.directory / "sub.pem")
        )
