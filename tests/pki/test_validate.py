"""Path validation with the S/MIME profile: smimekit.pki.validate_path, validate_signer and the recipient check.

The PKI is built in code (tests/testpki.py, plus a few odd certificates issued here); the easy verdicts are
cross-checked with the real ``openssl verify -purpose smimesign|smimeencrypt`` at the end.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from smimekit.errors import PkiError
from smimekit.pki import (
    KeyPurpose,
    PathFailure,
    PathResult,
    PolicyRequirements,
    certificate_email_addresses,
    check_recipient_certificate,
    email_matches,
    validate_path,
    validate_signer,
)
from smimekit.pki.addresses import SMTP_UTF8_MAILBOX
from tests.testpki import NOW, Identity, make_ca, make_ee, new_key

VECTORS = Path(__file__).resolve().parents[3] / "shared" / "vectors"
DAY = dt.timedelta(days=1)


# ---------------------------------------------------------------------------------------------- the PKI


@pytest.fixture(scope="module")
def root() -> Identity:
    return make_ca("smimekit PKI Test Root")


@pytest.fixture(scope="module")
def inter(root: Identity) -> Identity:
    return make_ca("smimekit PKI Test Intermediate", issuer=root)


@pytest.fixture(scope="module")
def alice(inter: Identity) -> Identity:
    return make_ee("alice@example.com", inter, key_kind="p256")


def issue(
    ca: Identity,
    *,
    email: str | None = "carol@example.com",
    eku: list[x509.ObjectIdentifier] | None = None,
    ku: dict[str, bool] | None = None,
    san: list[x509.GeneralName] | None = None,
    subject_email: str | None = None,
    key_kind: str = "p256",
    is_ca: bool = False,
    not_before: dt.datetime = NOW - DAY,
    not_after: dt.datetime = NOW + 365 * DAY,
    self_signed: bool = False,
    name_constraints: x509.NameConstraints | None = None,
) -> Identity:
    """A certificate with exactly the extensions asked for (testpki's make_ee always uses the S/MIME profile).

    ``eku=None`` means no EKU extension, ``ku=None`` no key usage extension, ``san=None`` an rfc822Name SAN
    for ``email`` (``san=[]`` no SAN at all).
    """
    key = new_key(key_kind)
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, f"Test {email or 'nobody'}")]
    if subject_email:
        attrs.append(x509.NameAttribute(NameOID.EMAIL_ADDRESS, subject_email))
    subject = x509.Name(attrs)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject if self_signed else ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    )
    if ku is not None:
        flags = dict.fromkeys(
            (
                "digital_signature",
                "content_commitment",
                "key_encipherment",
                "data_encipherment",
                "key_agreement",
                "key_cert_sign",
                "crl_sign",
                "encipher_only",
                "decipher_only",
            ),
            False,
        )
        flags.update(ku)
        builder = builder.add_extension(x509.KeyUsage(**flags), critical=True)
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    if name_constraints is not None:
        builder = builder.add_extension(name_constraints, critical=True)
    names = san if san is not None else ([x509.RFC822Name(email)] if email else [])
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    signer = key if self_signed else ca.key
    cert = builder.sign(signer, hashes.SHA256())
    return Identity(cert, key, () if self_signed else (ca.cert, *ca.chain))


def crl_of(
    ca: Identity,
    revoked: tuple[tuple[x509.Certificate, dt.datetime], ...] = (),
    *,
    last_update: dt.datetime = NOW - DAY,
    next_update: dt.datetime = NOW + 7 * DAY,
    key: Any = None,
) -> x509.CertificateRevocationList:
    """A CRL of ``ca`` listing ``(certificate, revocation date)`` pairs as key compromises."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(last_update)
        .next_update(next_update)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
        .add_extension(x509.CRLNumber(1), critical=False)
    )
    for cert, when in revoked:
        entry = (
            x509.RevokedCertificateBuilder()
            .serial_number(cert.serial_number)
            .revocation_date(when)
            .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False)
            .build()
        )
        builder = builder.add_revoked_certificate(entry)
    return builder.sign(key or ca.key, hashes.SHA256())


def check(ident: Identity, root: Identity, **kwargs: Any) -> PathResult:
    kwargs.setdefault("at", NOW)
    kwargs.setdefault("intermediates", ident.chain)
    return validate_path(ident.cert, anchors=[root.cert], **kwargs)


def assert_untrusted(result: PathResult, failure: PathFailure, *fragments: str) -> None:
    assert not result.trusted
    assert result.failure is failure, (result.failure, result.reason)
    assert result.reason is not None
    for fragment in fragments:
        assert fragment in result.reason, result.reason


