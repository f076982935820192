"""Importing PEM, DER, PKCS#7 and PKCS#12 files into the store, and exporting PKCS#12 that openssl and
gpgsm read."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from smimekit.errors import (
    PasswordRequiredError,
    StoreError,
    StoreNotFoundError,
    UsageError,
    WrongPasswordError,
)
from smimekit.keys import load_certificates, load_pkcs12_bundles
from smimekit.store import Store, Trust, open_store
from smimekit.store.transfer import (
    Pkcs12Profile,
    export_certificate,
    export_pkcs12,
    find_certificate,
    issuer_chain,
    read_import,
    store_import,
)
from tests.smime import _gpgsm
from tests.testpki import NOW, Identity, make_ca, make_ee

PASS = b"store passphrase"
FILE_PW = b"file password"


@pytest.fixture(scope="module")
def pki() -> dict[str, Identity]:
    root = make_ca("Transfer Root", key_kind="rsa2048")
    inter = make_ca("Transfer Intermediate", issuer=root, key_kind="rsa2048")
    return {
        "root": root,
        "inter": inter,
        "alice": make_ee("alice@example.com", inter, key_kind="rsa2048"),
        "bob": make_ee("bob@example.com", root, key_kind="p256"),
    }


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    with open_store(tmp_path / "store.sqlite3") as store:
        yield store


def pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def key_pem(ident: Identity, password: bytes | None = None) -> bytes:
    enc = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return ident.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)  # type: ignore[no-any-return]


def openssl(*args: str | Path, data: bytes | None = None) -> bytes:
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    proc = subprocess.run(
        ["openssl", *map(str, args)], input=data, capture_output=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return proc.stdout + proc.stderr


# ----------------------------------------------------------------------------------------- import


def test_a_pem_file_with_chain_and_key_is_imported(store: Store, pki: dict[str, Identity]) -> None:
    alice = pki["alice"]
    data = pem(alice.cert, pki["inter"].cert) + key_pem(alice) + pem(pki["root"].cert)
    result = store_import(store, read_import(data), passphrase=PASS)
    assert [r.certificate for r in result.certificates] == [alice.cert, pki["inter"].cert, pki["root"].cert]
    assert result.keys == (result.certificates[0].fingerprint,)
    assert result.certificates[0].has_private_key and not result.certificates[1].has_private_key
    assert all(r.trust == Trust.NONE for r in result.certificates)
    assert store.private_key(result.keys[0], PASS).public_key() == alice.key.public_key()
    assert issuer_chain(store, alice.cert) == (pki["inter"].cert, pki["root"].cert)


def test_an_encrypted_key_needs_the_file_password(sqlite_store: Store, pki: dict[str, Identity]) -> None:
    data = pem(pki["bob"].cert) + key_pem(pki["bob"], FILE_PW)
    with pytest.raises(PasswordRequiredError):
        read_import(data)
    with pytest.raises(WrongPasswordError):
        read_import(data, b"not it")
    bundle = read_import(data, FILE_PW)
    with pytest.raises(StoreError, match="passphrase"):
        store_import(sqlite_store, bundle, passphrase=None)
    assert sqlite_store.list_certificates() == []  # nothing half-imported
    result = store_import(sqlite_store, bundle, passphrase=PASS)
    assert sqlite_store.private_key(result.keys[0], PASS).public_key() == pki["bob"].key.public_key()
    with pytest.raises(WrongPasswordError):
        sqlite_store.private_key(result.keys[0], FILE_PW)  # the key now has the store's passphrase


def test_der_and_pkcs7_certificates_and_trust_on_import(
    sqlite_store: Store, pki: dict[str, Identity]
) -> None:
    der = pki["root"].cert.public_bytes(serialization.Encoding.DER)
    [root] = store_import(sqlite_store, read_import(der), passphrase=None, trust=Trust.EMAIL).certificates
    assert root.trust == Trust.EMAIL and sqlite_store.trust_anchors() == [pki["root"].cert]
    p7 = pkcs7.serialize_certificates([pki["inter"].cert, pki["bob"].cert], serialization.Encoding.DER)
    result = store_import(sqlite_store, read_import(p7), passphrase=None)
    assert {r.certificate for r in result.certificates} == {pki["inter"].cert, pki["bob"].cert}
    assert result.keys == ()


def test_a_lone_key_goes_to_its_certificate_in_the_store(
    sqlite_store: Store, pki: dict[str, Identity]
) -> None:
    with pytest.raises(StoreError, match="no certificate"):
        store_import(sqlite_store, read_import(key_pem(pki["alice"])), passphrase=PASS)
    store_import(sqlite_store, read_import(pem(pki["alice"].cert)), passphrase=None)
    result = store_import(sqlite_store, read_import(key_pem(pki["alice"])), passphrase=PASS)
    assert result.certificates == ()
    assert find_certificate(sqlite_store, "alice@example.com", with_key=True).fingerprint == result.keys[0]


def test_files_of_another_kind_are_refused(pki: dict[str, Identity]) -> None:
    with pytest.raises(UsageError, match="not a certificate"):
        read_import(b"\x30\x03\x02\x01\x05")
    with pytest.raises(UsageError, match="empty"):
        read_import(b"  \n")
    with pytest.raises(UsageError):
        read_import(b"hello, world")


def test_a_pkcs12_made_by_openssl_is_imported(
    sqlite_store: Store, pki: dict[str, Identity], tmp_path: Path
) -> None:
    cert, key = pki["alice"].write_pem(tmp_path, "alice")
    chain = tmp_path / "chain.pem"
    chain.write_bytes(pem(pki["inter"].cert, pki["root"].cert))
    p12 = tmp_path / "alice.p12"
    openssl(
        "pkcs12",
        "-export",
        "-in",
        cert,
        "-inkey",
        key,
        "-certfile",
        chain,
        "-out",
        p12,
        "-passout",
        "pass:p12pw",
    )
    data = p12.read_bytes()
    with pytest.raises(PasswordRequiredError):
        read_import(data)
    with pytest.raises(WrongPasswordError):
        read_import(data, b"wrong")
    result = store_import(sqlite_store, read_import(data, b"p12pw"), passphrase=PASS)
    assert len(result.certificates) == 3 and len(result.keys) == 1
    assert find_certificate(sqlite_store, "alice@example.com", with_key=True).certificate == pki["alice"].cert


# ----------------------------------------------------------------------------------------- export


@pytest.fixture
def with_alice(sqlite_store: Store, pki: dict[str, Identity]) -> Store:
    alice = pki["alice"]
    data = pem(alice.cert, pki["inter"].cert, pki["root"].cert) + key_pem(alice)
    store_import(sqlite_store, read_import(data), passphrase=PASS)
    return sqlite_store


def _p12_info(path: Path, password: str) -> str:
    return openssl("pkcs12", "-info", "-in", path, "-nodes", "-passin", f"pass:{password}").decode(
        errors="replace"
    )


def _described(info: str) -> str:
    """openssl's description lines only: the base64 lines of the PEM blocks may spell anything."""
    return "\n".join(line for line in info.splitlines() if " " in line.strip() or ":" in line)


