"""The S/MIME commands (``sign``, ``verify``, ``encrypt``, ``decrypt``, ``open``) driven through click's
CliRunner as a user would drive them, with the files of a test PKI made in code; a few interop checks
with the real ``openssl cms`` and one run of the real console script."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from smimekit import mime
from smimekit.cli import _secrets, smime_cmds
from smimekit.cli.main import cli
from smimekit.errors import DecryptionError
from tests.testpki import NOW, Identity, make_ca, make_ee

PASSWORD = "correct horse ☃"
FIXED = DecryptionError.MESSAGE
HAS_OPENSSL = shutil.which("openssl") is not None
CIPHERS = ["aes256-gcm", "aes128-gcm", "aes256-cbc", "aes128-cbc", "chacha20-poly1305"]

# ------------------------------------------------------------------------------------------- helpers


def run(
    args: list[str], *, input: bytes | str | None = None, code: int = 0, env: dict[str, str] | None = None
) -> Result:
    result = CliRunner().invoke(cli, args, input=input, env=env, catch_exceptions=False)
    assert result.exit_code == code, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    return result


def fails(
    args: list[str], *, code: int = 2, input: bytes | None = None, env: dict[str, str] | None = None
) -> str:
    """Run a command that must fail: exit ``code``, one line on stderr, no traceback; returns the line."""
    result = CliRunner().invoke(cli, args, input=input, env=env, catch_exceptions=False)
    assert result.exit_code == code, (result.exit_code, result.output)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("smimekit: error: "), lines[0]
    assert "Traceback" not in result.output
    return lines[0]


class Files:
    """The PEM, DER and PKCS#12 files of the test PKI, in one directory for the whole module."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ca = make_ca("smimekit CLI Root")
        self.other_ca = make_ca("Some Other Root")
        self.inter = make_ca("smimekit CLI Intermediate", issuer=self.ca)
        self.ids: dict[str, Identity] = {
            "alice": make_ee("alice@example.org", self.ca),
            "bob": make_ee("bob@example.org", self.ca),
            "carol": make_ee("carol@example.org", self.ca, key_kind="p256"),
            "dave": make_ee("dave@example.org", self.inter),
            "erin": make_ee("erin@example.org", self.ca, key_kind="ed25519"),
            "mallory": make_ee("mallory@example.org", self.other_ca),
            "xavier": make_ee("xavier@example.org", self.ca, key_kind="x25519"),
            "old": make_ee(
                "old@example.org",
                self.ca,
                not_before=NOW - dt.timedelta(days=20),
                not_after=NOW - dt.timedelta(days=10),
            ),
        }
        for name, ident in self.ids.items():
            ident.write_pem(root, name)
        (root / "ca.pem").write_bytes(self.ca.cert_pem())
        (root / "other.pem").write_bytes(self.other_ca.cert_pem())
        (root / "inter.pem").write_bytes(self.inter.cert_pem())
        (root / "ca.der").write_bytes(self.ca.cert.public_bytes(serialization.Encoding.DER))
        alice = self.ids["alice"]
        enc = serialization.BestAvailableEncryption(PASSWORD.encode())
        pkcs8, trad = serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL
        (root / "alice-enc.key").write_bytes(alice.key.private_bytes(serialization.Encoding.PEM, pkcs8, enc))
        (root / "alice-trad-enc.key").write_bytes(
            alice.key.private_bytes(serialization.Encoding.PEM, trad, enc)
        )
        (root / "alice-enc.der").write_bytes(alice.key.private_bytes(serialization.Encoding.DER, pkcs8, enc))
        (root / "alice.der").write_bytes(
            alice.key.private_bytes(serialization.Encoding.DER, trad, serialization.NoEncryption())
        )
        (root / "alice.p12").write_bytes(
            pkcs12.serialize_key_and_certificates(b"alice", alice.key, alice.cert, [self.ca.cert], enc)
        )
        (root / "alice-open.p12").write_bytes(
            pkcs12.serialize_key_and_certificates(
                b"alice", alice.key, alice.cert, None, serialization.NoEncryption()
            )
        )
        (root / "password.txt").write_text(PASSWORD + "\n", encoding="utf-8")
        (root / "wrong-password.txt").write_text("not it\n", encoding="utf-8")
        (root / "garbage.bin").write_bytes(b"\x00\x01garbage\xff" * 20)

    def __call__(self, name: str) -> str:
        return str(self.root / name)


@pytest.fixture(scope="module")
def f(tmp_path_factory: pytest.TempPathFactory) -> Files:
    return Files(tmp_path_factory.mktemp("pki"))


