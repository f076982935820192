"""The shared backend: a PostgreSQL database (psycopg 3) that several gateway nodes use at once.

The same SQL, migrations and records as SQLite (:mod:`smimekit.store._sql`). Each store method is one
transaction; allocations such as CRL numbers take a row lock, so they are atomic across nodes; migrations
take an advisory lock, so that nodes starting together do not race. A database that cannot be reached,
or a lock held past the timeout, raises StoreLockedError.
"""

from __future__ import annotations

import contextlib
import functools
import re
import threading
import urllib.parse
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


_SECRET_PARAMS = ("password", "sslpassword")  # conninfo parameters never shown
_HIDDEN = "***"
_SHORT = 4  # a secret shorter than this is not searched for in a message: the whole detail is withheld


class _Conninfo:
    """A parsed ``postgresql://`` URL: what may be shown of it, and the strings that must never be.

    ``location`` is the URL rebuilt without its password (``user:***@``); ``secrets`` are every form the
    password may take in a message (as parsed, as written in the URL, and the whole URL as written).
    Raises StoreError, which never quotes the URL, when the URL cannot be parsed or is ambiguous.
    """

    def __init__(self, url: str) -> None:
        self.secrets = _raw_secrets(url)
        scheme = url.partition("://")[0].lower()
        before_query = url.partition("://")[2].split("?", 1)[0]
        if "@" in before_query.partition("/")[2]:
            # 'user:pa/ss@host/db' parses as host 'user', port 'pa', database 'ss@host/db'
            raise StoreError(
                "the store URL is ambiguous: a '/' or '@' in its user name or password must be "
                "percent-encoded (%2F, %40)"
            )
        try:
            from psycopg.conninfo import conninfo_to_dict

            params = {k: str(v) for k, v in conninfo_to_dict(url).items() if v is not None}
        except ImportError:
            raise StoreError("a PostgreSQL store needs psycopg: pip install 'smimekit[postgresql]'") from None
        except Exception as exc:  # psycopg.ProgrammingError: libpq quotes the URL in it, so only its gist
            gist = re.sub(r'\s*"[^"]*"', "", _first_line(exc)).rstrip(" :")
            raise StoreError(f"the store URL cannot be parsed ({_scrub(gist, self.secrets)})") from None
        self.secrets |= {params[k] for k in _SECRET_PARAMS if params.get(k)}
        self.location = _rebuild(scheme or "postgresql", params)


def _raw_secrets(url: str) -> set[str]:
    """The password as the URL spells it (and percent-decoded), wherever libpq may have found it, and
    the whole URL: every string of it that a message must not show."""
    found = {url}
    rest = url.partition("://")[2]
    userinfo = rest.rpartition("@")[0]  # up to the LAST '@': a '/' or '@' in the password stays in it
    if ":" in userinfo:
        found.add(userinfo.split(":", 1)[1])
    for key, value in re.findall(r"[?&]([^=&]+)=([^&]*)", rest):
        if urllib.parse.unquote(key).lower() in _SECRET_PARAMS:
            found.add(value)
    found |= {urllib.parse.unquote(s) for s in found}
    return {s for s in found if s}


def _rebuild(scheme: str, params: dict[str, str]) -> str:
    """The URL of ``params`` (as libpq parsed them) with ``***`` for the password."""
    params = dict(params)
    user = params.pop("user", "")
    secret = any([params.pop(k, "") for k in _SECRET_PARAMS])  # a list: pop them all
    quote = functools.partial(urllib.parse.quote, safe="")
    userinfo = f"{quote(user)}{':' + _HIDDEN if secret else ''}@" if user or secret else ""
    hosts = params.get("host", "")
    authority = ""
    if hosts and not hosts.startswith("/"):  # a socket directory stays a query parameter
        params.pop("host")
        names = hosts.split(",")
        ports = params.pop("port", "").split(",")
        ports = ports * len(names) if len(ports) == 1 else ports + [""] * (len(names) - len(ports))
        authority = ",".join(
            (f"[{name}]" if ":" in name else quote(name)) + (f":{port}" if port else "")
            for name, port in zip(names, ports, strict=False)
        )
    dbname = params.pop("dbname", "")
    path = f"/{quote(dbname)}" if dbname else ""
    query = f"?{urllib.parse.urlencode(params, quote_via=urllib.parse.quote)}" if params else ""
    return f"{scheme}://{userinfo}{authority}{path}{query}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _scrub(text: str, secrets: set[str]) -> str:
    """``text`` with every secret replaced by ``***``; withheld whole when a short secret is in it."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret in text:
            if len(secret) < _SHORT:
                return "details withheld, as they might show the password"
            text = text.replace(secret, _HIDDEN)
    return text


def redact_url(url: str) -> str:
    """``url`` without its password (for messages and :attr:`Store.location`): rebuilt from what libpq
    parses, with ``user:***@`` where a password was given (in the user part or as ``?password=``).
    A URL that cannot be parsed is never shown: only its scheme is."""
    try:
        return _Conninfo(url).location
    except StoreError:
        scheme = url.partition("://")[0].lower() if "://" in url else "postgresql"
        return f"{scheme}://(an unparsable URL, not shown)"


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
        parsed = _Conninfo(url)  # before connecting: libpq would quote a malformed URL, password and all
        self._url = url
        self._timeout = timeout
        self.location = parsed.location
        self._secrets = parsed.secrets
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
        first = _scrub(_first_line(exc), self._secrets)
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
