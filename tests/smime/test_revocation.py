"""verify() and open() with revocation checking against real servers on 127.0.0.1: an ``openssl ocsp``
responder and an HTTP server for CRLs, reached through smimekit.net.revocation.RevocationFetcher.

What a user sees is asserted: trusted or not, the status and its source in the report (and its JSON), and
the note saying that revocation could not be checked.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from smimekit import cms, mime, smime
from smimekit.errors import UsageError
from smimekit.mime import Message
from smimekit.net.revocation import RevocationFetcher
from smimekit.pki import RevocationMode
from smimekit.smime import VerificationReport
from tests.pki._revocation_pki import (
    DAY,
    CrlServer,
    OcspResponder,
    crl_server,
    der,
    free_port,
    issue,
    make_crl,
    ocsp_responder,
    utcnow,
)
from tests.testpki import Identity, make_ca

HOUR = dt.timedelta(hours=1)


@dataclass
class World:
    root: Identity
    crls: CrlServer
    ocsp: OcspResponder


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    root = make_ca("Revocation E2E Root")
    with crl_server() as crls, ocsp_responder(root) as responder:
        crls.files["/root.crl"] = der(make_crl(root))
        yield World(root, crls, responder)


def signed(ident: Identity, *, chain: tuple[Identity, ...] = ()) -> Message:
    who = ident.cert.subject.rfc4514_string().split("=")[-1]
    body = f"From: {who}\r\nTo: bob@example.com\r\nSubject: hello\r\n\r\nhello\r\n".encode()
    out = smime.sign(
        mime.parse(body),
        cms.Signer(ident.cert, ident.key),
        signing_time=utcnow() - dt.timedelta(minutes=10),
        certificates=[c.cert for c in chain],
    )
    return mime.parse(out.to_bytes())


def check(world: World, message: Message, **kwargs: object) -> VerificationReport:
    return smime.verify(message, now=utcnow(), anchors=[world.root.cert], **kwargs)  # type: ignore[arg-type]


def person(world: World, name: str, *, ocsp: bool = True, crl: str | None = None) -> Identity:
    return issue(
        world.root,
        name.title(),
        email=f"{name}@example.com",
        ocsp_url=world.ocsp.url if ocsp else None,
        crl_url=world.crls.url(crl) if crl else None,
    )


def test_ocsp_good(world: World) -> None:
    alice = person(world, "alice")
    world.ocsp.add(alice.cert)
    report = check(
        world, signed(alice), fetcher=RevocationFetcher(nonce=True), revocation=RevocationMode.HARD
    )
    assert report.ok, report.signatures[0].reasons
    trust = report.signatures[0].trust
    assert (trust.revocation, trust.revocation_source) == ("good", f"OCSP {world.ocsp.url}")
    as_json = json.loads(json.dumps(report.to_dict()))["signatures"][0]["trust"]
    assert as_json["revocation"] == "good" and as_json["revocation_source"] == f"OCSP {world.ocsp.url}"
    assert as_json["now"]["revocation_mode"] == "hard"


def test_ocsp_revoked_is_reported_with_its_source(world: World) -> None:
    mallory = person(world, "mallory")
    world.ocsp.add(mallory.cert, revoked_at=utcnow() - HOUR)
    report = check(world, signed(mallory), fetcher=RevocationFetcher())
    assert not report.ok
    sig = report.signatures[0]
    assert sig.trust.revocation == "revoked"
    assert sig.trust.revocation_source == f"OCSP {world.ocsp.url}"
    assert sig.trust.revocation_reason == "keyCompromise"
    assert any("revoked" in r for r in sig.reasons)
    # revoked an hour ago, signed ten minutes ago: not trusted at the signing time either
    assert sig.trust.at_signing_time is not None and not sig.trust.at_signing_time.trusted


def test_responder_down_soft_trusts_and_says_so(world: World) -> None:
    dead = f"http://127.0.0.1:{free_port()}/ocsp"
    carol = issue(world.root, "Carol", email="carol@example.com", ocsp_url=dead)
    report = check(world, signed(carol), fetcher=RevocationFetcher())
    assert report.ok
    assert report.signatures[0].trust.revocation == "unknown"
    note = next(n for n in report.notes if "could not be checked" in n)
    assert "127.0.0.1" in note and "cannot be reached" in note


def test_responder_down_hard_does_not_trust(world: World) -> None:
    dead = f"http://127.0.0.1:{free_port()}/ocsp"
    carol = issue(world.root, "Carol", email="carol@example.com", ocsp_url=dead)
    report = check(world, signed(carol), fetcher=RevocationFetcher(), revocation=RevocationMode.HARD)
    assert not report.ok
    assert report.signatures[0].trust.revocation == "unknown"
    assert "revocation status" in report.signatures[0].trust.reason


def test_response_of_an_unauthorised_responder_is_rejected(world: World) -> None:
    # a responder with id-kp-OCSPSigning, but issued by another CA than the signer's
    other = make_ca("Some Other CA")
    impostor = issue(other, "Impostor OCSP Responder", responder=True)
    with ocsp_responder(world.root, signer=impostor) as fake:
        dave = issue(world.root, "Dave", email="dave@example.com", ocsp_url=fake.url)
        fake.add(dave.cert)
        report = check(world, signed(dave), fetcher=RevocationFetcher())
        assert fake.requests == 1
    assert not report.ok
    trust = report.signatures[0].trust
    assert trust.revocation == "unknown" and "unauthorized" in trust.reason


def test_delegated_responder_is_accepted(world: World) -> None:
    delegate = issue(world.root, "Root OCSP Responder", responder=True)
    with ocsp_responder(world.root, signer=delegate) as responder:
        erin = issue(world.root, "Erin", email="erin@example.com", ocsp_url=responder.url)
        responder.add(erin.cert)
        report = check(world, signed(erin), fetcher=RevocationFetcher(), revocation=RevocationMode.HARD)
    assert report.ok, report.signatures[0].reasons
    assert report.signatures[0].trust.revocation == "good"


def test_crl_over_http_revoked_and_good(world: World) -> None:
    frank = person(world, "frank", ocsp=False, crl="/crl-frank.crl")
    grace = person(world, "grace", ocsp=False, crl="/crl-frank.crl")
    world.crls.files["/crl-frank.crl"] = der(make_crl(world.root, ((frank.cert, utcnow() - DAY),)))
    fetcher = RevocationFetcher()
    bad = check(world, signed(frank), fetcher=fetcher)
    assert not bad.ok and bad.signatures[0].trust.revocation == "revoked"
    assert bad.signatures[0].trust.revocation_source == f"CRL {world.crls.url('/crl-frank.crl')}"
    good = check(world, signed(grace), fetcher=fetcher, revocation=RevocationMode.HARD)
    assert good.ok and good.signatures[0].trust.revocation == "good"
    assert world.crls.hits["/crl-frank.crl"] == 1  # the second verification reused the cached CRL


def test_stale_crl_is_not_trusted(world: World) -> None:
    heidi = person(world, "heidi", ocsp=False, crl="/stale.crl")
    now = utcnow()
    world.crls.files["/stale.crl"] = der(
        make_crl(world.root, this_update=now - 10 * DAY, next_update=now - DAY)
    )
    for mode in (RevocationMode.SOFT, RevocationMode.HARD):
        report = check(world, signed(heidi), fetcher=RevocationFetcher(), revocation=mode)
        assert not report.ok, mode
        assert "not recent enough" in report.signatures[0].trust.reason
    off = check(world, signed(heidi), fetcher=RevocationFetcher(), revocation=RevocationMode.OFF)
    assert off.ok and off.signatures[0].trust.revocation == "not checked"
    assert any("was not checked" in n for n in off.notes)
    assert world.crls.hits["/stale.crl"] == 2  # OFF fetches nothing


def test_delta_crl_over_http(world: World) -> None:
    ivan = issue(
        world.root,
        "Ivan",
        email="ivan@example.com",
        crl_url=world.crls.url("/base.crl"),
        delta_url=world.crls.url("/delta.crl"),
    )
    world.crls.files["/base.crl"] = der(
        make_crl(world.root, number=20, freshest_url=world.crls.url("/delta.crl"))
    )
    world.crls.files["/delta.crl"] = der(make_crl(world.root, number=21, delta_of=20))
    assert check(world, signed(ivan), fetcher=RevocationFetcher()).ok
    world.crls.files["/delta.crl"] = der(
        make_crl(world.root, ((ivan.cert, utcnow() - HOUR),), number=22, delta_of=20)
    )
    report = check(world, signed(ivan), fetcher=RevocationFetcher())
    assert not report.ok
    trust = report.signatures[0].trust
    assert trust.revocation == "revoked"
    assert trust.revocation_source == (
        f"CRL {world.crls.url('/base.crl')} + delta CRL {world.crls.url('/delta.crl')}"
    )


def test_ca_status_is_checked_too(world: World) -> None:
    inter = issue(world.root, "Revocation E2E Intermediate", is_ca=True, crl_url=world.crls.url("/root.crl"))
    judy = issue(inter, "Judy", email="judy@example.com", crl_url=world.crls.url("/inter.crl"))
    world.crls.files["/inter.crl"] = der(make_crl(inter))
    report = check(
        world, signed(judy, chain=(inter,)), fetcher=RevocationFetcher(), revocation=RevocationMode.HARD
    )
    assert report.ok, report.signatures[0].reasons
    now = report.signatures[0].trust.now
    assert now is not None and [r.status for r in now.revocation_path] == ["good", "good"]
    assert set(report.signatures[0].certificates) == {judy.cert, inter.cert}  # what the message carried
    world.crls.files["/root.crl"] = der(make_crl(world.root, ((inter.cert, utcnow() - DAY),), number=2))
    try:
        report = check(world, signed(judy, chain=(inter,)), fetcher=RevocationFetcher())
    finally:
        world.crls.files["/root.crl"] = der(make_crl(world.root, number=3))
    assert not report.ok and "the CA certificate" in report.signatures[0].trust.reason


def test_ocsp_responses_and_crls_handed_in_without_a_fetcher(world: World) -> None:
    kim = person(world, "kim", ocsp=False)
    crl = make_crl(world.root, ((kim.cert, utcnow() - DAY),), number=9)
    report = check(world, signed(kim), crls=[crl])
    assert not report.ok and report.signatures[0].trust.revocation_source == "CRL (given)"
    unchecked = check(world, signed(kim))
    assert unchecked.ok and unchecked.signatures[0].trust.revocation == "unknown"
    assert any("could not be checked" in n for n in unchecked.notes)


def test_open_passes_revocation_on(world: World) -> None:
    mallory = person(world, "mallet")
    world.ocsp.add(mallory.cert, revoked_at=utcnow() - HOUR)
    result = smime.open(signed(mallory), now=utcnow(), anchors=[world.root.cert], fetcher=RevocationFetcher())
    assert not result.ok
    layer = result.layers[0].verification
    assert layer is not None and layer.signatures[0].trust.revocation == "revoked"


def test_bad_arguments_are_usage_errors(world: World) -> None:
    alice = person(world, "alice")
    with pytest.raises(UsageError, match="RevocationMode"):
        check(world, signed(alice), revocation="soft")
    with pytest.raises(UsageError, match="fetch"):
        check(world, signed(alice), fetcher=object())
    with pytest.raises(UsageError, match="ocsp_responses"):
        check(world, signed(alice), ocsp_responses=[5])
