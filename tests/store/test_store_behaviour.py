"""What a user of the store sees, on both backends (SQLite and a real PostgreSQL server)."""

from __future__ import annotations

import datetime as dt
import multiprocessing
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import keys as asn1_keys
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from smimekit.errors import StoreError, StoreNotFoundError, StoreSchemaError, WrongPasswordError
from smimekit.store import RevocationReason, Store, Trust, open_store
from smimekit.store._db import migrate
from smimekit.store.schema import SCHEMA_VERSION
from tests.store._certs import custom_ee, make_crl, utf8_mailbox
from tests.store.conftest import raw_database
from tests.testpki import NOW, Identity, make_ca, make_ee

PASS = b"correct horse battery staple"


@pytest.fixture(scope="module")
def pki() -> dict[str, Identity]:
    root = make_ca("Store Test Root")
    inter = make_ca("Store Test Intermediate", issuer=root)
    return {
        "root": root,
        "inter": inter,
        "alice": make_ee("alice@example.com", inter, key_kind="p256"),
        "alice_old": make_ee(
            "alice@example.com", inter, key_kind="p256", not_before=NOW - dt.timedelta(days=400)
        ),
        "bob": make_ee("Bob@Example.ORG", root, key_kind="p256"),
    }


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


# ----------------------------------------------------------------------------------- certificates


def test_a_certificate_is_found_by_every_index(store: Store, pki: dict[str, Identity]) -> None:
    cert = pki["alice"].cert
    record = store.add_certificate(cert)
    assert record.certificate == cert
    assert len(record.fingerprint) == 64 and record.emails == ("alice@example.com",)
    assert record.trust == Trust.NONE and not record.has_private_key and record.source == "import"
    assert record.added.tzinfo is not None
    fp = record.fingerprint
    assert store.find_certificate(fp) == record
    assert store.find_certificate(fp[:8].upper()) == record  # a prefix, any case
    assert store.find_certificate(":".join(fp[i : i + 2] for i in range(0, 64, 2))) == record
    assert store.find_by_issuer_serial(cert.issuer, cert.serial_number) == record
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert store.find_by_subject_key_identifier(ski) == [record]
    assert store.find_by_subject(cert.subject) == [record]
    assert store.find_by_email("alice@example.com") == [record]
    assert store.find_certificate("0" * 64) is None
    assert store.find_certificate("not hex") is None and store.find_certificate("abc") is None
    assert store.find_by_issuer_serial(cert.issuer, cert.serial_number + 1) is None


def test_addresses_match_as_rfc_8398_says(store: Store, pki: dict[str, Identity]) -> None:
    root = pki["root"]
    bob = store.add_certificate(pki["bob"].cert)
    assert bob.emails == ("Bob@example.org",)  # the domain lower-cased, the local part as written
    assert store.find_by_email("Bob@EXAMPLE.org") == [bob]
    assert store.find_by_email("bob@example.org") == []  # local parts are case-sensitive
    idn = store.add_certificate(
        custom_ee(root, cn="IDN", san=[x509.RFC822Name("user@xn--bcher-kva.example")]).cert
    )
    assert idn.emails == ("user@bücher.example",)
    assert (
        store.find_by_email("user@BÜCHER.example")
        == [idn]
        == store.find_by_email("user@xn--bcher-kva.example")
    )
    eai = store.add_certificate(custom_ee(root, cn="EAI", san=[utf8_mailbox("josé@bücher.example")]).cert)
    assert store.find_by_email("josé@Bücher.example") == [eai]
    legacy = store.add_certificate(
        custom_ee(root, cn="Legacy", san=None, subject_email="old@legacy.example").cert
    )
    assert store.find_by_email("old@legacy.example") == [legacy]
    # with a subjectAltName the subject's emailAddress does not count (RFC 5280 §4.2.1.10, name constraints)
    both = custom_ee(root, cn="Both", san=[x509.RFC822Name("san@x.example")], subject_email="dn@x.example")
    store.add_certificate(both.cert)
    assert store.find_by_email("dn@x.example") == []
    assert [r.fingerprint for r in store.find_by_email("san@x.example")] == [
        store.add_certificate(both.cert).fingerprint
    ]
    assert store.find_by_email("not an address") == []