@pytest.fixture(autouse=True)
def _cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(_secrets.PASSWORD_ENV, raising=False)
    # no store: these tests give keys and anchors as files (tests/cli/test_store_cli.py covers the store)
    monkeypatch.setenv("SMIMEKIT_STORE", str(tmp_path / "no-store.sqlite3"))
    yield


def message(sender: str = "alice@example.org", text: str = "Hallo Bob,\nGrüße aus Köln.\n") -> bytes:
    msg = mime.compose(
        from_=sender,
        to=["bob@example.org"],
        subject="Quarterly report",
        text=text,
        attachments=[mime.Attachment(bytes(range(256)) * 4, "data.bin")],
    )
    return msg.to_bytes()


@pytest.fixture
def msg(tmp_path: Path) -> str:
    path = tmp_path / "msg.eml"
    path.write_bytes(message())
    return str(path)


def signed(f: Files, msg: str, *extra: str, who: str = "alice") -> str:
    run(["sign", "--cert", f(f"{who}.crt"), "--key", f(f"{who}.key"), *extra, msg, "-o", "signed.eml"])
    return "signed.eml"


def encrypted(f: Files, msg: str, *extra: str, to: str = "bob") -> str:
    run(["encrypt", "--to", f(f"{to}.crt"), "--trust", f("ca.pem"), *extra, msg, "-o", "enc.eml"])
    return "enc.eml"


# ------------------------------------------------------------------------------------------- help


@pytest.mark.parametrize(
    ("command", "options"),
    [
        (
            "sign",
            [
                "--from",
                "--cert",
                "--key",
                "--p12",
                "--chain",
                "--opaque",
                "--digest",
                "--password-file",
                "-o,",
            ],
        ),
        (
            "verify",
            [
                "--trust",
                "--at",
                "--json",
                "--chain",
                "ISO-8601",
                "FILE_OR_DIR",
                "--crl",
                "--revocation",
                "--no-harvest",
            ],
        ),
        (
            "encrypt",
            [
                "--to",
                "--cipher",
                "--key-transport",
                "--cert",
                *CIPHERS,
                "rsa-oaep",
                "rsa-pkcs1v15",
                "--trust",
                "--allow-untrusted",
                "--crl",
                "--revocation",
                "--ldap",
                "--ldap-base",
                "--json",
            ],
        ),
        ("decrypt", ["--cert", "--key", "--p12", "--legacy", "--password-file", "SMIMEKIT_PASSWORD"]),
        (
            "open",
            [
                "--cert",
                "--key",
                "--p12",
                "--trust",
                "--at",
                "--json",
                "--legacy",
                "-o,",
                "--crl",
                "--revocation",
                "--no-harvest",
            ],
        ),
    ],
)
def test_help_names_the_contract(command: str, options: list[str]) -> None:
    out = run([command, "--help"]).output
    assert f"Usage: smimekit {command} [OPTIONS] IN" in out
    for option in options:
        assert option in out, option
    assert command in run(["--help"]).output


# ------------------------------------------------------------------------------------------- sign + verify


@pytest.mark.parametrize(
    ("digest", "micalg"),
    [(None, "sha-256"), ("sha256", "sha-256"), ("sha384", "sha-384"), ("sha512", "sha-512")],
)
def test_sign_then_verify(f: Files, msg: str, digest: str | None, micalg: str) -> None:
    path = signed(f, msg, *(["--digest", digest] if digest else []))
    data = Path(path).read_bytes()
    assert b"multipart/signed" in data and f"micalg={micalg}".encode() in data
    out = run(["verify", "--trust", f("ca.pem"), path]).stdout
    for text in (
        "Signature 1 of 1: multipart/signed, the whole message",
        "emailAddress=alice@example.org,CN=Alice",
        "E-mail:       alice@example.org",
        "Issuer:       CN=smimekit CLI Root",
        format(f.ids["alice"].cert.serial_number, "x"),
        f.ids["alice"].cert.fingerprint(hashes.SHA256()).hex(),
        "Signed at:",
        f"SHA-{micalg[4:]}, RSA PKCS#1 v1.5 with SHA-{micalg[4:]}",
        "Intact:       yes",
        "Valid:        yes",
        "Trusted:      yes — at the signing time and now: emailAddress=alice@example.org,CN=Alice → CN=smimekit CLI Root",
        "Covers:       parts 1.1, 1.1.1, 1.1.2",
        "From match:   yes",
        "Unsigned:     none",
        "From:         alice@example.org — matches a signer",
        "Weak algs:    none",
        "Verdict:      OK: every signature is intact, valid and trusted",
    ):
        assert text in out, text


