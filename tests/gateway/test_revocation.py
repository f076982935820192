"""Revocation in the gateway: cached CRLs past their nextUpdate are not used, fetched data counts, the
policy's mode (soft, hard, off) decides, and a slow fetch costs a message no more than its budget.

Driven through :class:`~smimekit.gateway.process.Processor` on a real SQLite store holding the test PKI
of ``_support``; the fetcher is a stand-in that hands out CRLs made here (the online fetcher has tests of
its own against real HTTP servers).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from smimekit import mime
from smimekit.errors import GatewayError
from smimekit.gateway import lookup
from smimekit.gateway.decide import Envelope, Verdict
from smimekit.gateway.harvest import harvest_report
from smimekit.gateway.policy import Policy, parse_config
from smimekit.gateway.process import Processed, Processor
from smimekit.gateway.revocation import BoundedFetcher, current_crls
from smimekit.pki import RevocationData, RevocationMode
from smimekit.store import Store, open_store
from tests.gateway._support import NOW, PASSPHRASE, make_store, message, pki, signed_by

ALICE, BOB = "alice@example.org", "bob@partner.example"


@pytest.fixture(scope="module")
def store_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_store(tmp_path_factory.mktemp("store") / "store.sqlite3")


@pytest.fixture
def store(store_template: Path, tmp_path: Path) -> Path:
    target = tmp_path / "store.sqlite3"
    target.write_bytes(store_template.read_bytes())
    return target


def _crl(*, revoked: Sequence[int] = (), fresh: bool = True) -> x509.CertificateRevocationList:
    """A CRL of the test root; ``fresh=False`` gives one whose nextUpdate passed an hour ago."""
    root = pki().root
    last = NOW - (dt.timedelta(hours=1) if fresh else dt.timedelta(days=8))
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(root.cert.subject)
        .last_update(last)
        .next_update(NOW + dt.timedelta(days=7) if fresh else NOW - dt.timedelta(hours=1))
    )
    for serial in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(last).build()
        )
    return builder.sign(root.key, hashes.SHA256())


class _Fetcher:
    """A fetcher that hands out ``crls`` and notes the paths it was asked for."""

    def __init__(self, *crls: x509.CertificateRevocationList) -> None:
        self.crls = crls
        self.paths: list[tuple[x509.Certificate, ...]] = []

    def fetch(self, path: Sequence[x509.Certificate], *, now: dt.datetime) -> RevocationData:
        self.paths.append(tuple(path))
        return RevocationData(crls=self.crls, origins={}, problems=() if self.crls else ("no CRL",))


@contextlib.contextmanager
def _processor(
    store: Path, tmp_path: Path, *, fetcher: object = None, **policy: object
) -> Iterator[Processor]:
    data = {"policy": {"internal_domains": ["example.org"], **policy}, "gateway": {"authserv_id": "gw.test"}}
    pol: Policy = parse_config(data).policy

    def new_output() -> IO[bytes]:
        return tempfile.NamedTemporaryFile(dir=tmp_path)

    proc = Processor(
        pol,
        open_store=lambda: open_store(store),
        passphrase=PASSPHRASE,
        new_output=new_output,
        harvest=harvest_report,
        fetcher=fetcher,  # type: ignore[arg-type]
    )
    try:
        yield proc
    finally:
        proc.close()


def _run(proc: Processor, tmp_path: Path, data: bytes, sender: str, rcpt: str) -> Processed:
    path = tmp_path / f"msg-{time.monotonic_ns()}.eml"
    path.write_bytes(data)
    return proc.process(path, Envelope(sender, (rcpt,)))


def _outgoing_encrypted(proc: Processor, tmp_path: Path) -> bool:
    done = _run(proc, tmp_path, message(ALICE, BOB), ALICE, BOB)
    try:
        assert done.decision.verdict is Verdict.DELIVER
        ((copy, out),) = done.outputs
        with mime.parse(out.read()) as m:
            assert copy.encrypt == (m.content_type == "application/pkcs7-mime")
            return copy.encrypt
    finally:
        done.close()


def _incoming_result(proc: Processor, tmp_path: Path) -> str:
    data = signed_by(pki().bob, message(BOB, ALICE))
    done = _run(proc, tmp_path, data, BOB, ALICE)
    try:
        ((_, out),) = done.outputs
        with mime.parse(out.read()) as m:
            return str(m.headers["Authentication-Results"])
    finally:
        done.close()


def _put(store: Path, crl: x509.CertificateRevocationList) -> None:
    with open_store(store) as s:
        s.put_crl(crl)


def test_stale_cached_crl_does_not_make_certificates_untrusted(store: Path, tmp_path: Path) -> None:
    """A CRL past its nextUpdate in the store (nothing revoked): bob still gets encrypted mail, and his
    signature still passes."""
    _put(store, _crl(fresh=False))
    with _processor(store, tmp_path, fetcher=_Fetcher()) as proc:
        assert _outgoing_encrypted(proc, tmp_path)
        assert "smime=pass" in _incoming_result(proc, tmp_path)


def test_current_cached_crl_still_revokes(store: Path, tmp_path: Path) -> None:
    _put(store, _crl(revoked=[pki().bob.cert.serial_number]))
    with _processor(store, tmp_path, fetcher=_Fetcher()) as proc:
        assert not _outgoing_encrypted(proc, tmp_path)
        result = _incoming_result(proc, tmp_path)
        assert "smime=policy" in result and "revoked" in result


def test_fetched_crl_revokes(store: Path, tmp_path: Path) -> None:
    fetcher = _Fetcher(_crl(revoked=[pki().bob.cert.serial_number]))
    with _processor(store, tmp_path, fetcher=fetcher) as proc:
        assert not _outgoing_encrypted(proc, tmp_path)
        assert "smime=policy" in _incoming_result(proc, tmp_path)
    # asked for bob's path (bob, then the root), for the recipient and for the signer
    assert fetcher.paths and all(p[0] == pki().bob.cert and p[-1] == pki().root.cert for p in fetcher.paths)


def test_fetched_crl_revokes_required_recipient(store: Path, tmp_path: Path) -> None:
    fetcher = _Fetcher(_crl(revoked=[pki().bob.cert.serial_number]))
    with _processor(store, tmp_path, fetcher=fetcher, encrypt="required") as proc:
        done = _run(proc, tmp_path, message(ALICE, BOB), ALICE, BOB)
        assert done.decision.verdict is Verdict.REJECT and BOB in done.decision.reason


def test_hard_mode_needs_revocation_data(store: Path, tmp_path: Path) -> None:
    with _processor(store, tmp_path, fetcher=_Fetcher(), revocation="hard") as proc:
        assert not _outgoing_encrypted(proc, tmp_path)
        assert "smime=policy" in _incoming_result(proc, tmp_path)
    with _processor(store, tmp_path, fetcher=_Fetcher(_crl()), revocation="hard") as proc:
        assert _outgoing_encrypted(proc, tmp_path)
        assert "smime=pass" in _incoming_result(proc, tmp_path)


def test_soft_mode_trusts_unknown_status(store: Path, tmp_path: Path) -> None:
    with _processor(store, tmp_path, fetcher=_Fetcher()) as proc:
        assert proc.policy.revocation is RevocationMode.SOFT
        assert _outgoing_encrypted(proc, tmp_path)


def test_off_mode_ignores_revocation(store: Path, tmp_path: Path) -> None:
    _put(store, _crl(revoked=[pki().bob.cert.serial_number]))
    fetcher = _Fetcher(_crl(revoked=[pki().bob.cert.serial_number]))
    with _processor(store, tmp_path, fetcher=fetcher, revocation="off") as proc:
        assert proc.fetcher is None
        assert _outgoing_encrypted(proc, tmp_path)
        assert "smime=pass" in _incoming_result(proc, tmp_path)
    assert fetcher.paths == []


def test_current_crls_leaves_out_stale_ones(store: Path) -> None:
    stale, fresh = _crl(fresh=False), _crl(revoked=[7])
    with open_store(store) as s:
        s.put_crl(stale)
        assert current_crls(s, NOW) == [stale] or current_crls(s, NOW) == []  # put_crl may keep one only
        s.put_crl(fresh)
        assert current_crls(s, NOW) == [fresh]
        assert current_crls(s, NOW + dt.timedelta(days=8)) == []


def test_bounded_fetcher_keeps_to_its_budget(store: Path) -> None:
    release = threading.Event()
    made: list[Store] = []

    class Slow:
        def fetch(self, path: Sequence[x509.Certificate], *, now: dt.datetime) -> RevocationData:
            release.wait(5)
            return RevocationData(crls=(_crl(),))

    def make(s: Store) -> Slow:
        made.append(s)
        return Slow()

    fetcher = BoundedFetcher(lambda: open_store(store), budget=0.3, threads=1, make=make)
    try:
        started = time.monotonic()
        data = fetcher.fetch([pki().bob.cert, pki().root.cert], now=NOW)
        assert time.monotonic() - started < 2
        assert data.crls == () and "within 0.3 seconds" in data.problems[0]
        release.set()
        quick = fetcher.fetch([pki().bob.cert, pki().root.cert], now=NOW)
        assert len(quick.crls) == 1
        assert len(made) == 1  # one fetcher (and store connection) per fetching thread
    finally:
        release.set()
        fetcher.close()
    assert "stopping" in fetcher.fetch([pki().bob.cert], now=NOW).problems[0]


def test_processor_fetches_online_by_default_unless_off(store: Path, tmp_path: Path) -> None:
    with _processor(store, tmp_path) as proc:
        assert isinstance(proc.fetcher, BoundedFetcher)
        # the test certificates name no CRL or OCSP URL: nothing to fetch, the status stays unknown
        assert _outgoing_encrypted(proc, tmp_path)
        assert "smime=pass" in _incoming_result(proc, tmp_path)
    with _processor(store, tmp_path, revocation="off") as proc:
        assert proc.fetcher is None


def test_revocation_setting() -> None:
    base = {"internal_domains": ["example.org"]}
    assert parse_config({"policy": base}).policy.revocation is RevocationMode.SOFT
    hard = parse_config({"policy": {**base, "revocation": "hard"}})
    assert hard.policy.revocation is RevocationMode.HARD
    assert hard.to_dict()["policy"]["revocation"] == "hard"
    assert parse_config({"policy": base}, revocation="off").policy.revocation is RevocationMode.OFF
    with pytest.raises(GatewayError, match="revocation must be one of"):
        parse_config({"policy": {**base, "revocation": "strict"}})


def test_caches_spare_the_store_and_path_validation(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second message from the same sender to the same recipient neither validates the recipient's
    path again nor looks the sender's signing key up again."""
    validations: list[object] = []
    lookups: list[object] = []
    real_validate, real_record = lookup.validate_recipient, lookup._signing_record

    def counting_validate(*args: object, **kwargs: object) -> object:
        validations.append(args)
        return real_validate(*args, **kwargs)  # type: ignore[arg-type]

    def counting_record(*args: object, **kwargs: object) -> object:
        lookups.append(args)
        return real_record(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(lookup, "validate_recipient", counting_validate)
    monkeypatch.setattr(lookup, "_signing_record", counting_record)
    with _processor(store, tmp_path, fetcher=_Fetcher()) as proc:
        assert _outgoing_encrypted(proc, tmp_path)
        assert _outgoing_encrypted(proc, tmp_path)
    assert len(validations) == 1 and len(lookups) == 1


def test_signed_output_is_the_same_with_warm_caches(store: Path, tmp_path: Path) -> None:
    """Cached attribute encodings and signers give signatures that verify, message after message."""
    from smimekit import smime

    with _processor(store, tmp_path, fetcher=_Fetcher(), encrypt="never") as proc:
        for _ in range(3):
            done = _run(proc, tmp_path, message(ALICE, BOB), ALICE, BOB)
            ((_, out),) = done.outputs
            data = out.read()
            done.close()
            with mime.parse(data) as m:
                report = smime.verify(m, now=dt.datetime.now(dt.UTC), anchors=[pki().root.cert])
            assert report.ok, report


def test_crl_fetched_from_the_distribution_point_over_http(store: Path, tmp_path: Path) -> None:
    """The default fetcher, end to end: a signer whose CRL (on an HTTP server on 127.0.0.1) revokes him
    gets ``smime=policy``; the CRL is kept in the store for the next message and the other nodes."""
    from smimekit import cms, smime
    from smimekit.store import Trust
    from tests.pki._revocation_pki import crl_server, der, issue, make_crl, utcnow
    from tests.testpki import make_ca

    root = make_ca("Fetched CRL Root")
    with crl_server() as server, open_store(store) as s:
        s.add_certificate(root.cert, trust=Trust.EMAIL)
        url = server.url("/root.crl")
        signer = issue(root, "Erin", email="erin@outside.example", crl_url=url)
        server.files["/root.crl"] = der(make_crl(root, ((signer.cert, utcnow() - dt.timedelta(hours=1)),)))
        envelope_signer = cms.Signer(signer.cert, signer.key)
        with (
            mime.parse(message("erin@outside.example", ALICE)) as m,
            smime.sign(m, envelope_signer, signing_time=utcnow()) as signed,
        ):
            data = signed.to_bytes()
        with _processor(store, tmp_path) as proc:
            assert isinstance(proc.fetcher, BoundedFetcher)
            done = _run(proc, tmp_path, data, "erin@outside.example", ALICE)
            ((_, out),) = done.outputs
            with mime.parse(out.read()) as result:
                field = str(result.headers["Authentication-Results"])
            done.close()
        assert "smime=policy" in field and "revoked" in field, field
        assert s.crl_for_url(url) is not None
