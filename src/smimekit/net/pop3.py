"""Reading a mailbox over POP3 (RFC 1939) with :mod:`poplib`, leaving every message on the server.

Messages are only listed and retrieved; :meth:`Pop3Mailbox.delete` (DELE) takes effect only when the
session ends with QUIT after no error, so a failure half-way deletes nothing. A message is read with
``TOP n <all lines>`` when the server has TOP, because servers that also speak IMAP (Dovecot) record a
RETR as ``\\Seen``; when TOP gives less than the size LIST announced, RETR reads it after all. The
connection is TLS from the first byte (port 995) or after STLS (RFC 2595), with the server's certificate
verified.
"""

from __future__ import annotations

import poplib
import re

from ..errors import NetError
from ._mailbox import MailboxSession, Opening
from .imap import MAX_MESSAGE_SIZE, FetchedMessage
from .tls import NETWORK_ERRORS, MailboxServer, TlsMode

__all__ = ["POP3S_PORT", "POP3_PORT", "Pop3Mailbox"]

POP3S_PORT = 995
POP3_PORT = 110
_LISTING = re.compile(rb"(\d+) (\S+)")
_ALL_LINES = 2**31 - 1  # TOP's line count for "the whole body" (the largest a 32-bit server parses)


def _reply(exc: BaseException) -> str:
    arg = exc.args[0] if exc.args else b""
    text = arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)
    return " ".join(text.split())


def _joined(lines: list[bytes]) -> bytes:
    """The message from poplib's lines (dot-stuffing and line ends removed): CRLF, as on the wire."""
    return b"\r\n".join(lines) + b"\r\n" if lines else b""


class Pop3Mailbox(MailboxSession[poplib.POP3]):
    """A POP3 maildrop, logged in. Use as a context manager: it ends with QUIT (committing deletions)
    only when the block ended without an error.

    Raises NetError (from the constructor or any method) when the server cannot be reached, refuses the
    login, or goes away.
    """

    def __init__(self, server: MailboxServer) -> None:
        self.server = server
        self._deleted = 0
        self._conn = self._connect()
        self._top = self._has_top()

    def _connect(self) -> poplib.POP3:
        server = self.server
        ep = server.endpoint
        conn: poplib.POP3
        with Opening[poplib.POP3](ep, poplib.POP3.close) as step:
            if server.tls is TlsMode.IMPLICIT:
                conn = step.conn = poplib.POP3_SSL(
                    ep.host, ep.port, timeout=server.timeout, context=server.context
                )
            else:
                conn = step.conn = poplib.POP3(ep.host, ep.port, timeout=server.timeout)
                step.doing = "starting TLS"
                if "STLS" not in conn.capa():
                    raise NetError(f"{ep} does not offer STLS: the password is not sent in clear text")
                conn.stls(context=server.context)
            step.doing = "logging in"
            try:
                conn.user(server.user)
                conn.pass_(server.password)
            except poplib.error_proto as exc:
                raise NetError(
                    f"{ep} refused the user name or password for {server.user!r}: {_reply(exc)}"
                ) from None
        return conn

    def _has_top(self) -> bool:
        try:
            return "TOP" in self._conn.capa()
        except poplib.error_proto:  # no CAPA (RFC 2449): do not guess
            return False
        except NETWORK_ERRORS as exc:
            raise self._fail(exc, "asking for capabilities") from None

    def messages(self) -> list[tuple[int, int]]:
        """``(number, size)`` of every message in the maildrop, in order."""
        try:
            _, lines, _ = self._conn.list()
        except NETWORK_ERRORS as exc:
            raise self._fail(exc, "listing messages") from None
        out = []
        for line in lines:
            found = _LISTING.match(line)
            if found is not None and found.group(2).isdigit():
                out.append((int(found.group(1)), int(found.group(2))))
        return out

    def unique_ids(self) -> dict[int, str]:
        """Message number -> UIDL (empty when the server has no UIDL)."""
        try:
            _, lines, _ = self._conn.uidl()
        except poplib.error_proto:
            return {}
        except NETWORK_ERRORS as exc:
            raise self._fail(exc, "listing unique ids") from None
        out = {}
        for line in lines:
            found = _LISTING.match(line)
            if found is not None:
                out[int(found.group(1))] = found.group(2).decode("ascii", "replace")
        return out

    def retrieve(
        self,
        number: int,
        *,
        size: int | None = None,
        uidl: str | None = None,
        max_size: int = MAX_MESSAGE_SIZE,
    ) -> FetchedMessage:
        """Message ``number`` (RETR, which leaves it on the server). ``size`` from :meth:`messages` lets a
        message over ``max_size`` be refused before it is downloaded. Raises NetError."""
        label = f"message {number}" + (f" (UIDL {uidl})" if uidl else "")
        if size is not None and size > max_size:
            raise NetError(f"{label} is {size} bytes, more than the limit of {max_size}")
        try:
            data = _joined(self._conn.top(number, _ALL_LINES)[1]) if self._top else None
            if data is None or (size is not None and len(data) < size):
                data = _joined(self._conn.retr(number)[1])
        except NETWORK_ERRORS as exc:
            raise self._fail(exc, f"retrieving {label}") from None
        return FetchedMessage(number, label, data)

    def delete(self, number: int) -> None:
        """Mark message ``number`` for deletion (DELE); it is deleted when the session ends with QUIT."""
        try:
            self._conn.dele(number)
        except NETWORK_ERRORS as exc:
            raise self._fail(exc, f"deleting message {number}") from None
        self._deleted += 1

    def close(self, *, commit: bool = True) -> None:
        """End the session: QUIT (deletions happen) with ``commit``, else drop the connection (no message
        marked with :meth:`delete` is deleted)."""
        if not commit:
            self._conn.close()
            return
        try:
            self._conn.quit()
        except NETWORK_ERRORS as exc:
            self._conn.close()
            if self._deleted:
                raise self._fail(exc, "deleting messages") from None

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self.close(commit=exc_type is None)
