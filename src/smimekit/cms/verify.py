"""CMS SignedData verification: intact (messageDigest matches) and valid (signature maths holds).

Trust is not decided here. The report carries the certificates of the message and each signer's
certificate, so that the PKI layer can build and validate paths (at the signing time and now).
Reads DER and BER (indefinite lengths, as ``openssl cms -stream`` writes).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import BinaryIO, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from smimekit.cms import _asn1
from smimekit.cms._parse import ParsedSignedData, ParsedSignerInfo, parse_signed_data, parse_signer_info
from smimekit.cms.algorithms import DigestAlgorithm, SignatureAlgorithm
from smimekit.cms.attributes import SmimeCapability
from smimekit.cms.certs import CertificateEntry, SignerIdentifier
from smimekit.cms.checks import check_signer
from smimekit.cms.signed import CHUNK_SIZE
from smimekit.errors import CmsFormatError, SignatureError, UsageError

_T = TypeVar("_T")

#: Countersignatures nested deeper than this are not followed.
MAX_COUNTERSIGNATURE_DEPTH = 4


@dataclass(frozen=True)
class SignerReport:
    """The verdict for one SignerInfo (or countersignature).

    ``intact``: the messageDigest attribute matches the content. ``valid``: the signature maths holds
    over the signed attributes exactly as received, with the signer's certificate, and every signed
    attribute check passed. ``reasons`` says why either is False, one sentence each. ``weak`` names weak
    algorithms or key sizes that were accepted (SHA-1, small RSA keys); ``legacy`` names legacy features
    (DSA). ``certificate`` is None when the certificate was not found or cryptography cannot read it
    (``certificate_der`` then still holds it when found). Trust is for the caller to decide.
    """

    signer_id: SignerIdentifier
    certificate: x509.Certificate | None
    certificate_der: bytes | None
    digest_algorithm: DigestAlgorithm | None
    signature_algorithm: SignatureAlgorithm | None
    signing_time: dt.datetime | None
    intact: bool
    valid: bool
    reasons: tuple[str, ...] = ()
    weak: tuple[str, ...] = ()
    legacy: tuple[str, ...] = ()
    signed_attribute_types: tuple[str, ...] = ()
    smime_capabilities: tuple[SmimeCapability, ...] = ()
    encryption_key_preference: SignerIdentifier | None = None
    countersignatures: tuple[SignerReport, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the signature is both intact and valid (trust not included)."""
        return self.intact and self.valid


@dataclass(frozen=True)
class SignedDataReport:
    """The result of verifying one SignedData; read ``ok`` or call ``require_ok()``.

    ``content`` is the encapsulated content (None when detached). ``certificates`` are the readable
    certificates the message carries (for path building); ``unreadable_certificates`` the DER of those
    cryptography cannot parse; ``crls`` the DER of the CRLs it carries.
    """

    content_type: str
    detached: bool
    content: bytes | None
    signers: tuple[SignerReport, ...]
    certificates: tuple[x509.Certificate, ...]
    unreadable_certificates: tuple[bytes, ...] = ()
    crls: tuple[bytes, ...] = ()

    @property
    def ok(self) -> bool:
        """True when there is at least one signer and every signer is intact and valid."""
        return bool(self.signers) and all(s.ok for s in self.signers)

    @property
    def weak(self) -> bool:
        """True when any signer relies on a weak algorithm or key."""
        return any(s.weak for s in self.signers)

    def require_ok(self) -> None:
        """Raise SignatureError with every reason unless ``ok``."""
        if not self.ok:
            reasons = tuple(r for s in self.signers for r in s.reasons) or ("the message has no signer",)
            raise SignatureError(reasons)


class SignedDataVerifier:
    """Push-style verifier: parse the SignedData, feed a detached content in pieces, then ``finish()``.

    Memory stays constant whatever the content size. Raises CmsFormatError for malformed input.
    """

    def __init__(self, signed_der: bytes, *, extra_certificates: Sequence[x509.Certificate] = ()) -> None:
        self._parsed = _boundary(lambda: parse_signed_data(signed_der))
        extra = tuple(CertificateEntry.from_certificate(c) for c in extra_certificates)
        self._candidates = (*self._parsed.certificates, *extra)
        wanted = {s.digest for s in self._parsed.signers if s.digest is not None}
        self._hashes = {d: hashes.Hash(d.hash()) for d in wanted}
        self._fed = False
        self._done = False

    @property
    def detached(self) -> bool:
        """True when the content is not inside the SignedData and must be fed with ``update()``."""
        return self._parsed.content is None

    def update(self, data: bytes) -> None:
        """Feed the next piece of the detached content."""
        if self._done:
            raise UsageError("update() after finish()")
        if not self.detached:
            raise UsageError("the SignedData carries its own content; do not feed content")
        self._fed = True
        for ctx in self._hashes.values():
            ctx.update(data)

    def finish(self, *, _content: bytes | None = None) -> SignedDataReport:
        """Finish digesting and return the report."""
        if self._done:
            raise UsageError("finish() called twice")
        self._done = True
        parsed = self._parsed
        content = parsed.content if parsed.content is not None else _content
        if parsed.content is not None:
            for ctx in self._hashes.values():
                ctx.update(parsed.content)
        elif parsed.signers and not self._fed and _content is None:
            raise UsageError("the content is detached: pass it to verify() or feed it with update()")
        digests = {d: ctx.finalize() for d, ctx in self._hashes.items()}
        signers = tuple(
            _boundary(lambda s=s: _verify(s, parsed, self._candidates, digests, content, depth=0))  # type: ignore[misc]
            for s in parsed.signers
        )
        return SignedDataReport(
            content_type=parsed.content_type,
            detached=parsed.content is None,
            content=parsed.content,
            signers=signers,
            certificates=tuple(c.certificate for c in parsed.certificates if c.certificate is not None),
            unreadable_certificates=tuple(c.der for c in parsed.certificates if c.certificate is None),
            crls=parsed.crls,
        )


