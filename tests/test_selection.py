"""Choosing from the store (smimekit.selection) and reading who a message is for (smimekit.recipients):
the cipher every recipient reads, the certificate to sign with or encrypt to, the key that opens a
message, and the checks a recipient certificate must pass — on a real SQLite store."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from smimekit import cms, mime, smime
from smimekit.cms import ContentCipher
from smimekit.errors import NotSmimeError, StoreNotFoundError, UsageError
from smimekit.recipients import RecipientKind, message_recipients
from smimekit.selection import (
    TrustPolicy,
    check_recipient,
    choose_cipher,
    decryption_candidates,
    issuer_chain,
    recipient_certificate,
    signing_certificate,
)
from smimekit.store import Store, Trust, open_store
from tests.testpki import NOW, Identity, make_ca, make_ee

GCM = ContentCipher.AES256_GCM.value
CBC = ContentCipher.AES256_CBC.value
AT = NOW + dt.timedelta(days=10)
PASSPHRASE = b"store passphrase"


# ---------------------------------------------------------------------------------------------- cipher


def test_gcm_only_when_every_recipient_announced_it() -> None:
    both = choose_cipher({"bob@example.org": (GCM, CBC), "carol@example.org": (CBC, GCM)})
    assert both.cipher is ContentCipher.AES256_GCM and not both.requested
    assert both.reason == "AES-256-GCM: every recipient announced support for it"
    one = choose_cipher({"bob@example.org": (GCM,)})
    assert one.reason == "AES-256-GCM: the recipient announced support for it"


def test_cbc_when_a_recipient_lacks_gcm_or_is_unknown() -> None:
    lacking = choose_cipher({"bob@example.org": (CBC,), "carol@example.org": (GCM,)})
    assert lacking.cipher is ContentCipher.AES256_CBC
    assert lacking.reason == (
        "AES-256-CBC: bob@example.org did not announce AES-256-GCM in its S/MIME capabilities"
    )
    unknown = choose_cipher({"bob@example.org": (GCM,), "dave@example.org": None, "erin@example.org": ()})
    assert unknown.cipher is ContentCipher.AES256_CBC
    assert "nothing is known of the capabilities of dave@example.org and erin@example.org" in unknown.reason
    both = choose_cipher({"a@x.org": (CBC,), "b@x.org": (CBC,), "c@x.org": None})
    assert "a@x.org and b@x.org did not announce AES-256-GCM in their" in both.reason
    assert "; nothing is known of the capabilities of c@x.org" in both.reason


def test_requested_cipher_wins_and_the_reason_warns() -> None:
    forced = choose_cipher({"bob@example.org": (CBC,)}, requested=ContentCipher.AES256_GCM)
    assert forced.cipher is ContentCipher.AES256_GCM and forced.requested
    assert forced.reason == "AES-256-GCM as requested, although bob@example.org has not announced it"
    assert choose_cipher({"bob@example.org": None}, requested=ContentCipher.AES256_CBC).reason == (
        "AES-256-CBC as requested"
    )
    with pytest.raises(UsageError, match="legacy cipher"):
        choose_cipher({}, requested=ContentCipher.DES_EDE3_CBC)


# ---------------------------------------------------------------------------------------------- a store


class Pki:
    def __init__(self) -> None:
        self.ca = make_ca("Selection Root")
        self.inter = make_ca("Selection Intermediate", issuer=self.ca)
        self.other = make_ca("Unknown Root")
        self.alice = make_ee("alice@example.org", self.inter)
        self.alice_old = make_ee(
            "alice@example.org",
            self.inter,
            not_before=NOW - dt.timedelta(days=400),
            not_after=NOW - dt.timedelta(days=35),
        )
        self.alice_enc_only = make_ee(
            "alice@example.org", self.ca, signing=False, not_before=NOW + dt.timedelta(days=1)
        )
        self.bob = make_ee("bob@example.org", self.ca)
        self.bob_new = make_ee("bob@example.org", self.ca, not_before=NOW + dt.timedelta(days=2))
        self.carol = make_ee("carol@example.org", self.ca, key_kind="p256")
        self.mallory = make_ee("mallory@example.org", self.other)


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki()


@pytest.fixture
def store(tmp_path: Path, pki: Pki) -> Iterator[Store]:
    with open_store(tmp_path / "store.sqlite3") as s:
        s.add_certificate(pki.ca.cert, trust=Trust.EMAIL)
        s.add_certificate(pki.inter.cert)
        for ident in (pki.alice, pki.alice_old, pki.alice_enc_only, pki.bob, pki.bob_new, pki.carol):
            s.add_certificate(ident.cert)
        s.add_certificate(pki.mallory.cert, source="harvest")
        yield s


def _fp(ident: Identity) -> str:
    return ident.cert.fingerprint(hashes.SHA256()).hex()


def _with_key(store: Store, ident: Identity) -> None:
    store.add_private_key(_fp(ident), ident.key, PASSPHRASE)


# ---------------------------------------------------------------------------------------------- signing


def test_signing_certificate_is_the_newest_that_can_sign(store: Store, pki: Pki) -> None:
    with pytest.raises(StoreNotFoundError, match="no private key for any"):
        signing_certificate(store, "alice@example.org", at=AT)
    for ident in (pki.alice, pki.alice_old, pki.alice_enc_only):
        _with_key(store, ident)
    # the encryption-only certificate is newer, the old one expired: the current signing one is chosen
    assert signing_certificate(store, "alice@example.org", at=AT).certificate == pki.alice.cert
    with pytest.raises(StoreNotFoundError, match=r"the store holds no certificate for nobody@example\.org"):
        signing_certificate(store, "nobody@example.org", at=AT)
    with pytest.raises(
        StoreNotFoundError, match=r"can sign now \(none of the 3 certificates; the newest: .*expired"
    ):
        signing_certificate(store, "alice@example.org", at=NOW + dt.timedelta(days=3000))


def test_issuer_chain_comes_from_the_store_without_the_root(store: Store, pki: Pki) -> None:
    assert issuer_chain(store, pki.alice.cert) == (pki.inter.cert,)
    assert issuer_chain(store, pki.bob.cert) == ()
    assert issuer_chain(store, pki.mallory.cert) == ()  # its issuer is not in the store


# ---------------------------------------------------------------------------------------------- encryption


def test_recipient_certificate_prefers_what_the_correspondent_said(store: Store, pki: Pki) -> None:
    assert recipient_certificate(store, "bob@example.org", at=AT).certificate == pki.bob_new.cert
    store.record_correspondent(
        "bob@example.org", capabilities=[GCM], preferred_certificate=_fp(pki.bob), at=AT
    )
    assert recipient_certificate(store, "bob@example.org", at=AT).certificate == pki.bob.cert
    with pytest.raises(StoreNotFoundError, match=r"no certificate for nobody@example\.org"):
        recipient_certificate(store, "nobody@example.org", at=AT)


def _crl(ca: Identity, *revoked: x509.Certificate) -> x509.CertificateRevocationList:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(NOW)
        .next_update(NOW + dt.timedelta(days=30))
    )
    for cert in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(cert.serial_number).revocation_date(NOW).build()
        )
    return builder.sign(ca.key, hashes.SHA256())


def test_check_recipient(pki: Pki) -> None:
    anchors = [pki.ca.cert]
    ok = check_recipient(pki.bob.cert, email="bob@example.org", at=AT, anchors=anchors)
    assert ok.trusted and ok.note is None and ok.path.anchor == pki.ca.cert
    with pytest.raises(UsageError, match=r"cannot encrypt to bob@example\.org: .*revoked"):
        check_recipient(
            pki.bob.cert, email="bob@example.org", at=AT, anchors=anchors, crls=[_crl(pki.ca, pki.bob.cert)]
        )
    with pytest.raises(UsageError, match=r"the certificate is not for carol@example\.org"):
        check_recipient(pki.bob.cert, email="carol@example.org", at=AT, anchors=anchors)
    with pytest.raises(UsageError, match=r"no path to a trust anchor.*--allow-untrusted"):
        check_recipient(pki.mallory.cert, email=None, at=AT, anchors=anchors)
    allowed = check_recipient(
        pki.mallory.cert, email=None, at=AT, anchors=anchors, policy=TrustPolicy.UNSAFE_ALLOW_UNTRUSTED
    )
    assert (
        not allowed.trusted
        and allowed.note is not None
        and "mallory@example.org: not trusted" in allowed.note
    )
    with pytest.raises(UsageError, match="revoked on"):  # a CRL of its issuer still counts
        check_recipient(
            pki.mallory.cert,
            email=None,
            at=AT,
            anchors=anchors,
            crls=[_crl(pki.other, pki.mallory.cert)],
            policy=TrustPolicy.UNSAFE_ALLOW_UNTRUSTED,
        )
    with pytest.raises(UsageError, match="expired"):
        check_recipient(pki.alice_old.cert, email=None, at=AT, anchors=anchors)


# ---------------------------------------------------------------------------------------------- decryption


def _message() -> mime.Message:
    return mime.parse(
        mime.compose(from_="alice@example.org", to=["bob@example.org"], subject="s", text="hi\n").to_bytes()
    )


def test_message_recipients_names_every_kind(pki: Pki) -> None:
    recipients = [
        cms.certificate_recipient(pki.bob.cert),
        cms.certificate_recipient(pki.carol.cert),
        cms.certificate_recipient(pki.alice.cert, use_subject_key_identifier=True),
        cms.PasswordRecipient(b"secret"),
    ]
    with smime.encrypt(_message(), recipients) as enc:
        ids = message_recipients(enc)
    assert sorted(r.kind.value for r in ids) == ["kari", "ktri", "ktri", "pwri"]  # DER sorts the SET
    (bob,) = [r for r in ids if r.names(pki.bob.cert)]
    assert bob.kind is RecipientKind.KEY_TRANSPORT and bob.serial == pki.bob.cert.serial_number
    assert bob.issuer == pki.bob.cert.issuer and bob.issuer_der == pki.bob.cert.issuer.public_bytes()
    assert bob.issuer is not None and bob.issuer.public_bytes() == bob.issuer_der  # DER kept exactly
    assert not bob.names(pki.bob_new.cert)
    assert bob.describe().startswith(f"key transport to serial {pki.bob.cert.serial_number:#x} of CN=")
    (carol,) = [r for r in ids if r.names(pki.carol.cert)]
    assert carol.kind is RecipientKind.KEY_AGREEMENT
    (alice,) = [r for r in ids if r.names(pki.alice.cert)]
    assert alice.subject_key_identifier is not None and alice.serial is None
    assert alice.describe().startswith("key transport to key identifier ")
    assert [r.describe() for r in ids if r.kind is RecipientKind.PASSWORD] == ["a password"]
    with pytest.raises(NotSmimeError):
        message_recipients(_message())


def test_message_recipients_through_multipart_signed(pki: Pki) -> None:
    signer = cms.Signer(pki.alice.cert, pki.alice.key)
    with smime.encrypt(_message(), [pki.bob.cert]) as enc, smime.sign(enc, signer, signing_time=AT) as signed:
        (rid,) = message_recipients(signed)
    assert rid.names(pki.bob.cert)


def test_issuer_with_printable_string_keeps_its_der() -> None:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),  # PrintableString
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Beispiel GmbH"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Beispiel CA"),
        ]
    )
    ca = make_ca("unused")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(ca.key.public_key())
        .serial_number(12345)
        .not_valid_before(NOW)
        .not_valid_after(NOW + dt.timedelta(days=1))
        .sign(ca.key, hashes.SHA256())
    )
    ee = make_ee("eve@example.org", Identity(cert, ca.key))
    with smime.encrypt(_message(), [ee.cert]) as enc:
        (rid,) = message_recipients(enc)
    assert rid.issuer is not None and rid.issuer.public_bytes() == ee.cert.issuer.public_bytes()


def test_decryption_candidates_are_keys_the_message_names(store: Store, pki: Pki) -> None:
    with smime.encrypt(
        _message(), [pki.bob.cert, cms.certificate_recipient(pki.carol.cert, use_subject_key_identifier=True)]
    ) as enc:
        ids = message_recipients(enc)
    assert decryption_candidates(store, ids) == []  # certificates, but no keys yet
    _with_key(store, pki.carol)
    _with_key(store, pki.bob_new)  # bob's other certificate: not named
    assert [r.certificate for r in decryption_candidates(store, ids)] == [pki.carol.cert]
    _with_key(store, pki.bob)
    found = [r.certificate for r in decryption_candidates(store, ids)]
    assert len(found) == 2 and set(found) == {pki.bob.cert, pki.carol.cert}
