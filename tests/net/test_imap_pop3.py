"""smimekit.net.imap, .pop3 and .maildir against a real Dovecot (IMAPS, IMAP+STARTTLS, POP3S, POP3+STLS on
127.0.0.1, mail delivered over LMTP): messages come back byte for byte, reading never changes the
server's copy, changes happen only when asked, and each failure is one NetError."""

from __future__ import annotations

import os
import smtplib
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from smimekit.errors import NetError, UsageError
from smimekit.net import imap, pop3
from smimekit.net.maildir import Maildir
from smimekit.net.tls import Endpoint, MailboxServer, TlsMode, client_context
from tests.servers import _ports, _system
from tests.servers.dovecot import Dovecot

PASSWORD = "pw-☃-secret"  # non-ASCII: IMAP LOGIN cannot carry it, SASL PLAIN must
USERS = {f"{name}@example.com": PASSWORD for name in ("reader", "marker", "deleter", "popper", "popdel")}


@pytest.fixture(scope="module")
def dovecot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dovecot]:
    if _system.which("dovecot") is None:
        pytest.skip("dovecot is not installed")
    with Dovecot(tmp_path_factory.mktemp("dovecot"), users=USERS) as dc:
        yield dc


def _deliver(dc: Dovecot, user: str, subject: str, body: str = "hello") -> bytes:
    message = (
        f"From: sender@example.org\r\nTo: {user}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@example.org>\r\n\r\n{body}\r\n.dot line\r\n"
    ).encode()
    with smtplib.LMTP(dc.host, dc.lmtp_port) as lmtp:
        assert lmtp.sendmail("sender@example.org", [user], message) == {}
    return message


def _server(
    dc: Dovecot, user: str, *, port: int, tls: TlsMode = TlsMode.IMPLICIT, **kw: object
) -> MailboxServer:
    given = kw.get("context")
    context = given if isinstance(given, ssl.SSLContext) else client_context(ca_file=dc.ca_pem)
    password = str(kw.get("password", PASSWORD))
    return MailboxServer(Endpoint(dc.host, port), tls, context, user=user, password=password, timeout=10)


def _flags_now(dc: Dovecot, user: str) -> dict[int, tuple[str, ...]]:
    """Every message's flags, read with a separate read-only session."""
    with imap.ImapMailbox(_server(dc, user, port=dc.imap_port)) as box:
        return {uid: box.flags(uid) for uid in box.search()}


# ------------------------------------------------------------------------------------------ IMAP


def test_imap_fetch_returns_the_message_and_leaves_it_unseen(dovecot: Dovecot) -> None:
    user = "reader@example.com"
    subject = f"imap {uuid.uuid4().hex}"
    sent = _deliver(dovecot, user, subject)
    with imap.ImapMailbox(_server(dovecot, user, port=dovecot.imap_port)) as box:
        uids = box.search(f'SUBJECT "{subject}"')
        assert len(uids) == 1
        fetched = box.fetch(uids[0])
    assert fetched.label == f"UID {uids[0]}"
    assert fetched.data.endswith(sent)  # Dovecot adds Return-Path and Delivered-To above it
    assert "\\Seen" not in fetched.flags
    assert "\\Seen" not in _flags_now(dovecot, user)[uids[0]]


def test_imap_over_starttls_and_uid_ranges(dovecot: Dovecot) -> None:
    user = "reader@example.com"
    for n in range(2):
        _deliver(dovecot, user, f"range {n}")
    server = _server(dovecot, user, port=dovecot.imap_starttls_port, tls=TlsMode.STARTTLS)
    with imap.ImapMailbox(server) as box:
        every = box.search()
        assert len(every) >= 2
        assert box.search(uids=f"{every[-1]}:*") == [every[-1]]
        assert box.search("ALL", uids=f"{every[0]},{every[-1]}") == [every[0], every[-1]]
        assert box.alive()