# ---------------------------------------------------------------------------------------------- paths


def test_chain_root_intermediate_leaf_is_trusted(root: Identity, inter: Identity, alice: Identity) -> None:
    result = validate_path(alice.cert, anchors=[root.cert], intermediates=[inter.cert], at=NOW)
    assert result.trusted
    assert result.reason is None and result.failure is None
    assert result.path == (alice.cert, inter.cert, root.cert)
    assert result.anchor == root.cert
    assert result.validated_at == NOW


def test_intermediates_may_come_in_any_order_with_extra_certificates(
    root: Identity, inter: Identity, alice: Identity
) -> None:
    stranger = make_ca("Unrelated CA")
    result = validate_path(
        alice.cert, anchors=[stranger.cert, root.cert], intermediates=[stranger.cert, inter.cert], at=NOW
    )
    assert result.trusted and result.anchor == root.cert


def test_missing_intermediate_means_no_path(root: Identity, alice: Identity) -> None:
    result = validate_path(alice.cert, anchors=[root.cert], at=NOW)
    assert_untrusted(
        result, PathFailure.NO_TRUST_ANCHOR, "no path to a trust anchor", "smimekit PKI Test Intermediate"
    )
    assert result.path == (alice.cert,) and result.anchor is None


def test_an_intermediate_may_itself_be_the_anchor(inter: Identity, alice: Identity) -> None:
    result = validate_path(alice.cert, anchors=[inter.cert], at=NOW)
    assert result.trusted and result.path == (alice.cert, inter.cert) and result.anchor == inter.cert


def test_wrong_anchor_means_no_path(inter: Identity, alice: Identity) -> None:
    other_root = make_ca("Another Root")
    result = validate_path(alice.cert, anchors=[other_root.cert], intermediates=[inter.cert], at=NOW)
    assert_untrusted(result, PathFailure.NO_TRUST_ANCHOR, "no path to a trust anchor")


def test_no_anchors_at_all(alice: Identity) -> None:
    result = validate_path(alice.cert, anchors=[], intermediates=alice.chain, at=NOW)
    assert_untrusted(result, PathFailure.NO_TRUST_ANCHOR, "no trust anchors were given")


def test_self_signed_leaf_not_among_the_anchors(root: Identity) -> None:
    selfie = issue(root, self_signed=True, eku=[ExtendedKeyUsageOID.EMAIL_PROTECTION])
    result = validate_path(selfie.cert, anchors=[root.cert], at=NOW)
    assert_untrusted(result, PathFailure.NO_TRUST_ANCHOR, "self-signed")


def test_self_signed_leaf_trusted_directly(root: Identity) -> None:
    selfie = issue(root, self_signed=True, eku=[ExtendedKeyUsageOID.EMAIL_PROTECTION])
    result = validate_path(selfie.cert, anchors=[root.cert, selfie.cert], at=NOW, email="carol@example.com")
    assert result.trusted and result.path == (selfie.cert,) and result.anchor == selfie.cert


def test_impostor_issuer_with_the_same_name_is_not_trusted(root: Identity, inter: Identity) -> None:
    impostor = make_ca("smimekit PKI Test Intermediate")  # same name, other key, self-signed
    mallory = make_ee("alice@example.com", impostor, key_kind="p256")
    result = validate_path(mallory.cert, anchors=[root.cert], intermediates=[inter.cert], at=NOW)
    assert not result.trusted
    assert result.failure in (PathFailure.NO_TRUST_ANCHOR, PathFailure.INVALID_PATH)


def test_explicit_policy_required_but_none_asserted(root: Identity, inter: Identity, alice: Identity) -> None:
    result = check(alice, root, policies=PolicyRequirements(explicit=True))
    assert_untrusted(result, PathFailure.INVALID_PATH, "polic")


# ---------------------------------------------------------------------------------------------- time


def test_expired_at_the_validation_time(root: Identity, inter: Identity) -> None:
    short = make_ee("short@example.com", inter, key_kind="p256", not_after=NOW + 30 * DAY)
    result = check(short, root, at=NOW + 31 * DAY)
    expiry = short.cert.not_valid_after_utc.date().isoformat()
    assert_untrusted(result, PathFailure.EXPIRED, f"the certificate expired on {expiry}")
    assert check(short, root, at=NOW + 30 * DAY).trusted  # notAfter itself is inside the validity


