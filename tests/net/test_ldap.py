"""LDAP certificate discovery against a real slapd (tests/servers/slapd.py)."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

from smimekit.errors import FetchError, UsageError
from smimekit.net.ldap import LdapDirectory, LdapTls, ldap_filter_for
from tests.servers import _ports, need
from tests.servers.slapd import Slapd
from tests.testpki import make_ca, make_ee

BASE = "dc=example,dc=com"


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


@dataclass(frozen=True)
class Directory:
    slapd: Slapd
    alice: x509.Certificate
    bob: tuple[x509.Certificate, ...]  # two in userCertificate, one in userSMIMECertificate
    star: x509.Certificate  # the certificate of "st*r@example.com"


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Directory]:
    need("slapd")
    ca = make_ca("LDAP test CA")
    alice = make_ee("alice@example.com", ca, key_kind="p256").cert
    bob = tuple(make_ee("bob@example.com", ca, key_kind="p256").cert for _ in range(3))
    star = make_ee("st*r@example.com", ca, key_kind="p256").cert
    with Slapd(tmp_path_factory.mktemp("ldap"), BASE, tls=True) as slapd:
        slapd.add_person("alice@example.com", "Alice Example", [_der(alice)])
        slapd.add_person(
            ["bob@example.com", "robert@example.com"],
            "Bob Example",
            [_der(bob[0]), _der(bob[1])],
            smime_certs_der=[pkcs7.serialize_certificates([bob[2], bob[0]], Encoding.DER)],
        )
        slapd.add_person("st*r@example.com", "Star Example", [_der(star)])
        slapd.add_person("nocert@example.com", "No Certificate")
        yield Directory(slapd, alice, bob, star)


def _dir(d: Directory, **kw: object) -> LdapDirectory:
    return LdapDirectory(d.slapd.url, base_dn=BASE, timeout=5, **kw)  # type: ignore[arg-type]


def test_finds_the_certificate_published_for_an_address(directory: Directory) -> None:
    found = _dir(directory).certificates_for("alice@example.com")
    assert [_der(c) for c in found] == [_der(directory.alice)]


def test_address_matching_ignores_case(directory: Directory) -> None:
    found = _dir(directory).certificates_for("ALICE@Example.COM")
    assert [_der(c) for c in found] == [_der(directory.alice)]


def test_several_certificates_from_both_attributes_without_duplicates(directory: Directory) -> None:
    lookup = _dir(directory).lookup("bob@example.com")
    assert {_der(c) for c in lookup.certificates} == {_der(c) for c in directory.bob}
    assert len(lookup.certificates) == 3  # bob[0] is in both attributes, returned once
    assert lookup.entries == (f"uid=Bob Example,ou=people,{BASE}",)
    assert lookup.skipped == ()
    # the entry's second address finds the same certificates
    assert len(_dir(directory).certificates_for("robert@example.com")) == 3


def test_unknown_address_and_entry_without_certificates_give_nothing(directory: Directory) -> None:
    assert _dir(directory).certificates_for("nobody@example.com") == []
    lookup = _dir(directory).lookup("nocert@example.com")
    assert lookup.certificates == () and len(lookup.entries) == 1


def test_filter_metacharacters_in_the_address_cannot_widen_the_search(directory: Directory) -> None:
    d = _dir(directory)
    assert d.certificates_for("*@example.com") == []  # a wildcard is a literal star
    assert d.certificates_for("alice@example.com)(mail=*") == []
    assert d.certificates_for("*)(mail=*@example.com") == []
    assert d.certificates_for("x@example.com)(|(mail=*)") == []
    # a real address with a star finds exactly its own entry
    assert [_der(c) for c in d.certificates_for("st*r@example.com")] == [_der(directory.star)]
    assert ldap_filter_for("a*(b)\\@example.com") == (
        "(&(objectClass=inetOrgPerson)(mail=a\\2a\\28b\\29\\5c@example.com))"
    )


def test_values_that_cannot_be_addresses_are_usage_errors(directory: Directory) -> None:
    d = _dir(directory)
    for bad in ("*)(mail=*", "", "alice@example.com\x00", "alice@example.com\r\nx", "a" * 250 + "@b.cd"):
        with pytest.raises(UsageError):
            d.certificates_for(bad)


def test_a_value_that_is_not_a_certificate_is_skipped_and_reported(directory: Directory) -> None:
    slapd = directory.slapd
    good = make_ee("dave@example.com", make_ca("other CA"), key_kind="p256").cert
    slapd.add_person("dave@example.com", "Dave Example", [_der(good)], smime_certs_der=[b"not PKCS#7"])
    lookup = _dir(directory).lookup("dave@example.com")
    assert [_der(c) for c in lookup.certificates] == [_der(good)]
    assert len(lookup.skipped) == 1 and "userSMIMECertificate" in lookup.skipped[0]


def test_server_down_is_a_fetch_error(directory: Directory) -> None:
    port = _ports.free_port()  # nothing listens there
    d = LdapDirectory(f"ldap://127.0.0.1:{port}/", base_dn=BASE, timeout=5)
    with pytest.raises(FetchError) as err:
        d.certificates_for("alice@example.com")
    assert "connection refused" in err.value.reason and f":{port}" in err.value.reason


def test_a_server_that_never_answers_times_out(directory: Directory) -> None:
    with socket.socket() as silent:  # accepts connections (backlog) but never says anything
        silent.bind((_ports.HOST, 0))
        silent.listen(5)
        port = silent.getsockname()[1]
        d = LdapDirectory(f"ldap://127.0.0.1:{port}", base_dn=BASE, timeout=1)
        start = time.monotonic()
        with pytest.raises(FetchError) as err:
            d.certificates_for("alice@example.com")
        assert time.monotonic() - start < 10
    assert "no answer within 1 s" in err.value.reason


def test_bad_credentials_are_a_fetch_error(directory: Directory) -> None:
    d = _dir(directory, bind_dn=directory.slapd.root_dn, password="wrong")
    with pytest.raises(FetchError) as err:
        d.certificates_for("alice@example.com")
    assert "invalid credentials" in err.value.reason
    good = _dir(directory, bind_dn=directory.slapd.root_dn, password=directory.slapd.root_password)
    assert len(good.certificates_for("alice@example.com")) == 1


def test_a_missing_base_dn_is_a_fetch_error(directory: Directory) -> None:
    d = LdapDirectory(directory.slapd.url, base_dn="ou=nowhere,dc=example,dc=com", timeout=5)
    with pytest.raises(FetchError, match="base DN does not exist"):
        d.certificates_for("alice@example.com")


def test_ldaps_and_starttls_verify_the_server(directory: Directory) -> None:
    slapd = directory.slapd
    ldaps = LdapDirectory(slapd.ldaps_url, base_dn=BASE, ca_file=slapd.ca_pem, timeout=5)
    assert len(ldaps.certificates_for("alice@example.com")) == 1
    starttls = _dir(directory, tls=LdapTls.STARTTLS, ca_file=slapd.ca_pem)
    assert len(starttls.certificates_for("alice@example.com")) == 1
    untrusted = LdapDirectory(slapd.ldaps_url, base_dn=BASE, timeout=5)  # the system trust store
    with pytest.raises(FetchError, match="certificate"):
        untrusted.certificates_for("alice@example.com")
    with pytest.raises(FetchError):
        _dir(directory, tls=LdapTls.STARTTLS).certificates_for("alice@example.com")


def test_a_certificate_for_another_host_is_refused(tmp_path: Path) -> None:
    with Slapd(tmp_path, BASE, tls=True, tls_hosts=("ldap.example.com",)) as other:
        d = LdapDirectory(other.ldaps_url, base_dn=BASE, ca_file=other.ca_pem, timeout=5)
        with pytest.raises(FetchError, match="certificate is not for this host name or address"):
            d.certificates_for("alice@example.com")


def test_directory_that_needs_a_bind(tmp_path: Path, directory: Directory) -> None:
    with Slapd(tmp_path, BASE, anonymous_read=False) as closed:
        closed.add_person("alice@example.com", "Alice Example", [_der(directory.alice)])
        anonymous = LdapDirectory(closed.url, base_dn=BASE, timeout=5)
        with pytest.raises(FetchError, match=r"insufficient access rights.*bind DN and password"):
            anonymous.certificates_for("alice@example.com")
        bound = LdapDirectory(
            closed.url, base_dn=BASE, bind_dn=closed.root_dn, password=closed.root_password, timeout=5
        )
        assert [_der(c) for c in bound.certificates_for("alice@example.com")] == [_der(directory.alice)]


def test_password_is_not_sent_in_clear_over_a_network() -> None:
    d = LdapDirectory("ldap://192.0.2.1/", base_dn=BASE, bind_dn="cn=x", password="secret", timeout=1)
    with pytest.raises(UsageError, match="unencrypted"):
        d.certificates_for("alice@example.com")
    assert "secret" not in repr(d)


@pytest.mark.parametrize(
    ("url", "kw"),
    [
        ("http://127.0.0.1/", {}),
        ("ldap:///", {}),
        ("ldap://127.0.0.1/dc=example,dc=com", {}),
        ("ldap://127.0.0.1:99999/", {}),
        ("ldap://127.0.0.1/", {"bind_dn": "cn=x"}),
        ("ldap://127.0.0.1/", {"timeout": 0}),
        ("ldap://127.0.0.1/", {"object_class": "x)(y"}),
    ],
)
def test_arguments_that_cannot_work_are_usage_errors(url: str, kw: dict[str, object]) -> None:
    with pytest.raises(UsageError):
        LdapDirectory(url, base_dn=BASE, **kw)  # type: ignore[arg-type]


def test_cli_encrypt_to_an_address_falls_back_to_the_directory(directory: Directory, tmp_path: Path) -> None:
    """``smimekit encrypt --to ADDR --ldap URL --ldap-base DN``: the certificate comes from slapd, and the
    recipient (openssl, with the private key) can read the message."""
    need("openssl")
    from click.testing import CliRunner

    from smimekit.cli.main import cli

    ca = make_ca("CLI LDAP CA")
    erin = make_ee("erin@example.com", ca)
    directory.slapd.add_person("erin@example.com", "Erin Example", [_der(erin.cert)])
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem())
    erin.write_pem(tmp_path, "erin")
    (tmp_path / "msg.eml").write_bytes(
        b"From: bob@example.org\r\nTo: erin@example.com\r\n\r\nfor Erin only\r\n"
    )
    common = ["--store", str(tmp_path / "no-store.db"), "encrypt", "--ldap", directory.slapd.url]
    common += ["--ldap-base", BASE, "--trust", str(tmp_path / "ca.pem"), str(tmp_path / "msg.eml")]

    done = CliRunner().invoke(cli, [*common, "--to", "erin@example.com", "-o", str(tmp_path / "enc.eml")])
    assert done.exit_code == 0, done.output
    opened = subprocess.run(
        [
            "openssl",
            "cms",
            "-decrypt",
            "-in",
            str(tmp_path / "enc.eml"),
            "-inkey",
            str(tmp_path / "erin.key"),
        ],
        capture_output=True,
        check=False,
    )
    assert opened.returncode == 0, opened.stderr
    assert opened.stdout.endswith(b"\r\n\r\nfor Erin only\r\n")

    missing = CliRunner().invoke(cli, [*common, "--to", "zoe@example.com", "-o", str(tmp_path / "no.eml")])
    assert missing.exit_code == 2 and "no usable certificate" in missing.output
    assert not (tmp_path / "no.eml").exists()

    down = [*common[:4], f"ldap://127.0.0.1:{_ports.free_port()}/", *common[5:]]
    unreachable = CliRunner().invoke(cli, [*down, "--to", "erin@example.com", "-o", str(tmp_path / "no.eml")])
    assert unreachable.exit_code == 2
    assert unreachable.output.startswith(
        "smimekit: error: cannot connect to the LDAP server ldap://127.0.0.1:"
    )
    assert "connection refused" in unreachable.output and len(unreachable.output.splitlines()) == 1