def test_read_only_mailbox_refuses_to_change(dovecot: Dovecot) -> None:
    with imap.ImapMailbox(_server(dovecot, "reader@example.com", port=dovecot.imap_port)) as box:
        with pytest.raises(UsageError, match="read-only"):
            box.mark_seen(1)
        with pytest.raises(UsageError, match="read-only"):
            box.delete(1)


def test_mark_seen_sets_only_that_flag(dovecot: Dovecot) -> None:
    user = "marker@example.com"
    _deliver(dovecot, user, "first")
    _deliver(dovecot, user, "second")
    with imap.ImapMailbox(_server(dovecot, user, port=dovecot.imap_port), writable=True) as box:
        first, second = box.search()
        box.fetch(first)
        box.mark_seen(first)
    flags = _flags_now(dovecot, user)
    assert "\\Seen" in flags[first]
    assert "\\Seen" not in flags[second]


def test_delete_expunges_only_the_message_asked_for(dovecot: Dovecot) -> None:
    user = "deleter@example.com"
    for n in range(3):
        _deliver(dovecot, user, f"del {n}")
    with imap.ImapMailbox(_server(dovecot, user, port=dovecot.imap_port), writable=True) as box:
        uids = box.search()
        box.delete(uids[1])
    assert sorted(_flags_now(dovecot, user)) == [uids[0], uids[2]]


def test_delete_is_undone_when_the_block_fails(dovecot: Dovecot) -> None:
    user = "deleter@example.com"
    _deliver(dovecot, user, "kept")
    before = sorted(_flags_now(dovecot, user))
    with (
        pytest.raises(RuntimeError),
        imap.ImapMailbox(_server(dovecot, user, port=dovecot.imap_port), writable=True) as box,
    ):
        box.delete(before[-1])
        raise RuntimeError("something went wrong after marking")
    assert sorted(_flags_now(dovecot, user)) == before  # marked \Deleted, but never expunged


def test_imap_errors_are_net_errors(dovecot: Dovecot) -> None:
    user = "reader@example.com"
    with pytest.raises(NetError, match="refused the user name or password"):
        imap.ImapMailbox(_server(dovecot, user, port=dovecot.imap_port, password="wrong"))
    with pytest.raises(NetError, match="did not verify"):
        imap.ImapMailbox(_server(dovecot, user, port=dovecot.imap_port, context=client_context()))
    with pytest.raises(NetError, match="cannot open the folder"):
        imap.ImapMailbox(_server(dovecot, user, port=dovecot.imap_port), folder="NoSuchFolder")
    with pytest.raises(NetError, match="refused the connection"):
        imap.ImapMailbox(_server(dovecot, user, port=_ports.free_port()))
    with imap.ImapMailbox(_server(dovecot, user, port=dovecot.imap_port)) as box:
        with pytest.raises(NetError, match="refused the search"):
            box.search("NOSUCHKEY 1")
        with pytest.raises(NetError, match="is not in"):
            box.fetch(999_999)
        uid = box.search()[0]
        with pytest.raises(NetError, match="more than the limit"):
            box.fetch(uid, max_size=10)


@pytest.mark.parametrize("value", ["", "1:", "a", "1,,2", "0", "1 OR 2"])
def test_uid_sets_are_checked(value: str) -> None:
    with pytest.raises(UsageError):
        imap.check_uid_set(value)


@pytest.mark.parametrize("value", ["", "ALL\r\nA1 LOGOUT", 'SUBJECT "é"'])
def test_search_criteria_are_checked(value: str) -> None:
    with pytest.raises(UsageError):
        imap.check_criteria(value)


# ------------------------------------------------------------------------------------------ POP3