def test_not_yet_valid_at_the_validation_time(root: Identity, inter: Identity) -> None:
    future = make_ee("future@example.com", inter, key_kind="p256", not_before=NOW + 10 * DAY)
    result = check(future, root)
    assert_untrusted(result, PathFailure.NOT_YET_VALID, "the certificate is not valid before", "2026-01-11")


def test_expired_intermediate_is_named(root: Identity, inter: Identity, alice: Identity) -> None:
    late = NOW + 3700 * DAY
    long_lived = make_ee("long@example.com", inter, key_kind="p256", not_after=late + 100 * DAY)
    result = check(long_lived, root, at=late)
    assert_untrusted(
        result, PathFailure.EXPIRED, "the CA certificate", "smimekit PKI Test Intermediate", "expired on"
    )


def test_expired_trust_anchor(root: Identity) -> None:
    late = NOW + 3700 * DAY  # the root expires after 3650 days, the leaf later
    leaf = make_ee("late@example.com", root, key_kind="p256", not_after=late + 100 * DAY)
    result = check(leaf, root, at=late)
    assert_untrusted(result, PathFailure.EXPIRED, "the trust anchor", "smimekit PKI Test Root", "expired on")


def test_naive_datetime_is_a_usage_error(root: Identity, alice: Identity) -> None:
    with pytest.raises(PkiError, match="timezone-aware"):
        validate_path(alice.cert, anchors=[root.cert], at=dt.datetime(2026, 1, 1))


# ---------------------------------------------------------------------------------------------- signer


def test_signed_while_valid_but_expired_now(root: Identity, inter: Identity) -> None:
    short = make_ee("short@example.com", inter, key_kind="p256", not_after=NOW + 30 * DAY)
    trust = validate_signer(
        short.cert, anchors=[root.cert], intermediates=short.chain, signing_time=NOW, now=NOW + 60 * DAY
    )
    assert trust.at_signing_time is not None and trust.at_signing_time.trusted
    assert trust.at_signing_time.validated_at == NOW
    assert not trust.now.trusted and trust.now.failure is PathFailure.EXPIRED
    assert not trust.trusted
    assert trust.reason is not None and trust.reason.startswith("now: the certificate expired on")


def test_signing_time_before_the_certificate_existed(
    root: Identity, inter: Identity, alice: Identity
) -> None:
    trust = validate_signer(
        alice.cert, anchors=[root.cert], intermediates=alice.chain, signing_time=NOW - 30 * DAY, now=NOW
    )
    assert trust.now.trusted
    assert trust.at_signing_time is not None
    assert trust.at_signing_time.failure is PathFailure.NOT_YET_VALID
    assert not trust.trusted
    assert trust.reason is not None and trust.reason.startswith(
        "at the signing time: the certificate is not valid"
    )


def test_without_signing_time_only_now_counts(root: Identity, alice: Identity) -> None:
    trust = validate_signer(
        alice.cert, anchors=[root.cert], intermediates=alice.chain, signing_time=None, now=NOW
    )
    assert trust.at_signing_time is None and trust.trusted and trust.reason is None


def test_signing_time_in_the_future_is_not_believed(root: Identity, alice: Identity) -> None:
    ahead = validate_signer(
        alice.cert, anchors=[root.cert], intermediates=alice.chain, signing_time=NOW + DAY, now=NOW
    )
    assert ahead.at_signing_time is not None
    assert ahead.at_signing_time.failure is PathFailure.SIGNING_TIME and not ahead.trusted
    skew = validate_signer(
        alice.cert,
        anchors=[root.cert],
        intermediates=alice.chain,
        signing_time=NOW + dt.timedelta(minutes=2),
        now=NOW,
    )
    assert skew.trusted  # a couple of minutes of clock skew is tolerated


def test_revoked_after_signing(root: Identity, inter: Identity, alice: Identity) -> None:
    crl = crl_of(
        inter, ((alice.cert, NOW + 10 * DAY),), last_update=NOW + 15 * DAY, next_update=NOW + 30 * DAY
    )
    trust = validate_signer(
        alice.cert,
        anchors=[root.cert],
        intermediates=alice.chain,
        signing_time=NOW,
        now=NOW + 20 * DAY,
        crls=[crl],
    )
    assert trust.at_signing_time is not None and trust.at_signing_time.trusted  # a later CRL, an earlier time
    assert trust.now.failure is PathFailure.REVOKED
    assert not trust.trusted


# ---------------------------------------------------------------------------------------------- EKU