def test_modern_pkcs12_export_is_read_by_openssl(
    with_alice: Store, pki: dict[str, Identity], tmp_path: Path
) -> None:
    record = find_certificate(with_alice, "alice@example.com", with_key=True)
    data = export_pkcs12(with_alice, record.fingerprint, passphrase=PASS, password=b"export pw")
    path = tmp_path / "modern.p12"
    path.write_bytes(data)
    info = _p12_info(path, "export pw")
    assert "MAC: sha256" in info and "PBKDF2" in info and "AES-256-CBC" in info
    assert "3DES" not in _described(info) and "RC2" not in _described(info)
    assert "BEGIN PRIVATE KEY" in info
    certs = load_certificates(info.encode())
    assert set(certs) == {pki["alice"].cert, pki["inter"].cert, pki["root"].cert}
    [bundle] = load_pkcs12_bundles(data, b"export pw")
    assert bundle.certificate == pki["alice"].cert and bundle.friendly_name == "alice@example.com"
    assert bundle.key.public_key() == pki["alice"].key.public_key()


def test_legacy_pkcs12_export_is_read_by_openssl(with_alice: Store, tmp_path: Path) -> None:
    record = find_certificate(with_alice, "alice@example.com", with_key=True)
    path = tmp_path / "legacy.p12"
    path.write_bytes(
        export_pkcs12(
            with_alice, record.fingerprint, passphrase=PASS, password=b"pw", profile=Pkcs12Profile.LEGACY
        )
    )
    info = _p12_info(path, "pw")
    assert "MAC: sha1" in info and "pbeWithSHA1And3-KeyTripleDES-CBC" in info
    assert "RC2" not in _described(info) and "BEGIN PRIVATE KEY" in info


