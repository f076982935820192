"""The certificate and key store: SQLite by default, PostgreSQL when several gateway nodes share one.

See :mod:`smimekit.store.api` for the interface every backend provides, :func:`open_store` to open one,
:mod:`smimekit.store.transfer` to import and export files, :mod:`smimekit.store.harvest` to learn
certificates and capabilities from signed mail.
"""

from __future__ import annotations

import os
from pathlib import Path

from smimekit.store.api import (
    CaRecord,
    CertificateRecord,
    CorrespondentRecord,
    IssuedRecord,
    RevocationReason,
    Store,
    Trust,
)

__all__ = [
    "STORE_ENV",
    "CaRecord",
    "CertificateRecord",
    "CorrespondentRecord",
    "IssuedRecord",
    "RevocationReason",
    "Store",
    "Trust",
    "default_location",
    "open_store",
]

STORE_ENV = "SMIMEKIT_STORE"
"""The environment variable naming the store (a file path or a ``postgresql://`` URL)."""

DEFAULT_TIMEOUT = 10.0


def default_location() -> str:
    """``$SMIMEKIT_STORE`` when set, else ``store.sqlite3`` in the user's data directory (XDG:
    ``~/.local/share/smimekit/store.sqlite3``)."""
    env = os.environ.get(STORE_ENV)
    if env:
        return env
    import platformdirs

    return str(Path(platformdirs.user_data_dir("smimekit", appauthor=False)) / "store.sqlite3")


def _unmangled(location: str | Path) -> str | Path:
    """A URL that went through ``pathlib.Path`` (as click's path options do) has lost a slash:
    ``postgresql:/host/db``. Give it back, rather than create a directory called ``postgresql:``."""
    text = os.fspath(location)
    for scheme in ("postgresql:", "postgres:"):
        if text.lower().startswith(scheme + "/") and not text.lower().startswith(scheme + "//"):
            return f"{text[: len(scheme)]}/{text[len(scheme) :]}"
    return location


def open_store(location: str | Path | None = None, *, timeout: float = DEFAULT_TIMEOUT) -> Store:
    """Open (creating it when missing) the store at ``location``: a SQLite file path, or a
    ``postgresql://`` URL; None means :func:`default_location`. An older store is migrated.

    ``timeout`` is how many seconds to wait for another process that holds the store. Raises
    StoreSchemaError (not a smimekit store, or one written by a newer smimekit), StoreLockedError (busy
    past the timeout, or the database cannot be reached) or StoreError (cannot be created or opened).
    """
    from smimekit.store.postgres import is_postgres_url

    where = default_location() if location is None else _unmangled(location)
    if isinstance(where, str) and is_postgres_url(where):
        from smimekit.store.postgres import open_postgres_store

        return open_postgres_store(where, timeout=timeout)
    from smimekit.store.sqlite import open_sqlite_store

    return open_sqlite_store(where, timeout=timeout)
