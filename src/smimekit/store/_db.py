"""What a backend provides to the shared store code: transactions over one connection, and schema upkeep.

The SQL is written once, with ``?`` placeholders; a backend's :class:`Cursor` adapts it (psycopg wants
``%s``). Both backends run the same statements, migrations and record-building code in
:mod:`smimekit.store._sql`.
"""

from __future__ import annotations

import abc
import contextlib
import datetime as dt
from collections.abc import Sequence
from typing import Any

from smimekit.errors import StoreSchemaError
from smimekit.store._codec import to_micros
from smimekit.store.schema import MIGRATIONS, SCHEMA_VERSION, TABLES

__all__ = ["Cursor", "Database", "migrate"]

Row = tuple[Any, ...]


class Cursor(abc.ABC):
    """Runs statements inside one transaction."""

    @abc.abstractmethod
    def run(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Execute ``sql`` (``?`` placeholders) and return its rows ([] for statements without rows)."""

    @abc.abstractmethod
    def changed(self) -> int:
        """How many rows the last INSERT, UPDATE or DELETE changed."""


class Database(abc.ABC):
    """One connection to a SQLite file or a PostgreSQL database."""

    blob_type: str
    location: str

    @abc.abstractmethod
    def transaction(self, *, write: bool) -> contextlib.AbstractContextManager[Cursor]:
        """A transaction: committed when the block ends normally, rolled back otherwise. ``write`` takes the
        write lock at once (SQLite ``BEGIN IMMEDIATE``), so that two writers never deadlock halfway.
        Raises StoreLockedError when the store stays busy past the timeout."""

    @abc.abstractmethod
    def table_names(self, cursor: Cursor) -> set[str]:
        """The tables of the database (of the schema in use, for PostgreSQL)."""

    def lock_schema(self, cursor: Cursor) -> None:
        """Serialise migrations between processes (a no-op where the write transaction already does)."""
        return None

    @abc.abstractmethod
    def close(self) -> None: ...


def _schema_version(db: Database, cursor: Cursor) -> int:
    """The version of the store's schema; 0 for an empty database. StoreSchemaError for a database that
    holds tables but no smimekit store."""
    tables = db.table_names(cursor)
    if "schema_version" not in tables:
        if tables:
            raise StoreSchemaError(f"{db.location} is not a smimekit store (it holds other tables)")
        return 0
    rows = cursor.run("SELECT MAX(version) FROM schema_version")
    version = rows[0][0] if rows and rows[0][0] is not None else 0
    if not isinstance(version, int):  # pragma: no cover - only a hand-edited table gets here
        raise StoreSchemaError(f"{db.location} has an unreadable schema version")
    if version <= SCHEMA_VERSION and not set(TABLES_AT[version]) <= tables:
        raise StoreSchemaError(f"{db.location} is a damaged smimekit store (tables are missing)")
    return version


def _tables_at(version: int) -> frozenset[str]:
    names = set()
    for statements in MIGRATIONS[:version]:
        for sql in statements:
            words = sql.split()
            if words[:2] == ["CREATE", "TABLE"]:
                names.add(words[2])
    return frozenset(names)


TABLES_AT = {v: _tables_at(v) for v in range(SCHEMA_VERSION + 1)}
assert TABLES_AT[SCHEMA_VERSION] == TABLES, "schema.TABLES must list the tables the migrations create"


def migrate(db: Database, *, target: int = SCHEMA_VERSION, now: dt.datetime | None = None) -> int:
    """Bring the database up to schema ``target`` (creating the store in an empty database) and return
    the version found before. StoreSchemaError for a store written by a newer smimekit, a database that
    is not a store, or a damaged one."""
    with db.transaction(write=False) as cur:
        found = _schema_version(db, cur)
    if found > SCHEMA_VERSION:
        raise StoreSchemaError(
            f"{db.location} was written by a newer smimekit (schema version {found}; "
            f"this one reads up to {SCHEMA_VERSION}): upgrade smimekit"
        )
    if found >= target:
        return found
    stamp = to_micros(now or dt.datetime.now(dt.UTC))
    with db.transaction(write=True) as cur:
        db.lock_schema(cur)
        current = _schema_version(db, cur)  # another process may have migrated meanwhile
        if current > SCHEMA_VERSION:
            raise StoreSchemaError(f"{db.location} was written by a newer smimekit")
        for version in range(current + 1, target + 1):
            for statement in MIGRATIONS[version - 1]:
                cur.run(statement.format(blob=db.blob_type))
            cur.run("INSERT INTO schema_version (version, applied) VALUES (?, ?)", (version, stamp))
    return found
