"""smimekit.net.http and smimekit.net.revocation: fetching CRLs and OCSP responses from servers on
127.0.0.1, the limits of the HTTP client, and the caches (in memory and in the store)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp as x509_ocsp

from smimekit.errors import FetchError, UsageError
from smimekit.net.http import HttpClient
from smimekit.net.revocation import RevocationFetcher, crl_urls, delta_crl_urls, ocsp_urls
from smimekit.pki import RevocationData, RevocationMode, validate_signer
from smimekit.pki import RevocationFetcher as FetcherProtocol
from smimekit.store import open_store
from tests.pki._revocation_pki import (
    CrlServer,
    QuietHandler,
    crl_server,
    der,
    free_port,
    issue,
    make_crl,
    ocsp_responder,
    utcnow,
)
from tests.pki._revocation_pki import _serving as serving
from tests.testpki import Identity, make_ca


@pytest.fixture(scope="module")
def root() -> Identity:
    return make_ca("Fetcher Test Root")


@pytest.fixture
def server() -> Iterator[CrlServer]:
    with crl_server() as running:
        yield running


# ---------------------------------------------------------------------------------------------- HTTP


def test_http_get_and_errors(server: CrlServer) -> None:
    server.files["/a"] = b"x" * 100
    client = HttpClient(timeout=5, max_size=100)
    assert client.get(server.url("/a")).body == b"x" * 100
    server.files["/big"] = b"x" * 101
    with pytest.raises(FetchError, match="over the limit"):
        client.get(server.url("/big"))
    with pytest.raises(FetchError, match="HTTP 404"):
        client.get(server.url("/missing"))
    with pytest.raises(FetchError, match="cannot be reached"):
        client.get(f"http://127.0.0.1:{free_port()}/x")
    for url in ("file:///etc/passwd", "ftp://127.0.0.1/x", "ldap://127.0.0.1/cn=x", "http:///nohost"):
        with pytest.raises(FetchError):
            client.get(url)
    with pytest.raises(UsageError):
        HttpClient(timeout=0)


def test_http_refuses_a_redirect_to_a_file() -> None:
    class Redirect(QuietHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", "file:///etc/passwd")
            self.end_headers()

    with serving(Redirect) as port, pytest.raises(FetchError, match="file"):
        HttpClient(timeout=5).get(f"http://127.0.0.1:{port}/")


def test_http_times_out() -> None:
    import threading

    release = threading.Event()

    class Slow(QuietHandler):
        def do_GET(self) -> None:
            release.wait(5)

    with serving(Slow) as port:
        try:
            with pytest.raises(FetchError):
                HttpClient(timeout=0.3).get(f"http://127.0.0.1:{port}/")
        finally:
            release.set()


def test_http_deadline_stops_a_trickling_server() -> None:
    import time

    class Trickle(QuietHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            for _ in range(40):  # a byte every 50 ms: never idle long enough for the timeout
                try:
                    self.wfile.write(b"x")
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.05)

    with serving(Trickle) as port:
        started = time.monotonic()
        with pytest.raises(FetchError, match="within"):
            HttpClient(timeout=1, deadline=0.5).get(f"http://127.0.0.1:{port}/")
        assert time.monotonic() - started < 1.5


# ---------------------------------------------------------------------------------------------- fetcher


def test_urls_are_read_from_the_extensions(root: Identity) -> None:
    cert = issue(
        root,
        "U",
        email="u@example.com",
        crl_url="http://c.example/a.crl",
        delta_url="http://c.example/d.crl",
        ocsp_url="http://o.example/",
    ).cert
    assert (crl_urls(cert), delta_crl_urls(cert), ocsp_urls(cert)) == (
        ["http://c.example/a.crl"],
        ["http://c.example/d.crl"],
        ["http://o.example/"],
    )
    assert isinstance(RevocationFetcher(), FetcherProtocol)


def test_crl_is_reused_until_its_next_update(root: Identity, server: CrlServer) -> None:
    alice = issue(root, "Alice", email="alice@example.com", crl_url=server.url("/root.crl"))
    now = utcnow()
    server.files["/root.crl"] = der(make_crl(root, next_update=now + dt.timedelta(hours=2)))
    fetcher = RevocationFetcher()
    first = fetcher.fetch([alice.cert, root.cert], now=now)
    assert len(first.crls) == 1 and first.origins[der(first.crls[0])] == server.url("/root.crl")
    fetcher.fetch([alice.cert, root.cert], now=now + dt.timedelta(hours=1))
    assert server.hits["/root.crl"] == 1
    fetcher.fetch([alice.cert, root.cert], now=now + dt.timedelta(hours=3))  # past nextUpdate: fetched again
    assert server.hits["/root.crl"] == 2


def test_crl_cache_in_the_store_survives_the_fetcher(
    root: Identity, server: CrlServer, tmp_path: Path
) -> None:
    alice = issue(root, "Alice", email="alice@example.com", crl_url=server.url("/root.crl"))
    server.files["/root.crl"] = der(make_crl(root))
    now = utcnow()
    with open_store(tmp_path / "store.db") as store:
        RevocationFetcher(store=store).fetch([alice.cert, root.cert], now=now)
    with open_store(tmp_path / "store.db") as store:
        again = RevocationFetcher(store=store).fetch([alice.cert, root.cert], now=now)
        assert [der(c) for c in again.crls] == [server.files["/root.crl"]]
        assert store.crl_for_url(server.url("/root.crl")) is not None
    assert server.hits["/root.crl"] == 1


def test_ocsp_response_is_cached_in_memory_and_in_the_store(root: Identity, tmp_path: Path) -> None:
    with ocsp_responder(root) as responder:
        alice = issue(root, "Alice", email="alice@example.com", ocsp_url=responder.url)
        responder.add(alice.cert)
        now = utcnow()
        with open_store(tmp_path / "store.db") as store:
            fetcher = RevocationFetcher(store=store, nonce=True)
            data = fetcher.fetch([alice.cert, root.cert], now=now)
            assert len(data.ocsp_responses) == 1 and data.problems == ()
            fetcher.fetch([alice.cert, root.cert], now=now)
            assert responder.requests == 1
        with open_store(tmp_path / "store.db") as store:
            cached = RevocationFetcher(store=store).fetch([alice.cert, root.cert], now=now)
            assert cached.ocsp_responses == data.ocsp_responses
        assert responder.requests == 1
        trust = validate_signer(
            alice.cert,
            anchors=[root.cert],
            signing_time=None,
            now=now,
            ocsp_responses=cached.ocsp_responses,
            origins=cached.origins,
        )
        assert trust.trusted and trust.now.leaf_revocation is not None
        assert trust.now.leaf_revocation.source == f"OCSP {responder.url}"


def test_ocsp_falls_back_to_the_crl(root: Identity, server: CrlServer) -> None:
    dead = f"http://127.0.0.1:{free_port()}/ocsp"
    alice = issue(root, "Alice", email="alice@example.com", ocsp_url=dead, crl_url=server.url("/root.crl"))
    server.files["/root.crl"] = der(make_crl(root))
    data = RevocationFetcher().fetch([alice.cert, root.cert], now=utcnow())
    assert data.ocsp_responses == () and len(data.crls) == 1
    assert any(dead in p for p in data.problems)


def test_a_replayed_ocsp_response_is_refused(root: Identity) -> None:
    """A man in the middle that forwards the first request to the real responder, then replays its answer."""
    recorded: list[bytes] = []

    with ocsp_responder(root) as real:

        class Replay(QuietHandler):
            def do_POST(self) -> None:
                request = self.read_body()
                if not recorded:
                    recorded.append(real.answer(request))
                self.send_body(recorded[0])

        with serving(Replay) as port:
            url = f"http://127.0.0.1:{port}/"
            alice = issue(root, "Alice", email="alice@example.com", ocsp_url=url)
            real.add(alice.cert)
            first = RevocationFetcher(nonce=True).fetch([alice.cert, root.cert], now=utcnow())
            assert len(first.ocsp_responses) == 1 and first.problems == ()
            replayed = RevocationFetcher(nonce=True).fetch([alice.cert, root.cert], now=utcnow())
            assert replayed.ocsp_responses == () and "nonce" in " ".join(replayed.problems)
            bob = issue(root, "Bob", email="bob@example.com", ocsp_url=url)
            wrong = RevocationFetcher().fetch([bob.cert, root.cert], now=utcnow())  # about alice, not bob
            assert wrong.ocsp_responses == () and "not about this certificate" in " ".join(wrong.problems)
    assert real.requests == 1


def test_garbage_is_a_problem_not_an_exception(root: Identity, server: CrlServer) -> None:
    alice = issue(root, "Alice", email="alice@example.com", crl_url=server.url("/junk.crl"))
    server.files["/junk.crl"] = b"this is not a CRL"
    data = RevocationFetcher().fetch([alice.cert, root.cert], now=utcnow())
    assert data.crls == () and data.ocsp_responses == ()
    assert len(data.problems) == 1 and data.problems[0].startswith(
        f"{server.url('/junk.crl')} did not serve a CRL"
    )
    assert isinstance(data, RevocationData)


def test_pem_crl_is_accepted(root: Identity, server: CrlServer) -> None:
    alice = issue(root, "Alice", email="alice@example.com", crl_url=server.url("/root.pem"))
    crl = make_crl(root)
    server.files["/root.pem"] = crl.public_bytes(serialization.Encoding.PEM)
    data = RevocationFetcher().fetch([alice.cert, root.cert], now=utcnow())
    assert [der(c) for c in data.crls] == [der(crl)]


def test_ldap_only_distribution_point_is_reported(root: Identity) -> None:
    alice = issue(root, "Alice", email="alice@example.com", crl_url="ldap://127.0.0.1/cn=CRL")
    data = RevocationFetcher().fetch([alice.cert, root.cert], now=utcnow())
    assert data.crls == () and any("http" in p for p in data.problems)


# ------------------------------------------------------------- forged data is never cached (review t3)


def _rogue_crl(claimed: Identity, signer: Identity, *, this_update: dt.datetime) -> bytes:
    """A CRL naming ``claimed`` as its issuer, signed by ``signer``'s key, valid for ten years."""
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(claimed.cert.subject)
        .last_update(this_update)
        .next_update(this_update + dt.timedelta(days=3650))
        .add_extension(x509.CRLNumber(99), critical=False)
        .sign(signer.key, hashes.SHA256())
    )
    return der(crl)


