"""The embedded backend: one SQLite file, safe with several processes at once.

WAL journal (readers do not block the writer), a busy timeout, ``BEGIN IMMEDIATE`` for every write (two
writers queue instead of deadlocking halfway), one transaction per store method. The file and its
``-wal``/``-shm`` companions are private (mode 0600: SQLite gives the companions the mode of the
database file), and a directory made for it is 0700.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import stat
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from smimekit.errors import StoreError, StoreLockedError, StoreSchemaError
from smimekit.store._db import Cursor, Database, Row
from smimekit.store._sql import SqlStore

__all__ = ["DEFAULT_TIMEOUT", "SqliteDatabase", "open_sqlite_store"]

_log = logging.getLogger(__name__)
_SQLITE_MAGIC = b"SQLite format 3\x00"

DEFAULT_TIMEOUT = 10.0
"""Seconds a command waits for another process to finish writing before StoreLockedError."""


def _error(exc: sqlite3.Error, location: str) -> StoreError:
    """The store error for a sqlite3 exception."""
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
        return StoreLockedError(f"the store {location} is busy (another process is writing); try again later")
    if isinstance(exc, sqlite3.DatabaseError) and ("not a database" in text or "malformed" in text):
        return StoreSchemaError(f"{location} is not a smimekit store ({text})")
    if isinstance(exc, sqlite3.OperationalError) and ("unable to open" in text or "readonly" in text):
        return StoreError(f"cannot open the store {location}: {text}")
    return StoreError(f"the store {location} failed: {text}")


def _create_private(path: Path) -> None:
    """Create the store file (mode 0600) and its directory (0700) when they do not exist."""
    directory = path.parent
    if not directory.exists():
        try:
            os.makedirs(directory.parent, exist_ok=True)
            os.mkdir(directory, 0o700)
        except FileExistsError:
            pass  # another process made it meanwhile
        except OSError as exc:
            raise StoreError(f"cannot create the directory {directory}: {exc.strerror or exc}") from None
        else:
            os.chmod(directory, 0o700)  # whatever the umask
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        _check_existing(path)
        return
    except OSError as exc:
        raise StoreError(f"cannot create the store {path}: {exc.strerror or exc}") from None
    os.fchmod(fd, 0o600)
    os.close(fd)


def _check_existing(path: Path) -> None:
    """An existing file: made private (0600) when it is empty, as it is about to become a store (say a
    file made with ``touch`` or ``mktemp``); a store readable or writable by others is logged as a
    warning (on the ``smimekit.store.sqlite`` logger; the CLI shows it on stderr) but still opened,
    since an administrator may share one with a group on purpose."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOCTTY)
    except OSError:
        return  # opening it as a store says why, in the store's words
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return
        if info.st_size == 0:
            if stat.S_IMODE(info.st_mode) & 0o077:
                os.fchmod(fd, 0o600)
            return
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077 and os.pread(fd, len(_SQLITE_MAGIC), 0) == _SQLITE_MAGIC:
            who = "anyone" if mode & 0o007 else "its group"
            _log.warning(
                "warning: the store %s can be read or changed by %s (mode %04o): its certificates and "
                "records are not encrypted; chmod 600 %s unless it is shared on purpose",
                path,
                who,
                mode,
                path,
            )
    except OSError as exc:
        raise StoreError(f"cannot make the store {path} private: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


class _SqliteCursor(Cursor):
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._cur = conn.cursor()

    def run(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        self._cur.execute(sql, tuple(params))
        return self._cur.fetchall() if self._cur.description else []

    def changed(self) -> int:
        return self._cur.rowcount


class SqliteDatabase(Database):
    """A connection to the store file ``path`` (created when missing); ``timeout`` in seconds."""

    blob_type = "BLOB"

    def __init__(self, path: str | Path, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.path = Path(path).expanduser()
        self.location = str(self.path)
        if self.path.is_dir():
            raise StoreError(f"the store {self.location} is a directory, not a file")
        _create_private(self.path)
        self._lock = threading.RLock()
        try:
            self._conn = sqlite3.connect(
                self.location, timeout=timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise _error(exc, self.location) from None
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()
            if mode is None or str(mode[0]).lower() != "wal":
                raise StoreError(f"the store {self.location} cannot use a write-ahead log ({mode})")
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._conn.execute("PRAGMA synchronous = NORMAL")  # durable at checkpoints; WAL stays consistent
        except sqlite3.Error as exc:
            self._conn.close()
            raise _error(exc, self.location) from None
        except BaseException:
            self._conn.close()
            raise

    @contextlib.contextmanager
    def transaction(self, *, write: bool) -> Iterator[Cursor]:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            except sqlite3.Error as exc:
                raise _error(exc, self.location) from None
            try:
                yield _SqliteCursor(self._conn)
            except sqlite3.Error as exc:
                self._rollback()
                raise _error(exc, self.location) from None
            except BaseException:
                self._rollback()
                raise
            try:
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise _error(exc, self.location) from None

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")

    def table_names(self, cursor: Cursor) -> set[str]:
        rows = cursor.run("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        return {str(r[0]) for r in rows}

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def open_sqlite_store(path: str | Path, *, timeout: float = DEFAULT_TIMEOUT) -> SqlStore:
    """The SQLite store in ``path`` (created, with its directory, when missing). Raises StoreSchemaError
    (not a store, or a newer one), StoreLockedError (busy past ``timeout`` seconds), StoreError."""
    return SqlStore(SqliteDatabase(path, timeout=timeout))