def test_newest_certificate_of_an_address_comes_first(store: Store, pki: dict[str, Identity]) -> None:
    old = store.add_certificate(pki["alice_old"].cert)
    new = store.add_certificate(pki["alice"].cert)
    assert [r.fingerprint for r in store.find_by_email("alice@example.com")] == [
        new.fingerprint,
        old.fingerprint,
    ]
    store.add_certificate(pki["bob"].cert)
    store.add_certificate(pki["root"].cert)
    listed = store.list_certificates()
    assert [r.emails[:1] for r in listed] == [
        ("Bob@example.org",),
        ("alice@example.com",),
        ("alice@example.com",),
        (),
    ]
    assert [r.fingerprint for r in store.list_certificates(email="alice@example.com")] == [
        new.fingerprint,
        old.fingerprint,
    ]


def test_adding_again_keeps_one_record_and_its_trust(store: Store, pki: dict[str, Identity]) -> None:
    root = pki["root"].cert
    first = store.add_certificate(root, trust=Trust.EMAIL)
    again = store.add_certificate(root, source="harvest")
    assert again == first  # same trust, same source, same date
    assert len(store.list_certificates()) == 1


def test_trust_anchors_follow_their_flags(store: Store, pki: dict[str, Identity]) -> None:
    root = store.add_certificate(pki["root"].cert, trust=Trust.EMAIL_SIGNING)
    inter = store.add_certificate(pki["inter"].cert)
    assert store.trust_anchors() == [pki["root"].cert]
    assert store.trust_anchors(Trust.EMAIL_ENCRYPTION) == []
    updated = store.set_trust(inter.fingerprint[:12], Trust.EMAIL)
    assert updated.trust == Trust.EMAIL
    assert store.trust_anchors(Trust.EMAIL_ENCRYPTION) == [pki["inter"].cert]
    assert set(map(der, store.trust_anchors(Trust.EMAIL_SIGNING))) == {
        der(pki["root"].cert),
        der(pki["inter"].cert),
    }
    store.set_trust(root.fingerprint, Trust.NONE)
    assert store.trust_anchors(Trust.EMAIL_SIGNING) == [pki["inter"].cert]
    with pytest.raises(StoreNotFoundError):
        store.set_trust("ab" * 32, Trust.EMAIL)


def test_removing_a_certificate_removes_its_key(store: Store, pki: dict[str, Identity]) -> None:
    alice = store.add_certificate(pki["alice"].cert)
    store.add_private_key(alice.fingerprint, pki["alice"].key, PASS)
    store.remove_certificate(alice.fingerprint)
    assert store.find_certificate(alice.fingerprint) is None
    assert store.find_by_email("alice@example.com") == []
    with pytest.raises(StoreNotFoundError):
        store.private_key(alice.fingerprint, PASS)
    with pytest.raises(StoreNotFoundError):
        store.remove_certificate(alice.fingerprint)


# ----------------------------------------------------------------------------------- private keys


def test_private_keys_are_encrypted_at_rest(store: Store, pki: dict[str, Identity]) -> None:
    alice = store.add_certificate(pki["alice"].cert)
    store.add_private_key(alice.fingerprint, pki["alice"].key, PASS)
    assert store.find_certificate(alice.fingerprint).has_private_key  # type: ignore[union-attr]
    assert [r.fingerprint for r in store.list_certificates(with_keys=True)] == [alice.fingerprint]
    key = store.private_key(alice.fingerprint, PASS)
    assert key.private_numbers() == pki["alice"].key.private_numbers()  # type: ignore[union-attr]
    stored = store.encrypted_private_key(alice.fingerprint)
    info = asn1_keys.EncryptedPrivateKeyInfo.load(stored)
    algorithm = info["encryption_algorithm"]
    assert algorithm["algorithm"].native == "pbes2"
    assert algorithm["parameters"]["key_derivation_func"]["parameters"]["iteration_count"].native >= 100_000
    assert algorithm["parameters"]["encryption_scheme"]["algorithm"].native == "aes256_cbc"
    plain = pki["alice"].key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert plain not in stored
    with pytest.raises(WrongPasswordError):
        store.private_key(alice.fingerprint, b"wrong passphrase")