def test_forged_ocsp_answer_is_not_cached_and_the_crl_is_tried(
    root: Identity, server: CrlServer, tmp_path: Path
) -> None:
    rogue = make_ca("Rogue")
    mode = {"rogue": True}
    with ocsp_responder(root) as real, ocsp_responder(root, signer=rogue) as fake:

        class Switch(QuietHandler):
            def do_POST(self) -> None:
                body = self.read_body()
                self.send_body((fake if mode["rogue"] else real).answer(body), "application/ocsp-response")

        with serving(Switch) as port:
            url = f"http://127.0.0.1:{port}/"
            alice = issue(
                root, "Alice", email="alice@example.com", ocsp_url=url, crl_url=server.url("/root.crl")
            )
            real.add(alice.cert)
            fake.add(alice.cert)
            server.files["/root.crl"] = der(make_crl(root))
            now = utcnow()
            with open_store(tmp_path / "store.db") as store:
                first = RevocationFetcher(store=store).fetch([alice.cert, root.cert], now=now)
                # the forged answer is refused, and the CRL is used instead
                assert first.ocsp_responses == () and len(first.crls) == 1
                assert any("unauthorized" in p for p in first.problems)
                assert store.ocsp_response(alice.cert.fingerprint(hashes.SHA256()).hex(), now=now) is None
            mode["rogue"] = False  # the attacker has left the path: the real responder is asked
            with open_store(tmp_path / "store.db") as store:
                later = RevocationFetcher(store=store).fetch([alice.cert, root.cert], now=now)
            assert real.requests == 1 and len(later.ocsp_responses) == 1
            trust = validate_signer(
                alice.cert,
                anchors=[root.cert],
                signing_time=None,
                now=now,
                ocsp_responses=later.ocsp_responses,
                crls=later.crls,
                revocation=RevocationMode.HARD,
                origins=later.origins,
            )
            assert trust.trusted, trust.reason


