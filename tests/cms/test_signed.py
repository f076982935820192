"""SignedData: round trips for every algorithm, signed attributes, streaming, tampering, hostile input."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smimekit.cms import (
    DEFAULT_SMIME_CAPABILITIES,
    DigestAlgorithm,
    SignatureScheme,
    SignedDataVerifier,
    Signer,
    SignerIdentifierType,
    sign,
    verify,
)
from smimekit.cms.signed import CHUNK_SIZE
from smimekit.errors import (
    CmsFormatError,
    SignatureError,
    SmimekitError,
    UnsupportedAlgorithmError,
    UsageError,
)
from tests.cms.conftest import SIGNING_TIME
from tests.testpki import Identity, make_ee

CONTENT = b"Content-Type: text/plain\r\n\r\nThe eagle has landed.\r\n"
SHA2 = (DigestAlgorithm.SHA256, DigestAlgorithm.SHA384, DigestAlgorithm.SHA512)

# (key kind, scheme, digest): every signature algorithm with every digest it allows.
ALGORITHMS = [
    *[("rsa2048", SignatureScheme.RSA_PKCS1V15, d) for d in SHA2],
    *[("rsa2048", SignatureScheme.RSA_PSS, d) for d in SHA2],
    *[(curve, SignatureScheme.ECDSA, d) for curve in ("p256", "p384", "p521") for d in SHA2],
    ("ed25519", SignatureScheme.ED25519, DigestAlgorithm.SHA512),
]


def _id(param: Any) -> str:
    return param.name if hasattr(param, "name") else str(param)


def _signer(ident: Identity, **kw: Any) -> Signer:
    return Signer(ident.cert, ident.key, extra_certificates=ident.chain, **kw)


@pytest.mark.parametrize("detached", [False, True], ids=["encapsulated", "detached"])
@pytest.mark.parametrize(("kind", "scheme", "digest"), ALGORITHMS, ids=_id)
def test_round_trip_every_algorithm(
    identities: dict[str, Identity],
    kind: str,
    scheme: SignatureScheme,
    digest: DigestAlgorithm,
    detached: bool,
) -> None:
    ident = identities[kind]
    der = sign(
        CONTENT, [_signer(ident, scheme=scheme, digest=digest)], detached=detached, signing_time=SIGNING_TIME
    )
    report = verify(der, detached_content=CONTENT if detached else None)
    assert report.ok, report.signers[0].reasons
    (signer,) = report.signers
    assert signer.certificate == ident.cert
    assert signer.digest_algorithm is digest
    assert signer.signature_algorithm is not None
    assert signer.signature_algorithm.scheme is scheme
    assert signer.signing_time == SIGNING_TIME
    assert signer.weak == () and signer.legacy == () and signer.reasons == ()
    assert report.detached is detached
    assert report.content == (None if detached else CONTENT)
    assert ident.cert in report.certificates


@pytest.mark.parametrize("detached", [False, True], ids=["encapsulated", "detached"])
def test_several_signers(identities: dict[str, Identity], detached: bool) -> None:
    signers = [
        _signer(identities["rsa2048"]),
        _signer(identities["rsa2048"], scheme=SignatureScheme.RSA_PSS, digest=DigestAlgorithm.SHA512),
        _signer(identities["p256"]),
        _signer(identities["p384"], digest=DigestAlgorithm.SHA384),
        _signer(identities["p521"], digest=DigestAlgorithm.SHA512),
        _signer(identities["ed25519"]),
    ]
    der = sign(CONTENT, signers, detached=detached, signing_time=SIGNING_TIME)
    report = verify(der, detached_content=CONTENT if detached else None)
    assert report.ok
    assert len(report.signers) == 6
    labels = sorted(s.signature_algorithm.label for s in report.signers if s.signature_algorithm)
    assert labels == sorted(
        [
            "RSA PKCS#1 v1.5 with SHA-256",
            "RSA-PSS with SHA-512",
            "ECDSA with SHA-256",
            "ECDSA with SHA-384",
            "ECDSA with SHA-512",
            "Ed25519",
        ]
    )
    # One damaged content breaks every signer's digest, none of their signatures.
    damaged = verify(der, detached_content=CONTENT + b"x") if detached else None
    if damaged is not None:
        assert not any(s.intact for s in damaged.signers)
        assert all(s.valid for s in damaged.signers)


def test_signed_attributes_are_written_and_read(identities: dict[str, Identity]) -> None:
    enc = identities["rsa2048-enc"]
    der = sign(
        CONTENT,
        [_signer(identities["rsa2048"], encryption_certificate=enc.cert)],
        detached=True,
        signing_time=SIGNING_TIME,
    )
    (signer,) = verify(der, detached_content=CONTENT).signers
    assert signer.ok
    assert set(signer.signed_attribute_types) == {
        "1.2.840.113549.1.9.3",  # contentType
        "1.2.840.113549.1.9.4",  # messageDigest
        "1.2.840.113549.1.9.5",  # signingTime
        "1.2.840.113549.1.9.15",  # SMIMECapabilities
        "1.2.840.113549.1.9.16.2.11",  # SMIMEEncryptionKeyPreference
        "1.2.840.113549.1.9.16.2.47",  # signingCertificateV2
        "1.2.840.113549.1.9.52",  # CMSAlgorithmProtection
    }
    assert signer.smime_capabilities == DEFAULT_SMIME_CAPABILITIES
    pref = signer.encryption_key_preference
    assert pref is not None and pref.serial_number == enc.cert.serial_number
    assert enc.cert in verify(der, detached_content=CONTENT).certificates


def test_optional_attributes_can_be_left_out(identities: dict[str, Identity]) -> None:
    der = sign(CONTENT, [_signer(identities["p256"])], detached=False, capabilities=())
    (signer,) = verify(der).signers
    assert signer.ok
    assert signer.signing_time is None
    assert "1.2.840.113549.1.9.15" not in signer.signed_attribute_types


def test_signing_time_after_2049_is_generalized_time(identities: dict[str, Identity]) -> None:
    when = dt.datetime(2051, 6, 1, 12, 0, 0, tzinfo=dt.UTC)
    der = sign(CONTENT, [_signer(identities["p256"])], detached=False, signing_time=when)
    assert b"20510601120000Z" in der
    assert verify(der).signers[0].signing_time == when


def test_subject_key_identifier_and_nondata_content_type(identities: dict[str, Identity]) -> None:
    ident = identities["p256"]
    signer = _signer(ident, identifier=SignerIdentifierType.SUBJECT_KEY_IDENTIFIER)
    der = sign(CONTENT, [signer], detached=False, content_type="1.2.840.113549.1.9.16.1.4")
    report = verify(der)
    assert report.ok
    assert report.content_type == "1.2.840.113549.1.9.16.1.4"
    ski = ident.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert report.signers[0].signer_id.subject_key_identifier == ski


def test_signer_certificate_found_in_extra_certificates(identities: dict[str, Identity]) -> None:
    ident = identities["p256"]
    der = sign(CONTENT, [_signer(ident)], detached=False, include_signer_certificates=False)
    alone = verify(der)
    assert not alone.ok and alone.certificates == ()
    assert "is in neither the message nor the extra certificates" in alone.signers[0].reasons[0]
    assert verify(der, extra_certificates=[ident.cert]).ok


# ------------------------------------------------------------------------------------------ streams


class _Chunked(io.BytesIO):
    """A stream that remembers the largest read it was asked for (by read() or readinto())."""

    largest = 0

    def read(self, size: int | None = -1) -> bytes:
        assert size is not None and 0 < size <= CHUNK_SIZE, "the stream must be read in bounded chunks"
        self.largest = max(self.largest, size)
        return super().read(size)

    def readinto(self, buffer: Any) -> int:
        size = len(memoryview(buffer))
        assert 0 < size <= CHUNK_SIZE, "the stream must be read in bounded chunks"
        self.largest = max(self.largest, size)
        return super().readinto(buffer)


def test_detached_streams_are_read_in_chunks(identities: dict[str, Identity]) -> None:
    big = bytes(range(256)) * (3 * CHUNK_SIZE // 256) + b"tail"
    signers = [_signer(identities["rsa2048"]), _signer(identities["ed25519"])]
    source = _Chunked(big)
    der = sign(source, signers, detached=True)
    assert source.largest == CHUNK_SIZE
    assert len(der) < 10_000
    check = _Chunked(big)
    assert verify(der, detached_content=check).ok
    assert check.largest == CHUNK_SIZE
    assert not verify(der, detached_content=io.BytesIO(big[:-1])).ok


def test_push_verifier_gives_the_same_verdict_whatever_the_pieces(identities: dict[str, Identity]) -> None:
    der = sign(CONTENT, [_signer(identities["p384"])], detached=True)
    for size in (1, 7, len(CONTENT)):
        verifier = SignedDataVerifier(der)
        assert verifier.detached
        for i in range(0, len(CONTENT), size):
            verifier.update(CONTENT[i : i + size])
        assert verifier.finish().ok
    verifier = SignedDataVerifier(der)
    verifier.update(b"")
    assert not verifier.finish().ok
    with pytest.raises(UsageError):
        verifier.finish()


def test_encapsulated_stream_is_signed(identities: dict[str, Identity]) -> None:
    der = sign(io.BytesIO(CONTENT), [_signer(identities["p256"])], detached=False)
    assert verify(der).content == CONTENT


# ------------------------------------------------------------------------------------ bad requests


def test_signer_rejects_what_cannot_work(identities: dict[str, Identity], ca: Identity) -> None:
    rsa, p256, ed = identities["rsa2048"], identities["p256"], identities["ed25519"]
    with pytest.raises(UsageError, match="does not belong"):
        Signer(rsa.cert, p256.key)
    with pytest.raises(UnsupportedAlgorithmError, match="not allowed for signing"):
        Signer(rsa.cert, rsa.key, digest=DigestAlgorithm.SHA1)
    with pytest.raises(UnsupportedAlgorithmError, match="SHA-512"):
        Signer(ed.cert, ed.key, digest=DigestAlgorithm.SHA256)
    with pytest.raises(UsageError):
        Signer(p256.cert, p256.key, scheme=SignatureScheme.RSA_PSS)
    small = make_ee("small@example.org", ca, key_kind="rsa1024")
    with pytest.raises(UsageError, match="at least 2048"):
        Signer(small.cert, small.key)
    with pytest.raises(UsageError):
        sign(CONTENT, [], detached=True)
    with pytest.raises(UsageError, match="timezone"):
        sign(CONTENT, [Signer(p256.cert, p256.key)], detached=True, signing_time=dt.datetime(2026, 1, 1))


def test_verify_refuses_a_content_mismatch_of_the_call(identities: dict[str, Identity]) -> None:
    signer = _signer(identities["p256"])
    with pytest.raises(UsageError, match="detached"):
        verify(sign(CONTENT, [signer], detached=True))
    with pytest.raises(UsageError, match="own content"):
        verify(sign(CONTENT, [signer], detached=False), detached_content=CONTENT)


def test_require_ok_raises_with_the_reasons(identities: dict[str, Identity]) -> None:
    der = sign(CONTENT, [_signer(identities["p256"])], detached=True)
    verify(der, detached_content=CONTENT).require_ok()
    with pytest.raises(SignatureError, match="messageDigest") as info:
        verify(der, detached_content=b"other").require_ok()
    assert info.value.reasons


# ---------------------------------------------------------------------------------------- tampering


@pytest.fixture(scope="module")
def signed(identities: dict[str, Identity]) -> bytes:
    return sign(CONTENT, [_signer(identities["rsa2048"])], detached=False, signing_time=SIGNING_TIME)


def _flip(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1 :]


def test_flipped_content_byte_is_not_intact(signed: bytes) -> None:
    report = verify(_flip(signed, signed.index(b"eagle")))
    (signer,) = report.signers
    assert not signer.intact and signer.valid
    assert "altered" in signer.reasons[0]


def test_flipped_signed_attribute_byte_is_not_valid(signed: bytes) -> None:
    report = verify(_flip(signed, signed.index(b"260102030405Z")))
    (signer,) = report.signers
    assert signer.intact and not signer.valid
    assert any("signature does not verify over the signed attributes" in r for r in signer.reasons)


def test_flipped_signature_byte_is_not_valid(signed: bytes) -> None:
    report = verify(_flip(signed, len(signed) - 5))
    (signer,) = report.signers
    assert signer.intact and not signer.valid


def test_wrong_detached_content(identities: dict[str, Identity]) -> None:
    der = sign(CONTENT, [_signer(identities["ed25519"])], detached=True)
    (signer,) = verify(der, detached_content=CONTENT.replace(b"eagle", b"Eagle")).signers
    assert not signer.intact and signer.valid and not signer.ok


def test_swapped_signature_algorithm_is_caught_by_algorithm_protection(signed: bytes) -> None:
    # rsaEncryption -> sha256WithRSAEncryption in the (unsigned) signatureAlgorithm field: the PKCS#1 v1.5
    # maths still holds, only CMSAlgorithmProtection (RFC 6211) notices.
    rsa_encryption = bytes.fromhex("2a864886f70d010101")
    at = signed.rindex(rsa_encryption)
    swapped = signed[:at] + bytes.fromhex("2a864886f70d01010b") + signed[at + 9 :]
    (signer,) = verify(swapped).signers
    assert signer.intact and not signer.valid
    assert any("CMSAlgorithmProtection" in r for r in signer.reasons)


def test_reissued_certificate_is_caught_by_signing_certificate_v2(
    identities: dict[str, Identity], ca: Identity
) -> None:
    ident = identities["p256"]
    twin = (
        x509.CertificateBuilder()
        .subject_name(ident.cert.subject)
        .issuer_name(ident.cert.issuer)
        .public_key(ident.key.public_key())
        .serial_number(ident.cert.serial_number)
        .not_valid_before(ident.cert.not_valid_before_utc)
        .not_valid_after(ident.cert.not_valid_after_utc + dt.timedelta(days=1))
        .sign(ca.key, hashes.SHA256())
    )
    der = sign(
        CONTENT, [_signer(ident)], detached=False, include_signer_certificates=False, certificates=[twin]
    )
    (signer,) = verify(der).signers
    assert signer.intact and not signer.valid
    assert any("signingCertificateV2" in r for r in signer.reasons)


def test_every_truncation_is_a_typed_error(signed: bytes) -> None:
    for cut in range(len(signed)):
        with pytest.raises(CmsFormatError):
            verify(signed[:cut])


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"-----BEGIN PKCS7-----\nMIIB\n-----END PKCS7-----\n", "PEM"),
        (bytes.fromhex("3011 06092a864886f70d010701 a004 04026869".replace(" ", "")), "not signed-data"),
        (b"\x30\x80" * 5000, None),
        (b"garbage" * 10, None),
    ],
    ids=["empty", "pem", "data", "deep-indefinite", "garbage"],
)
def test_not_signed_data_is_a_typed_error(data: bytes, reason: str | None) -> None:
    with pytest.raises(CmsFormatError, match=reason):
        verify(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=600))
def test_fuzzed_bytes_raise_only_typed_errors(data: bytes) -> None:
    with contextlib.suppress(SmimekitError):
        verify(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_mutated_messages_raise_only_typed_errors(signed: bytes, data: st.DataObject) -> None:
    mutated = bytearray(signed)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(mutated) - 1))
        mutated[at] = data.draw(st.integers(0, 255))
    try:
        report = verify(bytes(mutated))
    except SmimekitError:
        return
    assert all(isinstance(r, str) for s in report.signers for r in s.reasons)
