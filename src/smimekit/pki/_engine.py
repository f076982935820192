"""RFC 5280 path building and validation, delegated to pyhanko-certvalidator.

Why pyhanko-certvalidator: it is maintained, implements RFC 5280 §6 completely (certificate policies and
policy mapping, name constraints, CRLs per §6.3 with delta and indirect CRLs), passes NIST PKITS, and keeps
revocation fetching behind small pluggable interfaces (what smimekit.net will provide). cryptography's
``x509.verification`` does no policy processing and is shaped for the web PKI.

How it is used here:

- Its validation API is asynchronous only (``CertificateValidator.async_validate_path``; its few sync
  helpers just call ``asyncio.run``). With fetching disabled (``allow_fetching=False``, no fetchers)
  nothing ever waits on I/O, so the coroutine is run to completion on a private event loop inside the
  call (``_run``), on a short-lived worker thread when the caller is itself inside an event loop.
- The library imports asyncio at module level, which the core must not hold (tests/test_architecture.py),
  so every import of it happens inside the functions below.
- Data only: trust anchors, intermediates, CRLs and OCSP responses are handed in; the system trust list
  is never used and nothing is fetched.
- Revocation (see :class:`~smimekit.pki.result.RevocationMode`): HARD gives the library its
  REQUIRE_REVINFO policy, so every certificate of the path but the anchor needs a usable CRL or OCSP
  response (and so do the paths of CRL issuers and OCSP responders). SOFT and OFF build the path without
  revocation. Except under OFF, every certificate of the path is then checked one by one with the
  library's own ``verify_ocsp_response`` (signature, responder authorisation per RFC 6960 §4.2.2.2,
  certID, thisUpdate/nextUpdate) and ``verify_crl`` (RFC 5280 §6.3, delta CRLs included), which gives each
  certificate its status (good, revoked, unknown) and source for the result. SOFT refuses a revoked
  certificate and data that covers a certificate but cannot be used; HARD also an unknown status. CRLs
  and responses dated after the validation time count (retroactive revinfo), their revocations dated
  after it do not (so today's data serves validation at a past signing time).

Online revocation belongs to smimekit.net, which fetches CRLs and OCSP responses for the path found here
and hands them back to ``validate_path`` (see :mod:`smimekit.pki.revocation`).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from smimekit.pki.policies import ANY_POLICY, PolicyRequirements
from smimekit.pki.profile import describe
from smimekit.pki.result import CertificateRevocation, PathFailure, RevocationMode, RevocationStatus
from smimekit.pki.revocation import ocsp_response_problem, reason_name, single_response_matches

__all__ = ["EngineOutcome", "run_pkix"]

_T = TypeVar("_T")

# pyhanko-certvalidator logs expected validation failures (a CRL issuer that does not validate) as
# warnings with tracebacks; without a handler Python's last resort would print them on the CLI's stderr.
# Applications that configure logging still receive them.
logging.getLogger("pyhanko_certvalidator").addHandler(logging.NullHandler())


@dataclass(frozen=True)
class EngineOutcome:
    """What RFC 5280 validation found: the path (leaf to anchor), the revocation status of each of its
    certificates but the anchor (leaf first, when revocation was looked at) and, when it failed, why."""

    path: tuple[x509.Certificate, ...]
    anchor: x509.Certificate | None
    failure: PathFailure | None = None
    reason: str | None = None
    revocation: tuple[CertificateRevocation, ...] = ()


@dataclass
class _Check:
    """One kind of revocation data (OCSP or CRL) checked for one certificate."""

    state: str = "none"  # "none" (nothing covers it), "good", "revoked", "failed"
    error: Exception | None = None
    failures: tuple[str, ...] = ()


def run_pkix(
    certificate: x509.Certificate,
    *,
    anchors: Sequence[x509.Certificate],
    intermediates: Sequence[x509.Certificate],
    at: dt.datetime,
    crls: Sequence[x509.CertificateRevocationList],
    policies: PolicyRequirements,
    ocsp_responses: Sequence[bytes] = (),
    origins: Mapping[bytes, str] | None = None,
    mode: RevocationMode = RevocationMode.SOFT,
    legacy_algorithms: bool = False,
) -> EngineOutcome:
    """Build and validate a path from ``certificate`` to one of ``anchors`` at ``at``, then check the
    revocation of its certificates with the CRLs and OCSP responses given, as ``mode`` asks (see
    :class:`~smimekit.pki.result.RevocationMode`). Never raises for an untrusted certificate.
    ``legacy_algorithms`` accepts SHA-1 signatures and RSA/DSA keys from 1024 bits in the path (MD5 and
    MD2 stay refused)."""
    from asn1crypto import x509 as asn1_x509
    from pyhanko_certvalidator import CertificateValidator, ValidationContext
    from pyhanko_certvalidator import errors as e
    from pyhanko_certvalidator.policy_decl import (
        NO_REVOCATION,
        REQUIRE_REVINFO,
        CertRevTrustPolicy,
        PKIXValidationParams,
    )

    originals: dict[bytes, x509.Certificate] = {}

    def convert(cert: x509.Certificate) -> Any:
        der = cert.public_bytes(Encoding.DER)
        originals.setdefault(der, cert)
        return asn1_x509.Certificate.load(der)

    try:
        leaf = convert(certificate)
        roots = [convert(c) for c in anchors]
        others = [convert(c) for c in intermediates]
        crl_ders = [c.public_bytes(Encoding.DER) for c in crls]
    except ValueError as exc:
        return EngineOutcome(
            (certificate,), None, PathFailure.MALFORMED, f"a certificate cannot be read: {exc}"
        )
    ocsp_ders = [bytes(r) for r in ocsp_responses]
    # HARD: the library requires revocation data for every certificate while it builds the path (and for
    # the paths of CRL issuers and OCSP responders). SOFT and OFF: the path is built without, and SOFT
    # then checks each certificate of it below, refusing what is revoked or contradicted.
    checking = REQUIRE_REVINFO if mode is RevocationMode.HARD else NO_REVOCATION
    params = PKIXValidationParams(
        user_initial_policy_set=frozenset(
            "any_policy" if oid == ANY_POLICY else oid for oid in policies.acceptable
        ),
        initial_explicit_policy=policies.explicit,
        initial_policy_mapping_inhibit=policies.inhibit_mapping,
        initial_any_policy_inhibit=policies.inhibit_any,
    )

    def back(cert: Any) -> x509.Certificate:
        der = cert.dump()
        return originals.get(der) or x509.load_der_x509_certificate(der)

    async def work() -> tuple[Any, list[tuple[Any, _Check, _Check]], Exception | None]:
        # Every certificate of the path is then checked one by one, so that each status is known.
        def context_for(crl_list: list[bytes], ocsp_list: list[bytes]) -> Any:
            return ValidationContext(
                trust_roots=roots,
                other_certs=others,
                moment=at,
                allow_fetching=False,
                crls=crl_list,
                ocsps=ocsp_list,
                revinfo_policy=CertRevTrustPolicy(checking, retroactive_revinfo=True),
                time_tolerance=dt.timedelta(0),
                algorithm_usage_policy=_legacy_policy() if legacy_algorithms else None,
            )

        context = context_for(crl_ders, ocsp_ders)
        validator = CertificateValidator(leaf, validation_context=context, pkix_params=params)
        failure: Exception | None = None
        try:
            path: Any = await validator.async_validate_path()
        except (e.RevokedError, e.InsufficientRevinfoError) as exc:
            path, failure = getattr(exc, "original_path", None), exc
            if path is None:
                raise
        checks: list[tuple[Any, _Check, _Check]] = []
        if mode is RevocationMode.OFF:
            return path, checks, failure
        in_order = list(path.iter_certs(include_root=True))  # anchor first
        for position, cert in enumerate(in_order[1:], start=1):  # from the anchor's side down to the leaf
            pair = (back(cert), back(in_order[position - 1]))

            def alone(der: bytes) -> Any:
                return context_for(crl_ders, [der])  # that response alone, the CRLs as given

            ocsp_check = (
                await _check_ocsp(cert, pair, path, context, alone, at, ocsp_ders) if ocsp_ders else _Check()
            )
            crl_check = await _check_crl(cert, path, context) if crl_ders else _Check()
            checks.append((cert, ocsp_check, crl_check))
        return path, checks, failure

    try:
        vpath, checks, failure = _run(work)
    except Exception as exc:  # the library raises many types; every one of them means "not trusted"
        return _failure_outcome(exc, certificate, anchors, intermediates, back)
    certs = [back(c) for c in vpath.iter_certs(include_root=True)]  # a validated path starts at its anchor
    path = tuple(reversed(certs))
    anchor = certs[0]
    if mode is RevocationMode.OFF:
        unchecked = tuple(CertificateRevocation(c, RevocationStatus.NOT_CHECKED) for c in path[:-1])
        return EngineOutcome(path, anchor, revocation=unchecked)
    found = [
        _status(back(cert), path, ocsp_check, crl_check, crls, ocsp_ders, origins or {})
        for cert, ocsp_check, crl_check in checks
    ]
    revocation = tuple(reversed(found))
    if failure is not None and not (
        # The library asks OCSP for "good" at the validation time; a response revoking the certificate
        # only after that time (the signing time, say) is found good for it here, with the same checks.
        isinstance(failure, e.InsufficientRevinfoError)
        and all(r.status is RevocationStatus.GOOD for r in found)
    ):
        outcome = _failure_outcome(failure, certificate, anchors, intermediates, back)
        return EngineOutcome(outcome.path, outcome.anchor, outcome.failure, outcome.reason, revocation)
    for (_, ocsp_check, crl_check), result in zip(checks, found, strict=True):
        who = _who(result.certificate, certificate)
        revoked = next((c for c in (ocsp_check, crl_check) if c.state == "revoked"), None)
        if revoked is not None:
            reason = _revoked_reason(who, revoked.error)
            return EngineOutcome(path, anchor, PathFailure.REVOKED, reason, revocation)
        if result.status is RevocationStatus.UNKNOWN and (
            mode is RevocationMode.HARD or "failed" in (ocsp_check.state, crl_check.state)
        ):
            reason = f"the revocation status of {who} is unknown: {result.detail}"
            return EngineOutcome(path, anchor, PathFailure.REVOCATION_UNKNOWN, reason, revocation)
    return EngineOutcome(path, anchor, revocation=revocation)


async def _check_ocsp(
    cert: Any,
    pair: tuple[x509.Certificate, x509.Certificate],
    path: Any,
    context: Any,
    alone: Callable[[bytes], Any],
    at: dt.datetime,
    ocsp_ders: Sequence[bytes],
) -> _Check:
    from pyhanko_certvalidator import errors as e
    from pyhanko_certvalidator.revinfo.validate_ocsp import verify_ocsp_response

    try:
        await verify_ocsp_response(cert, path, context)
    except e.RevokedError as exc:
        return _Check("revoked", exc)
    except e.OCSPNoMatchesError:
        return _Check()
    except e.OCSPValidationIndeterminateError as exc:
        if exc.failures:
            return _Check("failed", exc, _failure_texts(exc))
        # No failure recorded: a response about it passed every check (signature, responder, time) but
        # does not say "good": it says "unknown", or "revoked" from a time after the one asked about.
        return await _not_good(cert, pair, path, alone, at, ocsp_ders, exc)
    except Exception as exc:  # a response covers it but cannot be used: say why
        return _Check("failed", exc, _failure_texts(exc))
    return _Check("good")


async def _not_good(
    cert: Any,
    pair: tuple[x509.Certificate, x509.Certificate],
    path: Any,
    alone: Callable[[bytes], Any],
    at: dt.datetime,
    ocsp_ders: Sequence[bytes],
    exc: Exception,
) -> _Check:
    """Good at ``at`` when a response about ``cert`` says it was revoked only after ``at``.

    Only a response with the certificate's full certID (issuer name hash, issuer key hash and serial,
    against the issuer of ``path``) counts, and only once the library has verified it on its own: its
    signature, its responder's authorisation and its time. A response of another CA for the same serial
    number, or a forged one, never turns the status into good.
    """
    from cryptography.x509 import ocsp
    from pyhanko_certvalidator import errors as e
    from pyhanko_certvalidator.revinfo.validate_ocsp import verify_ocsp_response

    certificate, issuer = pair
    for der in ocsp_ders:
        if not _answers(der, certificate, issuer):
            continue
        try:
            singles = list(ocsp.load_der_ocsp_response(der).responses)
        except ValueError:
            continue
        mine = [s for s in singles if single_response_matches(s, certificate, issuer)]
        if not mine or not all(_revoked_after(s, at) for s in mine):
            continue
        try:
            await verify_ocsp_response(cert, path, alone(der))
        except e.OCSPValidationIndeterminateError as verdict:
            if not verdict.failures:  # verified, and not revoked at the time asked about
                return _Check("good")  # good at the time asked about (e.g. the signing time)
        except Exception:  # revoked by then, or not verified: this response cannot make it good
            continue
    return _Check("failed", exc, ("the OCSP responder does not know the certificate",))


def _revoked_after(single: Any, at: dt.datetime) -> bool:
    from cryptography.x509 import ocsp

    if single.certificate_status is not ocsp.OCSPCertStatus.REVOKED:
        return False
    revoked_at = single.revocation_time_utc
    return revoked_at is not None and revoked_at > at


async def _check_crl(cert: Any, path: Any, context: Any) -> _Check:
    from pyhanko_certvalidator import errors as e
    from pyhanko_certvalidator.revinfo.validate_crl import verify_crl

    try:
        await verify_crl(cert, path, context)
    except e.RevokedError as exc:
        return _Check("revoked", exc)
    except e.CRLNoMatchesError:
        return _Check()
    except Exception as exc:  # a CRL covers it but cannot be used: say why
        return _Check("failed", exc, _failure_texts(exc))
    return _Check("good")


def _failure_texts(exc: Exception) -> tuple[str, ...]:
    failures = getattr(exc, "failures", None)
    if failures:  # (message, CRL or response) pairs
        return tuple(dict.fromkeys(_clean(str(f[0] if isinstance(f, tuple) else f)) for f in failures))
    return (_clean(str(exc)),)


def _status(
    cert: x509.Certificate,
    path: tuple[x509.Certificate, ...],
    ocsp_check: _Check,
    crl_check: _Check,
    crls: Sequence[x509.CertificateRevocationList],
    ocsp_ders: Sequence[bytes],
    origins: Mapping[bytes, str],
) -> CertificateRevocation:
    """The status of ``cert``: revoked by any usable source, else good by any, else unknown (saying why)."""
    index = path.index(cert)
    issuer = path[index + 1] if index + 1 < len(path) else cert

    def source(kind: str) -> str:
        if kind == "ocsp":
            return _ocsp_source(cert, issuer, ocsp_ders, origins)
        return _crl_source(cert, crls, origins)

    for check, kind in ((ocsp_check, "ocsp"), (crl_check, "crl")):
        if check.state == "revoked":
            error: Any = check.error
            try:
                reason = reason_name(error.reason.native)
            except Exception:  # an unusual reason code
                reason = "unspecified"
            when = getattr(error, "revocation_dt", None)
            return CertificateRevocation(cert, RevocationStatus.REVOKED, source(kind), reason, when)
    for check, kind in ((ocsp_check, "ocsp"), (crl_check, "crl")):
        if check.state == "good":
            return CertificateRevocation(cert, RevocationStatus.GOOD, source(kind))
    details = []
    if ocsp_check.state == "failed":
        details.append(f"the OCSP response for it cannot be used ({'; '.join(ocsp_check.failures)})")
    if crl_check.state == "failed":
        details.append(f"the CRL given for it cannot be used ({'; '.join(crl_check.failures)})")
    detail = "; ".join(details) or "no CRL or OCSP response for it was given or fetched"
    return CertificateRevocation(cert, RevocationStatus.UNKNOWN, detail=detail)


def _ocsp_source(
    cert: x509.Certificate,
    issuer: x509.Certificate,
    ocsp_ders: Sequence[bytes],
    origins: Mapping[bytes, str],
) -> str:
    for der in ocsp_ders:
        if der in origins and _answers(der, cert, issuer):
            return f"OCSP {origins[der]}"
    return "OCSP (given)"


def _answers(der: bytes, cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    # only the certID matters here, not the time: the response was already accepted
    problem = ocsp_response_problem(der, certificate=cert, issuer=issuer, at=_EPOCH, tolerance=_EVER)
    return problem is None


def _crl_source(
    cert: x509.Certificate, crls: Sequence[x509.CertificateRevocationList], origins: Mapping[bytes, str]
) -> str:
    def where(crl: x509.CertificateRevocationList) -> str:
        return origins.get(crl.public_bytes(Encoding.DER), "(given)")

    mine = sorted((c for c in crls if c.issuer == cert.issuer), key=lambda c: c.last_update_utc, reverse=True)
    bases = [c for c in mine if not _is_delta(c)]
    deltas = [c for c in mine if _is_delta(c)]
    label = f"CRL {where(bases[0])}" if bases else "CRL (given)"
    if deltas:
        label += f" + delta CRL {where(deltas[0])}"
    return label


def _is_delta(crl: x509.CertificateRevocationList) -> bool:
    try:
        crl.extensions.get_extension_for_class(x509.DeltaCRLIndicator)
    except (x509.ExtensionNotFound, ValueError):
        return False
    return True


_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
_EVER = dt.timedelta(days=365 * 1000)


def _legacy_policy() -> Any:
    from pyhanko_certvalidator.policy_decl import DisallowWeakAlgorithmsPolicy

    return DisallowWeakAlgorithmsPolicy(  # type: ignore[no-untyped-call]
        weak_hash_algos=frozenset({"md5", "md2"}), rsa_key_size_threshold=1024, dsa_key_size_threshold=1024
    )


def _run(make: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    """Run the coroutine ``make()`` to completion on a private event loop and return its result."""
    import asyncio  # here, not at module level: the core holds no reference to asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    # Called from inside an event loop (the gateway): asyncio.run would refuse, so use a worker thread.
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


# ------------------------------------------------------------------------------ failures into sentences

_PREFIX = re.compile(r"^the path could not be validated because\s+", re.IGNORECASE)
_INTERMEDIATE = re.compile(r"intermediate certificate (\d+)")


def _clean(message: str) -> str:
    text = _PREFIX.sub("", " ".join(str(message).split())).rstrip(".")
    if text[1:2].isupper():  # an acronym (CRL, OCSP): keep its case
        return text
    return text[:1].lower() + text[1:]


def _who(cert: x509.Certificate, leaf: x509.Certificate) -> str:
    return "the certificate" if cert == leaf else f"the CA certificate {describe(cert)}"


def _path_certs(exc: Exception, back: Callable[[Any], x509.Certificate]) -> list[x509.Certificate]:
    path = getattr(exc, "original_path", None)
    if path is None:
        return []
    try:
        return [back(c) for c in path.iter_certs(include_root=True)]
    except Exception:  # a partial path we cannot read back: report without it
        return []


def _failure_outcome(
    exc: Exception,
    leaf: x509.Certificate,
    anchors: Sequence[x509.Certificate],
    intermediates: Sequence[x509.Certificate],
    back: Callable[[Any], x509.Certificate],
) -> EngineOutcome:
    from pyhanko_certvalidator import errors as e

    from_root = _path_certs(exc, back)
    path = tuple(reversed(from_root)) or (leaf,)
    anchor = from_root[0] if len(from_root) > 1 else None

    def out(failure: PathFailure, reason: str) -> EngineOutcome:
        return EngineOutcome(path, anchor, failure, reason)

    def culprit(default: x509.Certificate = leaf) -> x509.Certificate:
        if getattr(exc, "is_ee_cert", True):
            return default
        found = _INTERMEDIATE.search(str(exc))
        if found and 0 < int(found.group(1)) < len(from_root):
            return from_root[int(found.group(1))]
        return default

    if isinstance(exc, e.InvalidCertificateError) and "self-signed" in str(exc):
        return out(PathFailure.NO_TRUST_ANCHOR, "the certificate is self-signed and is not a trust anchor")
    if isinstance(exc, e.PathBuildingError):
        return out(PathFailure.NO_TRUST_ANCHOR, _no_path_reason(leaf, anchors, intermediates))
    if isinstance(exc, e.ExpiredError):
        return out(PathFailure.EXPIRED, f"{_who(culprit(), leaf)} expired on {exc.expired_dt:%Y-%m-%d}")
    if isinstance(exc, e.NotYetValidError):
        return out(
            PathFailure.NOT_YET_VALID,
            f"{_who(culprit(), leaf)} is not valid before {exc.valid_from:%Y-%m-%d}",
        )
    if isinstance(exc, e.RevokedError):
        return out(PathFailure.REVOKED, _revoked_reason(_who(culprit(), leaf), exc))
    if isinstance(exc, e.InsufficientRevinfoError):
        who = _who(culprit(), leaf)
        text = str(exc)
        if "no revocation information could be found" in text:
            detail = "no CRL for it was given"
        else:
            detail = _clean(text.split(" failed: ", 1)[-1])
        return out(PathFailure.REVOCATION_UNKNOWN, f"the revocation status of {who} is unknown: {detail}")
    if isinstance(exc, e.DisallowedAlgorithmError):
        detail = _clean(str(exc).split(". Reason:", 1)[0])
        return out(
            PathFailure.INVALID_PATH,
            f"the path uses a weak algorithm ({detail}); old mail needs legacy algorithms allowed",
        )
    if isinstance(exc, e.ValidationError | e.PathError):
        return out(PathFailure.INVALID_PATH, f"the path is not valid: {_clean(str(exc))}")
    return out(PathFailure.MALFORMED, f"the path could not be processed: {type(exc).__name__}: {exc}")


def _revoked_reason(who: str, exc: Any) -> str:
    when = f"since {exc.revocation_dt:%Y-%m-%d}"
    try:
        why = str(exc.reason.human_friendly)
    except Exception:  # an unusual reason code: the date is enough
        why = ""
    return f"{who} is revoked ({when}{', reason: ' + why if why else ''})"


def _no_path_reason(
    leaf: x509.Certificate, anchors: Sequence[x509.Certificate], intermediates: Sequence[x509.Certificate]
) -> str:
    """'no path to a trust anchor', naming the first issuer missing when following names finds one."""
    pool = [*intermediates, *anchors]
    current, seen = leaf, 0
    while seen < 16:
        if current.issuer == current.subject:
            return "no path to a trust anchor"
        issuer = next((c for c in pool if c.subject == current.issuer and c != current), None)
        if issuer is None:
            try:
                missing = current.issuer.rfc4514_string({NameOID.EMAIL_ADDRESS: "E"})
            except ValueError:
                return "no path to a trust anchor"
            return f"no path to a trust anchor: the issuer '{missing}' of {describe(current)} was not given"
        current, seen = issuer, seen + 1
    return "no path to a trust anchor"
