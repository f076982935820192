"""Fetching revocation data for a certificate path: OCSP from the AIA, CRLs from the distribution points.

:class:`RevocationFetcher` implements :class:`smimekit.pki.RevocationFetcher`. For each certificate of a
path but the anchor it asks the OCSP responder named in the Authority Information Access extension (a
request built with ``cryptography.x509.ocsp``, with a nonce when asked); when that gives no usable answer
it gets the CRLs named by the CRL distribution points, and the delta CRLs named by the freshest-CRL
extension (of the certificate or of its CRL). Only http(s) URLs are fetched (see :mod:`smimekit.net.http`).

What was fetched is cached in memory and, when a store is given, in the store: a CRL is reused until its
nextUpdate, an OCSP response until its nextUpdate. Nothing is decided here: the data goes to
``smimekit.pki.validate_signer``, which checks signatures, authority and freshness. A fetch that fails is a
problem sentence in the result, never an exception: the status then stays unknown.

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
from smimekit.pki.revocation import RevocationData, ocsp_response_problem
from smimekit.store.api import Store

__all__ = ["RevocationFetcher", "crl_urls", "delta_crl_urls", "ocsp_urls"]

_log = logging.getLogger(__name__)

#: A CRL or OCSP response without nextUpdate is reused for this long.
NO_NEXT_UPDATE_REUSE = dt.timedelta(hours=1)
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
    this_update: dt.datetime
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
                if self._use_ocsp:
                    answer = self._first_ocsp(cert, issuer, now, problems)
                    if answer is not None:
                        der, url = answer
                        responses.append(der)
                        origins[der] = url
                        continue
                if self._use_crl:
                    for crl, url in self._crls_for(cert, now, problems):
                        if crl not in crls:
                            crls.append(crl)
                        origins[crl.public_bytes(serialization.Encoding.DER)] = url
            except (ValueError, TypeError) as exc:  # an odd certificate or response: say so, do not raise
                problems.append(f"revocation data for {cert.subject.rfc4514_string()} cannot be used ({exc})")
        return RevocationData(tuple(crls), tuple(responses), origins, tuple(dict.fromkeys(problems)))

    # ------------------------------------------------------------------------------------------ OCSP

    def _first_ocsp(
        self, cert: x509.Certificate, issuer: x509.Certificate, now: dt.datetime, problems: list[str]
    ) -> tuple[bytes, str] | None:
        urls = ocsp_urls(cert)
        if not urls:
            return None
        fingerprint = cert.fingerprint(hashes.SHA256()).hex()
        cached = self._cached_ocsp(fingerprint, cert, issuer, now)
        if cached is not None:
            return cached, urls[0]
        for url in urls[:MAX_URLS]:
            try:
                der = self._ask(url, cert, issuer, now)
            except FetchError as exc:
                problems.append(exc.reason)
                continue
            self._keep_ocsp(fingerprint, der)
            return der, url
        return None

    def _ask(self, url: str, cert: x509.Certificate, issuer: x509.Certificate, now: dt.datetime) -> bytes:
        builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1())
        nonce = os.urandom(_NONCE_SIZE) if self._nonce else None
        if nonce is not None:
            builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
        request = builder.build().public_bytes(serialization.Encoding.DER)
        der = self._client.post(url, request, content_type="application/ocsp-request").body
        problem = ocsp_response_problem(der, certificate=cert, issuer=issuer, at=now, nonce=nonce)
        if problem is None and _single_status(der, cert) is ocsp.OCSPCertStatus.UNKNOWN:
            problem = "the OCSP responder does not know the certificate"
        if problem is not None:
            raise FetchError(f"OCSP {url}: {problem}")
        return der

    def _cached_ocsp(
        self, fingerprint: str, cert: x509.Certificate, issuer: x509.Certificate, now: dt.datetime
    ) -> bytes | None:
        with self._lock:
            entry = self._ocsp.get(fingerprint)
        der: bytes | None = None
        if entry is not None and _still_fresh(entry.this_update, entry.next_update, now):
            der = entry.der
        elif self._store is not None:
            try:
                der = self._store.ocsp_response(fingerprint, now=now)
            except SmimekitError as exc:
                _log.warning("the OCSP cache of the store cannot be read: %s", exc)
        if der is None:
            return None
        if ocsp_response_problem(der, certificate=cert, issuer=issuer, at=now) is not None:
            return None
        return der

    def _keep_ocsp(self, fingerprint: str, der: bytes) -> None:
        response = ocsp.load_der_ocsp_response(der)  # already screened: readable and successful
        entry = _CachedOcsp(der, response.this_update_utc, response.next_update_utc)
        with self._lock:
            _bounded_put(self._ocsp, fingerprint, entry)
        if self._store is not None:
            try:
                self._store.put_ocsp_response(
                    fingerprint, der, this_update=entry.this_update, next_update=entry.next_update
                )
            except SmimekitError as exc:
                _log.warning("the OCSP response cannot be cached in the store: %s", exc)

    # ------------------------------------------------------------------------------------------ CRLs

    def _crls_for(
        self, cert: x509.Certificate, now: dt.datetime, problems: list[str]
    ) -> list[tuple[x509.CertificateRevocationList, str]]:
        out: list[tuple[x509.CertificateRevocationList, str]] = []
        base: x509.CertificateRevocationList | None = None
        urls = crl_urls(cert)
        for url in urls[:MAX_URLS]:
            try:
                base = self._crl(url, now)
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
                out.append((self._crl(url, now), url))
                break
            except FetchError as exc:
                problems.append(exc.reason)
        return out

    def _crl(self, url: str, now: dt.datetime) -> x509.CertificateRevocationList:
        with self._lock:
            entry = self._crls.get(url)
        if entry is not None and _still_fresh(entry.fetched, entry.crl.next_update_utc, now):
            return entry.crl
        if self._store is not None:
            try:
                stored = self._store.crl_for_url(url)
            except SmimekitError as exc:
                _log.warning("the CRL cache of the store cannot be read: %s", exc)
                stored = None
            if stored is not None and _still_fresh(stored[1], stored[0].next_update_utc, now):
                with self._lock:
                    _bounded_put(self._crls, url, _CachedCrl(stored[0], stored[1]))
                return stored[0]
        if not url.lower().startswith(("http://", "https://")):
            raise FetchError(f"the CRL at {url} is not on http(s)")
        body = self._client.get(url).body
        crl = _parse_crl(url, body)
        with self._lock:
            _bounded_put(self._crls, url, _CachedCrl(crl, now))
        if self._store is not None:
            try:
                self._store.put_crl(crl, url=url)
            except SmimekitError as exc:
                _log.warning("the CRL cannot be cached in the store: %s", exc)
        return crl


def _bounded_put(cache: dict[str, _T], key: str, value: _T) -> None:
    cache.pop(key, None)
    cache[key] = value
    while len(cache) > MAX_CACHED:
        del cache[next(iter(cache))]


def _still_fresh(fetched: dt.datetime, next_update: dt.datetime | None, now: dt.datetime) -> bool:
    if next_update is not None:
        return now < next_update
    return fetched <= now < fetched + NO_NEXT_UPDATE_REUSE


def _parse_crl(url: str, body: bytes) -> x509.CertificateRevocationList:
    try:
        if body.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_crl(body)
        return x509.load_der_x509_crl(body)
    except ValueError as exc:
        raise FetchError(f"{url} did not serve a CRL ({exc})") from None


def _single_status(der: bytes, cert: x509.Certificate) -> ocsp.OCSPCertStatus | None:
    response = ocsp.load_der_ocsp_response(der)
    for single in response.responses:
        if single.serial_number == cert.serial_number:
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
