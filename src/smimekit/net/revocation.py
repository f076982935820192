"""Fetching revocation data for a certificate path: OCSP from the AIA, CRLs from the distribution points.

:class:`RevocationFetcher` implements :class:`smimekit.pki.RevocationFetcher`. For each certificate of a
path but the anchor it asks the OCSP responder named in the Authority Information Access extension (a
request built with ``cryptography.x509.ocsp``, with a nonce when asked); when that gives no usable answer
it gets the CRLs named by the CRL distribution points, and the delta CRLs named by the freshest-CRL
extension (of the certificate or of its CRL). Only http(s) URLs are fetched (see :mod:`smimekit.net.http`).

Nothing unverified is kept or handed on: an OCSP response must pass
:func:`smimekit.pki.revocation.verified_ocsp_problem` (certID, time, nonce, signature and the responder's
authorisation, checked by path validation with that response alone) and a CRL
:func:`smimekit.pki.revocation.crl_problem` (issued and signed by the issuing CA of the path, not dated in
the future); an OCSP answer that cannot be used makes the fetcher try the CRLs. What passed is cached in
memory and, when a store is given, in the store, and reused until its nextUpdate but never longer than
``MAX_REUSE`` after it was fetched; what comes back from the store is checked again. A fetch that fails is
a problem sentence in the result, never an exception: the status then stays unknown. The data still goes
to ``smimekit.pki.validate_signer``, which decides. Indirect CRLs (signed by another key than the
issuing CA's) are not fetched.

Use::

    from smimekit.net.revocation import RevocationFetcher
    from smimekit.store import open_store

    with open_store(path) as store:
        fetcher = RevocationFetcher(store=store)
        report = smimekit.smime.verify(message, now=now, anchors=anchors, fetcher=fetcher)
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID

from smimekit.errors import FetchError, SmimekitError
from smimekit.net.http import HttpClient
from smimekit.pki.revocation import (
    OCSP_TIME_TOLERANCE,
    RevocationData,
    crl_problem,
    ocsp_response_problem,
    single_response_matches,
    verified_ocsp_problem,
)
from smimekit.store.api import Store

__all__ = ["RevocationFetcher", "crl_urls", "delta_crl_urls", "ocsp_urls"]

_log = logging.getLogger(__name__)

#: A CRL or OCSP response without nextUpdate is reused for this long.
NO_NEXT_UPDATE_REUSE = dt.timedelta(hours=1)
#: Whatever nextUpdate it claims, a cached CRL or OCSP response is fetched again after this long.
MAX_REUSE = dt.timedelta(days=1)
#: At most this many URLs of each kind are tried per certificate (a hostile certificate may list many).
MAX_URLS = 4
#: The memory cache keeps at most this many CRLs and this many OCSP responses (the oldest go first).
MAX_CACHED = 512
_NONCE_SIZE = 16
_T = TypeVar("_T")


@dataclass(frozen=True)
class _CachedCrl:
    crl: x509.CertificateRevocationList
    fetched: dt.datetime


@dataclass(frozen=True)
class _CachedOcsp:
    der: bytes
    fetched: dt.datetime
    next_update: dt.datetime | None


class RevocationFetcher:
    """Fetches CRLs and OCSP responses over HTTP, with a cache in memory and in ``store`` when given.

    ``client`` bounds each request (timeout, size; default :class:`~smimekit.net.http.HttpClient`).
    ``nonce`` sends an OCSP nonce and then refuses a response that does not echo it (many responders
    serve pre-signed responses without one, so it is off by default). ``ocsp`` and ``crl`` turn either
    kind off. Safe to share between threads.
    """

    def __init__(
        self,
        *,
        store: Store | None = None,
        client: HttpClient | None = None,
        nonce: bool = False,
        ocsp: bool = True,
        crl: bool = True,
    ) -> None:
        self._store = store
        self._client = client or HttpClient()
        self._nonce = nonce
        self._use_ocsp = ocsp
        self._use_crl = crl
        self._lock = threading.Lock()
        self._crls: dict[str, _CachedCrl] = {}
        self._ocsp: dict[str, _CachedOcsp] = {}

    def fetch(self, path: Sequence[x509.Certificate], *, now: dt.datetime) -> RevocationData:
        """Revocation data for every certificate of ``path`` (leaf first, anchor last) at ``now``.

        Never raises for what cannot be fetched: ``problems`` says what went wrong.
        """
        if now.tzinfo is None:
            raise FetchError("now must be a timezone-aware datetime")
        crls: list[x509.CertificateRevocationList] = []
        responses: list[bytes] = []
        origins: dict[bytes, str] = {}
        problems: list[str] = []
        certs = list(path)
        for index, cert in enumerate(certs[:-1]):
            issuer = certs[index + 1]
            try:
                rejected: list[tuple[bytes, str]] = []
                if self._use_ocsp:
                    answer = self._first_ocsp(certs, index, now, problems, rejected)
                    if answer is not None:
                        der, url = answer
                        responses.append(der)
                        origins[der] = url
                        continue
                found = self._crls_for(cert, issuer, now, problems) if self._use_crl else []
                for crl, url in found:
                    if crl not in crls:
                        crls.append(crl)
                    origins[crl.public_bytes(serialization.Encoding.DER)] = url
                if not found and rejected:
                    # Nothing better: the response that failed verification goes to validation (never to
                    # a cache), which refuses it and says why, rather than the status being merely unknown.
                    der, url = rejected[0]
                    responses.append(der)
                    origins[der] = url
            except (ValueError, TypeError) as exc:  # an odd certificate or response: say so, do not raise
                problems.append(f"revocation data for {cert.subject.rfc4514_string()} cannot be used ({exc})")
        return RevocationData(tuple(crls), tuple(responses), origins, tuple(dict.fromkeys(problems)))

    # ------------------------------------------------------------------------------------------ OCSP

    def _first_ocsp(
        self,
        certs: list[x509.Certificate],
        index: int,
        now: dt.datetime,
        problems: list[str],
        rejected: list[tuple[bytes, str]],
    ) -> tuple[bytes, str] | None:
        """A verified OCSP response for ``certs[index]`` and its URL, or None; responses about the
        certificate that failed verification (signature, responder) are added to ``rejected``."""
        cert = certs[index]
        urls = ocsp_urls(cert)
        if not urls:
            return None
        fingerprint = cert.fingerprint(hashes.SHA256()).hex()
        # a response verified for one path (issuer and anchor) is reused for that path only
        memory_key = "".join(
            c.fingerprint(hashes.SHA256()).hex() for c in (cert, certs[index + 1], certs[-1])
        )
        cached = self._cached_ocsp(memory_key, fingerprint, certs, index, now)
        if cached is not None:
            return cached, urls[0]
        for url in urls[:MAX_URLS]:
            try:
                der = self._ask(url, certs, index, now)
            except _Unverified as exc:
                problems.append(exc.reason)
                rejected.append((exc.der, url))
                continue
            except FetchError as exc:
                problems.append(exc.reason)
                continue
            self._keep_ocsp(memory_key, fingerprint, der, now)
            return der, url
        return None

    def _ask(self, url: str, certs: list[x509.Certificate], index: int, now: dt.datetime) -> bytes:
        cert, issuer = certs[index], certs[index + 1]
        builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1())
        nonce = os.urandom(_NONCE_SIZE) if self._nonce else None
        if nonce is not None:
            builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
        request = builder.build().public_bytes(serialization.Encoding.DER)
        der = self._client.post(url, request, content_type="application/ocsp-request").body
        problem = ocsp_response_problem(der, certificate=cert, issuer=issuer, at=now, nonce=nonce)
        if problem is None and _single_status(der, cert, issuer) is ocsp.OCSPCertStatus.UNKNOWN:
            problem = "the OCSP responder does not know the certificate"
        if problem is None:  # only now the costly part: signature and the responder's authorisation
            problem = verified_ocsp_problem(der, path=certs, index=index, at=now, nonce=nonce)
            if problem is not None:
                raise _Unverified(f"OCSP {url}: {problem}", der)
        if problem is not None:
            raise FetchError(f"OCSP {url}: {problem}")
        return der

    def _cached_ocsp(
        self, memory_key: str, fingerprint: str, certs: list[x509.Certificate], index: int, now: dt.datetime
    ) -> bytes | None:
        cert, issuer = certs[index], certs[index + 1]
        with self._lock:
            entry = self._ocsp.get(memory_key)
        # verified when it was fetched, for this very path; its times are checked again
        if (
            entry is not None
            and _still_fresh(entry.fetched, entry.next_update, now)
            and ocsp_response_problem(entry.der, certificate=cert, issuer=issuer, at=now) is None
        ):
            return entry.der
        if self._store is None:
            return None
        try:
            der = self._store.ocsp_response(fingerprint, now=now)
        except SmimekitError as exc:
            _log.warning("the OCSP cache of the store cannot be read: %s", exc)
            return None
        if der is None:
            return None
        try:
            this_update = ocsp.load_der_ocsp_response(der).this_update_utc
        except ValueError:
            return None
        if now - this_update > MAX_REUSE:
            return None
        # the store may hold what another process (or an older smimekit) put there: verify it again
        if verified_ocsp_problem(der, path=certs, index=index, at=now) is not None:
            return None
        if _single_status(der, cert, issuer) is ocsp.OCSPCertStatus.UNKNOWN:
            return None
        self._remember_ocsp(memory_key, der, now)
        return der

    def _remember_ocsp(self, memory_key: str, der: bytes, now: dt.datetime) -> ocsp.OCSPResponse:
        response = ocsp.load_der_ocsp_response(der)  # already verified: readable and successful
        entry = _CachedOcsp(der, now, response.next_update_utc)
        with self._lock:
            _bounded_put(self._ocsp, memory_key, entry)
        return response

    def _keep_ocsp(self, memory_key: str, fingerprint: str, der: bytes, now: dt.datetime) -> None:
        response = self._remember_ocsp(memory_key, der, now)
        if self._store is not None:
            try:
                self._store.put_ocsp_response(
                    fingerprint,
                    der,
                    this_update=response.this_update_utc,
                    next_update=response.next_update_utc,
                )
            except SmimekitError as exc:
                _log.warning("the OCSP response cannot be cached in the store: %s", exc)

    # ------------------------------------------------------------------------------------------ CRLs

    def _crls_for(
        self, cert: x509.Certificate, issuer: x509.Certificate, now: dt.datetime, problems: list[str]
    ) -> list[tuple[x509.CertificateRevocationList, str]]:
        out: list[tuple[x509.CertificateRevocationList, str]] = []
        base: x509.CertificateRevocationList | None = None
        urls = crl_urls(cert)
        for url in urls[:MAX_URLS]:
            try:
                base = self._crl(url, issuer, now)
            except FetchError as exc:
                problems.append(exc.reason)
                continue
            out.append((base, url))
            break
        if urls and base is None and not any(u.startswith(("http://", "https://")) for u in urls):
            problems.append("the certificate's CRL distribution points name no http(s) URL")
        deltas = delta_crl_urls(cert) or (delta_crl_urls(base) if base is not None else [])
        for url in deltas[:MAX_URLS]:
            try:
                out.append((self._crl(url, issuer, now), url))
                break
            except FetchError as exc:
                problems.append(exc.reason)
        return out

    def _crl(self, url: str, issuer: x509.Certificate, now: dt.datetime) -> x509.CertificateRevocationList:
        """The CRL at ``url``, issued and signed by ``issuer``: from the cache when fresh, else fetched.

        FetchError when it cannot be fetched or is not ``issuer``'s (nothing unverified is cached).
        """
        with self._lock:
            entry = self._crls.get(url)
        if (
            entry is not None
            and _still_fresh(entry.fetched, entry.crl.next_update_utc, now)
            and crl_problem(entry.crl, issuer=issuer, at=now) is None
        ):
            return entry.crl
        if self._store is not None:
            try:
                stored = self._store.crl_for_url(url)
            except SmimekitError as exc:
                _log.warning("the CRL cache of the store cannot be read: %s", exc)
                stored = None
            if (
                stored is not None
                and _still_fresh(stored[1], stored[0].next_update_utc, now)
                and crl_problem(stored[0], issuer=issuer, at=now) is None
            ):
                with self._lock:
                    _bounded_put(self._crls, url, _CachedCrl(stored[0], stored[1]))
                return stored[0]
        if not url.lower().startswith(("http://", "https://")):
            raise FetchError(f"the CRL at {url} is not on http(s)")
        body = self._client.get(url).body
        crl = _parse_crl(url, body)
        problem = crl_problem(crl, issuer=issuer, at=now)
        if problem is not None:
            raise FetchError(f"CRL {url}: {problem}")
        with self._lock:
            _bounded_put(self._crls, url, _CachedCrl(crl, now))
        if self._store is not None:
            try:
                self._store.put_crl(crl, url=url)
            except SmimekitError as exc:
                _log.warning("the CRL cannot be cached in the store: %s", exc)
        return crl


class _Unverified(FetchError):
    """An OCSP response about the certificate whose signature or responder did not verify."""

    def __init__(self, reason: str, der: bytes) -> None:
        super().__init__(reason)
        self.der = der


def _bounded_put(cache: dict[str, _T], key: str, value: _T) -> None:
    cache.pop(key, None)
    cache[key] = value
    while len(cache) > MAX_CACHED:
        del cache[next(iter(cache))]


def _still_fresh(fetched: dt.datetime, next_update: dt.datetime | None, now: dt.datetime) -> bool:
    # (the store records when it stored, by its own clock: allow for the caller's ``now`` being earlier)
    if not fetched - OCSP_TIME_TOLERANCE <= now < fetched + MAX_REUSE:
        return False
    if next_update is not None:
        return now < next_update
    return now < fetched + NO_NEXT_UPDATE_REUSE


def _parse_crl(url: str, body: bytes) -> x509.CertificateRevocationList:
    try:
        if body.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_crl(body)
        return x509.load_der_x509_crl(body)
    except ValueError as exc:
        raise FetchError(f"{url} did not serve a CRL ({exc})") from None


def _single_status(
    der: bytes, cert: x509.Certificate, issuer: x509.Certificate
) -> ocsp.OCSPCertStatus | None:
    response = ocsp.load_der_ocsp_response(der)
    for single in response.responses:
        if single_response_matches(single, cert, issuer):
            return single.certificate_status
    return None


def ocsp_urls(cert: x509.Certificate) -> list[str]:
    """The http(s) OCSP responder URLs of the certificate's Authority Information Access extension."""
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except (x509.ExtensionNotFound, ValueError):
        return []
    return [
        str(d.access_location.value)
        for d in aia
        if d.access_method == AuthorityInformationAccessOID.OCSP
        and isinstance(d.access_location, x509.UniformResourceIdentifier)
        and str(d.access_location.value).lower().startswith(("http://", "https://"))
    ]


def _uris(points: object) -> list[str]:
    out: list[str] = []
    for point in points:  # type: ignore[attr-defined]
        for name in point.full_name or ():
            if isinstance(name, x509.UniformResourceIdentifier):
                out.append(str(name.value))
    http = [u for u in out if u.lower().startswith(("http://", "https://"))]
    return http + [u for u in out if u not in http]


def crl_urls(cert: x509.Certificate) -> list[str]:
    """The URIs of the certificate's CRL distribution points, http(s) first."""
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except (x509.ExtensionNotFound, ValueError):
        return []
    return _uris(points)


def delta_crl_urls(item: x509.Certificate | x509.CertificateRevocationList) -> list[str]:
    """The http(s) URIs of a certificate's or a CRL's freshest-CRL extension (where delta CRLs live)."""
    try:
        points = item.extensions.get_extension_for_class(x509.FreshestCRL).value
    except (x509.ExtensionNotFound, ValueError):
        return []
    return [u for u in _uris(points) if u.lower().startswith(("http://", "https://"))]
