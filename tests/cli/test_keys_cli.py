"""``smimekit keys`` as a user drives it: through click's CliRunner, and once through a real process with
the store named by the environment."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from smimekit.cli import _secrets
from smimekit.cli.main import cli
from smimekit.keys import load_certificates, load_pkcs12_bundles
from smimekit.store import Trust, open_store
from tests.pgserver import PgServer, start_postgres
from tests.testpki import make_ca, make_ee

PASSPHRASE = "store pass ☃"


@pytest.fixture(autouse=True)
def _no_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_secrets, "stdin_is_tty", lambda: False)
    monkeypatch.delenv("SMIMEKIT_PASSWORD", raising=False)
    monkeypatch.delenv("SMIMEKIT_STORE", raising=False)


class Files:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.ca = make_ca("Keys CLI Root")
        self.alice = make_ee("alice@example.org", self.ca, key_kind="p256")
        self.bob = make_ee("bob@example.org", self.ca, key_kind="p256")
        self.ca_pem = self.write("ca.pem", self.ca.cert_pem())
        self.alice_pem = self.write("alice.pem", self.alice.cert_pem() + self.alice.key_pem())
        self.bob_crt = self.write("bob.crt", self.bob.cert_pem())
        self.password = self.write("pass.txt", PASSPHRASE.encode() + b"\n")
        self.wrong = self.write("wrong.txt", b"not the passphrase\n")
        enc = serialization.BestAvailableEncryption(b"p12 password")
        self.bob_p12 = self.write(
            "bob.p12",
            pkcs12.serialize_key_and_certificates(b"bob", self.bob.key, self.bob.cert, [self.ca.cert], enc),
        )
        self.p12_password = self.write("p12pass.txt", b"p12 password\n")

    def write(self, name: str, data: bytes) -> str:
        path = self.root / name
        path.write_bytes(data)
        return str(path)


@pytest.fixture(scope="module")
def f(tmp_path_factory: pytest.TempPathFactory) -> Files:
    return Files(tmp_path_factory.mktemp("keys-cli"))


@pytest.fixture
def store(tmp_path: Path) -> str:
    return str(tmp_path / "store.sqlite3")


def run(*args: str, code: int = 0, env: dict[str, str] | None = None) -> Result:
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == code, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    return result


def fails(*args: str, code: int = 2) -> str:
    result = run(*args, code=code)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("smimekit: error: "), result.stderr
    return lines[0]


def test_import_list_show_and_trust(f: Files, store: str) -> None:
    out = run("--store", store, "keys", "import", f.ca_pem, "--trust").stdout
    assert "(trusted)" in out
    out = run("--store", store, "keys", "import", f.alice_pem, "--password-file", f.password).stdout
    assert "alice@example.org (private key)" in out
    run("keys", "import", f.bob_crt, "--store", store)  # --store after the command
    assert "bob@example.org" in run("keys", "--store", store, "list").stdout  # or after the group
    listing = run("--store", store, "keys", "list").stdout.splitlines()
    assert [line.split("  ")[-1] for line in listing] == [
        "alice@example.org",
        "bob@example.org",
        "CN=Keys CLI Root",
    ]
    assert listing[0].split()[1] == "K-" and listing[2].split()[1] == "-T"
    document = json.loads(
        run("--store", store, "keys", "list", "--json", "--email", "alice@example.org").stdout
    )
    [alice] = document["certificates"]
    assert alice["has_private_key"] and alice["emails"] == ["alice@example.org"] and alice["trust"] == []
    shown = json.loads(run("--store", store, "keys", "show", alice["fingerprint"][:12], "--json").stdout)
    assert shown["certificates"][0]["fingerprint"] == alice["fingerprint"]
    text = run("--store", store, "keys", "show", "alice@example.org").stdout
    assert "private key:  yes" in text and alice["fingerprint"] in text
    run("--store", store, "keys", "trust", alice["fingerprint"], "--for", "encryption")
    with open_store(store) as opened:
        assert set(opened.trust_anchors(Trust.EMAIL_ENCRYPTION)) == {f.alice.cert, f.ca.cert}
    run("--store", store, "keys", "untrust", alice["fingerprint"])
    with open_store(store) as opened:
        assert opened.trust_anchors(Trust.EMAIL_ENCRYPTION) == [f.ca.cert]


def test_trust_a_file(f: Files, store: str) -> None:
    out = run("--store", store, "keys", "trust", f.ca_pem, "--for", "signing").stdout
    assert "for signing" in out
    with open_store(store) as opened:
        assert opened.trust_anchors(Trust.EMAIL_SIGNING) == [f.ca.cert]
        assert opened.trust_anchors(Trust.EMAIL_ENCRYPTION) == []


def test_pkcs12_import_with_its_own_password_and_export_both_profiles(
    f: Files, store: str, tmp_path: Path
) -> None:
    line = fails("--store", store, "keys", "import", f.bob_p12, "--password-file", f.password)
    assert "bob.p12" in line and "password" in line
    out = run(
        "--store", store, "keys", "import", f.bob_p12, "--password-file", f.password,
        "--file-password-file", f.p12_password,
    ).stdout  # fmt: skip
    assert "bob@example.org (private key)" in out and "Keys CLI Root" in out
    modern, legacy, cert = tmp_path / "bob.p12", tmp_path / "bob-legacy.p12", tmp_path / "bob.pem"
    run(
        "--store",
        store,
        "keys",
        "export",
        "bob@example.org",
        "--p12-out",
        str(modern),
        "--password-file",
        f.password,
        "--cert-out",
        str(cert),
    )
    run(
        "keys",
        "export",
        "bob@example.org",
        "--p12-out",
        str(legacy),
        "--legacy",
        "--password-file",
        f.password,
        "--store",
        store,
    )
    for path in (modern, legacy):
        [bundle] = load_pkcs12_bundles(path.read_bytes(), PASSPHRASE.encode())  # the store's passphrase
        assert bundle.certificate == f.bob.cert and bundle.chain == (f.ca.cert,)
        assert bundle.key.public_key() == f.bob.key.public_key()
    assert load_certificates(cert.read_bytes()) == [f.bob.cert]
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    info = subprocess.run(
        ["openssl", "pkcs12", "-info", "-in", str(legacy), "-nodes", "-passin", f"file:{f.password}"],
        capture_output=True, timeout=60, check=True,
    ).stderr  # fmt: skip
    assert b"pbeWithSHA1And3-KeyTripleDES-CBC" in info and b"MAC: sha1" in info


def test_export_with_a_separate_pkcs12_password(f: Files, store: str, tmp_path: Path) -> None:
    run("--store", store, "keys", "import", f.alice_pem, "--password-file", f.password)
    out = tmp_path / "a.p12"
    run("--store", store, "keys", "export", "alice@example.org", "--p12-out", str(out), "--password-file", f.password,
        "--p12-password-file", f.p12_password)  # fmt: skip
    assert load_pkcs12_bundles(out.read_bytes(), b"p12 password")[0].certificate == f.alice.cert


def test_an_exported_pkcs12_is_private_and_a_shared_passphrase_is_warned_about(
    f: Files, store: str, tmp_path: Path
) -> None:
    run("--store", store, "keys", "import", f.alice_pem, "--password-file", f.password)
    shared, own, cert = tmp_path / "shared.p12", tmp_path / "own.p12", tmp_path / "alice.pem"
    shared.write_bytes(b"an older file, readable by all")
    shared.chmod(0o644)
    old_umask = os.umask(0o022)
    try:
        result = run("--store", store, "keys", "export", "alice@example.org", "--p12-out", str(shared),
                     "--legacy", "--cert-out", str(cert), "--password-file", f.password)  # fmt: skip
        warning = [line for line in result.stderr.splitlines() if "warning" in line]
        assert len(warning) == 1 and "store passphrase" in warning[0] and "--p12-password-file" in warning[0]
        assert stat.S_IMODE(shared.stat().st_mode) == 0o600
        assert stat.S_IMODE(cert.stat().st_mode) == 0o644  # a certificate is public
        assert load_pkcs12_bundles(shared.read_bytes(), PASSPHRASE.encode())[0].certificate == f.alice.cert
        result = run("--store", store, "keys", "export", "alice@example.org", "--p12-out", str(own),
                     "--password-file", f.password, "--p12-password-file", f.p12_password)  # fmt: skip
        assert "warning" not in result.stderr and stat.S_IMODE(own.stat().st_mode) == 0o600
    finally:
        os.umask(old_umask)


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("postgresql://u@127.0.0.1:{port}/x?password=qsecret", "qsecret"),
        ("postgresql://u:pw2secret@[::1/x", "pw2secret"),
        ("postgresql://u:p/w3secret@127.0.0.1:{port}/x", "w3secret"),
    ],
)
def test_a_postgresql_password_never_shows(url: str, secret: str) -> None:
    with socket.socket() as s:  # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = run("--store", url.format(port=port), "keys", "list", code=2)
    assert secret not in result.stdout + result.stderr
    assert "cannot" in result.stderr or "ambiguous" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_failures_are_one_line_and_write_nothing(f: Files, store: str, tmp_path: Path) -> None:
    run("--store", store, "keys", "import", f.alice_pem, "--password-file", f.password)
    target = tmp_path / "out.p12"
    line = fails(
        "--store",
        store,
        "keys",
        "export",
        "alice@example.org",
        "--p12-out",
        str(target),
        "--password-file",
        f.wrong,
    )
    assert "wrong passphrase" in line and not target.exists()
    assert list(tmp_path.glob(".out.p12*")) == []  # no temporary left behind
    line = fails("--store", store, "keys", "export", "alice@example.org", "--p12-out", str(target))
    assert "SMIMEKIT_PASSWORD" in line and not target.exists()
    line = fails(
        "--store",
        store,
        "keys",
        "export",
        "nobody@example.org",
        "--p12-out",
        str(target),
        "--password-file",
        f.password,
    )
    assert "no certificate with a private key for nobody@example.org" in line
    assert "say what to write" in fails("--store", store, "keys", "export", "alice@example.org")
    line = fails("--store", store, "keys", "import", f.bob_p12, "--file-password-file", f.p12_password)
    assert "give --password-file or set SMIMEKIT_PASSWORD" in line
    # a second key under another passphrase would split the store: refused
    line = fails(
        "--store",
        store,
        "keys",
        "import",
        f.bob_p12,
        "--password-file",
        f.wrong,
        "--file-password-file",
        f.p12_password,
    )
    assert "does not open the keys already in the store" in line
    with open_store(store) as opened:
        assert opened.find_by_email("bob@example.org") == []
    assert "not a SHA-256 fingerprint" in fails("--store", store, "keys", "untrust", "zz")
    assert "no certificate with fingerprint" in fails("--store", store, "keys", "untrust", "0123456789")
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    assert "not a certificate" in fails("--store", store, "keys", "import", str(notes))
    assert "not a smimekit store" in fails("--store", str(notes), "keys", "list")


def test_remove_needs_yes_for_a_private_key(f: Files, store: str) -> None:
    run("--store", store, "keys", "import", f.alice_pem, "--password-file", f.password)
    run("--store", store, "keys", "import", f.bob_crt)
    with open_store(store) as opened:
        alice = opened.find_by_email("alice@example.org")[0].fingerprint
        bob = opened.find_by_email("bob@example.org")[0].fingerprint
    assert "--yes" in fails("--store", store, "keys", "remove", alice)
    run("--store", store, "keys", "remove", bob)
    run("--store", store, "keys", "remove", alice, "--yes")
    assert "No certificates in the store yet" in run("--store", store, "keys", "list").stdout


def test_the_console_script_with_the_store_in_the_environment(f: Files, tmp_path: Path) -> None:
    store = tmp_path / "env-store" / "s.sqlite3"
    env = {**os.environ, "SMIMEKIT_STORE": str(store), "SMIMEKIT_PASSWORD": PASSPHRASE}
    env.pop("SMIMEKIT_DEBUG", None)
    command = [sys.executable, "-c", "from smimekit.cli.main import main; main()"]
    done = subprocess.run(
        [*command, "keys", "import", f.alice_pem], env=env, capture_output=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(store.stat().st_mode) == 0o600 and stat.S_IMODE(store.parent.stat().st_mode) == 0o700
    listed = subprocess.run(
        [*command, "keys", "list", "--json"], env=env, capture_output=True, timeout=120, check=True
    )
    assert json.loads(listed.stdout)["certificates"][0]["emails"] == ["alice@example.org"]
    env["SMIMEKIT_PASSWORD"] = "wrong"
    out = tmp_path / "x.p12"
    done = subprocess.run(
        [*command, "keys", "export", "alice@example.org", "--p12-out", str(out)],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2 and not out.exists()
    assert done.stderr.decode().count("\n") == 1 and b"Traceback" not in done.stderr


@pytest.fixture(scope="module")
def pg_server() -> Iterator[PgServer]:
    server = start_postgres()
    yield server
    server.stop()


def test_a_postgresql_store_by_option_and_by_environment(f: Files, pg_server: PgServer) -> None:
    url = pg_server.create_database()
    run("--store", url, "keys", "import", f.alice_pem, "--password-file", f.password)
    listed = json.loads(run("keys", "list", "--json", env={"SMIMEKIT_STORE": url}).stdout)
    assert [c["emails"] for c in listed["certificates"]] == [["alice@example.org"]]
    assert listed["certificates"][0]["has_private_key"]


def test_a_new_store_passphrase_is_asked_twice_on_a_terminal(
    f: Files, store: str, monkeypatch: pytest.MonkeyPatch
) -> None:

    monkeypatch.setattr(_secrets, "stdin_is_tty", lambda: True)
    result = CliRunner().invoke(
        cli,
        ["--store", store, "keys", "import", f.alice_pem],
        input="typed pass\ntyped pass\n",
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert result.stderr.count("Store passphrase") == 1 and "Repeat for confirmation" in result.stderr
    with open_store(store) as opened:
        fp = opened.find_by_email("alice@example.org")[0].fingerprint
        assert opened.private_key(fp, b"typed pass").public_key() == f.alice.key.public_key()


@pytest.mark.parametrize(
    "command",
    [("keys", "list"), ("keys", "show", "alice@example.org"), ("keys", "untrust", "0123456789abcdef")],
)
def test_reading_commands_never_create_a_store(tmp_path: Path, command: tuple[str, ...]) -> None:
    """A mistyped --store must not silently create an empty store (and its directory) and report nothing."""
    missing = tmp_path / "no-such-dir" / "store.sqlite3"
    line = fails("--store", str(missing), *command)
    assert "no certificate store at" in line and str(missing) in line
    assert not missing.parent.exists()