def test_sign_opaque_ec_and_ed25519(f: Files, msg: str) -> None:
    for who, algorithm in (("carol", "ECDSA with SHA-256"), ("erin", "Ed25519")):
        Path(msg).write_bytes(message(f"{who}@example.org"))
        path = signed(f, msg, "--opaque", who=who)
        assert b"smime-type=signed-data" in Path(path).read_bytes()
        out = run(["verify", "--trust", f("ca.pem"), path]).stdout
        assert "Signature 1 of 1: signed-data, the whole message" in out and algorithm in out


def test_verify_untrusted_exits_1_with_the_reason(f: Files, msg: str) -> None:
    result = run(["verify", "--trust", f("other.pem"), signed(f, msg)], code=1)
    assert "Trusted:      no — at the signing time: no path to a trust anchor" in result.stdout
    assert "Verdict:      NOT OK: 1 of 1 signatures failed" in result.stdout
    (line,) = result.stderr.splitlines()
    assert line.startswith(
        "smimekit: error: the signature does not verify: signature 1 (alice@example.org) is not trusted: "
    )
    assert "no path to a trust anchor" in line


def test_verify_tampered_content_exits_1(f: Files, msg: str) -> None:
    path = Path(signed(f, msg))
    data = path.read_bytes()
    pos = data.index(b"Hallo Bob")  # in the signed text part
    path.write_bytes(data[:pos] + bytes([data[pos] ^ 0x01]) + data[pos + 1 :])
    result = run(["verify", "--trust", f("ca.pem"), str(path)], code=1)
    assert "Intact:       no" in result.stdout
    assert "the content does not match the messageDigest attribute" in result.stdout
    (line,) = result.stderr.splitlines()
    assert "signature 1 (alice@example.org): the content does not match the messageDigest" in line


def test_verify_diagnoses_damage_in_transit(f: Files, msg: str) -> None:
    path = Path(signed(f, msg))
    data = path.read_bytes()
    head, sep, rest = data.partition(b"\r\n\r\n")  # the outer header, then the signed body
    damaged = head + sep + re.sub(rb"(Content-Type: text/plain[^\r]*)\r\n", rb"\1   \r\n", rest, count=1)
    path.write_bytes(damaged)
    out = run(["verify", "--trust", f("ca.pem"), str(path)], code=1).stdout
    assert "Intact:       no" in out
    assert "Diagnosis:" in out and "altered in transit" in out


def test_verify_shows_unsigned_parts(f: Files) -> None:
    Path("entity.eml").write_bytes(b"Content-Type: text/plain; charset=us-ascii\r\n\r\nSigned words.\r\n")
    inner = run(["sign", "--cert", f("alice.crt"), "--key", f("alice.key"), "entity.eml"]).stdout_bytes
    outer = (
        b"From: alice@example.org\r\nSubject: mixed\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=OUTER\r\n\r\n--OUTER\r\n"
        b"Content-Type: text/plain\r\n\r\nUnsigned words added on the way.\r\n--OUTER\r\n"
        + inner.replace(b"MIME-Version: 1.0\r\n", b"")
        + b"\r\n--OUTER--\r\n"
    )
    Path("mixed.eml").write_bytes(outer)
    out = run(["verify", "--trust", f("ca.pem"), "mixed.eml"]).stdout
    assert "Signature 1 of 1: multipart/signed, part 1.2" in out
    assert "Unsigned:     part 1.1 NOT covered by any signature" in out
    assert (
        "Verdict:      OK: every signature is intact, valid and trusted (but not all content is signed)"
        in out
    )
    doc = json.loads(run(["verify", "--trust", f("ca.pem"), "--json", "mixed.eml"]).stdout)
    assert doc["ok"] is True and doc["fully_signed"] is False and doc["unsigned_parts"] == ["1.1"]


def test_verify_json(f: Files, msg: str) -> None:
    doc = json.loads(run(["verify", "--trust", f("ca.pem"), "--json", signed(f, msg)]).stdout)
    assert doc["ok"] is True and doc["fully_signed"] is True and doc["from_matches"] is True
    assert set(doc) >= {
        "ok",
        "fully_signed",
        "from_matches",
        "from_addresses",
        "unsigned_parts",
        "weak",
        "notes",
        "signatures",
    }
    (sig,) = doc["signatures"]
    assert set(sig) >= {
        "part", "form", "covered_parts", "signer", "signer_id", "signing_time", "digest_algorithm",
        "signature_algorithm", "intact", "valid", "trusted", "ok", "trust", "reasons", "weak", "from_matches",
        "diagnosis",
    }  # fmt: skip
    assert sig["signer"]["emails"] == ["alice@example.org"]
    assert sig["signer"]["serial_number"] == format(f.ids["alice"].cert.serial_number, "x")
    assert sig["intact"] and sig["valid"] and sig["trusted"] and sig["reasons"] == []
    assert sig["trust"]["now"]["anchor"] == "CN=smimekit CLI Root"
    dt.datetime.fromisoformat(sig["signing_time"])
    bad = run(["verify", "--trust", f("other.pem"), "--json", "signed.eml"], code=1)
    doc = json.loads(bad.stdout)
    assert doc["ok"] is False and doc["signatures"][0]["trusted"] is False
    assert bad.stderr.startswith("smimekit: error: ")


