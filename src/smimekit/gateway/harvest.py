"""Learning from verified incoming mail, through the store's harvester (:mod:`smimekit.store.harvest`):
the certificates of intact and valid signatures, and what their signers announced."""

from __future__ import annotations

import datetime as dt

from smimekit.smime import VerificationReport
from smimekit.store import Store
from smimekit.store.harvest import harvest

__all__ = ["harvest_report"]


def harvest_report(store: Store, report: VerificationReport, now: dt.datetime) -> int:
    """Keep what ``report`` teaches (see :func:`smimekit.store.harvest.harvest`); returns how many
    certificates were kept. Raises StoreError."""
    return len(harvest(store, report, at=now))
