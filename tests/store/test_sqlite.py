"""What is particular to the SQLite store: file modes, the default location, foreign files, locking."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from smimekit.errors import StoreError, StoreLockedError, StoreSchemaError
from smimekit.store import Trust, default_location, open_store
from tests.testpki import make_ca


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_store_and_its_companions_are_private(tmp_path: Path) -> None:
    target = tmp_path / "new" / "dir" / "store.sqlite3"
    old_umask = os.umask(0o022)
    try:
        with open_store(target) as store:
            store.add_certificate(make_ca().cert, trust=Trust.EMAIL)  # a write: -wal and -shm exist now
            companions = [target.with_name(target.name + s) for s in ("-wal", "-shm")]
            assert all(p.exists() for p in companions)
            assert [_mode(p) for p in (target, *companions)] == [0o600, 0o600, 0o600]
            assert _mode(target.parent) == 0o700
            assert _mode(tmp_path / "new") == 0o755  # parents made on the way get the usual mode
    finally:
        os.umask(old_umask)


def test_an_existing_directory_keeps_its_mode(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    open_store(tmp_path / "s.sqlite3").close()
    assert _mode(tmp_path) == 0o755 and _mode(tmp_path / "s.sqlite3") == 0o600


def test_default_location_is_in_the_xdg_data_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SMIMEKIT_STORE", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_location() == str(tmp_path / "data" / "smimekit" / "store.sqlite3")
    with open_store() as store:
        assert store.location == str(tmp_path / "data" / "smimekit" / "store.sqlite3")
    assert _mode(tmp_path / "data" / "smimekit") == 0o700
    monkeypatch.setenv("SMIMEKIT_STORE", str(tmp_path / "elsewhere.db"))
    with open_store() as store:
        assert store.location == str(tmp_path / "elsewhere.db")


def test_a_file_that_is_not_a_database_is_refused_untouched(tmp_path: Path) -> None:
    target = tmp_path / "notes.txt"
    content = b"these are my notes, not a database\n" * 200
    target.write_bytes(content)
    with pytest.raises(StoreSchemaError, match="not a smimekit store"):
        open_store(target)
    assert target.read_bytes() == content


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="directory"):
        open_store(tmp_path)


def test_busy_past_the_timeout_is_store_locked(tmp_path: Path) -> None:
    target = tmp_path / "store.sqlite3"
    open_store(target).close()
    other = sqlite3.connect(target, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process is writing
        with open_store(target, timeout=0.2) as store:
            assert store.list_certificates() == []  # readers are not blocked (WAL)
            with pytest.raises(StoreLockedError, match="busy"):
                store.add_certificate(make_ca().cert)
        other.execute("ROLLBACK")
        with open_store(target, timeout=0.2) as store:
            store.add_certificate(make_ca().cert)
            assert len(store.list_certificates()) == 1
    finally:
        other.close()


def test_an_existing_empty_file_becomes_a_private_store(tmp_path: Path) -> None:
    target = tmp_path / "touched.db"  # made with touch, or mktemp
    target.touch()
    target.chmod(0o644)
    with open_store(target) as store:
        store.add_certificate(make_ca().cert)  # a write: the companions take the file's mode
        companions = [target.with_name(target.name + s) for s in ("-wal", "-shm")]
        assert [_mode(p) for p in (target, *companions)] == [0o600, 0o600, 0o600]


@pytest.mark.parametrize(("mode", "who"), [(0o640, "its group"), (0o604, "anyone")])
def test_a_store_others_can_read_is_warned_about_and_left_as_it_is(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, mode: int, who: str
) -> None:
    target = tmp_path / "shared.db"
    open_store(target).close()
    with caplog.at_level("WARNING", logger="smimekit.store.sqlite"):
        open_store(target).close()
        assert caplog.records == []  # a private store: nothing to say
        target.chmod(mode)
        with open_store(target) as store:
            assert store.list_certificates() == []
    [record] = caplog.records
    assert who in record.getMessage() and f"{mode:04o}" in record.getMessage()
    assert _mode(target) == mode  # shared on purpose, perhaps: not changed behind the owner's back
