"""Delivering messages into a local Maildir (the format of qmail, Dovecot, mutt, ...).

Each message is written to ``tmp/`` under a name no other delivery can pick, flushed to disk, then
renamed into ``new/`` and the directory synced: a reader sees a message whole or not at all, and a crash
leaves at most a file in ``tmp/``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import socket
import time
from collections.abc import Iterable
from pathlib import Path

from ..errors import UsageError

__all__ = ["Maildir"]

_SUBDIRS = ("tmp", "new", "cur")
_counter = itertools.count(1)


def _reason(exc: OSError) -> str:
    text = exc.strerror or type(exc).__name__
    return text[:1].lower() + text[1:]


def _hostname() -> str:
    # '/' and ':' cannot be in the name (':' starts the info part): escaped as maildir readers expect
    return socket.gethostname().replace("/", "\\057").replace(":", "\\072") or "localhost"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Maildir:
    """A Maildir at ``path``, created (with ``tmp``, ``new`` and ``cur``, mode 0700) when missing.

    Raises UsageError when ``path`` exists but is not a directory, or cannot be created.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            for sub in _SUBDIRS:
                (self.path / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
        except FileExistsError:
            raise UsageError(f"{self.path} is not a Maildir: a file is in the way") from None
        except OSError as exc:
            raise UsageError(f"cannot create the Maildir {self.path}: {_reason(exc)}") from None

    def _unique_name(self) -> str:
        now = time.time()
        seconds = int(now)
        micros = int((now - seconds) * 1_000_000)
        rand = secrets.token_hex(8)
        return f"{seconds}.M{micros}P{os.getpid()}Q{next(_counter)}R{rand}.{_hostname()}"

    def deliver(self, pieces: bytes | Iterable[bytes]) -> Path:
        """Write the message (bytes, or an iterable of byte pieces) into ``new/``; returns its path.

        Raises UsageError when it cannot be written (the partial file in ``tmp/`` is removed).
        """
        chunks = [pieces] if isinstance(pieces, bytes | bytearray) else pieces
        name = self._unique_name()
        tmp = self.path / "tmp" / name
        new = self.path / "new" / name
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise UsageError(f"cannot write into the Maildir {self.path}: {_reason(exc)}") from None
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.rename(tmp, new)  # the name is unique: nothing in new/ is replaced
            _fsync_dir(new.parent)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            if isinstance(exc, OSError):
                raise UsageError(f"cannot write into the Maildir {self.path}: {_reason(exc)}") from None
            raise
        return new

    def messages(self) -> list[Path]:
        """The files in ``new/`` and ``cur/``, by name."""
        return sorted(
            (p for sub in ("new", "cur") for p in (self.path / sub).iterdir() if not p.name.startswith(".")),
            key=lambda p: p.name,
        )