def test_forged_ocsp_answer_alone_still_fails_soft_validation(root: Identity) -> None:
    # nothing better is at hand (no CRL): the unverified answer goes to validation, which refuses it
    rogue = make_ca("Rogue")
    with ocsp_responder(root, signer=rogue) as fake:
        alice = issue(root, "Alice", email="alice@example.com", ocsp_url=fake.url)
        fake.add(alice.cert)
        now = utcnow()
        fetcher = RevocationFetcher()
        data = fetcher.fetch([alice.cert, root.cert], now=now)
        assert len(data.ocsp_responses) == 1
        fetcher.fetch([alice.cert, root.cert], now=now)
        assert fake.requests == 2  # not cached
        trust = validate_signer(
            alice.cert, anchors=[root.cert], signing_time=None, now=now, ocsp_responses=data.ocsp_responses
        )
        assert not trust.trusted


def test_forged_ocsp_response_in_the_store_is_not_used(root: Identity, tmp_path: Path) -> None:
    rogue = make_ca("Rogue")
    with ocsp_responder(root) as real, ocsp_responder(root, signer=rogue) as fake:
        alice = issue(root, "Alice", email="alice@example.com", ocsp_url=real.url)
        real.add(alice.cert)
        fake.add(alice.cert)
        request = (
            x509_ocsp.OCSPRequestBuilder()
            .add_certificate(alice.cert, root.cert, hashes.SHA1())
            .build()
            .public_bytes(serialization.Encoding.DER)
        )
        forged = fake.answer(request)
        parsed = x509_ocsp.load_der_ocsp_response(forged)
        now = utcnow()
        fingerprint = alice.cert.fingerprint(hashes.SHA256()).hex()
        with open_store(tmp_path / "store.db") as store:
            # what an older smimekit (or another process) may have left there
            store.put_ocsp_response(
                fingerprint, forged, this_update=parsed.this_update_utc, next_update=parsed.next_update_utc
            )
            data = RevocationFetcher(store=store).fetch([alice.cert, root.cert], now=now)
            assert real.requests == 1 and data.ocsp_responses != (forged,)
            # the verified answer replaced it (asked a minute on: openssl dates it to the second)
            later = now + dt.timedelta(minutes=1)
            assert store.ocsp_response(fingerprint, now=later) == data.ocsp_responses[0]


