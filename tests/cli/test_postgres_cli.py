"""The user's whole flow through the real CLI on a PostgreSQL store (one private server and database for
this module): a CA made, two people issued certificates, a message signed, verified against the store's
anchor, encrypted to both and decrypted with the key the store holds, a PKCS#12 export openssl reads, and
a revocation that a CRL from the same store makes a hard verification refuse.

The store is named by ``--store`` for most commands and by SMIMEKIT_STORE for some, as users do both."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography import x509

from smimekit.cli import _secrets
from smimekit.cli.main import cli
from tests.ca._support import openssl
from tests.pgserver import PgServer, start_postgres

PASSPHRASE = "shared store passphrase"
ALICE, BOB = "alice@example.org", "bob@example.org"


@pytest.fixture(autouse=True)
def _no_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_secrets, "stdin_is_tty", lambda: False)


@dataclass(frozen=True)
class Env:
    """A PostgreSQL store URL and a directory for the user's files."""

    url: str
    directory: Path
    password: Path

    def path(self, name: str) -> str:
        return str(self.directory / name)

    def run(self, *args: str, code: int = 0, by_env: bool = False) -> Result:
        """``smimekit ARGS`` on the store (by --store, or by SMIMEKIT_STORE with ``by_env``)."""
        head = [] if by_env else ["--store", self.url]
        env = {"SMIMEKIT_STORE": self.url} if by_env else None
        result = CliRunner().invoke(cli, [*head, *args], env=env, catch_exceptions=False)
        assert result.exit_code == code, (result.exit_code, result.output)
        assert "Traceback" not in result.output
        return result

    def fails(self, *args: str, code: int) -> Result:
        """A failing command: exit ``code`` and exactly one error line on stderr."""
        result = self.run(*args, code=code)
        lines = [line for line in result.stderr.splitlines() if line.startswith("smimekit: error: ")]
        assert len(lines) == 1, result.stderr
        return result


@pytest.fixture(scope="module")
def pg_server() -> Iterator[PgServer]:
    server = start_postgres()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def env(pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory) -> Env:
    """A store holding 'Example CA' and certificates and keys for Alice and Bob."""
    directory = tmp_path_factory.mktemp("pg-cli")
    password = directory / "password"
    password.write_text(PASSPHRASE + "\n", encoding="utf-8")
    e = Env(pg_server.create_database("cli"), directory, password)
    pw = ("--password-file", str(password))
    out = e.run("ca", "init", "--name", "Example CA", "--cert-out", e.path("root.pem"), *pw).stdout
    assert out.startswith("Created root CA (trusted for e-mail in the store) 'Example CA'")
    for email in (ALICE, BOB):
        out = e.run("ca", "issue", "--email", email, "--key-type", "p256", *pw, by_env=email == BOB).stdout
        assert out.startswith(f"Issued a certificate for {email} by 'Example CA': serial ")
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = ALICE, BOB, "Quarterly figures"
    msg.set_content("Hello Bob,\nthe figures are attached.\n")
    (directory / "msg.eml").write_bytes(msg.as_bytes(policy=msg.policy.clone(linesep="\r\n")))
    return e


def _sign(env: Env, sender: str = ALICE) -> str:
    signed = env.path(f"signed-{sender}.eml")
    env.run("sign", "--from", sender, "--password-file", str(env.password), "-o", signed, env.path("msg.eml"))
    return signed


def test_sign_from_the_store_and_verify_against_its_anchor(env: Env) -> None:
    signed = _sign(env)
    assert b"multipart/signed" in Path(signed).read_bytes()
    out = env.run("verify", signed, by_env=True).stdout  # no --trust: the store's anchor
    assert "  Trusted:      yes — at the signing time and now: " in out and out.count("→ CN=Example CA") == 1
    assert "Verdict:      OK: every signature is intact, valid and trusted" in out
    assert "From:         alice@example.org — matches a signer" in out
    # without the store the same message has no trust anchor: a one-line input error
    other = CliRunner().invoke(cli, ["verify", signed], catch_exceptions=False)
    assert other.exit_code == 2 and other.stdout == ""
    (line,) = other.stderr.splitlines()
    assert line.startswith("smimekit: error: no trust anchor is known")


