"""The S/MIME commands with the certificate and key store, end to end through click's CliRunner: sign
--from an address, verify against the store's anchors, encrypt --to addresses, decrypt and open with no
key options, the recipient checks (revocation, trust) and the cipher chosen from what the store knows.

The store is a real SQLite file made with the Store API from a test PKI built in code; it is built once
and copied for each test (keys at rest take a deliberate while to encrypt).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from smimekit import mime
from smimekit.cli import _secrets
from smimekit.cli.main import cli
from smimekit.cms import ContentCipher
from smimekit.store import Trust, open_store
from tests.servers import _system
from tests.servers.slapd import Slapd
from tests.testpki import NOW, Identity, make_ca, make_ee

PASSPHRASE = "store pass ☃"
GCM = ContentCipher.AES256_GCM.value
CBC = ContentCipher.AES256_CBC.value
LDAP_BASE = "dc=example,dc=org"


def run(args: list[str], *, code: int = 0, input: bytes | None = None) -> Result:
    result = CliRunner().invoke(cli, args, input=input, catch_exceptions=False)
    assert result.exit_code == code, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    return result


def fails(args: list[str], *, code: int = 2) -> str:
    """A command that must fail: exit ``code``, exactly one line on stderr; returns that line."""
    result = run(args, code=code)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("smimekit: error: "), result.stderr
    return lines[0]


class World:
    """A root CA trusted for e-mail, an intermediate, and people; the store holds their certificates and
    the private keys of alice, bob, carol (EC) and dave (under the intermediate)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ca = make_ca("Store CLI Root")
        self.inter = make_ca("Store CLI Intermediate", issuer=self.ca)
        self.other = make_ca("Nobody Trusts This Root")
        self.people = {
            "alice": make_ee("alice@example.org", self.ca),
            "bob": make_ee("bob@example.org", self.ca),
            "carol": make_ee("carol@example.org", self.ca, key_kind="p256"),
            "dave": make_ee("dave@example.org", self.inter),
            "mallory": make_ee("mallory@example.org", self.other),
            "frank": make_ee("frank@example.org", self.ca),  # certificate only: no key in the store
        }
        self.store = root / "template.sqlite3"
        with open_store(self.store) as store:
            store.add_certificate(self.ca.cert, trust=Trust.EMAIL)
            store.add_certificate(self.inter.cert)
            for name, ident in self.people.items():
                record = store.add_certificate(ident.cert)
                if name in ("alice", "bob", "carol", "dave"):
                    store.add_private_key(record.fingerprint, ident.key, PASSPHRASE.encode())
        (root / "pass.txt").write_text(PASSPHRASE + "\n", encoding="utf-8")
        (root / "wrong.txt").write_text("not the passphrase\n", encoding="utf-8")
        (root / "ca.pem").write_bytes(self.ca.cert_pem())
        (root / "mallory.crt").write_bytes(self.people["mallory"].cert_pem())

    def __call__(self, name: str) -> str:
        return str(self.root / name)

    def crl(self, *revoked: Identity, issuer: Identity | None = None) -> str:
        """A PEM file holding a CRL of ``issuer`` (the root) revoking ``revoked``, and an empty one."""
        issuer = issuer or self.ca
        out = b""
        for listed in (revoked, ()):
            builder = (
                x509.CertificateRevocationListBuilder()
                .issuer_name(issuer.cert.subject)
                .last_update(dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
                .next_update(dt.datetime.now(dt.UTC) + dt.timedelta(days=7))
            )
            for ident in listed:
                entry = (
                    x509.RevokedCertificateBuilder()
                    .serial_number(ident.cert.serial_number)
                    .revocation_date(NOW)
                    .build()
                )
                builder = builder.add_revoked_certificate(entry)
            out += builder.sign(issuer.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
        path = self.root / f"crl-{len(revoked)}-{revoked[0].cert.serial_number if revoked else 0}.pem"
        path.write_bytes(out)
        return str(path)


@pytest.fixture(scope="module")
def w(tmp_path_factory: pytest.TempPathFactory) -> World:
    return World(tmp_path_factory.mktemp("store-world"))


@pytest.fixture(autouse=True)
def store(w: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh copy of the store for each test, named by $SMIMEKIT_STORE; the cwd is the test's own."""
    path = tmp_path / "store.sqlite3"
    shutil.copyfile(w.store, path)
    monkeypatch.setenv("SMIMEKIT_STORE", str(path))
    monkeypatch.delenv(_secrets.PASSWORD_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    yield path


@pytest.fixture
def msg(tmp_path: Path) -> str:
    path = tmp_path / "msg.eml"
    composed = mime.compose(
        from_="alice@example.org",
        to=["bob@example.org", "carol@example.org"],
        subject="Plans",
        text="Grüße aus dem Store.\n",
    )
    path.write_bytes(composed.to_bytes())
    return str(path)


def _capabilities(path: Path, **announced: tuple[str, ...]) -> None:
    with open_store(path) as s:
        for who, caps in announced.items():
            s.record_correspondent(
                f"{who}@example.org",
                capabilities=caps,
                preferred_certificate=None,
                at=dt.datetime.now(dt.UTC),
            )


# ---------------------------------------------------------------------------------------------- the flow


def test_sign_from_then_verify_with_the_store_anchors(w: World, msg: str) -> None:
    run(["sign", "--from", "alice@example.org", "--password-file", w("pass.txt"), msg, "-o", "signed.eml"])
    out = run(["verify", "signed.eml"]).stdout  # no --trust: the store's root is the anchor
    assert "E-mail:       alice@example.org" in out
    assert "Trusted:      yes — at the signing time and now" in out and "CN=Store CLI Root" in out
    assert "Verdict:      OK: every signature is intact, valid and trusted" in out


def test_sign_from_puts_the_chain_from_the_store_in(w: World, msg: str, store: Path) -> None:
    run(["sign", "--from", "dave@example.org", "--password-file", w("pass.txt"), msg, "-o", "signed.eml"])
    # without the store, only the root given as a file: the intermediate must be in the signature
    run(["--store", str(store.with_name("none.sqlite3")), "verify", "--trust", w("ca.pem"), "signed.eml"])


def test_openssl_reads_what_the_store_signed_and_encrypted(w: World, msg: str, tmp_path: Path) -> None:
    """The real openssl verifies a signature made --from the store with only the root as anchor (the
    intermediate came from the store into the signature) and decrypts what was encrypted --to an address."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    run(["sign", "--from", "dave@example.org", "--password-file", w("pass.txt"), msg, "-o", "signed.eml"])
    verified = subprocess.run(
        ["openssl", "cms", "-verify", "-in", "signed.eml", "-CAfile", w("ca.pem"), "-purpose", "smimesign"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert verified.returncode == 0, verified.stderr.decode(errors="replace")
    assert b"Gr=C3=BC=C3=9Fe aus dem Store." in verified.stdout
    run(["encrypt", "--to", "bob@example.org", msg, "-o", "e.eml"])
    _cert, key = w.people["bob"].write_pem(tmp_path, "bob")
    decrypted = subprocess.run(
        ["openssl", "cms", "-decrypt", "-in", "e.eml", "-inkey", str(key)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert decrypted.returncode == 0, decrypted.stderr.decode(errors="replace")
    assert b"Gr=C3=BC=C3=9Fe aus dem Store." in decrypted.stdout
    # openssl names the recipients by subject key identifier (-keyid): the store finds bob's and carol's keys
    carol_cert, _ = w.people["carol"].write_pem(tmp_path, "carol")
    bob_cert = tmp_path / "bob.crt"
    Path("entity.txt").write_bytes(b"Content-Type: text/plain\r\n\r\nFrom OpenSSL, by key id.\r\n")
    encrypted = subprocess.run(
        ["openssl", "cms", "-encrypt", "-aes256", "-keyid", "-in", "entity.txt", "-out", "ossl.eml",
         str(bob_cert), str(carol_cert)],
        capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    assert encrypted.returncode == 0, encrypted.stderr.decode(errors="replace")
    out = run(["decrypt", "--password-file", w("pass.txt"), "ossl.eml"]).stdout_bytes
    assert b"From OpenSSL, by key id." in out


def test_encrypt_to_two_addresses_then_decrypt_and_open_without_key_options(w: World, msg: str) -> None:
    pw = ["--password-file", w("pass.txt")]
    run(["sign", "--from", "alice@example.org", *pw, msg, "-o", "signed.eml"])
    result = run(
        ["encrypt", "--to", "bob@example.org", "--to", "carol@example.org", "signed.eml", "-o", "e.eml"]
    )
    assert result.stderr.startswith(
        "smimekit: content cipher AES-256-CBC: nothing is known of the capabilities"
    )
    assert b"smime-type=enveloped-data" in Path("e.eml").read_bytes()
    out = run(["decrypt", *pw, "e.eml"]).stdout_bytes
    assert (
        b"multipart/signed" in out and "Grüße aus dem Store.".encode() in mime.parse(out).parts[0].decoded()
    )
    opened = run(["open", *pw, "e.eml", "-o", "inner.eml"]).stdout
    assert (
        "Layer 1: encrypted (enveloped-data)" in opened
        and "Decrypted:    AES-256-CBC, key transport" in opened
    )
    assert (
        "Layer 2: signed" in opened
        and "Verdict:      OK: every signature is intact, valid and trusted" in opened
    )
    assert mime.parse(Path("inner.eml").read_bytes()).headers.get("Subject") == "Plans"


def test_open_finds_the_key_behind_an_opaque_signature(w: World, msg: str, store: Path) -> None:
    """Encrypt, then sign opaquely: the recipients are hidden inside the signed-data until it is
    unwrapped, so open tries the store's keys (unlocking each only when it comes to it)."""
    pw = ["--password-file", w("pass.txt")]
    run(["encrypt", "--to", "bob@example.org", msg, "-o", "e.eml"])
    run(
        [
            "sign",
            "--store",
            str(store),
            "--from",
            "alice@example.org",
            "--opaque",
            *pw,
            "e.eml",
            "-o",
            "s.eml",
        ]
    )
    out = run(["open", *pw, "s.eml"]).stdout
    assert "Layer 1: signed" in out and "Layer 2: encrypted (enveloped-data)" in out
    assert "Verdict:      OK: every signature is intact, valid and trusted" in out


def test_decrypt_finds_the_key_agreement_recipient(w: World, msg: str) -> None:
    run(["encrypt", "--to", "carol@example.org", msg, "-o", "e.eml"])
    out = run(["decrypt", "--password-file", w("pass.txt"), "e.eml"]).stdout_bytes
    assert b"Subject: Plans" in out


# ---------------------------------------------------------------------------------------------- the cipher


def test_a_recipient_without_gcm_gets_cbc_and_the_reason_says_so(w: World, msg: str, store: Path) -> None:
    _capabilities(store, bob=(CBC,), carol=(GCM, CBC))
    result = run(["encrypt", "--to", "bob@example.org", "--to", "carol@example.org", msg, "-o", "e.eml"])
    assert result.stderr == (
        "smimekit: content cipher AES-256-CBC: bob@example.org did not announce AES-256-GCM in its S/MIME "
        "capabilities\n"
    )
    assert b"smime-type=enveloped-data" in Path("e.eml").read_bytes()
    _capabilities(store, bob=(GCM, CBC))
    doc = json.loads(
        run(
            [
                "encrypt",
                "--json",
                "--to",
                "bob@example.org",
                "--to",
                "carol@example.org",
                "--to",
                "bob@example.org",
                msg,
                "-o",
                "e.eml",
            ]
        ).stdout
    )
    assert doc["cipher"] == "AES-256-GCM" and doc["cipher_reason"] == (
        "AES-256-GCM: every recipient announced support for it"
    )
    assert [r["named"] for r in doc["recipients"]] == ["bob@example.org", "carol@example.org"]  # bob once
    assert [r["source"] for r in doc["recipients"]] == ["store", "store"]
    assert all(r["trusted"] for r in doc["recipients"])
    assert b"smime-type=authEnveloped-data" in Path("e.eml").read_bytes()
    forced = run(["encrypt", "--to", "bob@example.org", "--cipher", "aes128-gcm", msg, "-o", "e.eml"])
    assert (
        forced.stderr
        == "smimekit: content cipher AES-128-GCM as requested, although bob@example.org has not announced it\n"
    )


# ---------------------------------------------------------------------------------------------- recipient checks


def test_a_revoked_recipient_is_refused(w: World, msg: str) -> None:
    crl = w.crl(w.people["bob"])
    line = fails(
        ["encrypt", "--to", "carol@example.org", "--to", "bob@example.org", "--crl", crl, msg, "-o", "e.eml"]
    )
    assert line.startswith("smimekit: error: cannot encrypt to bob@example.org: ") and "revoked" in line
    assert not Path("e.eml").exists()
    run(["encrypt", "--to", "carol@example.org", "--crl", crl, msg, "-o", "e.eml"])  # carol is not listed
    run(["encrypt", "--to", "bob@example.org", "--crl", crl, "--revocation", "off", msg, "-o", "e.eml"])
    hard = fails(["encrypt", "--to", "carol@example.org", "--revocation", "hard", msg, "-o", "e.eml"])
    assert hard.startswith(
        "smimekit: error: cannot encrypt to carol@example.org: "
    )  # nothing says it is good
    run(["encrypt", "--to", "carol@example.org", "--revocation", "hard", "--crl", crl, msg, "-o", "e.eml"])


def test_an_untrusted_recipient_needs_allow_untrusted(w: World, msg: str) -> None:
    line = fails(["encrypt", "--to", "mallory@example.org", msg, "-o", "e.eml"])
    assert (
        "cannot encrypt to mallory@example.org: no path to a trust anchor" in line
        and "--allow-untrusted" in line
    )
    result = run(["encrypt", "--to", "mallory@example.org", "--allow-untrusted", msg, "-o", "e.eml"])
    assert result.stderr.splitlines()[0].startswith(
        "smimekit: warning: encrypting to an untrusted certificate: mallory@example.org: not trusted"
    )
    assert "cannot encrypt to " + w("mallory.crt") in fails(["encrypt", "--to", w("mallory.crt"), msg])


def test_encrypt_falls_back_to_an_ldap_directory(w: World, msg: str, tmp_path: Path, store: Path) -> None:
    """An address the store lacks is looked up in a real slapd; what it publishes is validated like any
    other recipient (a certificate of an unknown CA is refused)."""
    if _system.which("slapd") is None:
        pytest.skip("slapd is not installed")
    gina = make_ee("gina@example.org", w.ca)
    rogue = make_ee("rogue@example.org", w.other)
    with Slapd(tmp_path, LDAP_BASE) as slapd:
        slapd.add_person(
            "gina@example.org", "Gina Example", [gina.cert.public_bytes(serialization.Encoding.DER)]
        )
        slapd.add_person(
            "rogue@example.org", "Rogue Example", [rogue.cert.public_bytes(serialization.Encoding.DER)]
        )
        ldap = ["--ldap", slapd.url, "--ldap-base", LDAP_BASE]
        doc = json.loads(
            run(["encrypt", "--json", "--to", "gina@example.org", *ldap, msg, "-o", "e.eml"]).stdout
        )
        assert doc["recipients"][0]["source"] == "ldap" and doc["recipients"][0]["trusted"] is True
        assert doc["recipients"][0]["sha256_fingerprint"] == gina.cert.fingerprint(hashes.SHA256()).hex()
        with open_store(store) as s:  # kept in the store: the next message needs no directory
            assert [r.source for r in s.find_by_email("gina@example.org")] == ["ldap"]
        line = fails(["encrypt", "--to", "rogue@example.org", *ldap, msg])
        assert "cannot encrypt to rogue@example.org: no path to a trust anchor" in line
        assert "no usable certificate" in fails(["encrypt", "--to", "nobody@example.org", *ldap, msg])
    assert "--ldap and --ldap-base go together" in fails(
        ["encrypt", "--to", "gina@example.org", "--ldap", "ldap://127.0.0.1:1/", msg]
    )


# ---------------------------------------------------------------------------------------------- verify and revocation


def test_verify_with_a_crl_and_the_revocation_modes(w: World, msg: str) -> None:
    run(["sign", "--from", "alice@example.org", "--password-file", w("pass.txt"), msg, "-o", "signed.eml"])
    result = run(["verify", "--crl", w.crl(w.people["alice"]), "signed.eml"], code=1)
    assert "Trusted:      no" in result.stdout and "revoked" in result.stdout
    assert "revoked" in result.stderr and len(result.stderr.splitlines()) == 1
    pems = Path(w.crl(w.people["alice"])).read_bytes().split(b"-----END X509 CRL-----")[:2]
    ders = [
        x509.load_pem_x509_crl(p + b"-----END X509 CRL-----\n").public_bytes(serialization.Encoding.DER)
        for p in pems
    ]
    Path("two.der").write_bytes(ders[1] + ders[0])  # DER, several in one file: the second one revokes
    assert "revoked" in run(["verify", "--crl", "two.der", "signed.eml"], code=1).stderr
    Path("bad.crl").write_bytes(b"\x30\x03abc")
    assert "bad.crl: CRL 1 cannot be read" in fails(["verify", "--crl", "bad.crl", "signed.eml"])
    good = run(["verify", "--crl", w.crl(w.people["bob"]), "signed.eml"]).stdout
    assert "Revocation:   good — CRL (given)" in good
    hard = run(["verify", "--revocation", "hard", "signed.eml"], code=1).stdout  # nothing says it is good
    assert "Trusted:      no" in hard
    run(["verify", "--revocation", "off", "--crl", w.crl(w.people["alice"]), "signed.eml"])


def test_the_store_crls_count_and_a_stale_one_is_left_out(w: World, msg: str, store: Path) -> None:
    run(["sign", "--from", "alice@example.org", "--password-file", w("pass.txt"), msg, "-o", "signed.eml"])
    stale = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(w.ca.cert.subject)
        .last_update(NOW - dt.timedelta(days=20))
        .next_update(NOW - dt.timedelta(days=10))
        .sign(w.ca.key, hashes.SHA256())
    )
    with open_store(store) as s:
        s.put_crl(stale)
    run(["verify", "signed.eml"])  # a stale CRL would fail the path: it is not handed in
    with open_store(store) as s:
        s.put_crl(
            x509.load_pem_x509_crl(
                Path(w.crl(w.people["alice"])).read_bytes().split(b"-----END X509 CRL-----")[0]
                + b"-----END X509 CRL-----\n"
            )
        )
    out = run(["verify", "signed.eml"], code=1).stdout
    assert "Revocation:   revoked" in out and "CRL (given)" in out


def test_verify_says_plainly_when_no_anchor_is_known(w: World, msg: str, tmp_path: Path) -> None:
    run(["sign", "--from", "alice@example.org", "--password-file", w("pass.txt"), msg, "-o", "signed.eml"])
    empty = tmp_path / "empty.sqlite3"
    open_store(empty).close()
    line = fails(["--store", str(empty), "verify", "signed.eml"])
    assert line.startswith("smimekit: error: no trust anchor is known")


def test_verify_harvests_the_signer_for_encrypting_later(w: World, msg: str, tmp_path: Path) -> None:
    bob = w.people["bob"]
    cert, key = bob.write_pem(tmp_path, "bob")
    run(["sign", "--cert", str(cert), "--key", str(key), msg, "-o", "from-bob.eml"])
    learner = tmp_path / "learner.sqlite3"
    with open_store(learner) as s:
        s.add_certificate(w.ca.cert, trust=Trust.EMAIL)
    at = ["--store", str(learner)]
    out = run([*at, "verify", "--no-harvest", "from-bob.eml"]).stdout
    assert "Harvested" not in out
    assert "the store holds no certificate for bob@example.org" in fails(
        [*at, "encrypt", "--to", "bob@example.org", msg]
    )
    out = run([*at, "verify", "from-bob.eml"]).stdout
    assert "Harvested:    1 certificate and the signer's capabilities kept in the store" in out
    result = run([*at, "encrypt", "--to", "bob@example.org", msg, "-o", "e.eml"])
    assert result.stderr == "smimekit: content cipher AES-256-GCM: the recipient announced support for it\n"


# ---------------------------------------------------------------------------------------------- errors


def test_errors_are_one_line(w: World, msg: str) -> None:
    pw = ["--password-file", w("pass.txt")]
    assert "the store holds no certificate for nobody@example.org" in fails(
        ["sign", "--from", "nobody@example.org", *pw, msg]
    )
    assert "no private key for any" in fails(["sign", "--from", "frank@example.org", *pw, msg])
    assert "the store holds no certificate for nobody@example.org" in fails(
        ["encrypt", "--to", "bob@example.org", "--to", "nobody@example.org", msg]
    )
    wrong = fails(["sign", "--from", "alice@example.org", "--password-file", w("wrong.txt"), msg])
    assert "the store's key for alice@example.org" in wrong and "wrong passphrase" in wrong
    missing = fails(["--store", "missing.sqlite3", "sign", "--from", "alice@example.org", *pw, msg])
    assert missing.startswith(
        "smimekit: error: no certificate store at missing.sqlite3 to sign as alice@example.org"
    )
    assert not Path("missing.sqlite3").exists()  # never created by a command that only reads it
    needs = fails(["sign", "--from", "alice@example.org", msg])
    assert "give --password-file or set SMIMEKIT_PASSWORD" in needs
    assert "not both" in fails(["sign", "--from", "alice@example.org", "--cert", w("ca.pem"), msg])
    # a message for frank only: the store has his certificate but not his key
    run(["encrypt", "--to", "frank@example.org", msg, "-o", "frank.eml"])
    for command in ("decrypt", "open"):
        line = fails([command, *pw, "frank.eml"], code=1)
        assert "not encrypted for any key in the store" in line and "key transport to serial" in line
