"""CRLs and OCSP responses built by smimekit.ca, read back by cryptography, openssl and validate_path."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from smimekit import ca
from smimekit.errors import CaError
from smimekit.pki import PathFailure, validate_path
from smimekit.store import RevocationReason
from tests.ca._support import ENDPOINTS, NOW, Hierarchy, openssl, pem


def _leaf(h: Hierarchy, email: str = "alice@example.org") -> x509.Certificate:
    key = ca.generate_key(ca.KeyType.P256)
    return ca.issue_certificate(
        issuer=h.sub, public_key=key.public_key(), email=email, now=NOW, endpoints=ENDPOINTS
    )  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------ CRLs


def test_a_crl_lists_serials_with_reasons_and_openssl_verifies_it(
    tmp_path: Path, hierarchy: Hierarchy
) -> None:
    revoked = [
        ca.Revoked(0x1234567890ABCDEF1234, NOW, RevocationReason.KEY_COMPROMISE),
        ca.Revoked(0xFEDCBA0987654321FEDC, NOW, RevocationReason.UNSPECIFIED),
        ca.Revoked(0x1234567890ABCDEF1234, NOW, RevocationReason.SUPERSEDED),  # a duplicate: listed once
    ]
    crl = ca.build_crl(
        issuer=hierarchy.sub,
        revoked=revoked,
        number=7,
        this_update=NOW,
        next_update=NOW + dt.timedelta(days=7),
    )
    assert crl.is_signature_valid(hierarchy.sub.key.public_key())  # type: ignore[arg-type]
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 7
    assert crl.next_update_utc == NOW + dt.timedelta(days=7)
    assert len(crl) == 2
    first = crl.get_revoked_certificate_by_serial_number(0x1234567890ABCDEF1234)
    assert (
        first is not None
        and first.extensions.get_extension_for_class(x509.CRLReason).value.reason
        is x509.ReasonFlags.key_compromise
    )
    second = crl.get_revoked_certificate_by_serial_number(0xFEDCBA0987654321FEDC)
    assert second is not None and len(second.extensions) == 0  # unspecified: no reason code (RFC 5280 5.3.1)

    chain = tmp_path / "chain.pem"
    chain.write_bytes(pem(hierarchy.sub.certificate, hierarchy.root.certificate))
    path = tmp_path / "sub.crl"
    path.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    out = openssl("crl", "-in", path, "-CAfile", chain, "-noout", "-text")
    assert "verify OK" in out.stderr + out.stdout
    assert "1234567890ABCDEF1234" in out.stdout and "Key Compromise" in out.stdout
    assert (
        "CRL Number: \n                7" in out.stdout
        or "7" in out.stdout.split("CRL Number:")[1].split("\n")[1]
    )


def test_validate_path_refuses_a_certificate_on_the_crl(hierarchy: Hierarchy) -> None:
    leaf, other = _leaf(hierarchy), _leaf(hierarchy, "bob@example.org")
    crl = ca.build_crl(
        issuer=hierarchy.sub,
        revoked=[ca.Revoked(leaf.serial_number, NOW, RevocationReason.KEY_COMPROMISE)],
        number=1,
        this_update=NOW,
        next_update=NOW + dt.timedelta(days=1),
    )
    common = {
        "anchors": [hierarchy.root.certificate],
        "intermediates": [hierarchy.sub.certificate],
        "at": NOW + dt.timedelta(hours=1),
        "crls": [crl],
    }
    assert validate_path(leaf, **common).failure is PathFailure.REVOKED  # type: ignore[arg-type]
    assert validate_path(other, **common).trusted  # type: ignore[arg-type]


def test_bad_crl_arguments(hierarchy: Hierarchy) -> None:
    with pytest.raises(CaError, match="nextUpdate"):
        ca.build_crl(issuer=hierarchy.sub, revoked=[], number=1, this_update=NOW, next_update=NOW)
    with pytest.raises(CaError, match="CRL number"):
        ca.build_crl(
            issuer=hierarchy.sub,
            revoked=[],
            number=0,
            this_update=NOW,
            next_update=NOW + dt.timedelta(days=1),
        )


# ------------------------------------------------------------------------------------------------ OCSP


def _request(
    cert: x509.Certificate,
    issuer: x509.Certificate,
    *,
    nonce: bytes | None = None,
    algorithm: hashes.HashAlgorithm | None = None,
) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, algorithm or hashes.SHA1())
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


class Book:
    """A lookup that knows a few serials of the intermediate."""

    def __init__(self, good: x509.Certificate, revoked: x509.Certificate) -> None:
        self.good, self.revoked = good.serial_number, revoked.serial_number

    def __call__(self, issuer: x509.Certificate, serial: int) -> tuple[ca.CertStatus, ca.Revoked | None]:
        if serial == self.good:
            return ca.CertStatus.GOOD, None
        if serial == self.revoked:
            return ca.CertStatus.REVOKED, ca.Revoked(serial, NOW, RevocationReason.AFFILIATION_CHANGED)
        return ca.CertStatus.UNKNOWN, None


@pytest.fixture(scope="module")
def book_and_certs(hierarchy: Hierarchy) -> tuple[Book, x509.Certificate, x509.Certificate, x509.Certificate]:
    good, bad, stranger = (
        _leaf(hierarchy),
        _leaf(hierarchy, "bob@example.org"),
        _leaf(hierarchy, "carol@example.org"),
    )
    return Book(good, bad), good, bad, stranger


def test_ocsp_answers_good_revoked_and_unknown_signed_by_the_ca(
    hierarchy: Hierarchy, book_and_certs: tuple[Book, x509.Certificate, x509.Certificate, x509.Certificate]
) -> None:
    book, good, bad, stranger = book_and_certs
    responder = ca.OcspResponder(hierarchy.sub.certificate, hierarchy.sub.key)
    answers = {}
    for cert in (good, bad, stranger):
        der = ca.build_ocsp_response(
            _request(cert, hierarchy.sub.certificate, nonce=b"n" * 16),
            responders=[responder],
            lookup=book,
            now=NOW,
        )
        response = ocsp.load_der_ocsp_response(der)
        assert response.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
        assert response.serial_number == cert.serial_number
        assert response.this_update_utc == NOW and response.next_update_utc == NOW + dt.timedelta(hours=1)
        assert response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == b"n" * 16
        assert (
            response.responder_key_hash
            == hierarchy.sub.certificate.extensions.get_extension_for_class(
                x509.SubjectKeyIdentifier
            ).value.digest
        )
        hierarchy.sub.key.public_key().verify(
            response.signature, response.tbs_response_bytes, *_verify_args(response)
        )  # type: ignore[call-arg]
        answers[cert.serial_number] = response
    assert answers[good.serial_number].certificate_status is ocsp.OCSPCertStatus.GOOD
    revoked = answers[bad.serial_number]
    assert revoked.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert (
        revoked.revocation_reason is x509.ReasonFlags.affiliation_changed
        and revoked.revocation_time_utc == NOW
    )
    assert answers[stranger.serial_number].certificate_status is ocsp.OCSPCertStatus.UNKNOWN


def _verify_args(response: ocsp.OCSPResponse) -> tuple[object, ...]:
    from cryptography.hazmat.primitives.asymmetric import padding

    return (padding.PKCS1v15(), response.signature_hash_algorithm)


def test_ocsp_sha256_cert_ids_no_nonce_and_refusals(
    hierarchy: Hierarchy, book_and_certs: tuple[Book, x509.Certificate, x509.Certificate, x509.Certificate]
) -> None:
    book, good, _, _ = book_and_certs
    responder = ca.OcspResponder(hierarchy.sub.certificate, hierarchy.sub.key)
    response = ocsp.load_der_ocsp_response(
        ca.build_ocsp_response(
            _request(good, hierarchy.sub.certificate, algorithm=hashes.SHA256()),
            responders=[responder],
            lookup=book,
            now=NOW,
        )
    )
    assert response.certificate_status is ocsp.OCSPCertStatus.GOOD and isinstance(
        response.hash_algorithm, hashes.SHA256
    )
    assert len(response.extensions) == 0
    # a certificate of a CA this responder does not speak for
    other = ca.build_ocsp_response(
        _request(hierarchy.sub.certificate, hierarchy.root.certificate),
        responders=[responder],
        lookup=book,
        now=NOW,
    )
    assert ocsp.load_der_ocsp_response(other).response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED
    sha1_oid = b"\x06\x05\x2b\x0e\x03\x02\x1a"
    odd_hash = _request(good, hierarchy.sub.certificate).replace(sha1_oid, sha1_oid[:-1] + b"\x1b")
    for junk in (b"", b"\x30\x00", b"garbage" * 10, b"\x30" * 20_000, odd_hash):
        answer = ca.build_ocsp_response(junk, responders=[responder], lookup=book, now=NOW)
        assert (
            ocsp.load_der_ocsp_response(answer).response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
        )


def test_a_delegated_responder(
    tmp_path: Path,
    hierarchy: Hierarchy,
    book_and_certs: tuple[Book, x509.Certificate, x509.Certificate, x509.Certificate],
) -> None:
    book, _, bad, _ = book_and_certs
    key = ca.generate_key(ca.KeyType.P256)
    signer = ca.issue_ocsp_responder(issuer=hierarchy.sub, public_key=key.public_key(), now=NOW)  # type: ignore[arg-type]
    eku = signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [x509.oid.ExtendedKeyUsageOID.OCSP_SIGNING]
    assert signer.extensions.get_extension_for_oid(x509.ObjectIdentifier("1.3.6.1.5.5.7.48.1.5"))
    responder = ca.OcspResponder(hierarchy.sub.certificate, key, signer)  # type: ignore[arg-type]
    request = _request(bad, hierarchy.sub.certificate, nonce=b"0123456789abcdef")
    der = ca.build_ocsp_response(request, responders=[responder], lookup=book, now=NOW)
    response = ocsp.load_der_ocsp_response(der)
    assert response.certificates == [signer] and response.certificate_status is ocsp.OCSPCertStatus.REVOKED
    # openssl checks the delegation: signed by a certificate the CA issued for OCSP signing
    root, sub = hierarchy.write(tmp_path)
    (tmp_path / "resp.der").write_bytes(der)
    out = openssl(
        "ocsp", "-respin", tmp_path / "resp.der", "-CAfile", root, "-verify_other", sub, "-resp_text"
    )
    assert "Response verify OK" in out.stderr + out.stdout
    assert "Cert Status: revoked" in out.stdout and "Revocation Reason: affiliationChanged" in out.stdout
    with pytest.raises(CaError, match="does not belong"):
        ca.OcspResponder(hierarchy.sub.certificate, hierarchy.root.key, signer)


def test_delegated_responders_are_checked_before_they_answer(hierarchy: Hierarchy) -> None:
    """What ``ca ocsp-serve`` refuses at start: each refusal is one sentence naming the certificate."""
    key = ca.generate_key(ca.KeyType.P256)
    fit = ca.issue_ocsp_responder(issuer=hierarchy.sub, public_key=key.public_key(), now=NOW, days=1)  # type: ignore[arg-type]
    cas = {"Root": hierarchy.root.certificate, "Sub": hierarchy.sub.certificate}
    found = ca.delegated_responders(cas, [ca.DelegatedSigner(fit, key, name="sub-ocsp.pem")], now=NOW)  # type: ignore[arg-type]
    assert list(found) == ["Sub"]  # the root signs for itself
    assert found["Sub"] == ca.OcspResponder(hierarchy.sub.certificate, key, fit)  # type: ignore[arg-type]

    mail_key = ca.generate_key(ca.KeyType.P256)
    mail = ca.issue_certificate(
        issuer=hierarchy.sub,
        public_key=mail_key.public_key(),
        email="dave@example.org",
        now=NOW,
        endpoints=ENDPOINTS,  # type: ignore[arg-type]
    )
    other_key = ca.generate_key(ca.KeyType.P256)
    second = ca.issue_ocsp_responder(issuer=hierarchy.sub, public_key=other_key.public_key(), now=NOW)  # type: ignore[arg-type]
    subject = fit.subject.rfc4514_string()
    later = NOW + dt.timedelta(days=1)
    cases = [
        (cas, [ca.DelegatedSigner(mail, mail_key, name="dave.pem")], NOW,  # type: ignore[arg-type]
         "dave.pem is not an OCSP responder certificate (no id-kp-OCSPSigning)"),
        (cas, [ca.DelegatedSigner(fit, other_key, name="sub-ocsp.pem")], NOW,  # type: ignore[arg-type]
         "the OCSP signing key does not belong to the responder certificate sub-ocsp.pem"),
        (cas, [ca.DelegatedSigner(fit, key)], later,  # type: ignore[arg-type]
         f"{subject} is not valid now (only from {NOW:%Y-%m-%d %H:%M} to {later:%Y-%m-%d %H:%M} UTC)"),
        (cas, [ca.DelegatedSigner(fit, key)], NOW - dt.timedelta(seconds=1),  # type: ignore[arg-type]
         f"{subject} is not valid now (only from {NOW:%Y-%m-%d %H:%M} to {later:%Y-%m-%d %H:%M} UTC)"),
        ({"Root": hierarchy.root.certificate}, [ca.DelegatedSigner(fit, key, name="sub-ocsp.pem")], NOW,  # type: ignore[arg-type]
         "the responder certificate sub-ocsp.pem would not be used: none of 'Root' issued it"),
        ({}, [ca.DelegatedSigner(fit, key, name="sub-ocsp.pem")], NOW,  # type: ignore[arg-type]
         "the responder certificate sub-ocsp.pem would not be used: no CA is served"),
        (cas, [ca.DelegatedSigner(fit, key), ca.DelegatedSigner(second, other_key, name="b.pem")], NOW,  # type: ignore[arg-type]
         "the responder certificate b.pem would not be used: one given before is for the same CA 'Sub'"),
    ]  # fmt: skip
    for served, delegated, now, reason in cases:
        with pytest.raises(CaError) as caught:
            ca.delegated_responders(served, delegated, now=now)
        assert caught.value.reason == reason
        assert "\n" not in caught.value.reason
    with pytest.raises(CaError, match="must be a timezone-aware datetime"):
        ca.delegated_responders(cas, [], now=NOW.replace(tzinfo=None))


def test_an_ocsp_responder_refuses_a_signer_that_cannot_speak_for_its_ca(hierarchy: Hierarchy) -> None:
    key = ca.generate_key(ca.KeyType.P256)
    fit = ca.issue_ocsp_responder(issuer=hierarchy.sub, public_key=key.public_key(), now=NOW)  # type: ignore[arg-type]
    with pytest.raises(
        CaError, match=r"^the responder certificate CN=.* was not issued by CN=smimekit CA Test Root"
    ):
        ca.OcspResponder(hierarchy.root.certificate, key, fit)  # type: ignore[arg-type]
    with pytest.raises(CaError, match="is not an OCSP responder certificate"):
        ca.OcspResponder(hierarchy.root.certificate, hierarchy.sub.key, hierarchy.sub.certificate)
    with pytest.raises(CaError, match=r"^the OCSP signing key does not belong to the CA certificate$"):
        ca.OcspResponder(hierarchy.sub.certificate, hierarchy.root.key)


def test_a_delegated_responder_outside_its_validity_does_not_answer(
    hierarchy: Hierarchy,
    book_and_certs: tuple[Book, x509.Certificate, x509.Certificate, x509.Certificate],
) -> None:
    """An answer signed by an expired responder certificate verifies nowhere: unauthorized instead."""
    book, good, _, _ = book_and_certs
    key = ca.generate_key(ca.KeyType.P256)
    signer = ca.issue_ocsp_responder(issuer=hierarchy.sub, public_key=key.public_key(), now=NOW, days=1)  # type: ignore[arg-type]
    responder = ca.OcspResponder(hierarchy.sub.certificate, key, signer)  # type: ignore[arg-type]
    request = _request(good, hierarchy.sub.certificate)
    statuses = {}
    for label, now in (
        ("before", NOW - dt.timedelta(seconds=1)),
        ("during", NOW + dt.timedelta(hours=23)),
        ("after", NOW + dt.timedelta(days=1)),
    ):
        der = ca.build_ocsp_response(request, responders=[responder], lookup=book, now=now)
        statuses[label] = ocsp.load_der_ocsp_response(der).response_status
    assert statuses == {
        "before": ocsp.OCSPResponseStatus.UNAUTHORIZED,
        "during": ocsp.OCSPResponseStatus.SUCCESSFUL,
        "after": ocsp.OCSPResponseStatus.UNAUTHORIZED,
    }
    # the CA itself answers when its delegated responder no longer can
    ca_itself = ca.OcspResponder(hierarchy.sub.certificate, hierarchy.sub.key)
    der = ca.build_ocsp_response(
        request, responders=[responder, ca_itself], lookup=book, now=NOW + dt.timedelta(days=2)
    )
    answer = ocsp.load_der_ocsp_response(der)
    assert answer.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL and answer.certificates == []