def test_gpgsm_imports_the_legacy_export(with_alice: Store, pki: dict[str, Identity], tmp_path: Path) -> None:
    if _gpgsm.missing():
        pytest.skip(f"{', '.join(_gpgsm.missing())} not installed")
    record = find_certificate(with_alice, "alice@example.com", with_key=True)
    password = b"gpgsm test pw"
    with _gpgsm.GpgsmHome(
        tmp_path / "gnupg", passphrase=password, faked_time=NOW + dt.timedelta(days=1)
    ) as home:
        path = tmp_path / "export.p12"
        for _ in range(
            _gpgsm.ATTEMPTS
        ):  # gpgsm 2.2 refuses about one salt in 64 (see _gpgsm.import_identity)
            path.write_bytes(
                export_pkcs12(
                    with_alice,
                    record.fingerprint,
                    passphrase=PASS,
                    password=password,
                    profile=Pkcs12Profile.LEGACY,
                )
            )
            run = home.run("--import", path, secret=True, check=False)
            if run.returncode == 0 or "error parsing or decrypting the PKCS#12 file" not in run.stderr:
                break
        assert run.returncode == 0, str(run)
        assert "IMPORT_OK" in run.keywords()
        assert _gpgsm.sha1_fingerprint(pki["alice"].cert) in home.secret_keys()


def test_export_needs_the_right_passphrase_and_a_key(with_alice: Store, pki: dict[str, Identity]) -> None:
    record = find_certificate(with_alice, "alice@example.com")
    with pytest.raises(WrongPasswordError):
        export_pkcs12(with_alice, record.fingerprint, passphrase=b"wrong", password=b"pw")
    with pytest.raises(StoreError, match="password"):
        export_pkcs12(with_alice, record.fingerprint, passphrase=PASS, password=b"")
    root_fp = with_alice.find_by_subject(pki["root"].cert.subject)[0].fingerprint
    with pytest.raises(StoreNotFoundError, match="no private key"):
        export_pkcs12(with_alice, root_fp, passphrase=PASS, password=b"pw")
    with pytest.raises(StoreNotFoundError):
        find_certificate(with_alice, "nobody@example.com")
    with pytest.raises(StoreNotFoundError):
        find_certificate(with_alice, root_fp, with_key=True)


def test_certificates_export_as_pem_or_der(with_alice: Store, pki: dict[str, Identity]) -> None:
    fp = find_certificate(with_alice, "alice@example.com").fingerprint
    assert export_certificate(with_alice, fp) == pem(pki["alice"].cert)
    assert export_certificate(with_alice, fp, with_chain=True) == pem(
        pki["alice"].cert, pki["inter"].cert, pki["root"].cert
    )
    der = export_certificate(with_alice, fp, encoding=serialization.Encoding.DER)
    assert x509.load_der_x509_certificate(der) == pki["alice"].cert
    with pytest.raises(StoreError, match="DER"):
        export_certificate(with_alice, fp, encoding=serialization.Encoding.DER, with_chain=True)


def test_keys_at_rest_are_standard_pkcs8_that_openssl_opens(
    with_alice: Store, pki: dict[str, Identity], tmp_path: Path
) -> None:
    fp = find_certificate(with_alice, "alice@example.com", with_key=True).fingerprint
    stored = tmp_path / "stored.der"
    stored.write_bytes(with_alice.encrypted_private_key(fp))
    out = openssl(
        "pkcs8", "-inform", "DER", "-in", stored, "-passin", f"pass:{PASS.decode()}", "-outform", "PEM"
    )
    key = serialization.load_pem_private_key(out[out.index(b"-----BEGIN") :], None)
    assert key.public_key() == pki["alice"].key.public_key()
    with pytest.raises(AssertionError):
        openssl("pkcs8", "-inform", "DER", "-in", stored, "-passin", "pass:wrong")