def test_wrong_eku_on_the_leaf(root: Identity) -> None:
    server = issue(root, eku=[ExtendedKeyUsageOID.SERVER_AUTH])
    result = check(server, root)
    assert_untrusted(
        result, PathFailure.EXTENDED_KEY_USAGE, "the certificate is not valid for e-mail protection (EKU)"
    )
    assert result.anchor == root.cert and result.path == (server.cert, root.cert)  # the path itself held


def test_no_eku_extension_means_unrestricted(root: Identity) -> None:
    assert check(issue(root, eku=None), root).trusted  # RFC 8550 §4.4.4


def test_any_extended_key_usage_is_accepted(root: Identity) -> None:
    # RFC 8550 §4.4.4 accepts anyExtendedKeyUsage; OpenSSL's smimesign purpose does not (see the interop test)
    assert check(issue(root, eku=[ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE]), root).trusted


def test_wrong_eku_on_an_intermediate(root: Identity) -> None:
    tls_ca = issue(
        root,
        email=None,
        is_ca=True,
        eku=[ExtendedKeyUsageOID.SERVER_AUTH],
        ku={"key_cert_sign": True, "crl_sign": True},
    )
    leaf = make_ee("dave@example.com", tls_ca, key_kind="p256")
    result = validate_path(leaf.cert, anchors=[root.cert], intermediates=[tls_ca.cert], at=NOW)
    assert_untrusted(
        result, PathFailure.EXTENDED_KEY_USAGE, "the CA certificate", "is not valid for e-mail protection"
    )


# ---------------------------------------------------------------------------------------------- key usage


def test_encryption_only_certificate_cannot_sign(root: Identity, inter: Identity) -> None:
    enc = make_ee("enc@example.com", inter, signing=False)
    assert_untrusted(check(enc, root), PathFailure.KEY_USAGE, "does not allow signing")
    assert check(enc, root, purpose=KeyPurpose.ENCRYPTION).trusted


def test_signing_only_certificate_cannot_encrypt(root: Identity, inter: Identity) -> None:
    sig = make_ee("sig@example.com", inter, encryption=False)
    assert check(sig, root).trusted
    assert_untrusted(
        check(sig, root, purpose=KeyPurpose.ENCRYPTION), PathFailure.KEY_USAGE, "keyEncipherment"
    )


def test_ec_encryption_needs_key_agreement(root: Identity, inter: Identity) -> None:
    assert check(
        make_ee("ec@example.com", inter, key_kind="p256"), root, purpose=KeyPurpose.ENCRYPTION
    ).trusted
    rsa_like = issue(root, ku={"digital_signature": True, "key_encipherment": True})
    assert_untrusted(
        check(rsa_like, root, purpose=KeyPurpose.ENCRYPTION), PathFailure.KEY_USAGE, "keyAgreement"
    )


def test_non_repudiation_alone_allows_signing(root: Identity) -> None:
    assert check(issue(root, ku={"content_commitment": True}), root).trusted


def test_key_types_that_cannot_do_the_job(root: Identity, inter: Identity) -> None:
    x = make_ee("x@example.com", inter, key_kind="x25519")
    assert check(x, root, purpose=KeyPurpose.ENCRYPTION).trusted
    assert_untrusted(
        check(x, root, purpose=KeyPurpose.SIGNING), PathFailure.KEY_USAGE, "X25519 key cannot sign"
    )
    ed = make_ee("ed@example.com", inter, key_kind="ed25519")
    assert check(ed, root).trusted
    assert_untrusted(
        check(ed, root, purpose=KeyPurpose.ENCRYPTION),
        PathFailure.KEY_USAGE,
        "Ed25519 key cannot be used for encryption",
    )


def test_purpose_must_be_the_enum(root: Identity, alice: Identity) -> None:
    with pytest.raises(PkiError, match="KeyPurpose"):
        validate_path(alice.cert, anchors=[root.cert], at=NOW, purpose="signing")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- addresses


def test_email_matches_the_san(root: Identity, alice: Identity) -> None:
    assert check(alice, root, email="alice@example.com").trusted
    assert check(alice, root, email="alice@EXAMPLE.Com").trusted  # the domain is case-insensitive
    assert check(alice, root, email="alice@example.com.").trusted  # the root label


def test_local_part_is_case_sensitive(root: Identity, alice: Identity) -> None:
    result = check(alice, root, email="Alice@example.com")  # RFC 5280 §7.5, as OpenSSL
    assert_untrusted(result, PathFailure.ADDRESS_MISMATCH, "not for Alice@example.com", "alice@example.com")


