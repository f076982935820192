"""Reading a mailbox over IMAP4rev1 (RFC 3501) with :mod:`imaplib`, leaving the server's copy as it was.

The folder is opened with EXAMINE (read-only) and messages are fetched with ``BODY.PEEK[]``, so reading
never sets ``\\Seen``; only a mailbox opened ``writable=True`` can :meth:`ImapMailbox.mark_seen` or
:meth:`ImapMailbox.delete`. The connection is TLS from the first byte (port 993) or after STARTTLS, with
the server's certificate verified (:func:`smimekit.net.tls.client_context`).
"""

from __future__ import annotations

import contextlib
import imaplib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import NetError, UsageError
from ._mailbox import MailboxSession, Opening
from .tls import NETWORK_ERRORS, MailboxServer, TlsMode, server_reply

__all__ = [
    "IMAPS_PORT",
    "IMAP_PORT",
    "MAX_MESSAGE_SIZE",
    "FetchedMessage",
    "ImapMailbox",
    "check_criteria",
    "check_uid_set",
]

IMAPS_PORT = 993
IMAP_PORT = 143
MAX_MESSAGE_SIZE = 256 << 20
"""The largest message fetched (bytes): a message is held in memory while it is opened."""

_NUMBER = r"(?:[1-9][0-9]*|\*)"
_UID_SET = re.compile(rf"{_NUMBER}(?::{_NUMBER})?(?:,{_NUMBER}(?::{_NUMBER})?)*")
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")
_UID = re.compile(rb"UID (\d+)")


@dataclass(frozen=True)
class FetchedMessage:
    """One message read from a mailbox: its bytes, where it came from and its flags on the server."""

    uid: int
    """The IMAP UID (for POP3, the message number of the session)."""
    label: str
    """How to name it to a user: ``UID 17`` or ``message 3 (UIDL ...)``."""
    data: bytes
    flags: tuple[str, ...] = ()


def check_uid_set(value: str) -> str:
    """``value`` when it is an IMAP UID set (``5``, ``1:10``, ``3,7:*``); else UsageError."""
    text = value.strip()
    if not _UID_SET.fullmatch(text):
        raise UsageError(f"{value!r} is not a UID set such as 42, 1:100, 7:* or 3,5,9")
    return text


def check_criteria(value: str) -> str:
    """``value`` when it can be sent as IMAP SEARCH criteria (ASCII, one line); else UsageError.

    The criteria are the server's to judge (``UNSEEN FROM "alice"``, ``SINCE 1-Jan-2026``)."""
    text = value.strip()
    if not text:
        raise UsageError("the IMAP search criteria are empty (use ALL for every message)")
    if not text.isascii() or any(c in text for c in "\r\n\0"):
        raise UsageError("the IMAP search criteria must be ASCII on one line")
    return text


def _reply(data: Sequence[object]) -> str:
    parts = [d.decode("utf-8", "replace") if isinstance(d, bytes) else str(d) for d in data if d]
    return " ".join(" ".join(parts).split())


