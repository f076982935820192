"""Shared fixtures for the CMS tests: one test PKI per session, with a signer of every key kind."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.testpki import Identity, make_ca, make_ee

VECTORS = Path(__file__).resolve().parents[3] / "shared" / "vectors"
SIGNING_TIME = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
KEY_KINDS = ("rsa2048", "p256", "p384", "p521", "ed25519")


@pytest.fixture(scope="session")
def ca() -> Identity:
    return make_ca()


@pytest.fixture(scope="session")
def identities(ca: Identity) -> dict[str, Identity]:
    """One end entity per key kind, plus ``rsa2048-enc`` (an encryption certificate for Alice)."""
    ids = {kind: make_ee(f"{kind}@example.org", ca, key_kind=kind) for kind in KEY_KINDS}
    ids["rsa2048-enc"] = make_ee("rsa2048@example.org", ca, key_kind="rsa2048", signing=False)
    return ids
