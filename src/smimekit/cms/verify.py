"""CMS SignedData verification: intact (messageDigest matches) and valid (signature maths holds).

Trust is not decided here. The report carries the certificates of the message and each signer's
certificate, so that the PKI layer can build and validate paths (at the signing time and now).
Reads DER and BER (indefinite lengths, as ``openssl cms -stream`` writes), from bytes or a stream; the
encapsulated content is digested in chunks and never needs to be held in memory.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from smimekit.cms import _asn1, _der
from smimekit.cms._parse import ParsedSignedData, ParsedSignerInfo, SignedDataReader, parse_signer_info
from smimekit.cms.algorithms import DigestAlgorithm, SignatureAlgorithm
from smimekit.cms.attributes import SmimeCapability
from smimekit.cms.certs import CertificateEntry, SignerIdentifier
from smimekit.cms.checks import check_signer
from smimekit.cms.signed import CHUNK_SIZE
from smimekit.errors import CmsFormatError, SignatureError, UnsupportedAlgorithmError, UsageError

_T = TypeVar("_T")

#: Encapsulated content read from a stream is kept in memory up to this size, beyond in a private file.
IN_MEMORY_LIMIT = 8 << 20

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

    ``content`` is the encapsulated content when it is held in memory (None when detached, or when it was
    read from a stream and is larger than the verifier's ``in_memory_limit``); ``content_file`` is then a
    private temporary file (mode 0600, already unlinked) holding it, if the verifier was asked to keep it;
    ``content_size`` is its length (None when detached). :meth:`open_content` reads it either way.
    ``certificates`` are the readable certificates the message carries (for path building);
    ``unreadable_certificates`` the DER of those cryptography cannot parse; ``crls`` the DER of the CRLs.
    """

    content_type: str
    detached: bool
    content: bytes | None
    signers: tuple[SignerReport, ...]
    certificates: tuple[x509.Certificate, ...]
    unreadable_certificates: tuple[bytes, ...] = ()
    crls: tuple[bytes, ...] = ()
    content_file: BinaryIO | None = field(default=None, repr=False, compare=False)
    content_size: int | None = None

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

    def open_content(self) -> BinaryIO:
        """A binary stream over the encapsulated content, at its start.

        Raises UsageError when the content is detached or was not kept (``keep_content=False``)."""
        if self.content is not None:
            return io.BytesIO(self.content)
        if self.content_file is None:
            what = "detached" if self.detached else "not kept (keep_content=False)"
            raise UsageError(f"the encapsulated content is {what}")
        self.content_file.seek(0)
        return self.content_file