def test_pop3_retrieves_and_leaves_every_message(dovecot: Dovecot) -> None:
    user = "popper@example.com"
    sent = [_deliver(dovecot, user, f"pop {n}") for n in range(2)]
    for port, tls in ((dovecot.pop3_port, TlsMode.IMPLICIT), (dovecot.pop3_starttls_port, TlsMode.STARTTLS)):
        with pop3.Pop3Mailbox(_server(dovecot, user, port=port, tls=tls)) as drop:
            listing = drop.messages()
            ids = drop.unique_ids()
            got = [drop.retrieve(n, size=size, uidl=ids.get(n)) for n, size in listing]
        assert len(got) == 2
        for message, fetched in zip(sent, got, strict=True):
            assert fetched.data.endswith(message)
            assert fetched.label.startswith(f"message {fetched.uid} (UIDL ")
    assert len(dovecot.messages_on_disk(user)) == 2
    # read with TOP: Dovecot did not record the reads as \Seen for IMAP clients
    assert all("\\Seen" not in flags for flags in _flags_now(dovecot, user).values())


def test_pop3_delete_needs_a_clean_quit(dovecot: Dovecot) -> None:
    user = "popdel@example.com"
    for n in range(2):
        _deliver(dovecot, user, f"popdel {n}")
    with (
        pytest.raises(RuntimeError),
        pop3.Pop3Mailbox(_server(dovecot, user, port=dovecot.pop3_port)) as drop,
    ):
        drop.delete(1)
        raise RuntimeError("failed before QUIT")
    assert len(dovecot.messages_on_disk(user)) == 2
    with pop3.Pop3Mailbox(_server(dovecot, user, port=dovecot.pop3_port)) as drop:
        drop.delete(1)
    assert len(dovecot.messages_on_disk(user)) == 1


def test_pop3_errors_are_net_errors(dovecot: Dovecot) -> None:
    user = "popper@example.com"
    with pytest.raises(NetError, match="refused the user name or password"):
        pop3.Pop3Mailbox(_server(dovecot, user, port=dovecot.pop3_port, password="wrong"))
    with pytest.raises(NetError, match="did not verify"):
        pop3.Pop3Mailbox(_server(dovecot, user, port=dovecot.pop3_port, context=client_context()))
    with pop3.Pop3Mailbox(_server(dovecot, user, port=dovecot.pop3_port)) as drop:
        with pytest.raises(NetError, match="more than the limit"):
            drop.retrieve(1, size=100, max_size=10)
        with pytest.raises(NetError):
            drop.retrieve(999)


# ------------------------------------------------------------------------------------------ Maildir


def test_maildir_is_created_and_delivery_lands_in_new(tmp_path: Path) -> None:
    box = Maildir(tmp_path / "Mail" / "inbox")
    first = box.deliver(b"Subject: one\r\n\r\n1\r\n")
    second = box.deliver([b"Subject: two\r\n", b"\r\n2\r\n"])
    assert first != second and first.parent.name == second.parent.name == "new"
    assert second.read_bytes() == b"Subject: two\r\n\r\n2\r\n"
    assert os.listdir(box.path / "tmp") == []
    assert box.messages() == sorted([first, second])
    assert {p.name for p in box.path.iterdir()} == {"tmp", "new", "cur"}
    assert (box.path / "new").stat().st_mode & 0o777 == 0o700
    assert ":" not in first.name and "/" not in first.name


def test_maildir_names_are_unique_under_many_deliveries(tmp_path: Path) -> None:
    box = Maildir(tmp_path)
    names = {box.deliver(b"x").name for _ in range(50)}
    assert len(names) == 50


def test_maildir_problems_are_usage_errors(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("in the way")
    with pytest.raises(UsageError, match=r"cannot create the Maildir .*: not a directory"):
        Maildir(tmp_path / "file")
    box = Maildir(tmp_path / "box")
    (box.path / "new").rmdir()  # broken under our feet: the rename into new/ fails
    with pytest.raises(UsageError, match="cannot write into the Maildir"):
        box.deliver(b"x")
    assert os.listdir(box.path / "tmp") == []  # the partial file is gone
