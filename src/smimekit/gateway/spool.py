"""Where messages wait on disk while the gateway works on them, and the journal of what was delivered.

:class:`Spool` keeps each message in a private file (mode 0600, in a directory of mode 0700) from DATA
until the SMTP reply: :func:`read_data` writes the DATA of an SMTP session into it (a :class:`SpoolWriter`)
as it arrives, so a message is never whole in memory. Nothing in it needs to survive a crash, since
Postfix keeps the message until it hears 250. :class:`Journal` remembers, per message digest, the recipients for whom the next hop
already accepted a copy: when the gateway dies (or a later copy fails) after some copies went out and
Postfix sends the message again, those recipients are not served twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from smimekit.errors import GatewayError

__all__ = [
    "JOURNAL_LIFETIME",
    "PIECE",
    "Journal",
    "Spool",
    "SpoolWriter",
    "SpooledMessage",
    "message_digest",
    "read_data",
]

#: Postfix gives up on a message after 5 days (maximal_queue_lifetime); its journal entry may go then.
JOURNAL_LIFETIME = 6 * 24 * 3600
#: DATA goes to the spool file in pieces of about this size.
PIECE = 1 << 20


def message_digest(sender: str, recipients: Iterable[str], data: bytes) -> str:
    """The identity of one delivery attempt's input: SHA-256 over the envelope and the message bytes
    (Postfix re-sends the same queue file, Received field and queue id included, on every retry)."""
    h = _envelope_hash(sender, recipients)
    h.update(data)
    return h.hexdigest()


def _envelope_hash(sender: str, recipients: Iterable[str]) -> hashlib._Hash:
    """:func:`message_digest` before the message bytes."""
    h = hashlib.sha256()
    h.update(sender.encode("utf-8", "surrogateescape") + b"\0")
    for r in sorted(recipients):
        h.update(r.encode("utf-8", "surrogateescape") + b"\0")
    h.update(b"\0")
    return h


@dataclass(frozen=True)
class SpooledMessage:
    """A message on disk: its ``path``, ``size`` and :func:`message_digest`."""

    path: Path
    size: int
    digest: str

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def _private_dir(path: Path) -> Path:
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(path, 0o700)
    except OSError as exc:
        raise GatewayError(f"cannot use the spool directory {path}: {exc.strerror or exc}") from exc
    return path


class Spool:
    """A private directory of messages being processed (``directory/incoming``)."""

    def __init__(self, directory: Path) -> None:
        self.directory = _private_dir(Path(directory))
        self.incoming = _private_dir(self.directory / "incoming")
        # one gateway per spool: a second one would delete the first one's messages in flight
        self._lock_fd = os.open(self.directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock_fd)
            raise GatewayError(f"the spool directory {self.directory} is in use by another gateway") from None
        # left over by a gateway that died: Postfix still holds those messages and will send them again
        for stale in self.incoming.glob("msg-*"):
            with contextlib.suppress(OSError):
                stale.unlink()

    def close(self) -> None:
        """Release the spool (another gateway may use it then)."""
        with contextlib.suppress(OSError):
            os.close(self._lock_fd)

    def put(self, sender: str, recipients: Iterable[str], data: bytes) -> SpooledMessage:
        """Write ``data`` to a new private file. Raises OSError when the disk refuses it."""
        writer = self.writer(sender, recipients)
        return writer.finish(data)

    def writer(self, sender: str, recipients: Iterable[str]) -> SpoolWriter:
        """A new message, written piece by piece as it arrives (see :class:`SpoolWriter`)."""
        return SpoolWriter(self.incoming, sender, recipients)

    def output(self) -> tempfile._TemporaryFileWrapper[bytes]:
        """A private temporary file for a processed copy (deleted when closed)."""
        return tempfile.NamedTemporaryFile(prefix="out-", dir=self.incoming, delete=True)


class SpoolWriter:
    """A message going into the spool as it arrives: :meth:`write` its bytes in order, then
    :meth:`finish` (or :meth:`discard`). The private file is created by the first write; the digest
    (:func:`message_digest`) is computed along the way, so nothing but the piece being written is held.
    Not thread-safe: one message is written by one task, each call after the previous one returned."""

    def __init__(self, directory: Path, sender: str, recipients: Iterable[str]) -> None:
        self._directory = directory
        self._hash = _envelope_hash(sender, recipients)
        self._file: IO[bytes] | None = None
        self._path: Path | None = None
        self._done = False
        self.size = 0

    def write(self, data: bytes) -> None:
        """Append ``data``. Raises OSError when the disk refuses it (the file is removed then)."""
        if self._done:
            raise ValueError("the message is already finished or discarded")
        try:
            if self._file is None:
                fd, name = tempfile.mkstemp(prefix="msg-", dir=self._directory)
                self._path = Path(name)
                self._file = os.fdopen(fd, "wb")
            self._file.write(data)
        except BaseException:
            self.discard()
            raise
        self._hash.update(data)
        self.size += len(data)

    def finish(self, data: bytes = b"") -> SpooledMessage:
        """Append ``data`` and close the file; returns the spooled message. Raises OSError as
        :meth:`write`."""
        if data or self._file is None:
            self.write(data)
        assert self._file is not None and self._path is not None
        try:
            self._file.close()
        except BaseException:
            self.discard()
            raise
        self._done = True
        path, self._path = self._path, None  # the SpooledMessage owns it now
        self._file = None
        return SpooledMessage(path, self.size, self._hash.hexdigest())

    def discard(self) -> None:
        """Forget the message: close and remove its file (nothing happens once finished or discarded)."""
        self._done = True
        file, self._file = self._file, None
        if file is not None:
            with contextlib.suppress(OSError):
                file.close()
        if self._path is not None:
            with contextlib.suppress(OSError):
                self._path.unlink()


class _Body:
    """The data of one DATA command as it arrives, a piece at a time, in order: dot-unstuffed, its lines
    measured (as sent, with their dots). A piece given to :meth:`take` must not end inside a CRLF, nor
    between a CRLF and the dot after it (:func:`read_data` cuts before them)."""

    def __init__(self, line_limit: int) -> None:
        self.room = line_limit - 2  # the longest line allowed, without its CRLF
        self.line = 0  # the length of the line not ended yet
        self.start = True
        self.too_long = False

    def take(self, piece: bytes) -> bytes:
        """The next ``piece`` of the wire data, dot-unstuffed (RFC 5321 4.5.2)."""
        if not piece:
            return b""
        if not self.too_long:
            self._measure(piece)
        if self.start:
            self.start = False
            if piece.startswith(b"."):
                piece = piece[1:]
        return piece.replace(b"\r\n.", b"\r\n")

    def _measure(self, piece: bytes) -> None:
        """Sets ``too_long`` when a line reaches past ``room``; looks at one window of ``room`` bytes per
        step rather than at every line."""
        room = self.room
        first = piece.find(b"\r\n")
        if first == -1:
            self.line += len(piece)
            self.too_long = self.line > room
            return
        if self.line + first > room:
            self.too_long = True
            return
        pos, end = first + 2, len(piece)
        while end - pos >= room + 2:  # a whole line of room + 1 bytes could start at pos
            k = piece.rfind(b"\r\n", pos, pos + room + 2)  # the last line end within reach
            if k == -1:
                self.too_long = True
                return
            pos = k + 2
        last = piece.rfind(b"\r\n", pos)
        self.line = end - (pos if last == -1 else last + 2)
        self.too_long = self.line > room


async def read_data(
    reader: asyncio.StreamReader,
    write: Callable[[bytes], Awaitable[None]],
    size_limit: int | None,
    line_limit: int,
) -> tuple[bytes | None, str]:
    """Read the message of a DATA command up to its ``CRLF.CRLF`` (or a first line that is ``.``) and no
    further, dot-unstuffed, handing it to ``write`` in pieces of about :data:`PIECE` bytes as it arrives;
    returns the last piece (not given to ``write``) and "". Returns None and the reply when the message
    is too large (552; ``size_limit`` counts the data as sent) or has a line longer than ``line_limit``
    bytes with its CRLF (500): the rest is read and dropped, and what ``write`` got must be discarded.
    Returns None and "" when the connection ended first. Holds at most about :data:`PIECE` bytes."""
    body = _Body(line_limit)
    pending = bytearray()  # unstuffed, not written yet
    held = b""  # the last bytes read, not looked at yet: the terminator may start in them
    total = 0  # bytes read
    too_much = False
    while True:
        try:
            piece = await reader.readuntil(b".\r\n")
        except asyncio.LimitOverrunError as exc:  # no ".CRLF" within the reader's limit: take what is there
            piece = await reader.read(exc.consumed)
        except asyncio.IncompleteReadError:
            return None, ""
        total += len(piece)
        data = held + piece
        if data.endswith(b".\r\n") and (total == 3 or data[-5:-3] == b"\r\n"):
            break  # a line that is "." alone: the end (a "." ending a longer line is data)
        if size_limit and total - 2 > size_limit:  # at most ".\r" of the terminator came yet
            too_much = True
        if too_much or body.too_long:  # read on, to the terminator, and drop it
            held = data[-5:]
            continue
        cut = len(data) - 5  # keep enough to recognise the terminator
        if cut < 2:
            held = data
            continue
        if data[cut - 2 : cut + 1] == b"\r\n.":  # never between a line end and a dot to unstuff
            cut -= 2
        elif data[cut - 1 : cut + 1] == b"\r\n":  # nor inside a line end
            cut -= 1
        held = data[cut:]
        pending += body.take(data[:cut])
        if len(pending) >= PIECE:
            await write(bytes(pending))
            pending.clear()
    if too_much or (size_limit and total - 3 > size_limit):
        return None, "552 Error: Too much mail data"
    if not body.too_long:
        pending += body.take(data[:-3])
    if body.too_long:
        return None, "500 Line too long (see RFC5321 4.5.3.1.6)"
    return bytes(pending), ""


class Journal:
    """Recipients already served, per message digest (``directory/journal/<ab>/<digest>``, one per line).

    Written with fsync once the next hop accepted a copy and before the gateway replies, so a crash in
    between cannot lead to a second delivery when Postfix retries.
    """

    def __init__(self, directory: Path, *, lifetime: float = JOURNAL_LIFETIME) -> None:
        self.directory = _private_dir(Path(directory) / "journal")
        self.lifetime = lifetime
        self._pruned = time.monotonic()
        self.prune()

    def _path(self, digest: str) -> Path:
        if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
            raise ValueError("a journal key is a SHA-256 hex digest")
        return self.directory / digest[:2] / digest  # sharded: a busy day leaves many entries

    def delivered(self, digest: str) -> frozenset[str]:
        """The recipients already served for ``digest``."""
        try:
            text = self._path(digest).read_text("utf-8", "surrogateescape")
        except FileNotFoundError:
            return frozenset()
        return frozenset(line for line in text.split("\n") if line)

    def record(self, digest: str, recipients: Iterable[str]) -> None:
        """Remember that ``recipients`` were served for ``digest`` (durably: fsync before returning)."""
        lines = "".join(f"{r}\n" for r in recipients)
        path = self._path(digest)
        if time.monotonic() - self._pruned > 3600:  # a long-running gateway sweeps once an hour
            self._pruned = time.monotonic()
            self.prune()
        # no lock: one message is handled by one thread at a time, and each message has its own file
        path.parent.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, lines.encode("utf-8", "surrogateescape"))
            os.fsync(fd)
        finally:
            os.close(fd)

    def prune(self, *, now: float | None = None) -> int:
        """Remove entries older than the lifetime; returns how many."""
        limit = (time.time() if now is None else now) - self.lifetime
        removed = 0
        for entry in self.directory.glob("*/*"):
            with contextlib.suppress(OSError):
                if entry.stat().st_mtime < limit:
                    entry.unlink()
                    removed += 1
        return removed
