"""Fixtures of the store tests: every behavioural test runs against SQLite and against a real PostgreSQL
server (started once per session, see tests/pgserver.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from smimekit.store import Store, open_store
from smimekit.store._db import Database
from tests.pgserver import PgServer, start_postgres

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    server = start_postgres()
    yield server
    server.stop()


@pytest.fixture(params=BACKENDS)
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A location for a new, empty store of each backend: a file path, or the URL of a new database."""
    if request.param == "sqlite":
        return str(tmp_path / "store.sqlite3")
    server: PgServer = request.getfixturevalue("pg_server")
    return server.create_database()


@pytest.fixture
def store(store_location: str) -> Iterator[Store]:
    with open_store(store_location) as opened:
        yield opened


def raw_database(location: str) -> Database:
    """The backend's connection for ``location``, below the Store (to build old or foreign schemas)."""
    if location.startswith("postgresql://"):
        from smimekit.store.postgres import PostgresDatabase

        return PostgresDatabase(location)
    from smimekit.store.sqlite import SqliteDatabase

    return SqliteDatabase(location)