class SignedDataVerifier:
    """Push-style verifier: parse the SignedData, feed a detached content in pieces, then ``finish()``.

    ``SignedDataVerifier(der)`` takes the SignedData as bytes; :meth:`from_stream` reads it from a binary
    stream. Either way the encapsulated content (if any) is digested in chunks while the structure is read,
    and only the certificates, CRLs and SignerInfos are held. Raises CmsFormatError for malformed input.
    """

    def __init__(self, signed_der: bytes, *, extra_certificates: Sequence[x509.Certificate] = ()) -> None:
        if not isinstance(signed_der, bytes | bytearray | memoryview):
            raise UsageError("signed data must be given as bytes (or use SignedDataVerifier.from_stream)")
        # the input is in memory already: so may its content be, whatever its size
        self._read(io.BytesIO(bytes(signed_der)), extra_certificates, keep=True, limit=len(signed_der))

    @classmethod
    def from_stream(
        cls,
        stream: BinaryIO,
        *,
        extra_certificates: Sequence[x509.Certificate] = (),
        keep_content: bool = True,
        in_memory_limit: int = IN_MEMORY_LIMIT,
    ) -> SignedDataVerifier:
        """Read a DER/BER SignedData from ``stream`` (read from its current position to its end).

        The eContent is digested in 1 MiB chunks. With ``keep_content`` it is kept for the report: in
        memory up to ``in_memory_limit`` bytes, beyond in a private temporary file (mode 0600, unlinked).
        A stream that cannot seek is first copied to such a file. Memory does not grow with the content.
        """
        verifier = cls.__new__(cls)
        source = _der.seekable(stream)
        try:
            verifier._read(source, extra_certificates, keep=keep_content, limit=in_memory_limit)
        finally:
            if source is not stream:
                source.close()  # the private copy of a stream that cannot seek
        return verifier

    def _read(self, stream: BinaryIO, extra: Sequence[x509.Certificate], *, keep: bool, limit: int) -> None:
        reader = _boundary(lambda: SignedDataReader(stream))
        _boundary(reader.head)
        announced = {_digest_or_none(oid) for oid in reader.digest_algorithms} - {None}
        contexts = {d: hashes.Hash(d.hash()) for d in announced if d is not None}
        spool = _der.Spool(limit) if keep and reader.encapsulated else None
        try:
            size = _hash_into(reader, contexts, spool)
            self._parsed = _boundary(reader.finish)
            wanted = {s.digest for s in self._parsed.signers if s.digest is not None}
            if missing := wanted - contexts.keys():
                # a signer whose digest the SignedData does not announce (it is reported as invalid)
                more = {d: hashes.Hash(d.hash()) for d in missing}
                _hash_into(reader, more, None)
                contexts.update(more)
        except BaseException:
            if spool is not None:
                spool.discard()
            raise
        kept = spool.result() if spool is not None else None
        self._content: bytes | None = kept if isinstance(kept, bytes) else None
        self._content_file: BinaryIO | None = None if isinstance(kept, bytes) else kept
        self._content_size = size if reader.encapsulated else None
        self._encapsulated = reader.encapsulated
        self._candidates = (
            *self._parsed.certificates,
            *(CertificateEntry.from_certificate(c) for c in extra),
        )
        self._hashes = {d: contexts[d] for d in wanted}
        self._fed = False
        self._done = False

    @property
    def detached(self) -> bool:
        """True when the content is not inside the SignedData and must be fed with ``update()``."""
        return not self._encapsulated

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
        if self.detached and parsed.signers and not self._fed and _content is None:
            raise UsageError("the content is detached: pass it to verify() or feed it with update()")
        content = self._content if self._encapsulated else _content
        digests = {d: ctx.finalize() for d, ctx in self._hashes.items()}
        signers = tuple(
            _boundary(lambda s=s: _verify(s, parsed, self._candidates, digests, content, depth=0))  # type: ignore[misc]
            for s in parsed.signers
        )
        return SignedDataReport(
            content_type=parsed.content_type,
            detached=self.detached,
            content=self._content,
            signers=signers,
            certificates=tuple(c.certificate for c in parsed.certificates if c.certificate is not None),
            unreadable_certificates=tuple(c.der for c in parsed.certificates if c.certificate is None),
            crls=parsed.crls,
            content_file=self._content_file,
            content_size=self._content_size,
        )


def verify(
    signed: bytes | BinaryIO,
    *,
    detached_content: bytes | BinaryIO | None = None,
    extra_certificates: Sequence[x509.Certificate] = (),
    keep_content: bool = True,
    in_memory_limit: int = IN_MEMORY_LIMIT,
) -> SignedDataReport:
    """Verify every signer of a DER/BER ContentInfo holding SignedData, given as bytes or a binary stream.

    A stream is read in chunks (see :meth:`SignedDataVerifier.from_stream` for ``keep_content`` and
    ``in_memory_limit``; from bytes the content is always kept in memory). ``detached_content`` is required
    when the content is detached (a stream is read in chunks) and refused when the content is encapsulated.
    ``extra_certificates`` help find signer certificates that the message does not carry. Raises
    CmsFormatError for malformed input, UsageError for a content mismatch of the call; a bad signature is
    reported, not raised (see ``SignedDataReport.require_ok``).
    """
    if isinstance(signed, bytes | bytearray | memoryview):
        verifier = SignedDataVerifier(signed, extra_certificates=extra_certificates)
    else:
        verifier = SignedDataVerifier.from_stream(
            signed,
            extra_certificates=extra_certificates,
            keep_content=keep_content,
            in_memory_limit=in_memory_limit,
        )
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


def _hash_into(
    reader: SignedDataReader, contexts: dict[DigestAlgorithm, hashes.Hash], spool: _der.Spool | None
) -> int:
    """Digest (and spool) the eContent; returns its size."""
    size = 0
    for chunk in reader.content():
        size += len(chunk)
        for ctx in contexts.values():
            ctx.update(chunk)
        if spool is not None:
            spool.write(chunk)
    return size


def _digest_or_none(oid: str) -> DigestAlgorithm | None:
    try:
        return DigestAlgorithm.from_oid(oid)
    except UnsupportedAlgorithmError:
        return None


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
