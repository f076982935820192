"""What is particular to the PostgreSQL store: reaching the server, and what its location shows."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from smimekit.errors import StoreError, StoreLockedError
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("template", "secret"),
    [
        ("postgresql://u@127.0.0.1:{port}/x?password=qsecret", "qsecret"),  # given as a parameter
        ("postgresql://u:pw2secret@[::1/x", "pw2secret"),  # malformed: libpq quotes the whole URL
        ("postgresql://u:p/w3secret@127.0.0.1:{port}/x", "w3secret"),  # an unencoded '/' in the password
        ("postgresql://u:p%2Fw4secret@127.0.0.1:{port}/x", "w4secret"),  # the same, encoded: reachable
        ("postgresql://u:s5secret@127.0.0.1:{port}/x?bogus=1", "s5secret"),  # libpq refuses the query
        ("postgresql://u@127.0.0.1:{port}/x?sslpassword=k6secret", "k6secret"),
    ],
)
def test_no_message_shows_the_password(template: str, secret: str) -> None:
    url = template.format(port=_free_port())
    with pytest.raises(StoreError) as caught:
        open_store(url, timeout=2)
    assert secret not in str(caught.value)
    assert url not in str(caught.value)
    assert secret not in redact_url(url)


def test_the_location_is_rebuilt_without_the_password() -> None:
    assert redact_url("postgresql://u@127.0.0.1:1/x?password=qsecret") == "postgresql://u:***@127.0.0.1:1/x"
    assert (
        redact_url("postgres://u:p%2Fw@[::1]:5/d?sslmode=require")
        == "postgres://u:***@[::1]:5/d?sslmode=require"
    )
    assert redact_url("postgresql://u:pw2@[::1/x") == "postgresql://(an unparsable URL, not shown)"
    assert "w3" not in redact_url("postgresql://u:p/w3@127.0.0.1:1/x")


def test_an_unencoded_slash_in_the_password_is_refused_before_connecting() -> None:
    with pytest.raises(StoreError, match="percent-encoded") as caught:
        open_store("postgresql://u:p/w3@127.0.0.1:1/x", timeout=2)
    assert "w3" not in str(caught.value)


def test_a_short_password_withholds_the_details_it_might_be_in() -> None:
    port = _free_port()
    with pytest.raises(StoreLockedError) as caught:  # "1" is in the address and in "port NNNN failed"
        open_store(f"postgresql://u:1@127.0.0.1:{port}/x", timeout=2)
    assert str(caught.value) == f"cannot reach the store postgresql://u:***@127.0.0.1:{port}/x: " + (
        "details withheld, as they might show the password"
    )
