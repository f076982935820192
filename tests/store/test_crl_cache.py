"""The store's CRL cache cannot be poisoned: a CRL of another key with the CA's name does not displace the
CA's own, and a CRL dated in the future is refused (review t4). Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from smimekit.errors import StoreError
from smimekit.gateway.revocation import current_crls
from smimekit.pki import RevocationMode, validate_signer
from smimekit.store import Store
from tests.pki._revocation_pki import issue, make_crl, utcnow
from tests.testpki import Identity, make_ca


@pytest.fixture(scope="module")
def root() -> Identity:
    return make_ca("CRL Cache Root")


def _forged(
    claimed: Identity, signer: Identity, *, this_update: dt.datetime, aki: bool
) -> x509.CertificateRevocationList:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(claimed.cert.subject)
        .last_update(this_update)
        .next_update(this_update + dt.timedelta(days=3650))
        .add_extension(x509.CRLNumber(99), critical=False)
    )
    if aki:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.key.public_key()),
            critical=False,  # type: ignore[arg-type]
        )
    return builder.sign(signer.key, hashes.SHA256())  # type: ignore[arg-type]


def _own(store: Store, root: Identity) -> list[x509.CertificateRevocationList]:
    return [c for c in store.crls(root.cert.subject) if c.is_signature_valid(root.key.public_key())]  # type: ignore[arg-type]


def test_crl_dated_in_the_future_is_refused(store: Store, root: Identity) -> None:
    forged = _forged(root, make_ca("Rogue"), this_update=utcnow() + dt.timedelta(hours=1), aki=False)
    with pytest.raises(StoreError, match="future"):
        store.put_crl(forged, url="http://127.0.0.1:9/root.crl")
    assert store.crls() == [] and store.crl_for_url("http://127.0.0.1:9/root.crl") is None


@pytest.mark.parametrize("aki", [False, True])
def test_crl_of_another_key_does_not_displace_the_cas_own(store: Store, root: Identity, aki: bool) -> None:
    now = utcnow()
    alice = issue(root, "Alice", email="alice@example.com", crl_url="http://127.0.0.1:9/root.crl")
    genuine = make_crl(root)  # thisUpdate an hour ago
    # the forgery is newer than the genuine CRL (within the clock tolerance), and comes first and last
    forged = _forged(root, make_ca("Rogue"), this_update=now + dt.timedelta(minutes=3), aki=aki)
    store.put_crl(forged)
    store.put_crl(genuine)
    store.put_crl(forged)
    assert _own(store, root) == [genuine]
    later = make_crl(root, this_update=now, number=2)  # the CA's next CRL replaces its previous one
    store.put_crl(later)
    assert _own(store, root) == [later]
    at = now + dt.timedelta(minutes=10)
    trust = validate_signer(
        alice.cert,
        anchors=[root.cert],
        signing_time=None,
        now=at,
        crls=current_crls(store, at),
        revocation=RevocationMode.HARD,
    )
    assert trust.trusted, trust.reason


def test_crl_stored_under_the_older_key_form_is_replaced(
    store: Store, root: Identity, monkeypatch: pytest.MonkeyPatch
) -> None:
    from smimekit.store import _sql

    genuine = make_crl(root)
    # a row as a store written before this change keyed it (issuer name, scope, kind only)
    legacy_key = _sql._crl_key(genuine, legacy=True)
    with monkeypatch.context() as patch:
        patch.setattr(_sql, "_crl_key", lambda crl, legacy=False: legacy_key)
        store.put_crl(genuine)
    later = make_crl(root, this_update=utcnow(), number=2)
    store.put_crl(later)
    assert store.crls(root.cert.subject) == [later]
