"""What is particular to the PostgreSQL store: reaching the server, and what its location shows."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from smimekit.errors import StoreLockedError
from smimekit.store import open_store
from smimekit.store.postgres import redact_url
from tests.pgserver import PgServer
from tests.testpki import make_ca


def test_open_store_picks_postgresql_for_a_url(pg_server: PgServer) -> None:
    url = pg_server.create_database()
    with open_store(url) as store:
        assert type(store.location) is str and store.location == url
        store.add_certificate(make_ca().cert)
    with open_store(url.replace("postgresql://", "postgres://")) as store:
        assert len(store.list_certificates()) == 1


def test_an_unreachable_server_is_a_store_locked_error() -> None:
    with socket.socket() as s:  # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(StoreLockedError, match="cannot reach") as caught:
        open_store(f"postgresql://someone:s3cret@127.0.0.1:{port}/db", timeout=2)
    assert "s3cret" not in str(caught.value)


def test_the_password_never_shows_in_the_location() -> None:
    assert (
        redact_url("postgresql://gw:pa:ss@db.example:5432/smime")
        == "postgresql://gw:***@db.example:5432/smime"
    )
    assert redact_url("postgresql://gw@db.example/smime") == "postgresql://gw@db.example/smime"


def test_a_url_that_went_through_a_path_still_opens_postgresql(pg_server: PgServer) -> None:
    url = pg_server.create_database()
    mangled = Path(url)  # click's path options do this: postgresql:/smimekit@127.0.0.1:PORT/db
    assert str(mangled).startswith("postgresql:/s")
    with open_store(mangled) as store:
        assert store.location == url
    assert not Path("postgresql:").exists()
