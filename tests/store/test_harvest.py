"""Harvesting from real signed messages (made with smimekit.smime.sign, verified with smimekit.smime.verify)."""

from __future__ import annotations

import datetime as dt

import pytest

from smimekit import cms, mime, smime
from smimekit.cms import SmimeCapability
from smimekit.errors import StoreError
from smimekit.mime import Message
from smimekit.store import Store, Trust
from smimekit.store.harvest import harvest
from tests.testpki import NOW, Identity, make_ca, make_ee

SIGNED_AT = NOW + dt.timedelta(days=2)
LATER = NOW + dt.timedelta(days=3)


@pytest.fixture(scope="module")
def pki() -> dict[str, Identity]:
    root = make_ca("Harvest Root")
    inter = make_ca("Harvest Intermediate", issuer=root)
    return {
        "root": root,
        "inter": inter,
        "alice": make_ee("alice@example.org", inter, key_kind="p256", encryption=False),
        "alice_enc": make_ee("alice@example.org", inter, key_kind="rsa2048", signing=False),
        "mallory": make_ee("mallory@example.org", inter, key_kind="p256"),
    }


def signed(
    pki: dict[str, Identity],
    *,
    at: dt.datetime,
    capabilities: tuple[SmimeCapability, ...] | None = None,
    preferred: str = "alice_enc",
    signer: str = "alice",
) -> Message:
    message = mime.compose(
        from_=f"{signer}@example.org",
        to=["bob@example.org"],
        subject="hello",
        text="Hi Bob\n",
        date=at,
        message_id="<h@example.org>",
    )
    who = pki[signer]
    kw = {} if capabilities is None else {"capabilities": capabilities}
    return smime.sign(
        message,
        cms.Signer(
            who.cert,
            who.key,
            extra_certificates=(pki["inter"].cert,),
            encryption_certificate=pki[preferred].cert,
        ),
        signing_time=at,
        **kw,  # type: ignore[arg-type]
    )


def verified(msg: Message, pki: dict[str, Identity], now: dt.datetime = LATER) -> smime.VerificationReport:
    return smime.verify(msg, now=now, anchors=[pki["root"].cert])


def test_a_signed_message_teaches_certificates_and_capabilities(
    store: Store, pki: dict[str, Identity]
) -> None:
    report = verified(signed(pki, at=SIGNED_AT), pki)
    assert report.signatures[0].intact and report.signatures[0].valid
    kept = harvest(store, report, at=LATER)
    assert kept[0].certificate == pki["alice"].cert  # the signer first
    assert {r.certificate for r in kept} == {pki["alice"].cert, pki["alice_enc"].cert, pki["inter"].cert}
    assert all(r.source == "harvest" and r.trust == Trust.NONE for r in kept)
    assert store.trust_anchors() == []
    assert {r.certificate for r in store.find_by_email("alice@example.org")} == {
        pki["alice"].cert,
        pki["alice_enc"].cert,
    }
    who = store.correspondent("alice@example.org")
    assert who is not None
    assert who.capabilities == tuple(c.oid for c in cms.DEFAULT_SMIME_CAPABILITIES)
    enc = next(r for r in kept if r.certificate == pki["alice_enc"].cert)
    assert who.preferred_certificate == enc.fingerprint
    assert who.updated == SIGNED_AT


def test_older_mail_does_not_replace_what_newer_mail_taught(store: Store, pki: dict[str, Identity]) -> None:
    newer = verified(signed(pki, at=SIGNED_AT), pki)
    older_caps = (SmimeCapability("2.16.840.1.101.3.4.1.2"),)  # AES-128-CBC only
    older = verified(
        signed(pki, at=SIGNED_AT - dt.timedelta(days=1), capabilities=older_caps, preferred="alice"), pki
    )
    harvest(store, newer, at=LATER)
    harvest(store, older, at=LATER)  # read later, signed earlier
    who = store.correspondent("alice@example.org")
    assert who is not None and who.updated == SIGNED_AT
    assert who.capabilities == tuple(c.oid for c in cms.DEFAULT_SMIME_CAPABILITIES)
    newest = verified(
        signed(pki, at=SIGNED_AT + dt.timedelta(hours=1), capabilities=older_caps, preferred="alice"), pki
    )
    harvest(store, newest, at=LATER)
    who = store.correspondent("alice@example.org")
    assert who is not None and who.capabilities == ("2.16.840.1.101.3.4.1.2",)
    preferred = store.find_by_issuer_serial(pki["alice"].cert.issuer, pki["alice"].cert.serial_number)
    assert preferred is not None and who.preferred_certificate == preferred.fingerprint


def test_a_tampered_message_teaches_nothing(store: Store, pki: dict[str, Identity]) -> None:
    raw = signed(pki, at=SIGNED_AT).to_bytes()
    tampered = mime.parse(raw.replace(b"Hi Bob", b"Hi Eve"))
    report = verified(tampered, pki)
    assert not report.signatures[0].intact
    assert harvest(store, report, at=LATER) == []
    assert store.list_certificates() == [] and store.correspondent("alice@example.org") is None


def test_a_preference_for_someone_elses_certificate_is_not_kept(
    store: Store, pki: dict[str, Identity]
) -> None:
    report = verified(signed(pki, at=SIGNED_AT, preferred="mallory"), pki)
    harvest(store, report, at=LATER)
    who = store.correspondent("alice@example.org")
    assert who is not None and who.preferred_certificate is None


def test_a_signing_time_in_the_future_counts_as_now(store: Store, pki: dict[str, Identity]) -> None:
    report = verified(signed(pki, at=LATER + dt.timedelta(days=30)), pki, now=LATER + dt.timedelta(days=31))
    harvest(store, report, at=LATER)
    who = store.correspondent("alice@example.org")
    assert who is not None and who.updated == LATER
    with pytest.raises(StoreError, match="timezone"):
        harvest(store, report, at=dt.datetime(2026, 1, 1))