def test_a_key_is_stored_only_for_its_certificate(store: Store, pki: dict[str, Identity]) -> None:
    alice = store.add_certificate(pki["alice"].cert)
    with pytest.raises(StoreError, match="does not belong"):
        store.add_private_key(alice.fingerprint, pki["bob"].key, PASS)
    with pytest.raises(StoreNotFoundError):
        store.add_private_key(
            store.add_certificate(pki["bob"].cert).fingerprint[:-1] + "x", pki["bob"].key, PASS
        )
    with pytest.raises(StoreNotFoundError):
        store.add_private_key("12" * 32, pki["alice"].key, PASS)
    with pytest.raises(StoreError, match="passphrase"):
        store.add_private_key(alice.fingerprint, pki["alice"].key, b"")
    with pytest.raises(StoreNotFoundError, match="no private key"):
        store.private_key(alice.fingerprint, PASS)
    assert not store.find_certificate(alice.fingerprint).has_private_key  # type: ignore[union-attr]


# ----------------------------------------------------------------------------------- revocation data


def test_crls_newer_replaces_older_and_not_the_reverse(store: Store, pki: dict[str, Identity]) -> None:
    root, inter = pki["root"], pki["inter"]
    old = make_crl(root, this_update=NOW - dt.timedelta(days=2), number=1)
    new = make_crl(root, this_update=NOW - dt.timedelta(days=1), revoked=(42,), number=2)
    other = make_crl(inter, this_update=NOW, number=1)
    store.put_crl(old, url="http://crl.example/root.crl")
    store.put_crl(new, url="http://crl.example/root.crl")
    store.put_crl(old)  # older news: kept out
    store.put_crl(other)
    assert store.crls(root.cert.subject) == [new]
    assert len(store.crls()) == 2
    fetched = store.crl_for_url("http://crl.example/root.crl")
    assert fetched is not None and fetched[0] == new and fetched[1].tzinfo is not None
    assert store.crl_for_url("http://elsewhere.example/") is None


def test_ocsp_responses_are_served_while_fresh(store: Store) -> None:
    fp = "ab" * 32
    store.put_ocsp_response(
        fp, b"\x30\x03\x0a\x01\x00", this_update=NOW, next_update=NOW + dt.timedelta(hours=12)
    )
    assert store.ocsp_response(fp, now=NOW + dt.timedelta(hours=1)) == b"\x30\x03\x0a\x01\x00"
    assert store.ocsp_response(fp, now=NOW + dt.timedelta(hours=13)) is None
    store.put_ocsp_response(fp, b"older", this_update=NOW - dt.timedelta(hours=1), next_update=None)
    assert store.ocsp_response(fp, now=NOW + dt.timedelta(hours=1)) == b"\x30\x03\x0a\x01\x00"
    other = "cd" * 32
    store.put_ocsp_response(other, b"no next update", this_update=NOW, next_update=None)
    assert store.ocsp_response(other, now=NOW + dt.timedelta(hours=23)) == b"no next update"
    assert store.ocsp_response(other, now=NOW + dt.timedelta(days=2)) is None
    assert store.ocsp_response("ef" * 32, now=NOW) is None
    with pytest.raises(StoreError, match="timezone"):
        store.ocsp_response(fp, now=dt.datetime(2026, 1, 1))  # naive


# ----------------------------------------------------------------------------------- correspondents


def test_older_news_about_a_correspondent_never_replaces_newer(store: Store) -> None:
    assert store.correspondent("carol@example.net") is None
    store.record_correspondent(
        "carol@Example.NET", capabilities=["2.16.840.1.101.3.4.1.46"], preferred_certificate="aa" * 32, at=NOW
    )
    store.record_correspondent(
        "carol@example.net",
        capabilities=["1.2.840.113549.3.7"],
        preferred_certificate=None,
        at=NOW - dt.timedelta(days=3),
    )
    record = store.correspondent("carol@example.net")
    assert record is not None
    assert record.capabilities == ("2.16.840.1.101.3.4.1.46",)
    assert record.preferred_certificate == "aa" * 32 and record.updated == NOW
    later = NOW + dt.timedelta(minutes=5)
    caps = ["2.16.840.1.101.3.4.1.6", "2.16.840.1.101.3.4.1.42"]
    store.record_correspondent("carol@example.net", capabilities=caps, preferred_certificate=None, at=later)
    record = store.correspondent("carol@EXAMPLE.net")
    assert record is not None and record.capabilities == tuple(caps) and record.preferred_certificate is None
    assert record.updated == later


# ----------------------------------------------------------------------------------- CA tables


