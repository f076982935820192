"""Verifying the S/MIME signatures of a message (RFC 8551 §3.5), over the bytes as received.

The first part of a ``multipart/signed`` is digested straight from the message's source, in chunks: never a
re-serialization, and memory does not grow with the message. An opaque ``signed-data`` body is decoded and
verified as a stream; the signed entity inside is kept in a private temporary file when it is large.
Content stored with LF line endings (as Unix tools store RFC 8551's canonical CRLF content) is verified
again in its CRLF form when the bytes as received do not match, and the report says so. Opaque
``signed-data``, the ``x-pkcs7-*`` types and Outlook's ``application/octet-stream`` + ``smime.p7m``/``smime.p7s``
are read too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cryptography import x509

from smimekit import cms, mime
from smimekit.errors import NotSmimeError, SmimekitError, UsageError
from smimekit.mime import Entity, Message
from smimekit.mime.rfc2047 import parse_addresses
from smimekit.pki.result import RevocationMode
from smimekit.pki.revocation import RevocationData, RevocationFetcher
from smimekit.smime import _mime
from smimekit.smime._mime import CmsKind, require
from smimekit.smime.diagnose import DIAGNOSIS_LIMIT, diagnose
from smimekit.smime.report import (
    CertificateSummary,
    PathVerdict,
    RevocationVerdict,
    SignatureReport,
    TrustVerdict,
    VerificationReport,
)

if TYPE_CHECKING:
    from smimekit import pki

__all__ = ["verify"]

MULTIPART_SIGNED = "multipart/signed"
SIGNED_DATA = "signed-data"
NO_ANCHORS = "no trust anchors were given"
NO_CERTIFICATE = "the signer's certificate is not in the message nor among the certificates given"
#: A detached signature (certificates included) larger than this is refused rather than read.
MAX_SIGNATURE_SIZE = 4 << 20


@dataclass
class _Found:
    """One signed entity of the message, with what verifying it produced."""

    def signed_pieces(self) -> Iterable[bytes]:
        """The signed content in pieces, as verified (in CRLF form when it was stored with LF)."""
        assert self.content is not None
        if self.converted:
            return (p.replace(b"\n", b"\r\n") for p in self.content.iter_bytes())
        return self.content.iter_bytes()

    entity: Entity
    form: str
    path: str
    report: cms.SignedDataReport | None = None
    covered: tuple[str, ...] = ()
    content: Entity | None = None
    converted: bool = False
    diagnosis: str | None = None
    notes: list[str] = field(default_factory=list)


def verify(
    message: Message,
    *,
    now: dt.datetime,
    anchors: Sequence[x509.Certificate] = (),
    intermediates: Sequence[x509.Certificate] = (),
    crls: Sequence[x509.CertificateRevocationList] = (),
    legacy_algorithms: bool = False,
    revocation: RevocationMode = RevocationMode.SOFT,
    ocsp_responses: Sequence[bytes] = (),
    fetcher: RevocationFetcher | None = None,
) -> VerificationReport:
    """Verify every S/MIME signature in ``message`` and report on each (see :class:`VerificationReport`).

    Signed entities are looked for in the whole MIME tree (not inside attached ``message/rfc822`` parts
    nor inside encrypted parts: :func:`smimekit.smime.open` unwraps those). Trust is decided against
    ``anchors`` at the signing time and at ``now``, with ``intermediates`` and the certificates of the
    message as path material. A bad signature is reported, not raised: read ``ok``. ``legacy_algorithms``
    accepts certificate paths signed with SHA-1 or holding 1024-bit keys (old mail); when a path needed
    it, its verdict says so (``legacy``) and a note names the signer.

    Raises NotSmimeError when the message holds no S/MIME signature, SmimeFormatError for a malformed
    ``multipart/signed``, CmsFormatError for a signature that is not CMS SignedData, UsageError for a naive
    ``now``.
    """
    report, _ = verify_found(
        message,
        now=now,
        anchors=anchors,
        intermediates=intermediates,
        crls=crls,
        legacy_algorithms=legacy_algorithms,
        revocation=revocation,
        ocsp_responses=ocsp_responses,
        fetcher=fetcher,
    )
    return report


def verify_found(
    message: Message,
    *,
    now: dt.datetime,
    anchors: Sequence[x509.Certificate],
    intermediates: Sequence[x509.Certificate],
    crls: Sequence[x509.CertificateRevocationList],
    legacy_algorithms: bool = False,
    revocation: RevocationMode = RevocationMode.SOFT,
    ocsp_responses: Sequence[bytes] = (),
    fetcher: RevocationFetcher | None = None,
) -> tuple[VerificationReport, list[_Found]]:
    """:func:`verify`, also returning each signed entity found (for open())."""
    if not isinstance(message, Entity):
        raise UsageError("verify() takes a parsed Message (smimekit.mime.parse)")
    if not isinstance(now, dt.datetime) or now.tzinfo is None:
        raise UsageError("now must be a timezone-aware datetime")
    if not isinstance(revocation, RevocationMode):
        raise UsageError(f"revocation must be a RevocationMode, not {type(revocation).__name__}")
    if fetcher is not None and not isinstance(fetcher, RevocationFetcher):
        raise UsageError("fetcher must have a fetch(path, *, now) method (smimekit.pki.RevocationFetcher)")
    if isinstance(ocsp_responses, bytes | bytearray | str) or not all(
        isinstance(r, bytes | bytearray | memoryview) for r in ocsp_responses
    ):
        raise UsageError("ocsp_responses must be a sequence of DER OCSP responses (bytes)")
    revinfo = _Revinfo(revocation, tuple(bytes(r) for r in ocsp_responses), fetcher)
    paths = _mime.part_paths(message)
    notes: list[str] = []
    found: list[_Found] = []
    for entity, form in _find_signed(message, paths, notes):
        item = _Found(entity, form, paths[id(entity)])
        if form == MULTIPART_SIGNED:
            _verify_clear(item, intermediates)
        else:
            _verify_opaque(item, intermediates)
        found.append(item)
    if not found:
        raise NotSmimeError("signed")
    senders = _addresses(message)
    signatures: list[SignatureReport] = []
    for item in found:
        assert item.report is not None
        notes += item.notes
        extra = (*intermediates, *item.report.certificates)
        for signer in item.report.signers:
            trust = _trust(
                signer,
                anchors=anchors,
                intermediates=extra,
                now=now,
                crls=crls,
                legacy=legacy_algorithms,
                revinfo=revinfo,
            )
            who = _subject(signer.certificate) if signer.certificate else "a signer"
            if trust.legacy:
                notes.append(
                    f"the certificate path of {who} was accepted only because legacy algorithms were allowed"
                )
            notes += _revocation_notes(trust, who)
            signatures.append(_signature(item, signer, trust, senders))
    if not senders:
        notes.append("the message has no From address to compare the signers with")
    report = VerificationReport(
        signatures=tuple(signatures),
        unsigned_parts=_unsigned(message, paths, found),
        from_addresses=senders,
        notes=tuple(dict.fromkeys(notes)),
        content=found[0].content,
    )
    return report, found


# --------------------------------------------------------------------------------------------- finding


def _find_signed(root: Entity, paths: dict[int, str], notes: list[str]) -> Iterator[tuple[Entity, str]]:
    stack = [root]
    while stack:
        entity = stack.pop()
        if _mime.is_smime_signed_multipart(entity):
            yield entity, MULTIPART_SIGNED
        elif _mime.is_pkcs7_mime(entity):
            kind = _mime.cms_kind(entity)
            path = paths[id(entity)]
            where = "the whole message" if path == "1" else f"part {path}"
            if kind is CmsKind.SIGNED and entity.params.get("smime-type", "").lower() == "certs-only":
                notes.append(f"{where} holds certificates only (RFC 8551 §3.8), no signature")
            elif kind is CmsKind.SIGNED:
                yield entity, SIGNED_DATA
            elif kind is not None:
                notes.append(f"{where} is {kind.value}; open() unwraps it to verify what it holds")
            else:
                notes.append(f"{where} is declared as S/MIME but does not hold CMS data")
        elif entity.is_multipart():
            stack.extend(reversed(entity.parts))


# --------------------------------------------------------------------------------------------- verifying


def _verify_clear(item: _Found, intermediates: Sequence[x509.Certificate]) -> None:
    parts = item.entity.parts
    require(len(parts) == 2, f"a multipart/signed holds exactly two parts, not {len(parts)}", item.path)
    content, signature = parts
    require(
        _mime.is_signature_part(signature),
        f"its second part is {signature.content_type}, not a PKCS#7 signature",
        item.path,
    )
    start, end = signature.body_span
    require(end - start <= MAX_SIGNATURE_SIZE * 2, "its signature part is too large to be one", item.path)
    der = signature.decoded()
    require(0 < len(der) <= MAX_SIGNATURE_SIZE, "its signature part is empty or too large", item.path)
    probe = cms.SignedDataVerifier(der, extra_certificates=intermediates)
    require(probe.detached, "the signature of a multipart/signed must not carry the content", item.path)
    if content.modified:
        item.notes.append(
            f"part {_mime.child_path(item.path, 1)} was edited after parsing: its current bytes were verified"
        )

    stats = _LineStats()
    report = _run(der, stats.watch(content.iter_bytes()), intermediates)
    if not _all_intact(report) and stats.lf_only:
        retry = _run(der, (p.replace(b"\n", b"\r\n") for p in content.iter_bytes()), intermediates)
        if _intact_count(retry) > _intact_count(report):
            report, item.converted = retry, True
            item.notes.append(
                "the signed content was stored with LF line endings; it was verified in its canonical CRLF "
                "form (RFC 8551 §3.1.1)"
            )
    item.report = report
    item.content = content
    item.covered = _mime.subtree_paths(content, _mime.child_path(item.path, 1))
    if not _all_intact(report):
        item.diagnosis = _diagnose(der, content, intermediates)


def _verify_opaque(item: _Found, intermediates: Sequence[x509.Certificate]) -> None:
    # A large signed-data is read as a stream: its eContent is digested in chunks and kept in a private
    # temporary file, from which the signed entity is parsed (its bodies stay in that file).
    with _mime.cms_stream(item.entity) as data:
        limit = _mime.content_limit(item.entity)
        report = cms.verify(data, extra_certificates=intermediates, in_memory_limit=limit)
    require(not report.detached, "its signed-data carries no content", item.path)
    item.report = report
    if report.content is not None:
        item.content = mime.parse(report.content)
    else:
        with report.open_content() as spooled:
            item.content = mime.parse(spooled)  # holds its own descriptor of the (unlinked) file
    item.covered = _mime.subtree_paths(item.content, _mime.child_path(item.path, 1))


def _run(
    der: bytes, pieces: Iterable[bytes], intermediates: Sequence[x509.Certificate]
) -> cms.SignedDataReport:
    verifier = cms.SignedDataVerifier(der, extra_certificates=intermediates)
    for piece in pieces:
        verifier.update(piece)
    verifier.update(b"")
    return verifier.finish()


def _intact_count(report: cms.SignedDataReport) -> int:
    return sum(s.intact for s in report.signers)


def _all_intact(report: cms.SignedDataReport) -> bool:
    return all(s.intact for s in report.signers)


class _LineStats:
    """Watches a stream of pieces for CR and LF bytes."""

    def __init__(self) -> None:
        self.cr = False
        self.lf = False

    @property
    def lf_only(self) -> bool:
        return self.lf and not self.cr

    def watch(self, pieces: Iterable[bytes]) -> Iterator[bytes]:
        """``pieces`` unchanged, noting whether any holds a CR or an LF."""
        for piece in pieces:
            self.cr = self.cr or b"\r" in piece
            self.lf = self.lf or b"\n" in piece
            yield piece


def _diagnose(der: bytes, content: Entity, intermediates: Sequence[x509.Certificate]) -> str | None:
    start, end = content.span
    if end - start > DIAGNOSIS_LIMIT:
        return None

    def matches(candidate: bytes) -> bool:
        return any(s.intact for s in _run(der, (candidate,), intermediates).signers)

    return diagnose(content.to_bytes(), matches)


# --------------------------------------------------------------------------------------------- reporting


def _signature(
    item: _Found, signer: cms.SignerReport, trust: TrustVerdict, senders: tuple[str, ...]
) -> SignatureReport:
    cert = signer.certificate
    summary = CertificateSummary.of(cert) if cert is not None else None
    reasons = list(signer.reasons)
    if cert is None and signer.certificate_der is None:
        reasons.append(NO_CERTIFICATE)
    if not trust.trusted and trust.reason not in reasons:
        reasons.append(trust.reason)
    emails = set(summary.emails) if summary else set()
    return SignatureReport(
        part=item.path,
        form=item.form,
        covered_parts=item.covered,
        signer=summary,
        signer_id=signer.signer_id.describe(),
        signing_time=signer.signing_time,
        digest_algorithm=signer.digest_algorithm.label if signer.digest_algorithm else None,
        signature_algorithm=signer.signature_algorithm.label if signer.signature_algorithm else None,
        intact=signer.intact,
        valid=signer.valid,
        trust=trust,
        reasons=tuple(dict.fromkeys(reasons)),
        weak=signer.weak,
        from_matches=bool(emails & set(senders)),
        line_endings_converted=item.converted,
        diagnosis=None if signer.intact else item.diagnosis,
        cms=signer,
        certificates=tuple(item.report.certificates) if item.report is not None else (),
    )


def _addresses(message: Entity) -> tuple[str, ...]:
    values = message.headers.get_all("from")
    found = [addr.strip().lower() for v in values for _, addr in parse_addresses(v) if addr.strip()]
    return tuple(dict.fromkeys(found))


def _unsigned(root: Entity, paths: dict[int, str], found: list[_Found]) -> tuple[str, ...]:
    signed = {id(item.entity) for item in found}
    out: list[str] = []
    stack = [root]
    while stack:
        entity = stack.pop()
        if id(entity) in signed:
            continue
        if entity.is_multipart():
            stack.extend(reversed(entity.parts))
        else:
            out.append(paths[id(entity)])
    return _mime.sort_paths(out)


@dataclass(frozen=True)
class _Revinfo:
    """How revocation is checked for every signer of a message."""

    mode: RevocationMode
    ocsp_responses: tuple[bytes, ...]
    fetcher: RevocationFetcher | None


def _trust(
    signer: cms.SignerReport,
    *,
    anchors: Sequence[x509.Certificate],
    intermediates: Sequence[x509.Certificate],
    now: dt.datetime,
    crls: Sequence[x509.CertificateRevocationList],
    legacy: bool = False,
    revinfo: _Revinfo = _Revinfo(RevocationMode.SOFT, (), None),
) -> TrustVerdict:
    cert = signer.certificate
    if cert is None:
        return TrustVerdict(False, NO_CERTIFICATE)
    if not anchors:
        return TrustVerdict(False, NO_ANCHORS)
    from smimekit import pki

    def validate(data: RevocationData, mode: RevocationMode) -> pki.SignerTrust:
        return pki.validate_signer(
            cert,
            anchors=anchors,
            intermediates=intermediates,
            signing_time=signer.signing_time,
            now=now,
            crls=(*crls, *data.crls),
            ocsp_responses=(*revinfo.ocsp_responses, *data.ocsp_responses),
            origins=data.origins,
            revocation=mode,
            legacy_algorithms=legacy,
        )

    data = RevocationData()
    if revinfo.fetcher is not None and revinfo.mode is not RevocationMode.OFF:
        # Validation stays pure: find the path without revocation, fetch for it, validate with the data.
        probe = validate(data, RevocationMode.OFF)
        paths = [r.path for r in (probe.now, probe.at_signing_time) if r is not None and r.anchor is not None]
        if paths:
            try:
                data = revinfo.fetcher.fetch(paths[0], now=now)
            except SmimekitError as exc:  # a fetcher should not raise; its failure leaves the status unknown
                data = RevocationData(problems=(str(exc),))
    result = validate(data, revinfo.mode)
    at_signing = _path(result.at_signing_time, data) if result.at_signing_time is not None else None
    reason = "" if result.trusted else (result.reason or "the signer's certificate is not trusted")
    return TrustVerdict(result.trusted, reason, at_signing, _path(result.now, data))


def _path(result: pki.PathResult, data: RevocationData | None = None) -> PathVerdict:
    problems = data.problems if data is not None else ()
    return PathVerdict(
        trusted=result.trusted,
        reason=result.reason or "",
        validated_at=result.validated_at,
        path=tuple(_subject(c) for c in result.path),
        anchor=None if result.anchor is None else _subject(result.anchor),
        failure=None if result.failure is None else result.failure.value,
        legacy=result.legacy,
        revocation_path=tuple(_revocation(r, problems) for r in result.revocation),
        revocation_mode=result.revocation_mode.value,
    )


def _revocation(found: pki.CertificateRevocation, problems: tuple[str, ...]) -> RevocationVerdict:
    detail = found.detail
    if found.status.value == "unknown" and problems:  # what the fetcher could not get, for this path
        detail = f"{detail or 'no usable data'} ({'; '.join(problems)})"
    return RevocationVerdict(
        subject=_subject(found.certificate),
        status=found.status.value,
        source=found.source,
        reason=found.reason,
        date=found.revoked_at,
        detail=detail,
    )


def _revocation_notes(trust: TrustVerdict, who: str) -> list[str]:
    """Notes for a trusted signer whose revocation status could not be checked, or was not."""
    verdict = trust.now if trust.now is not None else trust.at_signing_time
    if not trust.trusted or verdict is None or not verdict.unchecked:
        return []
    if verdict.revocation_mode == "off":
        return [f"the revocation status of {who} was not checked (revocation checking is off)"]
    out = []
    for item in verdict.unchecked:
        whose = who if item.subject == verdict.path[0] else f"the CA certificate {item.subject}"
        out.append(f"the revocation status of {whose} could not be checked: {item.detail or 'no data'}")
    return out


def _subject(cert: x509.Certificate) -> str:
    return CertificateSummary.of(cert).subject
