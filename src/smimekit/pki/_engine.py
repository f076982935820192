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
- Data only: trust anchors, intermediates and CRLs are handed in; the system trust list is never used.
- Revocation: with ``require`` every certificate of the path but the anchor needs a usable CRL among those
  given (the library's REQUIRE_REVINFO policy). Otherwise each certificate is checked against the CRLs
  given when one of them covers it (RFC 5280 §6.3); a covering CRL that cannot be used (stale, bad
  signature) fails closed. CRLs dated after the validation time count, their entries dated after it do
  not (so today's CRL serves validation at a past signing time).

The seam for issue 4: online revocation belongs to smimekit.net, which will fetch CRLs (and OCSP
responses) from the distribution points and AIA of the path and hand them to ``validate_path``.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from smimekit.pki.policies import ANY_POLICY, PolicyRequirements
from smimekit.pki.profile import describe
from smimekit.pki.result import PathFailure

__all__ = ["EngineOutcome", "run_pkix"]

_T = TypeVar("_T")

# pyhanko-certvalidator logs expected validation failures (a CRL issuer that does not validate) as
# warnings with tracebacks; without a handler Python's last resort would print them on the CLI's stderr.
# Applications that configure logging still receive them.
logging.getLogger("pyhanko_certvalidator").addHandler(logging.NullHandler())


@dataclass(frozen=True)
class EngineOutcome:
    """What RFC 5280 validation found: the path (leaf to anchor) and, when it failed, why."""

    path: tuple[x509.Certificate, ...]
    anchor: x509.Certificate | None
    failure: PathFailure | None = None
    reason: str | None = None


class _CrlVerdict(Exception):
    """Raised inside the coroutine to carry a per-certificate CRL verdict out of it."""

    def __init__(self, certificate: Any, error: Exception) -> None:
        super().__init__(str(error))
        self.certificate = certificate
        self.error = error


def run_pkix(
    certificate: x509.Certificate,
    *,
    anchors: Sequence[x509.Certificate],
    intermediates: Sequence[x509.Certificate],
    at: dt.datetime,
    crls: Sequence[x509.CertificateRevocationList],
    require_revocation: bool,
    policies: PolicyRequirements,
    legacy_algorithms: bool = False,
) -> EngineOutcome:
    """Build and validate a path from ``certificate`` to one of ``anchors`` at ``at``. Never raises for an
    untrusted certificate. ``legacy_algorithms`` accepts SHA-1 signatures and RSA/DSA keys from 1024 bits
    in the path (MD5 and MD2 stay refused)."""
    from asn1crypto import x509 as asn1_x509
    from pyhanko_certvalidator import CertificateValidator, ValidationContext
    from pyhanko_certvalidator.errors import CRLNoMatchesError
    from pyhanko_certvalidator.policy_decl import (
        LEGACY_POLICY_MAP,
        NO_REVOCATION,
        REQUIRE_REVINFO,
        CertRevTrustPolicy,
        PKIXValidationParams,
    )
    from pyhanko_certvalidator.revinfo.validate_crl import verify_crl

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

    if require_revocation:
        checking = REQUIRE_REVINFO
    elif crls:
        checking = LEGACY_POLICY_MAP["soft-fail"]  # used when validating the paths of CRL issuers
    else:
        checking = NO_REVOCATION
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

    async def work() -> Any:
        context = ValidationContext(
            trust_roots=roots,
            other_certs=others,
            moment=at,
            allow_fetching=False,
            crls=crl_ders,
            revinfo_policy=CertRevTrustPolicy(checking, retroactive_revinfo=True),
            time_tolerance=dt.timedelta(0),
            algorithm_usage_policy=_legacy_policy() if legacy_algorithms else None,
        )
        validator = CertificateValidator(leaf, validation_context=context, pkix_params=params)
        path = await validator.async_validate_path()
        if crls and not require_revocation:
            for cert in list(path.iter_certs(include_root=False)):
                try:
                    await verify_crl(cert, path, context)
                except CRLNoMatchesError:
                    continue  # no CRL given for it: nothing to hold against it
                except Exception as exc:
                    raise _CrlVerdict(cert, exc) from exc
        return path

    try:
        vpath = _run(work)
    except _CrlVerdict as verdict:
        return _crl_outcome(verdict, certificate, back)
    except Exception as exc:  # the library raises many types; every one of them means "not trusted"
        return _failure_outcome(exc, certificate, anchors, intermediates, back)
    certs = [back(c) for c in vpath.iter_certs(include_root=True)]  # a validated path starts at its anchor
    return EngineOutcome(tuple(reversed(certs)), certs[0])


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


def _crl_outcome(
    verdict: _CrlVerdict, leaf: x509.Certificate, back: Callable[[Any], x509.Certificate]
) -> EngineOutcome:
    from pyhanko_certvalidator import errors as e

    exc = verdict.error
    cert = back(verdict.certificate)
    path_certs = _path_certs(exc, back) if isinstance(exc, e.PathValidationError) else []
    path = tuple(reversed(path_certs)) or (leaf,)
    anchor = path_certs[0] if len(path_certs) > 1 else None
    who = _who(cert, leaf)
    if isinstance(exc, e.RevokedError):
        return EngineOutcome(path, anchor, PathFailure.REVOKED, _revoked_reason(who, exc))
    failures = getattr(exc, "failures", None)
    if failures:  # (message, CRL) pairs
        detail = "; ".join(_clean(str(f[0] if isinstance(f, tuple) else f)) for f in failures)
    else:
        detail = _clean(str(exc))
    return EngineOutcome(
        path,
        anchor,
        PathFailure.REVOCATION_UNKNOWN,
        f"the revocation status of {who} is unknown: the CRL given for it cannot be used ({detail})",
    )


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