def test_ca_tables(store: Store, pki: dict[str, Identity]) -> None:
    root = store.add_certificate(pki["root"].cert)
    inter = store.add_certificate(pki["inter"].cert)
    assert store.find_ca() is None and store.list_cas() == []
    first = store.add_ca(
        "root", root.fingerprint, crl_url="http://crl.example/r.crl", ocsp_url=None, default=False
    )
    assert store.find_ca() == first  # the only CA is the default one
    second = store.add_ca(
        "inter",
        inter.fingerprint[:16],
        crl_url=None,
        ocsp_url="http://ocsp.example",
        default=True,
        ca_issuers_url="http://ca.example/inter.der",
    )
    assert second.fingerprint == inter.fingerprint and second.certificate == pki["inter"].cert
    assert (first.crl_url, first.ocsp_url, first.ca_issuers_url) == ("http://crl.example/r.crl", None, None)
    assert (second.crl_url, second.ocsp_url, second.ca_issuers_url) == (
        None,
        "http://ocsp.example",
        "http://ca.example/inter.der",
    )
    assert store.find_ca() == second and store.find_ca("root") == first and store.find_ca("nope") is None
    assert [c.name for c in store.list_cas()] == ["inter", "root"]
    with pytest.raises(StoreError, match="already"):
        store.add_ca("root", inter.fingerprint, crl_url=None, ocsp_url=None, default=False)
    with pytest.raises(StoreNotFoundError):
        store.add_ca("ghost", "99" * 32, crl_url=None, ocsp_url=None, default=False)
    with pytest.raises(StoreError, match="CA"):
        store.remove_certificate(root.fingerprint)

    assert [store.next_crl_number(root.fingerprint) for _ in range(3)] == [1, 2, 3]
    assert store.next_crl_number(inter.fingerprint) == 1
    with pytest.raises(StoreNotFoundError):
        store.next_crl_number("77" * 32)

    alice, old = pki["alice"].cert, pki["alice_old"].cert
    issued = store.record_issued(inter.fingerprint, old, email="alice@example.com")
    store.record_issued(inter.fingerprint, alice, email="alice@example.com")
    store.record_issued(inter.fingerprint, pki["bob"].cert, email=None)
    assert issued.serial == old.serial_number and issued.revoked_at is None and issued.reason is None
    assert store.find_certificate(issued.fingerprint).source == "ca"  # type: ignore[union-attr]
    with pytest.raises(StoreError, match="serial"):
        store.record_issued(inter.fingerprint, old, email=None)
    assert [r.serial for r in store.issued(inter.fingerprint, email="alice@example.com")] == [
        old.serial_number,
        alice.serial_number,
    ]
    assert len(store.issued(inter.fingerprint)) == 3 and store.issued(root.fingerprint) == []

    revoked = store.revoke_issued(
        inter.fingerprint, old.serial_number, at=NOW, reason=RevocationReason.KEY_COMPROMISE
    )
    assert revoked.revoked_at == NOW and revoked.reason is RevocationReason.KEY_COMPROMISE
    again = store.revoke_issued(
        inter.fingerprint,
        old.serial_number,
        at=NOW + dt.timedelta(days=1),
        reason=RevocationReason.SUPERSEDED,
    )
    assert again == revoked  # revoking twice keeps the first date
    with pytest.raises(StoreNotFoundError):
        store.revoke_issued(inter.fingerprint, 12345, at=NOW, reason=RevocationReason.UNSPECIFIED)


# ----------------------------------------------------------------------------------- lifecycle


def test_everything_survives_reopening(store_location: str, pki: dict[str, Identity]) -> None:
    with open_store(store_location) as store:
        alice = store.add_certificate(pki["alice"].cert, trust=Trust.EMAIL_ENCRYPTION)
        store.add_private_key(alice.fingerprint, pki["alice"].key, PASS)
        store.record_correspondent(
            "alice@example.com", capabilities=["1.2.3"], preferred_certificate=None, at=NOW
        )
    with open_store(store_location) as store:
        again = store.find_certificate(alice.fingerprint)
        assert again is not None and again.trust == Trust.EMAIL_ENCRYPTION and again.has_private_key
        assert store.private_key(alice.fingerprint, PASS).public_key() == pki["alice"].key.public_key()
        assert store.correspondent("alice@example.com") is not None
    with pytest.raises(StoreError, match="closed"):
        store.list_certificates()


