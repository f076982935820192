"""The signed attributes that do not change between messages are encoded once and cached: the output stays
byte for byte what a fresh encoding gives, certificates never share an entry, the caches stay bounded."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from smimekit.cms import DEFAULT_SMIME_CAPABILITIES, Signer, sign, verify
from smimekit.cms.attributes import (
    ATTRIBUTE_CACHE_SIZE,
    SmimeCapability,
    _signing_certificate_v2_attribute,
    build_signed_attributes,
    clear_attribute_caches,
    read_signed_attributes,
)
from tests.cms.conftest import SIGNING_TIME
from tests.testpki import Identity, make_ee

SHA256_ID = algos.DigestAlgorithm({"algorithm": "sha256"}).dump()
ECDSA_ID = algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"}).dump()
RSA_ID = algos.SignedDigestAlgorithm({"algorithm": "sha256_rsa"}).dump()


def _attr(oid: str, value: object) -> bytes:
    return bytes(cms.CMSAttribute({"type": oid, "values": [value]}).dump())


def _reference(
    cert: x509.Certificate,
    digest: bytes,
    when: dt.datetime,
    caps: tuple[SmimeCapability, ...],
    enc: x509.Certificate | None,
    signature_id: bytes = ECDSA_ID,
) -> bytes:
    """The attribute SET encoded from scratch with asn1crypto, without any cache."""
    der = cert.public_bytes(serialization.Encoding.DER)
    attrs = [
        _attr("1.2.840.113549.1.9.3", cms.ContentType("1.2.840.113549.1.7.1")),
        _attr("1.2.840.113549.1.9.4", core.OctetString(digest)),
        _attr(
            "1.2.840.113549.1.9.52",
            cms.CMSAlgorithmProtection(
                {
                    "digest_algorithm": algos.DigestAlgorithm.load(SHA256_ID),
                    "signature_algorithm": algos.SignedDigestAlgorithm.load(signature_id),
                }
            ),
        ),
        _attr(
            "1.2.840.113549.1.9.16.2.47",
            tsp.SigningCertificateV2(
                {
                    "certs": [
                        {
                            "cert_hash": hashlib.sha256(der).digest(),
                            "issuer_serial": {
                                "issuer": [
                                    asn1_x509.GeneralName(
                                        {"directory_name": asn1_x509.Name.load(cert.issuer.public_bytes())}
                                    )
                                ],
                                "serial_number": cert.serial_number,
                            },
                        }
                    ]
                }
            ),
        ),
        _attr("1.2.840.113549.1.9.5", cms.Time({"utc_time": when.replace(microsecond=0)})),
        _attr("1.2.840.113549.1.9.15", cms.SMIMECapabilites([{"capability_id": c.oid} for c in caps])),
    ]
    if enc is not None:
        ias = cms.IssuerAndSerialNumber(
            {"issuer": asn1_x509.Name.load(enc.issuer.public_bytes()), "serial_number": enc.serial_number}
        )
        attrs.append(
            _attr(
                "1.2.840.113549.1.9.16.2.11",
                cms.SMIMEEncryptionKeyPreference({"issuer_and_serial_number": ias}),
            )
        )
    body = b"".join(sorted(attrs))
    return b"\x31" + bytes(core.OctetString(body).dump()[1:])  # same length octets, SET tag


def _build(
    ident: Identity,
    digest: bytes,
    when: dt.datetime = SIGNING_TIME,
    caps: tuple[SmimeCapability, ...] = DEFAULT_SMIME_CAPABILITIES,
    enc: x509.Certificate | None = None,
    signature_id: bytes = ECDSA_ID,
) -> bytes:
    return build_signed_attributes(
        content_type="1.2.840.113549.1.7.1",
        message_digest=digest,
        signer_certificate=ident.cert,
        digest_algorithm=SHA256_ID,
        signature_algorithm=signature_id,
        signing_time=when,
        capabilities=caps,
        encryption_certificate=enc,
    )


def test_cached_encoding_is_byte_for_byte_a_fresh_one(identities: dict[str, Identity]) -> None:
    p256, enc = identities["p256"], identities["rsa2048-enc"]
    clear_attribute_caches()
    for i in range(3):  # cold, then warm caches
        digest = hashlib.sha256(b"message %d" % i).digest()
        when = SIGNING_TIME + dt.timedelta(seconds=i)
        got = _build(p256, digest, when, enc=enc.cert)
        assert isinstance(got, bytes)
        assert got == _reference(p256.cert, digest, when, DEFAULT_SMIME_CAPABILITIES, enc.cert)
    # another algorithm pair, other capabilities: entries of their own
    rsa = identities["rsa2048"]
    caps = (SmimeCapability("2.16.840.1.101.3.4.1.46"),)
    got = _build(rsa, b"\x01" * 32, caps=caps, signature_id=RSA_ID)
    assert got == _reference(rsa.cert, b"\x01" * 32, SIGNING_TIME, caps, None, RSA_ID)


def test_what_changes_per_message_is_never_reused(identities: dict[str, Identity]) -> None:
    p256 = identities["p256"]
    a = read_signed_attributes(cms.CMSAttributes.load(_build(p256, b"\xaa" * 32)))
    b = read_signed_attributes(
        cms.CMSAttributes.load(_build(p256, b"\xbb" * 32, SIGNING_TIME + dt.timedelta(hours=1)))
    )
    assert (a.message_digest, b.message_digest) == (b"\xaa" * 32, b"\xbb" * 32)
    assert b.signing_time == a.signing_time + dt.timedelta(hours=1)  # type: ignore[operator]


def test_certificates_with_the_same_issuer_and_serial_do_not_share_an_entry(
    ca: Identity, identities: dict[str, Identity]
) -> None:
    """The signingCertificateV2 cache is keyed by the whole DER: a second certificate with the issuer and
    serial number of the first (another key) gets its own hash."""
    first = identities["p256"].cert
    key = ec.generate_private_key(ec.SECP256R1())
    twin = (
        x509.CertificateBuilder()
        .subject_name(first.subject)
        .issuer_name(first.issuer)
        .public_key(key.public_key())
        .serial_number(first.serial_number)
        .not_valid_before(first.not_valid_before_utc)
        .not_valid_after(first.not_valid_after_utc)
        .sign(ca.key, hashes.SHA256())
    )
    for cert in (first, twin, first):
        attrs = read_signed_attributes(
            cms.CMSAttributes.load(_build(Identity(cert, key), b"\x00" * 32))  # the key is not used
        )
        assert attrs.signing_certificate_v2 is not None
        der = cert.public_bytes(serialization.Encoding.DER)
        assert attrs.signing_certificate_v2.cert_hash == hashlib.sha256(der).digest()


def test_caches_are_bounded(ca: Identity) -> None:
    clear_attribute_caches()
    for _ in range(ATTRIBUTE_CACHE_SIZE + 20):
        ident = make_ee("many@example.org", ca, key_kind="p256")
        _build(ident, b"\x00" * 32)
    info = _signing_certificate_v2_attribute.cache_info()
    assert info.maxsize == ATTRIBUTE_CACHE_SIZE and info.currsize == ATTRIBUTE_CACHE_SIZE


def test_naive_signing_time_is_refused(identities: dict[str, Identity]) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        _build(identities["p256"], b"\x00" * 32, when=dt.datetime(2026, 1, 1))


def test_signatures_made_with_warm_caches_verify(identities: dict[str, Identity], ca: Identity) -> None:
    for kind in ("p256", "rsa2048", "ed25519"):
        ident = identities[kind]
        for i in range(2):
            content = b"Content-Type: text/plain\r\n\r\nmessage %d\r\n" % i
            der = sign(content, [Signer(ident.cert, ident.key)], detached=False, signing_time=SIGNING_TIME)
            report = verify(der)
            assert report.content == content
            assert all(s.valid for s in report.signers), report