def test_verify_at(f: Files, msg: str) -> None:
    path = signed(f, msg)
    ok = json.loads(
        run(["verify", "--trust", f("ca.pem"), "--at", "2030-01-01T00:00:00Z", "--json", path], code=1).stdout
    )
    assert ok["signatures"][0]["trust"]["now"]["failure"] == "expired"
    before = run(["verify", "--trust", f("ca.pem"), "--at", "2025-06-01", path], code=1)
    assert "not valid before" in before.stdout
    assert "is not trusted" in before.stderr
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    run(["verify", "--trust", f("ca.pem"), "--at", later, path])  # no zone: UTC
    assert "is not an ISO 8601 time" in fails(["verify", "--trust", f("ca.pem"), "--at", "yesterday", path])


def test_verify_trust_forms(f: Files, msg: str, tmp_path: Path) -> None:
    path = signed(f, msg)
    run(["verify", "--trust", f("ca.der"), path])
    run(["verify", "--trust", f("other.pem"), "--trust", f("ca.pem"), path])
    anchors = tmp_path / "anchors"
    anchors.mkdir()
    (anchors / "README").write_text("not a certificate\n")
    (anchors / "root.der").write_bytes(Path(f("ca.der")).read_bytes())
    run(["verify", "--trust", str(anchors), path])
    (anchors / "root.der").unlink()
    assert "the directory holds no certificate" in fails(["verify", "--trust", str(anchors), path])
    assert f("garbage.bin") in fails(["verify", "--trust", f("garbage.bin"), path])
    assert "no trust anchor is known" in fails(["verify", path])
    assert "cannot read trust anchor file" in fails(["verify", "--trust", "missing.pem", path])


def test_verify_with_intermediates(f: Files, msg: str) -> None:
    Path(msg).write_bytes(message("dave@example.org"))
    bare = signed(f, msg, who="dave")
    run(["verify", "--trust", f("ca.pem"), bare], code=1)
    run(["verify", "--trust", f("ca.pem"), "--chain", f("inter.pem"), bare])
    with_chain = signed(f, msg, "--chain", f("inter.pem"), who="dave")
    run(["verify", "--trust", f("ca.pem"), with_chain])


def test_verify_input_errors_exit_2(f: Files, msg: str) -> None:
    assert fails(["verify", "--trust", f("ca.pem"), msg]) == "smimekit: error: the message is not signed"
    assert "no such file or directory" in fails(["verify", "--trust", f("ca.pem"), "missing.eml"])
    data = Path(signed(f, msg)).read_bytes()
    start = data.index(b"\r\n\r\n", data.index(b"filename=smime.p7s")) + 4
    end = data.index(b"\r\n--", start)
    Path("broken.eml").write_bytes(data[:start] + b"MIIBAAAAAAAA" + data[end:])
    line = fails(["verify", "--trust", f("ca.pem"), "broken.eml"])
    assert "malformed" in line or "not valid S/MIME" in line


def test_sign_errors(f: Files, msg: str) -> None:
    assert "give your key with --cert and --key, or with --p12" in fails(["sign", msg])
    assert "--key needs its certificate" in fails(["sign", "--key", f("alice.key"), msg])
    assert "does not belong to the certificate" in fails(
        ["sign", "--cert", f("bob.crt"), "--key", f("alice.key"), msg]
    )
    assert "not both" in fails(["sign", "--p12", f("alice.p12"), "--cert", f("alice.crt"), msg])
    assert f("garbage.bin") + ": not a private key" in fails(
        ["sign", "--cert", f("alice.crt"), "--key", f("garbage.bin"), msg]
    )
    assert f("garbage.bin") + ":" in fails(["sign", "--cert", f("garbage.bin"), "--key", f("alice.key"), msg])
    line = fails(["sign", "--cert", f("erin.crt"), "--key", f("erin.key"), "--digest", "sha256", msg])
    assert "Ed25519" in line and "SHA-256" in line, line
    line = fails(["sign", "--cert", f("xavier.crt"), "--key", f("xavier.key"), msg])
    assert line == "smimekit: error: X25519 keys cannot sign (RSA, EC and Ed25519 keys can)"
    assert "'md5' is not one of" in fails(
        ["sign", "--cert", f("alice.crt"), "--key", f("alice.key"), "--digest", "md5", msg]
    )
    assert not Path("signed.eml").exists()


