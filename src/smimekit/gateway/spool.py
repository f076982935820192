"""Where messages wait on disk while the gateway works on them, and the journal of what was delivered.

:class:`Spool` keeps each message in a private file (mode 0600, in a directory of mode 0700) from the end
of DATA until the SMTP reply; nothing in it needs to survive a crash, since Postfix keeps the message
until it hears 250. :class:`Journal` remembers, per message digest, the recipients for whom the next hop
already accepted a copy: when the gateway dies (or a later copy fails) after some copies went out and
Postfix sends the message again, those recipients are not served twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from smimekit.errors import GatewayError

__all__ = ["JOURNAL_LIFETIME", "Journal", "Spool", "SpooledMessage", "message_digest"]

#: Postfix gives up on a message after 5 days (maximal_queue_lifetime); its journal entry may go then.
JOURNAL_LIFETIME = 6 * 24 * 3600


def message_digest(sender: str, recipients: Iterable[str], data: bytes) -> str:
    """The identity of one delivery attempt's input: SHA-256 over the envelope and the message bytes
    (Postfix re-sends the same queue file, Received field and queue id included, on every retry)."""
    h = hashlib.sha256()
    h.update(sender.encode("utf-8", "surrogateescape") + b"\0")
    for r in sorted(recipients):
        h.update(r.encode("utf-8", "surrogateescape") + b"\0")
    h.update(b"\0")
    h.update(data)
    return h.hexdigest()


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
        fd, name = tempfile.mkstemp(prefix="msg-", dir=self.incoming)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(name)
            raise
        return SpooledMessage(Path(name), len(data), message_digest(sender, recipients, data))

    def output(self) -> tempfile._TemporaryFileWrapper[bytes]:
        """A private temporary file for a processed copy (deleted when closed)."""
        return tempfile.NamedTemporaryFile(prefix="out-", dir=self.incoming, delete=True)


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