def verify(
    signed_der: bytes,
    *,
    detached_content: bytes | BinaryIO | None = None,
    extra_certificates: Sequence[x509.Certificate] = (),
) -> SignedDataReport:
    """Verify every signer of a DER/BER ContentInfo holding SignedData.

    ``detached_content`` is required when the content is detached (a stream is read in chunks) and
    refused when the content is encapsulated. ``extra_certificates`` help find signer certificates that
    the message does not carry. Raises CmsFormatError for malformed input, UsageError for a content
    mismatch of the call; a bad signature is reported, not raised (see ``SignedDataReport.require_ok``).
    """
    verifier = SignedDataVerifier(signed_der, extra_certificates=extra_certificates)
    if detached_content is None:
        return verifier.finish()
    if not verifier.detached:
        raise UsageError("the SignedData carries its own content; detached_content must not be given")
    if isinstance(detached_content, bytes | bytearray | memoryview):
        whole = bytes(detached_content)
        verifier.update(whole)
        return verifier.finish(_content=whole)
    while chunk := detached_content.read(CHUNK_SIZE):
        verifier.update(chunk)
    verifier.update(b"")
    return verifier.finish()


def _verify(
    signer: ParsedSignerInfo,
    parsed: ParsedSignedData,
    candidates: Sequence[CertificateEntry],
    digests: dict[DigestAlgorithm, bytes],
    content: bytes | None,
    *,
    depth: int,
) -> SignerReport:
    result = check_signer(
        signer,
        candidates=candidates,
        content_digest=digests.get(signer.digest) if signer.digest else None,
        content=content,
        content_type=None if depth else parsed.content_type,
    )
    reasons, valid = result.reasons, result.valid
    if depth == 0 and signer.digest_oid not in parsed.digest_algorithms:
        # RFC 5652 §5.1 lists every signer's digest up front; OpenSSL refuses a message that does not.
        reasons += ("the signer's digest algorithm is missing from the SignedData digestAlgorithms",)
        valid = False
    counters: list[SignerReport] = []
    notes = list(result.notes)
    for counter_raw in signer.countersignatures:
        if depth + 1 >= MAX_COUNTERSIGNATURE_DEPTH:
            notes.append("countersignatures nested too deep were not checked")
            break
        try:
            counter = parse_signer_info(counter_raw)
        except CmsFormatError as exc:
            notes.append(f"a countersignature cannot be read: {exc.reason}")
            continue
        counter_digest = {counter.digest: _digest(counter.digest, signer.signature)} if counter.digest else {}
        counters.append(
            _verify(counter, parsed, candidates, counter_digest, signer.signature, depth=depth + 1)
        )
    return SignerReport(
        signer_id=signer.sid,
        certificate=result.entry.certificate if result.entry else None,
        certificate_der=result.entry.der if result.entry else None,
        digest_algorithm=signer.digest,
        signature_algorithm=result.algorithm,
        signing_time=result.attributes.signing_time if result.attributes else None,
        intact=result.intact,
        valid=valid,
        reasons=reasons,
        weak=result.weak,
        legacy=result.legacy,
        signed_attribute_types=result.attributes.types if result.attributes else (),
        smime_capabilities=result.attributes.smime_capabilities if result.attributes else (),
        encryption_key_preference=result.attributes.encryption_key_preference if result.attributes else None,
        countersignatures=tuple(counters),
        notes=tuple(notes),
    )


def _digest(algorithm: DigestAlgorithm, data: bytes) -> bytes:
    ctx = hashes.Hash(algorithm.hash())
    ctx.update(data)
    return ctx.finalize()


def _boundary(fn: Callable[[], _T]) -> _T:
    """Anything asn1crypto or cryptography raise on hostile input becomes CmsFormatError here."""
    return _asn1.guarded("malformed SignedData", fn)