def test_forged_crl_is_refused_and_not_cached(root: Identity, server: CrlServer, tmp_path: Path) -> None:
    rogue = make_ca("Rogue")
    alice = issue(root, "Alice", email="alice@example.com", crl_url=server.url("/root.crl"))
    now = utcnow()
    server.files["/root.crl"] = _rogue_crl(root, rogue, this_update=now - dt.timedelta(minutes=1))
    with open_store(tmp_path / "store.db") as store:
        fetcher = RevocationFetcher(store=store)
        data = fetcher.fetch([alice.cert, root.cert], now=now)
        assert data.crls == () and any("signature" in p for p in data.problems)
        assert store.crl_for_url(server.url("/root.crl")) is None and store.crls() == []
        server.files["/root.crl"] = der(make_crl(root))  # the attacker has left the path
        again = fetcher.fetch([alice.cert, root.cert], now=now)
        assert [der(c) for c in again.crls] == [server.files["/root.crl"]]
    assert server.hits["/root.crl"] == 2


def test_crl_of_another_ca_key_in_the_store_is_fetched_again(
    root: Identity, server: CrlServer, tmp_path: Path
) -> None:
    rogue = make_ca("Rogue")
    alice = issue(root, "Alice", email="alice@example.com", crl_url=server.url("/root.crl"))
    now = utcnow()
    server.files["/root.crl"] = der(make_crl(root))
    forged = _rogue_crl(root, rogue, this_update=now - dt.timedelta(minutes=1))
    with open_store(tmp_path / "store.db") as store:
        store.put_crl(x509.load_der_x509_crl(forged), url=server.url("/root.crl"))
        data = RevocationFetcher(store=store).fetch([alice.cert, root.cert], now=now)
    assert [der(c) for c in data.crls] == [server.files["/root.crl"]]
    assert server.hits["/root.crl"] == 1


def test_cached_data_is_fetched_again_after_max_reuse(root: Identity, server: CrlServer) -> None:
    from smimekit.net.revocation import MAX_REUSE

    alice = issue(root, "Alice", email="alice@example.com", crl_url=server.url("/root.crl"))
    now = utcnow()
    server.files["/root.crl"] = der(make_crl(root, next_update=now + 30 * MAX_REUSE))
    fetcher = RevocationFetcher()
    fetcher.fetch([alice.cert, root.cert], now=now)
    fetcher.fetch([alice.cert, root.cert], now=now + MAX_REUSE / 2)
    assert server.hits["/root.crl"] == 1
    fetcher.fetch([alice.cert, root.cert], now=now + MAX_REUSE * 2)  # nextUpdate is far, but still asked
    assert server.hits["/root.crl"] == 2