def test_email_mismatch(root: Identity, alice: Identity) -> None:
    assert_untrusted(
        check(alice, root, email="bob@example.com"), PathFailure.ADDRESS_MISMATCH, "bob@example.com"
    )


def test_eai_smtputf8mailbox(root: Identity) -> None:
    der = "Åsa@bücher.example".encode()
    value = bytes([0x0C, len(der)]) + der  # UTF8String
    eai = issue(root, email=None, san=[x509.OtherName(SMTP_UTF8_MAILBOX, value)])
    assert certificate_email_addresses(eai.cert) == ("Åsa@bücher.example",)
    assert check(eai, root, email="Åsa@bücher.example").trusted
    assert check(eai, root, email="Åsa@BÜCHER.example").trusted
    assert check(eai, root, email="Åsa@xn--bcher-kva.example").trusted  # the A-label of the same domain
    assert_untrusted(check(eai, root, email="åsa@bücher.example"), PathFailure.ADDRESS_MISMATCH)


def test_idn_domain_in_rfc822name(root: Identity) -> None:
    idn = issue(root, email="info@xn--bcher-kva.example")
    assert check(idn, root, email="info@bücher.example").trusted


def test_legacy_subject_email_only_without_san(root: Identity) -> None:
    legacy = issue(root, email=None, san=[], subject_email="old@example.com")
    assert certificate_email_addresses(legacy.cert) == ("old@example.com",)
    assert check(legacy, root, email="old@example.com").trusted
    both = issue(root, email="new@example.com", subject_email="old@example.com")
    assert certificate_email_addresses(both.cert) == ("new@example.com",)
    assert_untrusted(check(both, root, email="old@example.com"), PathFailure.ADDRESS_MISMATCH)


def test_subject_email_is_not_used_beside_a_san(root: Identity) -> None:
    dns_only = issue(
        root, email=None, san=[x509.DNSName("host.example.com")], subject_email="old@example.com"
    )
    assert certificate_email_addresses(dns_only.cert) == ()
    assert_untrusted(check(dns_only, root, email="old@example.com"), PathFailure.ADDRESS_MISMATCH)


def constrained_ca(
    root: Identity, *, permitted: list[str] | None = None, excluded: list[str] | None = None
) -> Identity:
    constraints = x509.NameConstraints(
        permitted_subtrees=[x509.RFC822Name(n) for n in permitted] if permitted else None,
        excluded_subtrees=[x509.RFC822Name(n) for n in excluded] if excluded else None,
    )
    return issue(
        root,
        email=None,
        san=[],
        is_ca=True,
        ku={"key_cert_sign": True, "crl_sign": True},
        name_constraints=constraints,
    )


def eai_leaf(ca: Identity, mailbox: str) -> Identity:
    der = mailbox.encode()
    return issue(ca, email=None, san=[x509.OtherName(SMTP_UTF8_MAILBOX, bytes([0x0C, len(der)]) + der)])


def test_name_constraints_apply_to_smtputf8mailbox(root: Identity) -> None:
    ca = constrained_ca(root, permitted=["example.com", ".example.org"])
    inside = eai_leaf(ca, "Åsa@example.com")
    assert validate_path(inside.cert, anchors=[root.cert], intermediates=[ca.cert], at=NOW).trusted
    below = eai_leaf(ca, "Åsa@mail.example.org")
    assert validate_path(below.cert, anchors=[root.cert], intermediates=[ca.cert], at=NOW).trusted
    outside = eai_leaf(ca, "Åsa@bücher.example")
    result = validate_path(outside.cert, anchors=[root.cert], intermediates=[ca.cert], at=NOW)
    assert_untrusted(result, PathFailure.INVALID_PATH, "Åsa@bücher.example", "name constraints")
    banned = constrained_ca(
        root, excluded=["xn--bcher-kva.example"]
    )  # the A-label excludes the U-label domain
    result = validate_path(
        eai_leaf(banned, "Åsa@bücher.example").cert, anchors=[root.cert], intermediates=[banned.cert], at=NOW
    )
    assert_untrusted(result, PathFailure.INVALID_PATH, "name constraints")


def test_name_constraints_apply_to_rfc822name_and_legacy_subject_email(root: Identity) -> None:
    ca = constrained_ca(root, excluded=["evil.example"])
    san = issue(ca, email="mallory@evil.example")
    assert not validate_path(san.cert, anchors=[root.cert], intermediates=[ca.cert], at=NOW).trusted
    legacy = issue(ca, email=None, san=[], subject_email="mallory@evil.example")
    assert not validate_path(legacy.cert, anchors=[root.cert], intermediates=[ca.cert], at=NOW).trusted
    fine = issue(ca, email="alice@good.example")
    assert validate_path(fine.cert, anchors=[root.cert], intermediates=[ca.cert], at=NOW).trusted