# ------------------------------------------------------------------------------------------- encrypt + decrypt


@pytest.mark.parametrize("cipher", CIPHERS)
@pytest.mark.parametrize("transport", ["rsa-oaep", "rsa-pkcs1v15"])
def test_encrypt_decrypt_round_trip(f: Files, msg: str, cipher: str, transport: str) -> None:
    path = encrypted(f, msg, "--cipher", cipher, "--key-transport", transport)
    data = Path(path).read_bytes()
    kind = b"enveloped-data" if "cbc" in cipher else b"authEnveloped-data"
    assert b"smime-type=" + kind in data and b"Subject: Quarterly report" in data
    out = run(["decrypt", "--cert", f("bob.crt"), "--key", f("bob.key"), path]).stdout_bytes
    inner = mime.parse(out)
    assert inner.headers.get("Subject") == "Quarterly report"
    assert inner.parts[0].text().replace("\r\n", "\n") == "Hallo Bob,\nGrüße aus Köln.\n"
    assert inner.parts[1].decoded() == bytes(range(256)) * 4


def test_encrypt_key_agreement_several_recipients_and_sender(f: Files, msg: str) -> None:
    path = encrypted(f, msg, "--to", f("carol.crt"), "--cert", f("alice.crt"))
    for who in ("bob", "carol", "alice"):
        out = run(["decrypt", "--cert", f(f"{who}.crt"), "--key", f(f"{who}.key"), path, "-o", f"{who}.eml"])
        assert out.stdout == ""
        assert b"Quarterly report" in Path(f"{who}.eml").read_bytes()
    run(["decrypt", "--key", f("carol.key"), path])  # without --cert: every recipient is tried


def test_decrypt_with_the_wrong_key_exits_1(f: Files, msg: str) -> None:
    path = encrypted(f, msg, "--cipher", "aes256-gcm")  # authenticated: tampering is always caught
    assert fails(["decrypt", "--key", f("alice.key"), path], code=1) == f"smimekit: error: {FIXED}"
    line = fails(["decrypt", "--cert", f("mallory.crt"), "--key", f("mallory.key"), path], code=1)
    assert "the message is not encrypted for the certificate" in line
    data = bytearray(Path(path).read_bytes())
    pos = len(data) - 40  # the ciphertext and the tag are at the end
    while not chr(data[pos]).isalnum():
        pos -= 1
    data[pos] = ord("A") if data[pos] != ord("A") else ord("B")
    Path("tampered.eml").write_bytes(bytes(data))
    assert (
        fails(["decrypt", "--cert", f("bob.crt"), "--key", f("bob.key"), "tampered.eml"], code=1)
        == f"smimekit: error: {FIXED}"
    )


def test_encrypt_and_decrypt_errors(f: Files, msg: str) -> None:
    trust = ["--trust", f("ca.pem")]
    assert "give at least one recipient with --to ADDR or --to CERT" in fails(["encrypt", msg])
    assert "no certificate store to look the address up in" in fails(
        ["encrypt", "--to", "bob@example.org", msg]
    )
    assert "cannot encrypt to " + f("old.crt") in fails(["encrypt", "--to", f("old.crt"), *trust, msg])
    assert "cannot encrypt to " + f("erin.crt") in fails(["encrypt", "--to", f("erin.crt"), *trust, msg])
    assert "'des3' is not one of" in fails(["encrypt", "--to", f("bob.crt"), "--cipher", "des3", msg])
    assert fails(["decrypt", "--key", f("bob.key"), msg]) == "smimekit: error: the message is not encrypted"
    assert "no certificate store at " in fails(["decrypt", msg])
    assert "Ed25519 keys cannot decrypt (RSA, EC, X25519 and X448 keys can)" in fails(
        ["decrypt", "--key", f("erin.key"), encrypted(f, msg)]
    )


# ------------------------------------------------------------------------------------------- keys and passwords


