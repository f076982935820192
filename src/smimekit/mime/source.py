"""Where the bytes of a parsed message live: in memory, in a file, or in a private spool.

Entities keep byte offsets into a source instead of copies of their bodies, so a 1 GB attachment is
never held in memory: it is read back in chunks when asked for.
"""

from __future__ import annotations

import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator

__all__ = ["CHUNK", "BytesSource", "FileSource", "Source", "SpoolSource"]

CHUNK = 1 << 20


class Source(ABC):
    """Random read access to the bytes of one message."""

    @property
    @abstractmethod
    def size(self) -> int:
        """Number of bytes available."""

    @abstractmethod
    def read(self, start: int, end: int) -> bytes:
        """The bytes in ``[start, end)``."""

    def iter_range(self, start: int, end: int, chunk: int = CHUNK) -> Iterator[bytes]:
        """The bytes in ``[start, end)`` in pieces of at most ``chunk`` bytes."""
        pos = start
        while pos < end:
            n = min(chunk, end - pos)
            yield self.read(pos, pos + n)
            pos += n

    def close(self) -> None:  # noqa: B027 - most sources hold nothing to release
        """Release the file behind the source, if any."""


class BytesSource(Source):
    """A message held in memory."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    @property
    def size(self) -> int:
        return len(self.data)

    def read(self, start: int, end: int) -> bytes:
        if start == 0 and end >= len(self.data):
            return self.data
        return self.data[start:end]


class FileSource(Source):
    """A message in a file, read with ``pread`` so that several readers never disturb each other."""

    def __init__(self, fd: int, *, base: int = 0, size: int | None = None, owned: bool = True) -> None:
        self._fd = fd
        self._base = base
        self._size = os.fstat(fd).st_size - base if size is None else size
        self._owned = owned

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> FileSource:
        return cls(os.open(os.fspath(path), os.O_RDONLY | getattr(os, "O_BINARY", 0)))

    @property
    def size(self) -> int:
        return self._size

    def read(self, start: int, end: int) -> bytes:
        end = min(end, self._size)
        if end <= start:
            return b""
        parts = []
        pos = start
        while pos < end:
            piece = os.pread(self._fd, end - pos, self._base + pos)
            if not piece:
                break
            parts.append(piece)
            pos += len(piece)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def close(self) -> None:
        if self._owned and self._fd >= 0:
            os.close(self._fd)
        self._fd = -1


class SpoolSource(Source):
    """Bytes appended as they arrive: in memory up to ``threshold``, then in a private temporary file."""

    def __init__(self, threshold: int = 8 * CHUNK) -> None:
        self._mem: bytearray | None = bytearray()
        self._file: FileSource | None = None
        self._fd = -1
        self._size = 0
        self._threshold = threshold

    @property
    def size(self) -> int:
        return self._size

    def append(self, data: bytes) -> None:
        if self._mem is not None:
            self._mem += data
            if len(self._mem) > self._threshold:
                fd, name = tempfile.mkstemp(prefix="smimekit-spool-")
                os.unlink(name)
                self._fd = fd
                self._write(bytes(self._mem))
                self._mem = None
        else:
            self._write(data)
        self._size += len(data)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]

    def read(self, start: int, end: int) -> bytes:
        end = min(end, self._size)
        if self._mem is not None:
            return bytes(self._mem[start:end])
        if self._file is None:
            self._file = FileSource(self._fd, size=None, owned=False)
        self._file._size = self._size
        return self._file.read(start, end)

    def close(self) -> None:
        self._mem = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