def test_certificate_without_address(root: Identity) -> None:
    anonymous = issue(root, email=None, san=[])
    assert check(anonymous, root).trusted  # RFC 8550 §3: no address is acceptable ...
    result = check(anonymous, root, email="who@example.com")  # ... but it cannot vouch for one
    assert_untrusted(result, PathFailure.ADDRESS_MISMATCH, "names no e-mail address")


def test_pyca_eai_vectors() -> None:
    pkcs7 = VECTORS / "pyca-cryptography-vectors" / "pkcs7"
    ascii_san = x509.load_pem_x509_certificate((pkcs7 / "ascii-san.pem").read_bytes())
    assert certificate_email_addresses(ascii_san) == ("retourne@example.com",)
    non_ascii = x509.load_pem_x509_certificate((pkcs7 / "non-ascii-san.pem").read_bytes())
    assert certificate_email_addresses(non_ascii) == ()  # a non-ASCII rfc822Name is malformed: ignored


@pytest.mark.parametrize(
    "bad", ["alice", "@example.com", "alice@", "Alice <alice@example.com>", "a b@example.com"]
)
def test_malformed_address_is_a_usage_error(root: Identity, alice: Identity, bad: str) -> None:
    with pytest.raises(PkiError, match="not a plain e-mail address"):
        check(alice, root, email=bad)


def test_email_matches_rules() -> None:
    assert email_matches("a@Example.COM", "a@example.com")
    assert not email_matches("A@example.com", "a@example.com")
    assert not email_matches("a@example.com", "a@example.org")
    assert email_matches("a@xn--bcher-kva.example", "a@BÜCHER.example")
    assert not email_matches(
        "a@xn--ab\u00e9.example", "a@xn--ab\u00e9.example"
    )  # a broken A-label matches nothing
    assert not email_matches("a@", "a@")


# ---------------------------------------------------------------------------------------------- revocation


def test_revoked_leaf_in_a_given_crl(root: Identity, inter: Identity, alice: Identity) -> None:
    crl = crl_of(inter, ((alice.cert, NOW - dt.timedelta(hours=12)),))
    result = check(alice, root, crls=[crl])
    assert_untrusted(
        result, PathFailure.REVOKED, "the certificate is revoked", "2025-12-31", "compromised key"
    )


def test_crl_revoking_someone_else(root: Identity, inter: Identity, alice: Identity) -> None:
    other = make_ee("other@example.com", inter, key_kind="p256")
    assert check(alice, root, crls=[crl_of(inter, ((other.cert, NOW - DAY),))]).trusted


def test_revoked_intermediate(root: Identity, inter: Identity, alice: Identity) -> None:
    result = check(alice, root, crls=[crl_of(root, ((inter.cert, NOW - DAY),))])
    assert_untrusted(
        result, PathFailure.REVOKED, "the CA certificate", "smimekit PKI Test Intermediate", "revoked"
    )


def test_revocation_required(root: Identity, inter: Identity, alice: Identity) -> None:
    assert_untrusted(check(alice, root, require_revocation=True), PathFailure.REVOCATION_UNKNOWN, "no CRL")
    only_leaf = check(alice, root, require_revocation=True, crls=[crl_of(inter)])
    assert_untrusted(only_leaf, PathFailure.REVOCATION_UNKNOWN, "the CA certificate")
    assert check(alice, root, require_revocation=True, crls=[crl_of(inter), crl_of(root)]).trusted


def test_stale_crl_fails_closed(root: Identity, inter: Identity, alice: Identity) -> None:
    stale = crl_of(inter, last_update=NOW - 10 * DAY, next_update=NOW - DAY)
    assert_untrusted(
        check(alice, root, crls=[stale]), PathFailure.REVOCATION_UNKNOWN, "cannot be used", "recent"
    )


def test_crl_with_a_bad_signature_fails_closed(root: Identity, inter: Identity, alice: Identity) -> None:
    forged = crl_of(inter, key=root.key)
    assert_untrusted(check(alice, root, crls=[forged]), PathFailure.REVOCATION_UNKNOWN, "signature")


def test_revocation_dated_after_the_validation_time(root: Identity, inter: Identity, alice: Identity) -> None:
    crl = crl_of(inter, ((alice.cert, NOW + 5 * DAY),), last_update=NOW + 6 * DAY)
    assert check(alice, root, crls=[crl], at=NOW).trusted
    assert check(alice, root, crls=[crl], at=NOW + 6 * DAY).failure is PathFailure.REVOKED