def _writer(location: str, ders: list[bytes], crl_numbers: int, ca_fp: str, start: Any, out: Any) -> None:
    try:
        with open_store(location, timeout=30) as store:
            start.wait(timeout=60)  # both processes hold an open store before either writes
            numbers = []
            for i, data in enumerate(ders):
                store.add_certificate(x509.load_der_x509_certificate(data))
                if i < crl_numbers:
                    numbers.append(store.next_crl_number(ca_fp))
            numbers.extend(store.next_crl_number(ca_fp) for _ in range(crl_numbers - len(ders)))
        out.put(("ok", numbers))
    except BaseException as exc:
        out.put(("error", repr(exc)))


def test_two_processes_writing_at_once_both_succeed(store_location: str, pki: dict[str, Identity]) -> None:
    with open_store(store_location) as store:
        ca = store.add_certificate(pki["root"].cert)
        store.add_ca("root", ca.fingerprint, crl_url=None, ocsp_url=None, default=True)
    batches = [
        [
            der(custom_ee(pki["root"], cn=f"P{p} {i}", san=[x509.RFC822Name(f"p{p}.{i}@example.com")]).cert)
            for i in range(15)
        ]
        for p in range(2)
    ]
    ctx = multiprocessing.get_context("spawn")
    queue, start = ctx.Queue(), ctx.Barrier(2)
    procs = [
        ctx.Process(target=_writer, args=(store_location, batch, 20, ca.fingerprint, start, queue))
        for batch in batches
    ]
    for proc in procs:
        proc.start()
    results = [queue.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
    assert [r[0] for r in results] == ["ok", "ok"], results
    numbers = sorted(n for _, got in results for n in got)
    assert numbers == list(range(1, 41))  # every CRL number handed out once
    with open_store(store_location) as store:
        assert len(store.list_certificates()) == 31
        assert store.next_crl_number(ca.fingerprint) == 41


# ----------------------------------------------------------------------------------- schema


def test_a_version_1_store_is_migrated(store_location: str, pki: dict[str, Identity]) -> None:
    db = raw_database(store_location)
    migrate(db, target=1)
    with db.transaction(write=True) as cur:  # a certificate as smimekit with schema 1 wrote it
        cur.run(
            """INSERT INTO certificates (fingerprint, der, subject, issuer, serial, ski, not_before, not_after,
                   first_email, trust, source, added) VALUES (?, ?, ?, ?, ?, NULL, 0, 0, ?, 3, 'import', 0)""",
            (
                "ab" * 32,
                der(pki["root"].cert),
                pki["root"].cert.subject.public_bytes(),
                pki["root"].cert.issuer.public_bytes(),
                str(pki["root"].cert.serial_number),
                "",
            ),
        )
        assert "cas" not in db.table_names(cur)
    db.close()
    with open_store(store_location) as store:
        assert store.trust_anchors() == [pki["root"].cert]
        store.add_ca("root", "ab" * 32, crl_url=None, ocsp_url=None, default=True)  # a version 2 table
        assert store.next_crl_number("ab" * 32) == 1
    db = raw_database(store_location)
    with db.transaction(write=False) as cur:
        assert [r[0] for r in cur.run("SELECT version FROM schema_version ORDER BY version")] == [1, 2, 3]
    db.close()


def test_a_version_2_store_keeps_its_cas_and_learns_ca_issuers_urls(
    store_location: str, pki: dict[str, Identity]
) -> None:
    db = raw_database(store_location)
    migrate(db, target=2)
    root, inter = pki["root"].cert, pki["inter"].cert
    with db.transaction(write=True) as cur:  # a CA and what it issued, as smimekit with schema 2 wrote them
        for fp, cert in (("ab" * 32, root), ("cd" * 32, inter)):
            cur.run(
                """INSERT INTO certificates (fingerprint, der, subject, issuer, serial, ski, not_before,
                       not_after, first_email, trust, source, added) VALUES (?, ?, ?, ?, ?, NULL, 0, 0, '', 0, 'ca', 0)""",
                (
                    fp,
                    der(cert),
                    cert.subject.public_bytes(),
                    cert.issuer.public_bytes(),
                    str(cert.serial_number),
                ),
            )
        cur.run(
            """INSERT INTO cas (name, fingerprint, crl_url, ocsp_url, is_default, crl_number, created)
               VALUES ('root', ?, 'http://crl.example/r.crl', 'http://ocsp.example', 1, 4, 0)""",
            ("ab" * 32,),
        )
        cur.run(
            """INSERT INTO issued (ca_fingerprint, serial, fingerprint, email, email_key, not_after, issued)
               VALUES (?, ?, ?, NULL, NULL, 0, 0)""",
            ("ab" * 32, str(inter.serial_number), "cd" * 32),
        )
    db.close()
    with open_store(store_location) as store:
        old = store.find_ca()
        assert old is not None and (old.name, old.fingerprint, old.certificate) == ("root", "ab" * 32, root)
        assert (old.crl_url, old.ocsp_url, old.ca_issuers_url, old.is_default) == (
            "http://crl.example/r.crl",
            "http://ocsp.example",
            None,
            True,
        )
        assert store.next_crl_number(old.fingerprint) == 5  # the counter carried over
        assert [i.serial for i in store.issued(old.fingerprint)] == [inter.serial_number]
        new = store.add_ca(
            "inter",
            "cd" * 32,
            crl_url=None,
            ocsp_url=None,
            default=False,
            ca_issuers_url="http://x.example/i",
        )
        assert new.ca_issuers_url == "http://x.example/i"
    with open_store(store_location) as store:  # and it is kept
        again = store.find_ca("inter")
        assert again is not None and again.ca_issuers_url == "http://x.example/i"
        assert [c.ca_issuers_url for c in store.list_cas()] == ["http://x.example/i", None]
    db = raw_database(store_location)
    with db.transaction(write=False) as cur:
        assert [r[0] for r in cur.run("SELECT version FROM schema_version ORDER BY version")] == [1, 2, 3]
    db.close()


def test_a_store_of_a_newer_smimekit_is_refused(store_location: str) -> None:
    open_store(store_location).close()
    db = raw_database(store_location)
    with db.transaction(write=True) as cur:
        cur.run("INSERT INTO schema_version (version, applied) VALUES (?, 0)", (SCHEMA_VERSION + 1,))
    db.close()
    with pytest.raises(StoreSchemaError, match="newer smimekit"):
        open_store(store_location)


def test_a_database_of_something_else_is_refused(store_location: str) -> None:
    db = raw_database(store_location)
    with db.transaction(write=True) as cur:
        cur.run("CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount INTEGER)")
    db.close()
    with pytest.raises(StoreSchemaError, match="not a smimekit store"):
        open_store(store_location)
    db = raw_database(store_location)
    with db.transaction(write=False) as cur:
        assert db.table_names(cur) == {"invoices"}  # left as it was
    db.close()


def test_naive_times_and_wrong_types_are_refused(store: Store, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="timezone"):
        store.record_correspondent(
            "a@b.example", capabilities=[], preferred_certificate=None, at=dt.datetime(2026, 1, 1)
        )
    with pytest.raises(StoreError, match="certificate"):
        store.add_certificate(b"not a certificate")  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="OID"):
        store.record_correspondent("a@b.example", capabilities=["aes"], preferred_certificate=None, at=NOW)