@pytest.mark.parametrize("keyfile", ["alice-enc.key", "alice-trad-enc.key", "alice-enc.der"])
def test_encrypted_keys(f: Files, msg: str, keyfile: str) -> None:
    args = ["sign", "--cert", f("alice.crt"), "--key", f(keyfile), msg, "-o", "s.eml"]
    run([*args, "--password-file", f("password.txt")])
    run(args, env={_secrets.PASSWORD_ENV: PASSWORD})
    line = fails(args)
    assert (
        line
        == f"smimekit: error: {f(keyfile)}: the key is encrypted: give --password-file or set SMIMEKIT_PASSWORD"
    )
    assert "wrong password" in fails([*args, "--password-file", f("wrong-password.txt")])
    assert "wrong password" in fails(args, env={_secrets.PASSWORD_ENV: "nope"})
    run(["verify", "--trust", f("ca.pem"), "s.eml"])


def test_password_file_first_line_and_stdin(f: Files, msg: str) -> None:
    Path("pw").write_bytes(PASSWORD.encode() + b"\r\nsecond line\n")
    args = ["sign", "--cert", f("alice.crt"), "--key", f("alice-enc.key"), msg, "-o", "s.eml"]
    run([*args, "--password-file", "pw"])
    run([*args, "--password-file", "-"], input=PASSWORD.encode() + b"\n")
    Path("empty").write_bytes(b"")
    assert "the password from the password file is empty" in fails([*args, "--password-file", "empty"])


def test_unencrypted_der_key(f: Files, msg: str) -> None:
    run(["sign", "--cert", f("alice.crt"), "--key", f("alice.der"), msg, "-o", "s.eml"])
    run(["verify", "--trust", f("ca.pem"), "s.eml"])


def test_prompt_only_on_a_terminal(f: Files, msg: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_secrets, "stdin_is_tty", lambda: True)
    args = ["sign", "--cert", f("alice.crt"), "--key", f("alice-enc.key"), msg, "-o", "s.eml"]
    result = run(args, input=f"{PASSWORD}\n")
    assert "Password for" in result.stderr and PASSWORD not in result.output
    result = CliRunner().invoke(cli, args, input="a\nb\nc\n")
    assert result.exit_code == 2
    assert result.stderr.count("Wrong password, try again.") == 2
    assert result.stderr.splitlines()[-1].startswith("smimekit: error: ")
    assert "wrong password" in result.stderr.splitlines()[-1]


def test_p12_for_sign_decrypt_and_open(f: Files, msg: str) -> None:
    pw = ["--password-file", f("password.txt")]
    run(["sign", "--p12", f("alice.p12"), *pw, msg, "-o", "s.eml"])
    run(["verify", "--trust", f("ca.pem"), "s.eml"])
    run(["sign", "--p12", f("alice-open.p12"), msg, "-o", "s2.eml"])
    run(
        [
            "encrypt",
            "--to",
            f("alice.crt"),
            "--trust",
            f("ca.pem"),
            "--cipher",
            "aes256-gcm",
            "s.eml",
            "-o",
            "e.eml",
        ]
    )
    out = run(["decrypt", "--p12", f("alice.p12"), *pw, "e.eml"]).stdout_bytes
    assert b"multipart/signed" in out
    result = run(["open", "--p12", f("alice.p12"), *pw, "--trust", f("ca.pem"), "e.eml"])
    assert "Layer 1: encrypted (authEnveloped-data)" in result.stdout and "Layer 2: signed" in result.stdout
    assert "PKCS#12 file is encrypted: give --password-file or set SMIMEKIT_PASSWORD" in fails(
        ["decrypt", "--p12", f("alice.p12"), "e.eml"]
    )
    assert "wrong password" in fails(
        ["decrypt", "--p12", f("alice.p12"), "--password-file", f("wrong-password.txt"), "e.eml"]
    )
    assert "not a PKCS#12 file" in fails(["decrypt", "--p12", f("garbage.bin"), "e.eml"])


# ------------------------------------------------------------------------------------------- open