# ---------------------------------------------------------------------------------------------- arguments


def test_arguments_that_cannot_work(root: Identity, alice: Identity) -> None:
    with pytest.raises(PkiError, match="sequence of certificates"):
        validate_path(alice.cert, anchors=root.cert, at=NOW)  # type: ignore[arg-type]
    with pytest.raises(PkiError, match="every item of intermediates"):
        validate_path(alice.cert, anchors=[root.cert], intermediates=[b"PEM"], at=NOW)  # type: ignore[list-item]
    with pytest.raises(PkiError, match="crls"):
        validate_path(alice.cert, anchors=[root.cert], crls=[root.cert], at=NOW)  # type: ignore[list-item]
    with pytest.raises(PkiError, match="certificate"):
        validate_path(b"not a cert", anchors=[root.cert], at=NOW)  # type: ignore[arg-type]
    with pytest.raises(PkiError, match="policy OID"):
        PolicyRequirements(acceptable=frozenset({"not.an.oid"}))


def test_works_from_inside_an_event_loop(root: Identity, alice: Identity) -> None:
    async def inside() -> PathResult:
        return check(alice, root)

    assert asyncio.run(inside()).trusted


def test_path_result_is_consistent() -> None:
    with pytest.raises(ValueError, match="trusted"):
        PathResult(True, "but why", (), None, NOW)


# ---------------------------------------------------------------------------------------------- recipients


def test_recipient_check(root: Identity, inter: Identity) -> None:
    bob = make_ee("bob@example.com", inter)
    assert check_recipient_certificate(bob.cert, at=NOW, email="bob@example.com") == []
    problems = check_recipient_certificate(bob.cert, at=NOW + 1000 * DAY, email="rob@example.com")
    assert len(problems) == 2
    assert problems[0].startswith("the certificate expired on") and "not for rob@example.com" in problems[1]
    assert "not valid before" in check_recipient_certificate(bob.cert, at=NOW - 10 * DAY)[0]
    sig_only = make_ee("sig@example.com", inter, encryption=False)
    assert check_recipient_certificate(sig_only.cert, at=NOW) == [
        "the certificate's key usage does not allow encryption (keyEncipherment)"
    ]
    server = issue(root, eku=[ExtendedKeyUsageOID.SERVER_AUTH], ku={"key_agreement": True})
    assert check_recipient_certificate(server.cert, at=NOW) == [
        "the certificate is not valid for e-mail protection (EKU)"
    ]
    ed = make_ee("ed@example.com", inter, key_kind="ed25519")
    assert check_recipient_certificate(ed.cert, at=NOW) == [
        "the certificate's Ed25519 key cannot be used for encryption"
    ]
    with pytest.raises(PkiError):
        check_recipient_certificate(bob.cert, at=dt.datetime(2026, 1, 1))


# ---------------------------------------------------------------------------------------------- RFC 9216


def test_rfc9216_certificates() -> None:
    d = VECTORS / "rfc9216"

    def load(name: str) -> x509.Certificate:
        return x509.load_pem_x509_certificate((d / name).read_bytes())

    ca_rsa, ca_ed = load("ca.rsa.crt"), load("ca.25519.crt")
    assert validate_path(
        load("alice.sign.crt"), anchors=[ca_rsa], at=NOW, email="alice@smime.example"
    ).trusted
    assert validate_path(
        load("alice.encrypt.crt"), anchors=[ca_rsa], at=NOW, purpose=KeyPurpose.ENCRYPTION
    ).trusted
    wrong = validate_path(load("alice.encrypt.crt"), anchors=[ca_rsa], at=NOW)  # OpenSSL fails it too
    assert wrong.failure is PathFailure.KEY_USAGE
    assert validate_path(load("carlos.sign.crt"), anchors=[ca_ed], at=NOW).trusted
    assert validate_path(
        load("carlos.encrypt.crt"), anchors=[ca_ed], at=NOW, purpose=KeyPurpose.ENCRYPTION
    ).trusted
    # Dana's Ed25519 certificate reaches the RSA root through the cross-certificate
    crossed = validate_path(
        load("dana.sign.crt"), anchors=[ca_rsa], intermediates=[load("ca.25519.cross.crt")], at=NOW
    )
    assert crossed.trusted and crossed.anchor == ca_rsa and len(crossed.path) == 3


# ---------------------------------------------------------------------------------------------- OpenSSL agrees