def _opener(location: str, data: bytes, start: Any, out: Any) -> None:
    try:
        start.wait(timeout=60)
        with open_store(location, timeout=30) as store:
            out.put(("ok", store.add_certificate(x509.load_der_x509_certificate(data)).fingerprint))
    except BaseException as exc:
        out.put(("error", repr(exc)))


def test_processes_creating_the_same_new_store_at_once_all_succeed(
    store_location: str, pki: dict[str, Identity]
) -> None:
    certs = [pki["root"].cert, pki["inter"].cert, pki["bob"].cert]
    ctx = multiprocessing.get_context("spawn")
    queue, start = ctx.Queue(), ctx.Barrier(len(certs))
    procs = [ctx.Process(target=_opener, args=(store_location, der(c), start, queue)) for c in certs]
    for proc in procs:
        proc.start()
    results = [queue.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
    assert sorted(r[0] for r in results) == ["ok"] * len(certs), results
    with open_store(store_location) as store:
        assert {r.certificate for r in store.list_certificates()} == set(certs)
    db = raw_database(store_location)
    with db.transaction(write=False) as cur:  # migrated once, not once per process
        versions = [r[0] for r in cur.run("SELECT version FROM schema_version ORDER BY version")]
        assert versions == list(range(1, SCHEMA_VERSION + 1))
    db.close()
