"""CMS SignedData creation (RFC 5652 §5) with the S/MIME signed attributes of RFC 8551, 5035 and 6211.

Pure: no I/O except reading the content stream handed in and writing to the stream given to
:func:`sign_to`, no clock (the signing time is a parameter). Content is read in 1 MiB chunks.
"""

from __future__ import annotations

import datetime as dt
import enum
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from smimekit.cms import _asn1, _der
from smimekit.cms.algorithms import (
    MIN_RSA_SIGNING_BITS,
    DigestAlgorithm,
    SignatureAlgorithm,
    SignatureScheme,
    SigningKey,
    curve_of,
    scheme_for_key,
    signing_algorithm,
)
from smimekit.cms.attributes import (
    DEFAULT_SMIME_CAPABILITIES,
    OID_DATA,
    SmimeCapability,
    build_signed_attributes,
)
from smimekit.cms.certs import subject_key_identifier
from smimekit.errors import SignatureError, UsageError

#: Streams are read in pieces of this size, so memory does not grow with the content.
CHUNK_SIZE = 1 << 20

OID_SIGNED_DATA = "1.2.840.113549.1.7.2"


class SignerIdentifierType(enum.Enum):
    """How a SignerInfo names its certificate (RFC 5652 §5.3)."""

    ISSUER_AND_SERIAL_NUMBER = "issuerAndSerialNumber"
    SUBJECT_KEY_IDENTIFIER = "subjectKeyIdentifier"


@dataclass(frozen=True)
class Signer:
    """One signer: certificate, private key and how to sign.

    ``digest`` defaults to SHA-256 (SHA-512 for Ed25519, as RFC 8419 requires); ``scheme`` defaults to the
    key's natural scheme (RSA PKCS#1 v1.5 for RSA; pass ``SignatureScheme.RSA_PSS`` for RSA-PSS).
    ``extra_certificates`` (e.g. intermediates) go into the certificate set; ``encryption_certificate``
    is announced with SMIMEEncryptionKeyPreference and included too.

    Raises UsageError when the key does not belong to the certificate or does not fit the scheme, and
    UnsupportedAlgorithmError for digests, curves or key sizes outside the allow-list.
    """

    certificate: x509.Certificate
    private_key: SigningKey
    digest: DigestAlgorithm | None = None
    scheme: SignatureScheme | None = None
    extra_certificates: tuple[x509.Certificate, ...] = ()
    encryption_certificate: x509.Certificate | None = None
    identifier: SignerIdentifierType = SignerIdentifierType.ISSUER_AND_SERIAL_NUMBER

    def __post_init__(self) -> None:
        if not isinstance(self.certificate, x509.Certificate):
            raise UsageError("Signer.certificate must be a cryptography x509.Certificate")
        key = self.private_key
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
            raise UsageError(f"cannot sign with a key of type {type(key).__name__}")
        if _spki(key.public_key()) != _spki(self.certificate.public_key()):
            raise UsageError("the private key does not belong to the signer's certificate")
        if isinstance(key, rsa.RSAPrivateKey) and key.key_size < MIN_RSA_SIGNING_BITS:
            raise UsageError(
                f"RSA keys for signing need at least {MIN_RSA_SIGNING_BITS} bits, not {key.key_size}"
            )
        if isinstance(key, ec.EllipticCurvePrivateKey):
            curve_of(key)
        natural = scheme_for_key(key)
        if self.scheme is not None and self.scheme is not natural:
            rsa_pss = natural is SignatureScheme.RSA_PKCS1V15 and self.scheme is SignatureScheme.RSA_PSS
            if not rsa_pss:
                raise UsageError(f"a {natural.value} key cannot sign with {self.scheme.value}")
        object.__setattr__(self, "extra_certificates", tuple(self.extra_certificates))
        self.signature_algorithm  # noqa: B018  (validates the digest now rather than at signing time)

    @property
    def signature_algorithm(self) -> SignatureAlgorithm:
        """The resolved algorithm; raises UnsupportedAlgorithmError for a digest not allowed for signing."""
        scheme = self.scheme or scheme_for_key(self.private_key)
        default = DigestAlgorithm.SHA512 if scheme is SignatureScheme.ED25519 else DigestAlgorithm.SHA256
        return signing_algorithm(scheme, self.digest or default)


def digest_content(
    content: bytes | BinaryIO, digests: Iterable[DigestAlgorithm]
) -> dict[DigestAlgorithm, bytes]:
    """Digest ``content`` with each algorithm in one pass; a stream is read in CHUNK_SIZE pieces."""
    contexts = {d: hashes.Hash(d.hash()) for d in set(digests)}
    if isinstance(content, bytes | bytearray | memoryview):
        for ctx in contexts.values():
            ctx.update(bytes(content))
    elif hasattr(content, "readinto"):
        # one buffer read into again and again: a fresh 1 MiB object per read costs page faults
        buf = bytearray(CHUNK_SIZE)
        view = memoryview(buf)
        while n := content.readinto(buf):
            for ctx in contexts.values():
                ctx.update(view[:n])
    else:
        while chunk := content.read(CHUNK_SIZE):
            for ctx in contexts.values():
                ctx.update(chunk)
    return {d: ctx.finalize() for d, ctx in contexts.items()}