def _pem(certs: list[x509.Certificate] | tuple[x509.Certificate, ...]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def openssl_verify(
    tmp: Path,
    leaf: x509.Certificate,
    anchors: list[x509.Certificate],
    intermediates: list[x509.Certificate] | tuple[x509.Certificate, ...] = (),
    *,
    at: dt.datetime = NOW,
    purpose: str = "smimesign",
    crls: list[x509.CertificateRevocationList] | None = None,
) -> bool:
    (tmp / "ca.pem").write_bytes(_pem(anchors))
    (tmp / "leaf.pem").write_bytes(_pem([leaf]))
    args = [
        "openssl",
        "verify",
        "-purpose",
        purpose,
        "-attime",
        str(int(at.timestamp())),
        "-CAfile",
        str(tmp / "ca.pem"),
    ]
    if intermediates:
        (tmp / "untrusted.pem").write_bytes(_pem(intermediates))
        args += ["-untrusted", str(tmp / "untrusted.pem")]
    if crls:
        (tmp / "crls.pem").write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in crls))
        args += ["-crl_check", "-CRLfile", str(tmp / "crls.pem")]
    res = subprocess.run(
        [*args, str(tmp / "leaf.pem")], capture_output=True, text=True, check=False, timeout=30
    )
    return res.returncode == 0


needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")


@needs_openssl
def test_openssl_agrees_on_the_easy_cases(
    tmp_path: Path, root: Identity, inter: Identity, alice: Identity
) -> None:
    short = make_ee("short@example.com", inter, key_kind="p256", not_after=NOW + 30 * DAY)
    enc_only = make_ee("enc@example.com", inter, signing=False)
    sig_only = make_ee("sig@example.com", inter, encryption=False)
    server = issue(root, eku=[ExtendedKeyUsageOID.SERVER_AUTH])
    no_eku = issue(root, eku=None)
    selfie = issue(root, self_signed=True, eku=[ExtendedKeyUsageOID.EMAIL_PROTECTION])
    revoking = crl_of(inter, ((alice.cert, NOW - DAY),))
    cases: list[tuple[str, Identity, dict[str, Any], KeyPurpose, str]] = [
        ("chain", alice, {}, KeyPurpose.SIGNING, "smimesign"),
        ("missing intermediate", alice, {"intermediates": ()}, KeyPurpose.SIGNING, "smimesign"),
        ("expired", short, {"at": NOW + 40 * DAY}, KeyPurpose.SIGNING, "smimesign"),
        ("not yet valid", alice, {"at": NOW - 5 * DAY}, KeyPurpose.SIGNING, "smimesign"),
        ("encryption-only signs", enc_only, {}, KeyPurpose.SIGNING, "smimesign"),
        ("encryption-only encrypts", enc_only, {}, KeyPurpose.ENCRYPTION, "smimeencrypt"),
        ("signing-only encrypts", sig_only, {}, KeyPurpose.ENCRYPTION, "smimeencrypt"),
        ("server EKU", server, {}, KeyPurpose.SIGNING, "smimesign"),
        ("no EKU", no_eku, {}, KeyPurpose.SIGNING, "smimesign"),
        ("self-signed", selfie, {"intermediates": ()}, KeyPurpose.SIGNING, "smimesign"),
        ("revoked", alice, {"crls": [revoking, crl_of(root)]}, KeyPurpose.SIGNING, "smimesign"),
        ("not revoked", alice, {"crls": [crl_of(inter), crl_of(root)]}, KeyPurpose.SIGNING, "smimesign"),
    ]
    for name, ident, extra, purpose, ossl_purpose in cases:
        at = extra.get("at", NOW)
        intermediates = extra.get("intermediates", ident.chain)
        crls = extra.get("crls")
        ours = validate_path(
            ident.cert,
            anchors=[root.cert],
            intermediates=intermediates,
            at=at,
            purpose=purpose,
            crls=crls or (),
        )
        theirs = openssl_verify(
            tmp_path, ident.cert, [root.cert], intermediates, at=at, purpose=ossl_purpose, crls=crls
        )
        assert ours.trusted == theirs, (name, ours.reason)


@needs_openssl
def test_openssl_rejects_any_eku_where_rfc8550_accepts(tmp_path: Path, root: Identity) -> None:
    """The one deliberate difference: RFC 8550 §4.4.4 lets anyExtendedKeyUsage stand for emailProtection."""
    any_eku = issue(root, eku=[ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE])
    assert check(any_eku, root).trusted
    assert not openssl_verify(tmp_path, any_eku.cert, [root.cert])
