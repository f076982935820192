"""Revocation checking of data handed in (pure): OCSP responses and CRLs with delta CRLs, per mode.

The OCSP responses are built here with cryptography's OCSPResponseBuilder so that every odd case
(unauthorised responder, wrong certificate, stale, nonce) can be made; tests/smime/test_revocation.py runs
the same checks against a real ``openssl ocsp`` responder.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from smimekit.errors import PkiError
from smimekit.pki import (
    PathFailure,
    PathResult,
    RevocationMode,
    RevocationStatus,
    ocsp_response_problem,
    validate_path,
    validate_signer,
)
from tests.pki._revocation_pki import DAY, issue, make_crl, utcnow
from tests.testpki import Identity, make_ca

HOUR = dt.timedelta(hours=1)


@pytest.fixture(scope="module")
def root() -> Identity:
    return make_ca("Revocation Test Root")


@pytest.fixture(scope="module")
def inter(root: Identity) -> Identity:
    return issue(root, "Revocation Test Intermediate", is_ca=True)


@pytest.fixture(scope="module")
def alice(inter: Identity) -> Identity:
    return issue(inter, "Alice", email="alice@example.com", ocsp_url="http://ocsp.invalid/")


def response(
    cert: Identity,
    issuer: Identity,
    signer: Identity,
    *,
    revoked_at: dt.datetime | None = None,
    this_update: dt.datetime | None = None,
    next_update: dt.datetime | None = None,
    nonce: bytes | None = None,
    include: tuple[x509.Certificate, ...] = (),
) -> bytes:
    """A DER OCSP response about ``cert`` signed by ``signer`` (the issuer or a delegated responder)."""
    now = utcnow()
    status = ocsp.OCSPCertStatus.REVOKED if revoked_at else ocsp.OCSPCertStatus.GOOD
    builder = ocsp.OCSPResponseBuilder().add_response(
        cert=cert.cert,
        issuer=issuer.cert,
        algorithm=hashes.SHA1(),
        cert_status=status,
        this_update=this_update or now - HOUR,
        next_update=next_update or now + DAY,
        revocation_time=revoked_at,
        revocation_reason=x509.ReasonFlags.key_compromise if revoked_at else None,
    )
    builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, signer.cert)
    if signer.cert != issuer.cert:
        builder = builder.certificates([signer.cert, *include])
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.sign(signer.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def check(ident: Identity, root: Identity, **kwargs: Any) -> PathResult:
    kwargs.setdefault("at", utcnow())
    return validate_path(ident.cert, anchors=[root.cert], intermediates=ident.chain, **kwargs)


def leaf_status(result: PathResult) -> RevocationStatus:
    assert result.leaf_revocation is not None
    return result.leaf_revocation.status


# ---------------------------------------------------------------------------------------------- modes


def test_soft_without_data_is_trusted_and_says_unknown(root: Identity, alice: Identity) -> None:
    result = check(alice, root)
    assert result.trusted and result.revocation_mode is RevocationMode.SOFT
    assert [r.status for r in result.revocation] == [RevocationStatus.UNKNOWN] * 2
    assert result.leaf_revocation is not None and "no CRL or OCSP response" in (
        result.leaf_revocation.detail or ""
    )
    assert len(result.unchecked) == 2


def test_hard_without_data_is_not_trusted(root: Identity, alice: Identity) -> None:
    result = check(alice, root, revocation=RevocationMode.HARD)
    assert not result.trusted and result.failure is PathFailure.REVOCATION_UNKNOWN
    assert result.reason is not None and "revocation status" in result.reason


def test_off_checks_nothing_even_a_revoking_crl(root: Identity, inter: Identity, alice: Identity) -> None:
    crl = make_crl(inter, ((alice.cert, utcnow() - DAY),))
    result = check(alice, root, crls=[crl], revocation=RevocationMode.OFF)
    assert result.trusted
    assert [r.status for r in result.revocation] == [RevocationStatus.NOT_CHECKED] * 2


def test_hard_with_ocsp_for_the_leaf_and_a_crl_for_the_ca(
    root: Identity, inter: Identity, alice: Identity
) -> None:
    result = check(
        alice,
        root,
        ocsp_responses=[response(alice, inter, inter)],
        crls=[make_crl(root)],
        revocation=RevocationMode.HARD,
        origins={},
    )
    assert result.trusted, result.reason
    assert [(r.status, r.source) for r in result.revocation] == [
        (RevocationStatus.GOOD, "OCSP (given)"),
        (RevocationStatus.GOOD, "CRL (given)"),
    ]


def test_bad_mode_is_a_usage_error(root: Identity, alice: Identity) -> None:
    with pytest.raises(PkiError, match="RevocationMode"):
        check(alice, root, revocation="hard")
    with pytest.raises(PkiError, match="ocsp_responses"):
        check(alice, root, ocsp_responses=b"\x30\x00")


# ---------------------------------------------------------------------------------------------- OCSP


def test_ocsp_revoked_says_when_why_and_where(root: Identity, inter: Identity, alice: Identity) -> None:
    when = (utcnow() - DAY).replace(microsecond=0)
    der = response(alice, inter, inter, revoked_at=when)
    result = check(alice, root, ocsp_responses=[der], origins={der: "http://ocsp.example/"})
    assert not result.trusted and result.failure is PathFailure.REVOKED
    found = result.leaf_revocation
    assert found is not None and found.status is RevocationStatus.REVOKED
    assert (found.source, found.reason, found.revoked_at) == (
        "OCSP http://ocsp.example/",
        "keyCompromise",
        when,
    )


def test_ocsp_revocation_after_the_signing_time_does_not_count(
    root: Identity, inter: Identity, alice: Identity
) -> None:
    now = utcnow()
    der = response(alice, inter, inter, revoked_at=now - HOUR)
    for mode in (RevocationMode.SOFT, RevocationMode.HARD):
        trust = validate_signer(
            alice.cert,
            anchors=[root.cert],
            intermediates=alice.chain,
            signing_time=now - DAY,
            now=now,
            ocsp_responses=[der],
            crls=[make_crl(root)],
            revocation=mode,
        )
        assert trust.at_signing_time is not None and trust.at_signing_time.trusted, (mode, trust.reason)
        assert trust.now.failure is PathFailure.REVOKED


def test_delegated_responder_with_ocsp_signing(root: Identity, inter: Identity, alice: Identity) -> None:
    responder = issue(inter, "Intermediate OCSP Responder", responder=True)
    result = check(alice, root, ocsp_responses=[response(alice, inter, responder)])
    assert leaf_status(result) is RevocationStatus.GOOD


def test_responder_of_another_ca_is_rejected(root: Identity, inter: Identity, alice: Identity) -> None:
    # a responder certificate with id-kp-OCSPSigning, but issued by the root, not by alice's issuer
    other = issue(root, "Root OCSP Responder", responder=True)
    result = check(alice, root, ocsp_responses=[response(alice, inter, other)])
    assert not result.trusted and result.failure is PathFailure.REVOCATION_UNKNOWN
    assert result.reason is not None and "unauthorized" in result.reason


def test_responder_without_ocsp_signing_is_rejected(root: Identity, inter: Identity, alice: Identity) -> None:
    bob = issue(inter, "Bob", email="bob@example.com")  # same issuer, but no id-kp-OCSPSigning
    result = check(alice, root, ocsp_responses=[response(alice, inter, bob)])
    assert not result.trusted and result.failure is PathFailure.REVOCATION_UNKNOWN


def test_ocsp_response_for_another_certificate_is_not_used(
    root: Identity, inter: Identity, alice: Identity
) -> None:
    bob = issue(inter, "Bob", email="bob@example.com")
    result = check(alice, root, ocsp_responses=[response(bob, inter, inter)], revocation=RevocationMode.HARD)
    assert not result.trusted and result.failure is PathFailure.REVOCATION_UNKNOWN


def test_stale_ocsp_response_is_refused(root: Identity, inter: Identity, alice: Identity) -> None:
    now = utcnow()
    stale = response(alice, inter, inter, this_update=now - 3 * DAY, next_update=now - DAY)
    result = check(alice, root, ocsp_responses=[stale])
    assert not result.trusted and result.failure is PathFailure.REVOCATION_UNKNOWN
    assert result.reason is not None and "recent" in result.reason


def test_ocsp_response_problem_checks_what_the_request_asked(inter: Identity, alice: Identity) -> None:
    now = utcnow()
    nonce = b"0123456789abcdef"
    der = response(alice, inter, inter, nonce=nonce)
    assert ocsp_response_problem(der, certificate=alice.cert, issuer=inter.cert, at=now, nonce=nonce) is None
    assert "nonce" in str(
        ocsp_response_problem(der, certificate=alice.cert, issuer=inter.cert, at=now, nonce=b"x" * 16)
    )
    plain = response(alice, inter, inter)
    assert "nonce" in str(
        ocsp_response_problem(plain, certificate=alice.cert, issuer=inter.cert, at=now, nonce=nonce)
    )
    bob = issue(inter, "Bob", email="bob@example.com")
    assert "not about" in str(ocsp_response_problem(plain, certificate=bob.cert, issuer=inter.cert, at=now))
    future = response(alice, inter, inter, this_update=now + DAY, next_update=now + 2 * DAY)
    assert "future" in str(ocsp_response_problem(future, certificate=alice.cert, issuer=inter.cert, at=now))
    assert "cannot be read" in str(
        ocsp_response_problem(b"junk", certificate=alice.cert, issuer=inter.cert, at=now)
    )
    refused = ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
    problem = ocsp_response_problem(
        refused.public_bytes(serialization.Encoding.DER), certificate=alice.cert, issuer=inter.cert, at=now
    )
    assert problem == "the OCSP responder answered unauthorized"


# ---------------------------------------------------------------------------------------------- CRLs


def test_crl_good_names_its_origin(root: Identity, inter: Identity, alice: Identity) -> None:
    crl = make_crl(inter)
    url = "http://crl.example/inter.crl"
    result = check(alice, root, crls=[crl], origins={crl.public_bytes(serialization.Encoding.DER): url})
    assert result.trusted
    assert result.leaf_revocation is not None and result.leaf_revocation.source == f"CRL {url}"


def test_stale_crl_soft_fails_closed_and_hard_too(root: Identity, inter: Identity, alice: Identity) -> None:
    now = utcnow()
    stale = make_crl(inter, this_update=now - 10 * DAY, next_update=now - DAY)
    for mode in (RevocationMode.SOFT, RevocationMode.HARD):
        result = check(alice, root, crls=[stale, make_crl(root)], revocation=mode)
        assert not result.trusted and result.failure is PathFailure.REVOCATION_UNKNOWN, mode
        assert result.reason is not None and "not recent enough" in result.reason


def test_delta_crl_revokes_what_the_base_does_not(root: Identity, inter: Identity) -> None:
    carol = issue(
        inter,
        "Carol",
        email="carol@example.com",
        crl_url="http://crl.example/inter.crl",
        delta_url="http://crl.example/inter-delta.crl",
    )
    assert check(carol, root, crls=[make_crl(inter, number=10)]).trusted
    base = make_crl(inter, number=10, freshest_url="http://crl.example/inter-delta.crl")
    missing = check(carol, root, crls=[base])  # the base CRL announces a delta CRL: it is needed
    assert not missing.trusted and missing.failure is PathFailure.REVOCATION_UNKNOWN
    delta = make_crl(inter, ((carol.cert, utcnow() - HOUR),), number=11, delta_of=10)
    result = check(carol, root, crls=[base, delta])
    assert not result.trusted and result.failure is PathFailure.REVOKED
    assert result.leaf_revocation is not None
    assert result.leaf_revocation.source == "CRL (given) + delta CRL (given)"


def test_revoked_ca_is_reported_with_the_ca_status(root: Identity, inter: Identity, alice: Identity) -> None:
    result = check(alice, root, crls=[make_crl(inter), make_crl(root, ((inter.cert, utcnow() - DAY),))])
    assert not result.trusted and result.failure is PathFailure.REVOKED
    assert result.reason is not None and "the CA certificate" in result.reason
    assert [r.status for r in result.revocation] == [RevocationStatus.GOOD, RevocationStatus.REVOKED]


def test_response_of_another_ca_for_the_same_serial_does_not_make_it_good(
    root: Identity, inter: Identity, alice: Identity
) -> None:
    # review t7: the responder does not know alice; an attacker adds a response of their own CA about a
    # certificate with alice's serial number, "revoked" in a month (so "good" at the time asked about)
    now = utcnow()
    rogue = make_ca("Rogue")
    twin = Identity(
        x509.CertificateBuilder()
        .subject_name(alice.cert.subject)
        .issuer_name(rogue.cert.subject)
        .public_key(alice.cert.public_key())
        .serial_number(alice.cert.serial_number)
        .not_valid_before(alice.cert.not_valid_before_utc)
        .not_valid_after(alice.cert.not_valid_after_utc)
        .sign(rogue.key, hashes.SHA256()),
        rogue.key,
        (),
    )
    unknown = _unknown_response(alice, inter)
    attacker = response(twin, rogue, rogue, revoked_at=now + 30 * DAY)
    forged_here = response(alice, inter, rogue, revoked_at=now + 30 * DAY)  # alice's certID, wrong signer
    crls = [make_crl(root)]  # the intermediate is good: only alice's status is in question
    for extra in ([], [attacker], [forged_here], [attacker, forged_here]):
        result = check(
            alice, root, ocsp_responses=[unknown, *extra], crls=crls, revocation=RevocationMode.HARD
        )
        assert not result.trusted, extra
        assert leaf_status(result) is RevocationStatus.UNKNOWN


def test_genuine_revocation_after_the_time_asked_about_is_still_good(
    root: Identity, inter: Identity, alice: Identity
) -> None:
    now = utcnow()
    der = response(alice, inter, inter, revoked_at=now + 30 * DAY)
    result = check(
        alice, root, ocsp_responses=[der], crls=[make_crl(root)], revocation=RevocationMode.HARD, at=now
    )
    assert result.trusted, result.reason
    assert leaf_status(result) is RevocationStatus.GOOD


def _unknown_response(cert: Identity, issuer: Identity) -> bytes:
    now = utcnow()
    builder = ocsp.OCSPResponseBuilder().add_response(
        cert=cert.cert,
        issuer=issuer.cert,
        algorithm=hashes.SHA1(),
        cert_status=ocsp.OCSPCertStatus.UNKNOWN,
        this_update=now - HOUR,
        next_update=now + DAY,
        revocation_time=None,
        revocation_reason=None,
    )
    builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, issuer.cert)
    return builder.sign(issuer.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