def test_encrypt_to_both_and_decrypt_with_the_store_key(env: Env) -> None:
    encrypted = env.path("encrypted.eml")
    result = env.run("encrypt", "--to", BOB, "--to", ALICE, "-o", encrypted, env.path("msg.eml"))
    assert b"application/pkcs7-mime" in Path(encrypted).read_bytes()
    assert b"the figures are attached" not in Path(encrypted).read_bytes()
    # nothing is known yet of Bob's capabilities: the cipher every client reads, and why
    (line,) = result.stderr.splitlines()
    assert line.startswith("smimekit: content cipher AES-256-CBC: ") and BOB in line
    out = env.run("decrypt", "--password-file", str(env.password), encrypted).stdout_bytes
    assert b"the figures are attached" in out and b"Subject: Quarterly figures" in out
    # the wrong passphrase does not open the store's keys: a one-line error, nothing written
    wrong = env.directory / "wrong"
    wrong.write_text("not the passphrase\n")
    failed = env.fails("decrypt", "--password-file", str(wrong), encrypted, code=2)
    assert b"the figures" not in failed.stdout_bytes
    assert "wrong passphrase for the key in the store" in failed.stderr


def test_export_a_legacy_pkcs12_that_openssl_reads(env: Env) -> None:
    p12 = env.directory / "bob.p12"
    result = env.run(
        "keys", "export", BOB, "--p12-out", str(p12), "--legacy", "--password-file", str(env.password)
    )
    assert "warning" in result.stderr and "store passphrase" in result.stderr
    assert p12.stat().st_mode & 0o777 == 0o600
    info = openssl("pkcs12", "-in", p12, "-passin", f"pass:{PASSPHRASE}", "-info", "-noout")
    assert "pbeWithSHA1And3-KeyTripleDES-CBC" in info.stderr + info.stdout
    pem = openssl("pkcs12", "-in", p12, "-passin", f"pass:{PASSPHRASE}", "-nodes").stdout
    assert "BEGIN PRIVATE KEY" in pem and "subject=CN=" in pem.replace(" = ", "=")
    cert = x509.load_pem_x509_certificates(pem.encode())[0]
    addresses = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert addresses.get_values_for_type(x509.RFC822Name) == [BOB]


def test_revoke_then_a_hard_verification_with_the_crl_fails(env: Env) -> None:
    carol = "carol@example.org"  # her own certificate: the other tests keep Alice's and Bob's valid
    pw = ("--password-file", str(env.password))
    env.run("ca", "issue", "--email", carol, "--key-type", "p256", *pw)
    signed = _sign(env, carol)
    crl = env.path("root.crl")
    out = env.run("ca", "crl", "-o", crl, *pw).stdout
    assert out.startswith("CRL number ") and "of 'Example CA': 0 revoked, next update " in out
    first = int(out.split()[2])
    ok = env.run("verify", "--crl", crl, "--revocation", "hard", signed).stdout
    assert "  Revocation:   good — CRL (given)" in ok  # hard mode passes: the CRL does not list her

    out = env.run("ca", "revoke", "--email", carol, "--reason", "keyCompromise").stdout
    assert out.startswith("Revoked serial ") and out.endswith(f" ({carol}) of 'Example CA': keyCompromise\n")
    out = env.run("ca", "crl", "-o", crl, *pw).stdout
    assert out.startswith(f"CRL number {first + 1} of 'Example CA': 1 revoked, ")
    result = env.run("verify", "--crl", crl, "--revocation", "hard", signed, code=1)
    assert "  Revocation:   revoked (keyCompromise, " in result.stdout and "— CRL (given)" in result.stdout
    assert "Verdict:      NOT OK: 1 of 1 signatures failed" in result.stdout
    (line,) = result.stderr.splitlines()
    assert line.startswith("smimekit: error: the signature does not verify: ") and "is revoked" in line