def sign(
    content: bytes | BinaryIO,
    signers: Sequence[Signer],
    *,
    detached: bool,
    content_type: str = OID_DATA,
    certificates: Sequence[x509.Certificate] = (),
    crls: Sequence[x509.CertificateRevocationList] = (),
    include_signer_certificates: bool = True,
    signing_time: dt.datetime | None = None,
    capabilities: Sequence[SmimeCapability] = DEFAULT_SMIME_CAPABILITIES,
) -> bytes:
    """Sign ``content`` and return a DER ContentInfo holding SignedData.

    Every signer gets the signed attributes contentType, messageDigest, CMSAlgorithmProtection,
    signingCertificateV2 and, when given, signingTime, SMIMECapabilities and SMIMEEncryptionKeyPreference.
    With ``detached=True`` a stream is digested in chunks and never held in memory; an encapsulated
    stream is read whole (it becomes part of the returned bytes; :func:`sign_to` streams it instead).
    ``content_type`` is the eContentType OID.

    Raises UsageError for no signers or a naive ``signing_time``, UnsupportedAlgorithmError for
    algorithms outside the allow-list.
    """
    if not detached and not isinstance(content, bytes | bytearray | memoryview):
        content = _read_all(content)
    out = io.BytesIO()
    sign_to(
        out,
        content,
        signers,
        detached=detached,
        content_type=content_type,
        certificates=certificates,
        crls=crls,
        include_signer_certificates=include_signer_certificates,
        signing_time=signing_time,
        capabilities=capabilities,
    )
    return out.getvalue()


def sign_to(
    out: BinaryIO,
    content: bytes | BinaryIO,
    signers: Sequence[Signer],
    *,
    detached: bool,
    content_type: str = OID_DATA,
    certificates: Sequence[x509.Certificate] = (),
    crls: Sequence[x509.CertificateRevocationList] = (),
    include_signer_certificates: bool = True,
    signing_time: dt.datetime | None = None,
    capabilities: Sequence[SmimeCapability] = DEFAULT_SMIME_CAPABILITIES,
) -> int:
    """Like :func:`sign` but writes the ContentInfo to ``out``; returns the number of bytes written.

    The content is read once, in 1 MiB chunks. Detached, or encapsulated from bytes, the output is DER.
    An encapsulated stream is written as it is read and digested — exactly the bytes written are the bytes
    digested — as BER with indefinite lengths, its eContent a constructed OCTET STRING of 1 MiB pieces (as
    ``openssl cms -stream`` writes), so that memory does not grow with the content. Raises as :func:`sign`.
    """
    if not signers:
        raise UsageError("sign() needs at least one signer")
    if signing_time is not None and signing_time.tzinfo is None:
        raise UsageError("signing_time must be a timezone-aware datetime")
    for signer in signers:
        if not isinstance(signer, Signer):
            raise UsageError("signers must be Signer instances")
    algorithms = [s.signature_algorithm for s in signers]
    uses_ski = any(s.identifier is SignerIdentifierType.SUBJECT_KEY_IDENTIFIER for s in signers)
    version = 3 if uses_ski or content_type != OID_DATA else 1
    head = _der.integer(version) + _asn1.set_of_der([d.identifier_der() for d in _unique_digests(algorithms)])
    encap_oid = _der.oid(content_type)
    info_oid = _der.oid(OID_SIGNED_DATA)

    def tail(digests: dict[DigestAlgorithm, bytes]) -> bytes:
        signer_infos = [
            _signer_info(s, a, digests[a.digest], content_type, signing_time, capabilities)
            for s, a in zip(signers, algorithms, strict=True)
        ]
        cert_ders = _certificates(signers, certificates, include_signer_certificates)
        der = b""
        if cert_ders:
            der += _asn1.set_of_der(cert_ders, tag=0xA0)
        if crls:
            der += _asn1.set_of_der([c.public_bytes(serialization.Encoding.DER) for c in crls], tag=0xA1)
        return der + _asn1.set_of_der(signer_infos)

    if detached or isinstance(content, bytes | bytearray | memoryview):
        # SignedData is assembled by hand: asn1crypto would re-interpret (and re-type) the eContent of a
        # non-data type, and its version-dependent specs get in the way of building.
        digests = digest_content(content, (a.digest for a in algorithms))
        if isinstance(content, bytes | bytearray | memoryview) and not detached:
            encap = _der.seq(encap_oid, _der.explicit(0, _der.octets(bytes(content))))
        else:
            encap = _der.seq(encap_oid)
        data = _der.seq(info_oid, _der.explicit(0, _der.seq(head, encap, tail(digests))))
        out.write(data)
        return len(data)

    prefix = b"".join(
        [
            _der.header(0x30, None),  # ContentInfo
            info_oid,
            _der.header(0xA0, None),  # [0] EXPLICIT
            _der.header(0x30, None),  # SignedData
            head,
            _der.header(0x30, None),  # EncapsulatedContentInfo
            encap_oid,
            _der.header(0xA0, None),  # [0] EXPLICIT eContent
            _der.header(0x24, None),  # OCTET STRING, constructed
        ]
    )
    out.write(prefix)
    written = len(prefix)
    contexts = {d: hashes.Hash(d.hash()) for d in set(a.digest for a in algorithms)}
    while chunk := content.read(CHUNK_SIZE):
        for ctx in contexts.values():
            ctx.update(chunk)
        piece = _der.header(0x04, len(chunk))
        out.write(piece)
        out.write(chunk)
        written += len(piece) + len(chunk)
    rest = _der.EOC * 3 + tail({d: ctx.finalize() for d, ctx in contexts.items()}) + _der.EOC * 3
    out.write(rest)
    return written + len(rest)