class ImapMailbox(MailboxSession[imaplib.IMAP4]):
    """One folder of an IMAP server, opened for reading. Use as a context manager.

    Raises NetError (from the constructor or any method) when the server cannot be reached, refuses the
    login or the folder, or goes away.
    """

    def __init__(self, server: MailboxServer, *, folder: str = "INBOX", writable: bool = False) -> None:
        if not folder.isascii() or any(c in folder for c in "\r\n\0"):
            raise UsageError(f"the folder name {folder!r} must be ASCII on one line")
        self.server = server
        self.folder = folder
        self.writable = writable
        self._deleted: list[int] = []
        self._conn = self._connect()

    # -- session ----------------------------------------------------------------------------------
    def _connect(self) -> imaplib.IMAP4:
        server = self.server
        ep = server.endpoint
        conn: imaplib.IMAP4
        with Opening[imaplib.IMAP4](ep, _drop) as step:
            if server.tls is TlsMode.IMPLICIT:
                conn = step.conn = imaplib.IMAP4_SSL(
                    ep.host, ep.port, ssl_context=server.context, timeout=server.timeout
                )
            else:
                conn = step.conn = imaplib.IMAP4(ep.host, ep.port, timeout=server.timeout)
                if "STARTTLS" not in conn.capabilities:
                    raise NetError(f"{ep} does not offer STARTTLS: the password is not sent in clear text")
                step.doing = "starting TLS"
                conn.starttls(ssl_context=server.context)
            step.doing = "logging in"
            self._login(conn)
            step.doing = f"opening the folder {self.folder!r}"
            typ, data = conn.select(_quote(self.folder), readonly=not self.writable)
            if typ != "OK":
                raise NetError(f"{ep} cannot open the folder {self.folder!r}: {_reply(data)}")
        return conn

    def _login(self, conn: imaplib.IMAP4) -> None:
        user, password = self.server.user, self.server.password
        try:
            if user.isascii() and password.isascii():
                conn.login(_quote(user), password)  # imaplib quotes the password itself
            else:  # LOGIN is ASCII only; SASL PLAIN carries UTF-8 (RFC 4616)
                secret = f"\0{user}\0{password}".encode()
                conn.authenticate("PLAIN", lambda _challenge: secret)
        except imaplib.IMAP4.abort:
            raise
        except imaplib.IMAP4.error as exc:
            reply = server_reply(exc)
            raise NetError(
                f"{self.server.endpoint} refused the user name or password for {user!r}: {reply}"
            ) from None

    def close(self) -> None:
        """Expunge what :meth:`delete` marked (a writable mailbox only) and log out."""
        conn = self._conn
        try:
            if self._deleted:
                self._expunge()
            conn.logout()
        except NETWORK_ERRORS as exc:
            _drop(conn)
            if self._deleted:
                raise self._fail(exc, "deleting messages") from None

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is not None:
            self._deleted.clear()  # something failed: delete nothing
        self.close()

    # -- reading ----------------------------------------------------------------------------------
    def search(self, criteria: str = "ALL", *, uids: str | None = None) -> list[int]:
        """The UIDs of the messages matching ``criteria`` (and in the UID set ``uids``), ascending."""
        query = check_criteria(criteria)
        if uids is not None:
            query = f"UID {check_uid_set(uids)} {query}"
        try:
            typ, data = self._conn.uid("SEARCH", query)
        except imaplib.IMAP4.abort as exc:
            raise self._fail(exc, "searching") from None
        except imaplib.IMAP4.error as exc:
            raise NetError(
                f"{self.server.endpoint} refused the search {query!r}: {server_reply(exc)}"
            ) from None
        except NETWORK_ERRORS as exc:
            raise self._fail(exc, "searching") from None
        if typ != "OK":
            raise NetError(f"{self.server.endpoint} refused the search {query!r}: {_reply(data)}")
        found = {int(n) for line in data if isinstance(line, bytes) for n in line.split()}
        return sorted(found)

    def fetch(self, uid: int, *, max_size: int = MAX_MESSAGE_SIZE) -> FetchedMessage:
        """The message with ``uid``, read with BODY.PEEK (so its ``\\Seen`` flag does not change), and its
        flags. Raises NetError when it is gone or larger than ``max_size``."""
        label = f"UID {uid}"
        try:
            typ, data = self._conn.uid("FETCH", str(uid), "(UID FLAGS RFC822.SIZE)")
            head = b" ".join(d if isinstance(d, bytes) else d[0] for d in data if d is not None)
            if typ != "OK" or not _UID.search(head):
                raise NetError(f"{self.server.endpoint}: message {label} is not in {self.folder!r}")
            size = _SIZE.search(head)
            if size is not None and int(size.group(1)) > max_size:
                raise NetError(
                    f"message {label} is {int(size.group(1))} bytes, more than the limit of {max_size}"
                )
            flags = tuple(f.decode("ascii", "replace") for f in imaplib.ParseFlags(head))
            typ, data = self._conn.uid("FETCH", str(uid), "(BODY.PEEK[])")
        except NETWORK_ERRORS as exc:
            raise self._fail(exc, f"fetching {label}") from None
        body = next((d[1] for d in data if isinstance(d, tuple) and len(d) == 2), None)
        if typ != "OK" or body is None:
            raise NetError(f"{self.server.endpoint} did not send message {label}: {_reply(data)}")
        return FetchedMessage(uid, label, body, flags)

    def flags(self, uid: int) -> tuple[str, ...]:
        """The flags of message ``uid`` on the server now."""
        try:
            _typ, data = self._conn.uid("FETCH", str(uid), "(FLAGS)")
        except NETWORK_ERRORS as exc:
            raise self._fail(exc, "reading flags") from None
        head = b" ".join(d if isinstance(d, bytes) else d[0] for d in data if d is not None)
        return tuple(f.decode("ascii", "replace") for f in imaplib.ParseFlags(head))

    # -- changing (writable mailboxes only) -----------------------------------------------------
    def _store(self, uid: int, flag: str) -> None:
        if not self.writable:
            raise UsageError("the mailbox was opened read-only: open it with writable=True to change it")
        try:
            typ, data = self._conn.uid("STORE", str(uid), "+FLAGS.SILENT", f"({flag})")
        except NETWORK_ERRORS as exc:
            raise self._fail(exc, f"setting {flag} on UID {uid}") from None
        if typ != "OK":
            raise NetError(f"{self.server.endpoint} refused to set {flag} on UID {uid}: {_reply(data)}")

    def mark_seen(self, uid: int) -> None:
        """Set ``\\Seen`` on message ``uid``."""
        self._store(uid, "\\Seen")

    def delete(self, uid: int) -> None:
        """Mark message ``uid`` ``\\Deleted``; it is expunged when the mailbox is closed without error."""
        self._store(uid, "\\Deleted")
        self._deleted.append(uid)

    def _expunge(self) -> None:
        uids = ",".join(str(u) for u in self._deleted)
        if "UIDPLUS" in self._conn.capabilities:
            # UID EXPUNGE (RFC 4315) removes only these, not what another client marked \Deleted
            typ, data = self._conn.xatom("UID", "EXPUNGE", uids)
        else:
            typ, data = self._conn.expunge()
        if typ != "OK":
            raise NetError(f"{self.server.endpoint} refused to expunge UIDs {uids}: {_reply(data)}")
        self._deleted.clear()


def _quote(text: str) -> str:
    """``text`` as an IMAP quoted string (imaplib sends arguments as they are)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _drop(conn: imaplib.IMAP4) -> None:
    with contextlib.suppress(OSError, EOFError, imaplib.IMAP4.error):
        conn.shutdown()