def test_open_sign_then_encrypt(f: Files, msg: str) -> None:
    run(
        [
            "encrypt",
            "--to",
            f("bob.crt"),
            "--trust",
            f("ca.pem"),
            "--cipher",
            "aes256-gcm",
            signed(f, msg),
            "-o",
            "sealed.eml",
        ]
    )
    keys = ["--cert", f("bob.crt"), "--key", f("bob.key")]
    result = run(["open", *keys, "--trust", f("ca.pem"), "sealed.eml", "-o", "inner.eml"])
    out = result.stdout
    assert "Layer 1: encrypted (authEnveloped-data)" in out
    assert "Decrypted:    AES-256-GCM, key transport, " in out and "authenticated" in out
    assert (
        "Layer 2: signed" in out and "  Verdict:      OK: every signature is intact, valid and trusted" in out
    )
    inner = mime.parse(Path("inner.eml").read_bytes())
    assert (
        inner.headers.get("Subject") == "Quarterly report"
        and inner.parts[1].decoded() == bytes(range(256)) * 4
    )

    doc = json.loads(run(["open", *keys, "--trust", f("ca.pem"), "--json", "sealed.eml"]).stdout)
    assert doc["ok"] is True and doc["signed"] and doc["encrypted"]
    assert [layer["kind"] for layer in doc["layers"]] == ["authEnveloped", "signed"]
    assert doc["layers"][1]["verification"]["signatures"][0]["trusted"] is True

    both = run(["open", *keys, "--trust", f("ca.pem"), "sealed.eml", "-o", "-"])
    assert both.stdout_bytes == Path("inner.eml").read_bytes()
    assert "Layer 2: signed" in both.stderr

    untrusted = run(["open", *keys, "sealed.eml"], code=1)
    assert "no trust anchors were given" in untrusted.stderr
    assert "is encrypted: give your key" in fails(["open", "--trust", f("ca.pem"), "sealed.eml"])
    assert fails(["open", "--key", f("alice.key"), "sealed.eml"], code=1) == f"smimekit: error: {FIXED}"
    assert fails(["open", msg]) == "smimekit: error: the message is not signed"


def test_open_encrypted_only_and_signed_only(f: Files, msg: str) -> None:
    out = run(["open", "--key", f("bob.key"), encrypted(f, msg, "--cipher", "aes128-cbc")]).stdout
    assert "Layer 1: encrypted (enveloped-data)" in out and "not authenticated (CBC)" in out
    assert "the message is not signed" in out
    out = run(["open", "--trust", f("ca.pem"), signed(f, msg)]).stdout
    assert "Layer 1: signed" in out


# ------------------------------------------------------------------------------------------- stdin and stdout


def test_stdin_and_stdout(f: Files) -> None:
    data = message()
    signed_out = run(
        ["sign", "--cert", f("alice.crt"), "--key", f("alice.key"), "-"], input=data
    ).stdout_bytes
    assert b"multipart/signed" in signed_out
    run(["verify", "--trust", f("ca.pem"), "-"], input=signed_out)
    enc = run(
        ["encrypt", "--to", f("bob.crt"), "--trust", f("ca.pem"), "-", "-o", "-"], input=signed_out
    ).stdout_bytes
    dec = run(["decrypt", "--cert", f("bob.crt"), "--key", f("bob.key"), "-"], input=enc).stdout_bytes
    assert b"Content-Type: multipart/signed" in dec
    run(["verify", "--trust", f("ca.pem"), "-"], input=dec)
    line = fails(
        ["sign", "--cert", f("alice.crt"), "--key", f("alice-enc.key"), "--password-file", "-", "-"],
        input=data,
    )
    assert line == "smimekit: error: stdin ('-') cannot be both the password file and the message"


# ------------------------------------------------------------------------------------------- progress


def test_progress_on_a_terminal_only(f: Files, msg: str, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run(["sign", "--cert", f("alice.crt"), "--key", f("alice.key"), msg, "-o", "s.eml"])
    assert result.stderr == ""
    monkeypatch.setattr(smime_cmds, "_stderr_is_tty", lambda: True)
    monkeypatch.setattr(smime_cmds, "PROGRESS_MIN_SIZE", 0)
    run(["sign", "--cert", f("alice.crt"), "--key", f("alice.key"), msg, "-o", "s.eml"])
    run(["verify", "--trust", f("ca.pem"), "s.eml"])
    run(["encrypt", "--to", f("bob.crt"), "--trust", f("ca.pem"), "s.eml", "-o", "e.eml"])
    run(["open", "--key", f("bob.key"), "--trust", f("ca.pem"), "e.eml"])
    assert "cannot read missing.eml" in fails(["verify", "--trust", f("ca.pem"), "missing.eml"])


# ------------------------------------------------------------------------------------------- no tracebacks


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\x00\xff" * 100,
        b'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n',
        b"Content-Type: application/pkcs7-mime; smime-type=enveloped-data\r\nContent-Transfer-Encoding: base64\r\n\r\nMIIB\r\n",
        b"Content-Type: application/pkcs7-mime; smime-type=signed-data\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"MIAGCSqGSIb3DQEHAqCAMIACAQExADCABgkqhkiG9w0BBwGggCSABAJoaQAAAAAAADEAAAAAAAA=\r\n",
    ],
    ids=["empty", "binary", "one-part-multipart-signed", "truncated-enveloped", "empty-signed-data"],
)
def test_hostile_input_never_gives_a_traceback(f: Files, content: bytes) -> None:
    Path("x.eml").write_bytes(content)
    for args in (
        ["verify", "--trust", f("ca.pem"), "x.eml"],
        ["decrypt", "--cert", f("bob.crt"), "--key", f("bob.key"), "x.eml"],
        ["open", "--cert", f("bob.crt"), "--key", f("bob.key"), "--trust", f("ca.pem"), "x.eml"],
        ["sign", "--cert", f("alice.crt"), "--key", f("alice.key"), "x.eml", "-o", "out.eml"],
        ["encrypt", "--to", f("bob.crt"), "--trust", f("ca.pem"), "x.eml", "-o", "out.eml"],
    ):
        result = CliRunner().invoke(cli, args, catch_exceptions=False)
        assert result.exit_code in (0, 1, 2), (args, result.output)
        assert "Traceback" not in result.output
        if result.exit_code:
            assert len(result.stderr.splitlines()) == 1, result.stderr


