"""The shared backend: a PostgreSQL database (psycopg 3) that several gateway nodes use at once.

The same SQL, migrations and records as SQLite (:mod:`smimekit.store._sql`). Each store method is one
transaction; allocations such as CRL numbers take a row lock, so they are atomic across nodes; migrations
take an advisory lock, so that nodes starting together do not race. A database that cannot be reached,
or a lock held past the timeout, raises StoreLockedError.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from smimekit.errors import StoreError, StoreLockedError, StoreSchemaError
from smimekit.store._db import Cursor, Database, Row
from smimekit.store._sql import SqlStore

__all__ = ["PostgresDatabase", "is_postgres_url", "open_postgres_store", "redact_url"]

_SCHEMA_LOCK = 0x736D696D  # "smim": the advisory lock key of migrations
_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(location: object) -> bool:
    """True when ``location`` is a ``postgresql://`` (or ``postgres://``) URL."""
    return isinstance(location, str) and location.lower().startswith(_SCHEMES)


def redact_url(url: str) -> str:
    """``url`` without its password (for messages and :attr:`Store.location`)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, tail = rest.partition("/")
    userinfo, at, host = authority.rpartition("@")
    if at and ":" in userinfo:
        authority = f"{userinfo.split(':', 1)[0]}:***@{host}"
    return f"{scheme}{sep}{authority}{slash}{tail}"


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise StoreError("a PostgreSQL store needs psycopg: pip install 'smimekit[postgresql]'") from None
    return psycopg


class _PgCursor(Cursor):
    def __init__(self, cur: Any) -> None:
        self._cur = cur

    def run(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        # the SQL is shared with SQLite: '?' placeholders become '%s', a literal '%' is doubled
        self._cur.execute(sql.replace("%", "%%").replace("?", "%s"), tuple(params))
        return [tuple(r) for r in self._cur.fetchall()] if self._cur.description else []

    def changed(self) -> int:
        return int(self._cur.rowcount)


class PostgresDatabase(Database):
    """A connection to the database at ``url``; ``timeout`` (seconds) bounds connecting and waiting for
    locks. The connection is re-opened when it breaks (a restarted server)."""

    blob_type = "BYTEA"

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self._psycopg = _psycopg()
        self._url = url
        self._timeout = timeout
        self.location = redact_url(url)
        self._lock = threading.RLock()
        self._conn: Any = None
        self._connect()

    def _connect(self) -> None:
        psycopg = self._psycopg
        try:
            conn = psycopg.connect(self._url, autocommit=True, connect_timeout=max(1, round(self._timeout)))
            conn.execute(f"SET lock_timeout = {int(self._timeout * 1000)}")
            conn.execute("SET client_min_messages = warning")
        except psycopg.Error as exc:
            raise self._error(exc) from None
        self._conn = conn

    def _error(self, exc: Exception) -> StoreError:
        psycopg = self._psycopg
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(exc, psycopg.errors.LockNotAvailable | psycopg.errors.QueryCanceled):
            return StoreLockedError(
                f"the store {self.location} is busy (a lock was held too long); try again later"
            )
        if isinstance(exc, psycopg.errors.InsufficientPrivilege):
            return StoreError(f"the store {self.location} refused: {first}")
        if isinstance(exc, psycopg.errors.UndefinedTable | psycopg.errors.UndefinedColumn):
            return StoreSchemaError(f"{self.location} is not a usable smimekit store ({first})")
        if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
            return StoreLockedError(f"cannot reach the store {self.location}: {first}")
        return StoreError(f"the store {self.location} failed: {first}")

    @contextlib.contextmanager
    def transaction(self, *, write: bool) -> Iterator[Cursor]:
        psycopg = self._psycopg
        with self._lock:
            if self._conn is None or self._conn.closed or self._conn.broken:
                self._connect()
            try:
                with self._conn.transaction(), self._conn.cursor() as cur:
                    yield _PgCursor(cur)
            except psycopg.Error as exc:
                raise self._error(exc) from None

    def table_names(self, cursor: Cursor) -> set[str]:
        rows = cursor.run("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        return {str(r[0]) for r in rows}

    def lock_schema(self, cursor: Cursor) -> None:
        cursor.run("SELECT pg_advisory_xact_lock(?)", (_SCHEMA_LOCK,))

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(Exception):
                    self._conn.close()


def open_postgres_store(url: str, *, timeout: float = 10.0) -> SqlStore:
    """The store in the PostgreSQL database at ``url`` (its tables are created when the database is
    empty). Raises StoreLockedError (unreachable), StoreSchemaError (not a store, or a newer one)."""
    return SqlStore(PostgresDatabase(url, timeout=timeout))