def _certificates(
    signers: Sequence[Signer], certificates: Sequence[x509.Certificate], include_signer_certificates: bool
) -> list[bytes]:
    return _unique(
        [
            *(
                c.public_bytes(serialization.Encoding.DER)
                for s in signers
                if include_signer_certificates
                for c in (
                    s.certificate,
                    *s.extra_certificates,
                    *((s.encryption_certificate,) if s.encryption_certificate else ()),
                )
            ),
            *(c.public_bytes(serialization.Encoding.DER) for c in certificates),
        ]
    )


def _signer_info(
    signer: Signer,
    algorithm: SignatureAlgorithm,
    message_digest: bytes,
    content_type: str,
    signing_time: dt.datetime | None,
    capabilities: Sequence[SmimeCapability],
) -> bytes:
    digest_der = algorithm.digest.identifier_der()
    signature_der = algorithm.identifier_der()
    to_sign = build_signed_attributes(
        content_type=content_type,
        message_digest=message_digest,
        signer_certificate=signer.certificate,
        digest_algorithm=digest_der,
        signature_algorithm=signature_der,
        signing_time=signing_time,
        capabilities=capabilities,
        encryption_certificate=signer.encryption_certificate,
    )
    signature = algorithm.sign(signer.private_key, to_sign)
    _check_own_signature(signer, algorithm, signature, to_sign)
    cert = signer.certificate
    if signer.identifier is SignerIdentifierType.SUBJECT_KEY_IDENTIFIER:
        sid = _asn1.cms.SignerIdentifier({"subject_key_identifier": subject_key_identifier(cert)})
        version = "v3"
    else:
        sid = _asn1.cms.SignerIdentifier(
            {
                "issuer_and_serial_number": _asn1.issuer_and_serial(
                    cert.issuer.public_bytes(), cert.serial_number
                )
            }
        )
        version = "v1"
    info = _asn1.cms.SignerInfo(
        {
            "version": version,
            "sid": sid,
            "digest_algorithm": _asn1.algos.DigestAlgorithm.load(digest_der),
            "signed_attrs": _asn1.cms.CMSAttributes.load(to_sign),
            "signature_algorithm": _asn1.algos.SignedDigestAlgorithm.load(signature_der),
            "signature": signature,
        }
    )
    der = _asn1.dump(info)
    # Self-check: the attributes we emit must be exactly the bytes we signed.
    emitted = _asn1.cms.SignerInfo.load(der)["signed_attrs"]
    if _asn1.signed_attrs_to_sign(_asn1.contents(emitted)) != to_sign:
        raise AssertionError("signed attributes were re-encoded after signing")
    return der


def _check_own_signature(
    signer: Signer, algorithm: SignatureAlgorithm, signature: bytes, to_sign: bytes
) -> None:
    """Verify a signature just made with the certificate's public key before it leaves; raises
    SignatureError when it does not verify.

    This is the usual countermeasure against fault attacks on RSA-CRT signing (a signature computed with
    a faulty key or a glitched CRT half leaks the factorization of the modulus): RFC 5652 implementations
    such as OpenSSL's check each RSA-CRT result the same way. It is also what makes it safe for key
    loaders to skip cryptography's full RSA key validation (``unsafe_skip_rsa_key_validation``, 0.1-0.2 s
    for RSA-3072, as much as signing 100 MB) for our own signing keys: a key whose parts do not fit
    together cannot produce a signature that verifies with the certificate's key, and ``Signer`` has
    already checked that the key belongs to the certificate. A public-key operation costs ~0.1 ms.
    """
    try:
        algorithm.verify(signer.certificate.public_key(), signature, to_sign)  # type: ignore[arg-type]
    except InvalidSignature:
        raise SignatureError(
            (
                "the signature just made does not verify with the signer's certificate: the private key is faulty",
            )
        ) from None


def _read_all(stream: BinaryIO) -> bytes:
    parts = []
    while chunk := stream.read(CHUNK_SIZE):
        parts.append(chunk)
    return b"".join(parts)


def _unique(items: Iterable[bytes]) -> list[bytes]:
    return list(dict.fromkeys(items))


def _unique_digests(algorithms: Iterable[SignatureAlgorithm]) -> list[DigestAlgorithm]:
    return list(dict.fromkeys(a.digest for a in algorithms))


def _spki(key: object) -> bytes:
    public_bytes = getattr(key, "public_bytes", None)
    if public_bytes is None:
        return b""
    return bytes(public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))