# ------------------------------------------------------------------------------------------- interop with openssl


def openssl(*args: str) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run(["openssl", *args], capture_output=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return proc


@pytest.mark.skipif(not HAS_OPENSSL, reason="openssl is not installed")
@pytest.mark.parametrize("form", [[], ["-nodetach"], ["-stream"]])
def test_openssl_signs_smimekit_verifies(f: Files, form: list[str]) -> None:
    Path("entity.txt").write_bytes(b"Content-Type: text/plain; charset=utf-8\r\n\r\nSigned by OpenSSL.\r\n")
    openssl(
        "cms", "-sign", "-in", "entity.txt", "-signer", f("alice.crt"), "-inkey", f("alice.key"),
        "-from", "alice@example.org", "-to", "bob@example.org", "-subject", "From OpenSSL", *form, "-out", "ossl.eml",
    )  # fmt: skip
    out = run(["verify", "--trust", f("ca.pem"), "ossl.eml"]).stdout
    assert "Verdict:      OK" in out and "From:         alice@example.org — matches a signer" in out


@pytest.mark.skipif(not HAS_OPENSSL, reason="openssl is not installed")
@pytest.mark.parametrize(
    ("cipher", "transport"), [("aes256-gcm", "rsa-oaep"), ("aes128-cbc", "rsa-pkcs1v15")]
)
def test_smimekit_encrypts_openssl_decrypts(f: Files, msg: str, cipher: str, transport: str) -> None:
    path = encrypted(f, msg, "--cipher", cipher, "--key-transport", transport)
    out = openssl("cms", "-decrypt", "-in", path, "-recip", f("bob.crt"), "-inkey", f("bob.key")).stdout
    assert b"Gr=C3=BC=C3=9Fe aus K=C3=B6ln" in out or "Grüße aus Köln".encode() in out


@pytest.mark.skipif(not HAS_OPENSSL, reason="openssl is not installed")
def test_legacy_3des_needs_legacy(f: Files) -> None:
    Path("entity.txt").write_bytes(b"Content-Type: text/plain\r\n\r\nOld school.\r\n")
    openssl("cms", "-encrypt", "-des3", "-in", "entity.txt", "-out", "des.eml", f("bob.crt"))
    keys = ["--cert", f("bob.crt"), "--key", f("bob.key")]
    assert "give --legacy to decrypt it anyway" in fails(["decrypt", *keys, "des.eml"])
    result = run(["decrypt", *keys, "--legacy", "des.eml"])
    assert b"Old school." in result.stdout_bytes
    assert (
        result.stderr == "smimekit: warning: the message was encrypted with the legacy cipher 3DES-CBC\n"
        or ("legacy cipher" in result.stderr)
    )


# ------------------------------------------------------------------------------------------- console script


def test_console_script_exit_codes(f: Files, msg: str, tmp_path: Path) -> None:
    script = shutil.which("smimekit") or str(Path(sys.executable).with_name("smimekit"))
    assert Path(script).exists(), "the smimekit console script is not installed (pip install -e .)"
    path = signed(f, msg)

    def call(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [script, *args], capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path
        )

    ok = call("verify", "--trust", f("ca.pem"), path)
    assert ok.returncode == 0 and "Verdict:" in ok.stdout and ok.stderr == ""
    bad = call("verify", "--trust", f("other.pem"), path)
    assert bad.returncode == 1
    assert len(bad.stderr.splitlines()) == 1 and bad.stderr.startswith("smimekit: error: ")
    usage = call("decrypt", "--key", f("bob.key"), msg)
    assert usage.returncode == 2 and usage.stderr == "smimekit: error: the message is not encrypted\n"
