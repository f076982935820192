"""Revocation data for the gateway: fetched online, cached in the store, and never slower than a budget.

:class:`BoundedFetcher` is a :class:`smimekit.pki.RevocationFetcher` for the worker threads of the gateway.
It hands each request to a small pool of fetching threads, each with its own
:class:`smimekit.net.revocation.RevocationFetcher` on its own store connection (the store is the shared
cache of CRLs and OCSP responses), and waits at most ``budget`` seconds: a responder that is slow or a
certificate that names many URLs then costs one message no more than that, and the status stays
*unknown* (SOFT trusts it and says so; HARD does not). A fetch that outlives its budget finishes in the
background, so its answer is in the cache for the next message.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime as dt
import threading
from collections.abc import Callable, Sequence

from cryptography import x509

from smimekit.errors import SmimekitError
from smimekit.net.http import HttpClient
from smimekit.net.revocation import RevocationFetcher as OnlineFetcher
from smimekit.pki import RevocationData, RevocationFetcher
from smimekit.store import Store

__all__ = ["FETCH_BUDGET", "FETCH_THREADS", "BoundedFetcher", "current_crls"]

#: Seconds a message waits at most for the revocation data of one certificate path.
FETCH_BUDGET = 10.0
#: Fetches running at once (more wait in line, within their budget).
FETCH_THREADS = 4
#: Each HTTP request: seconds per connection and read, and for the whole exchange.
HTTP_TIMEOUT = 5.0
HTTP_DEADLINE = 10.0


def current_crls(store: Store, now: dt.datetime) -> list[x509.CertificateRevocationList]:
    """The CRLs cached in ``store`` that are current at ``now`` (nextUpdate after it). A CRL past its
    nextUpdate is left out: given to path validation it would make the certificates it covers untrusted,
    and the fetcher gets a fresh one from its distribution point instead."""
    found = []
    for crl in store.crls():
        next_update = crl.next_update_utc
        if next_update is None or next_update > now:  # no nextUpdate: path validation judges it
            found.append(crl)
    return found


class BoundedFetcher:
    """Fetches revocation data (OCSP, then CRLs) for a path within ``budget`` seconds; safe to share
    between threads. ``open_store`` gives each fetching thread its store connection (the cache);
    ``make`` builds the fetcher of one thread (default: :class:`~smimekit.net.revocation.RevocationFetcher`
    with an HTTP client bounded by :data:`HTTP_TIMEOUT` and :data:`HTTP_DEADLINE`)."""

    def __init__(
        self,
        open_store: Callable[[], Store],
        *,
        budget: float = FETCH_BUDGET,
        threads: int = FETCH_THREADS,
        make: Callable[[Store], RevocationFetcher] | None = None,
    ) -> None:
        if not budget > 0 or threads < 1:
            raise ValueError("the fetch budget and the number of fetching threads must be positive")
        self.budget = budget
        self._open_store = open_store
        self._make = make or (
            lambda store: OnlineFetcher(
                store=store, client=HttpClient(timeout=HTTP_TIMEOUT, deadline=HTTP_DEADLINE)
            )
        )
        self._pool = concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="smimekit-rev")
        self._local = threading.local()
        self._stores: list[Store] = []
        self._lock = threading.Lock()

    def fetch(self, path: Sequence[x509.Certificate], *, now: dt.datetime) -> RevocationData:
        """Revocation data for ``path`` at ``now``; what could not be had within the budget is a problem
        sentence in the result, never an exception."""
        try:
            future = self._pool.submit(self._fetch, tuple(path), now)
        except RuntimeError:  # closed: the gateway is stopping
            return RevocationData(problems=("revocation data was not fetched: the gateway is stopping",))
        try:
            return future.result(timeout=self.budget)
        except concurrent.futures.TimeoutError:
            return RevocationData(
                problems=(f"revocation data could not be fetched within {self.budget:g} seconds",)
            )
        except SmimekitError as exc:  # the store failed: the status stays unknown
            return RevocationData(problems=(f"revocation data could not be fetched: {exc}",))

    def _fetch(self, path: tuple[x509.Certificate, ...], now: dt.datetime) -> RevocationData:
        fetcher: RevocationFetcher | None = getattr(self._local, "fetcher", None)
        if fetcher is None:
            store = self._open_store()
            with self._lock:
                self._stores.append(store)
            fetcher = self._make(store)
            self._local.fetcher = fetcher
        return fetcher.fetch(path, now=now)

    def close(self) -> None:
        """Stop the fetching threads (a fetch in progress ends within its HTTP deadline) and close their
        store connections."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            stores, self._stores = self._stores, []
        for store in stores:
            with contextlib.suppress(Exception):
                store.close()
