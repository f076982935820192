"""A private PostgreSQL server for the tests: initdb into a temporary directory, ``postgres`` on 127.0.0.1
and a free high port, a fresh database per test, stopped at the end.

PostgreSQL refuses to run as root: when the tests run as root (CI), initdb and postgres run as the
``postgres`` user, and the temporary directory belongs to that user. Use :func:`start_postgres` from a
session-scoped fixture::

    @pytest.fixture(scope="session")
    def pg_server():
        server = start_postgres()       # pytest.skip("postgres not installed") when there is none
        yield server
        server.stop()
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

__all__ = ["PgServer", "find_pg_bin", "start_postgres"]

_USER = "smimekit"  # the superuser initdb creates (trust authentication, 127.0.0.1 and the socket only)


def find_pg_bin() -> Path | None:
    """The directory holding ``initdb`` and ``postgres`` (PATH first, then /usr/lib/postgresql/*/bin)."""
    found = shutil.which("initdb")
    if found and (Path(found).parent / "postgres").exists():
        return Path(found).parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True
    )
    for candidate in candidates:
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "postgres").exists():
            return Path(candidate)
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _demote(uid: int, gid: int):  # type: ignore[no-untyped-def]
    def set_ids() -> None:
        os.setgid(gid)
        os.setuid(uid)

    return set_ids


@dataclass
class PgServer:
    """A running server; :meth:`create_database` gives each test a database of its own."""

    base: Path
    port: int
    process: subprocess.Popen[bytes]
    _counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{_USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database; returns its URL."""
        import psycopg

        name = f"{prefix}_{next(self._counter)}_{os.getpid()}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # "fast" shutdown
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        shutil.rmtree(self.base, ignore_errors=True)


def start_postgres(*, timeout: float = 60.0) -> PgServer:
    """Start a private server and wait until it accepts connections. Skips the test ("postgres not
    installed") when there are no binaries or no psycopg; fails when the server does not come up."""
    bindir = find_pg_bin()
    if bindir is None:
        pytest.skip("postgres not installed (no initdb/postgres binaries)")
    try:
        import psycopg
    except ImportError:
        pytest.skip("psycopg not installed")
    preexec = None
    base = Path(tempfile.mkdtemp(prefix="smimekit-pg-"))
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("postgres not installed (running as root and there is no 'postgres' user)")
        os.chown(base, user.pw_uid, user.pw_gid)
        preexec = _demote(user.pw_uid, user.pw_gid)
    data, sock = base / "data", base / "sock"
    log = base / "server.log"
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
    subprocess.run(
        [
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            _USER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "-N",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=preexec,
        cwd=base,
        env=env,
    )
    subprocess.run(["mkdir", "-m", "0700", str(sock)], check=True, preexec_fn=preexec)
    last_error = ""
    for _ in range(3):  # the free port may be taken between choosing it and binding it
        port = _free_port()
        with open(log, "ab") as out:
            process = subprocess.Popen(
                [
                    str(bindir / "postgres"),
                    "-D", str(data),
                    "-k", str(sock),
                    "-p", str(port),
                    "-c", "listen_addresses=127.0.0.1",
                    "-c", "fsync=off",
                    "-c", "full_page_writes=off",
                    "-c", "synchronous_commit=off",
                    "-c", "max_connections=50",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=preexec,
                cwd=base,
                env=env,
            )  # fmt: skip
        server = PgServer(base, port, process)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with psycopg.connect(server.url(), connect_timeout=2):
                    return server
            except psycopg.OperationalError as exc:
                last_error = str(exc)
                time.sleep(0.1)
        with contextlib.suppress(Exception):
            process.kill()
            process.wait(timeout=5)
        last_error = log.read_text(errors="replace")[-2000:] or last_error
    shutil.rmtree(base, ignore_errors=True)
    raise RuntimeError(f"PostgreSQL did not start: {last_error}")
