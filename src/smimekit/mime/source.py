"""Where the bytes of a parsed message live: in memory, in a file, or in a private spool.

Entities keep byte offsets into a source instead of copies of their bodies, so a 1 GB attachment is
never held in memory: it is read back in chunks when asked for.
"""

from __future__ import annotations

import errno
import io
import os
import stat
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Protocol

__all__ = ["CHUNK", "BytesSource", "FileSource", "Source", "SpoolSource"]

CHUNK = 1 << 20
#: a copy between files in the kernel is worth its setup from this size on
_KERNEL_COPY_MIN = 256 * 1024


class _Writable(Protocol):
    def write(self, data: bytes, /) -> object: ...


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

    def write_range(self, out: _Writable, start: int, end: int, chunk: int = CHUNK) -> None:
        """Write the bytes in ``[start, end)`` to ``out``, in pieces of at most ``chunk`` bytes (a source
        in a file copies them to a file ``out`` in the kernel instead)."""
        for piece in self.iter_range(start, end, chunk):
            out.write(piece)

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

    def write_range(self, out: _Writable, start: int, end: int, chunk: int = CHUNK) -> None:
        end = min(end, self._size)
        if end - start >= _KERNEL_COPY_MIN:
            start += _kernel_copy(self._fd, self._base + start, end - start, out)
        super().write_range(out, start, end, chunk)

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

    def append(self, data: bytes | bytearray | memoryview) -> None:
        """Add ``data`` at the end (copied or written out: the caller may reuse its buffer)."""
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
        self._size += memoryview(data).nbytes

    def _write(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
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

    def write_range(self, out: _Writable, start: int, end: int, chunk: int = CHUNK) -> None:
        end = min(end, self._size)
        if self._mem is None and end - start >= _KERNEL_COPY_MIN:
            start += _kernel_copy(self._fd, start, end - start, out)
        super().write_range(out, start, end, chunk)

    def close(self) -> None:
        self._mem = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _kernel_copy(fd: int, offset: int, count: int, out: _Writable) -> int:
    """Copy ``count`` bytes at ``offset`` of ``fd`` to the regular file behind ``out`` (a file that
    ``open()`` returned) in the kernel, without reading them into memory: ``copy_file_range`` (a reflink
    on file systems that share blocks), else ``sendfile``. Returns how many bytes were copied: 0 when
    ``out`` is no such file or the kernel refuses (the caller then writes them itself), less than
    ``count`` when ``fd`` ends early.
    """
    if not isinstance(out, io.BufferedWriter | io.BufferedRandom | io.FileIO) or out.closed:
        return 0  # anything else may buffer, transform or count what it is given
    try:
        out_fd = out.fileno()
        if not stat.S_ISREG(os.fstat(out_fd).st_mode):
            return 0
        out.flush()  # what it buffered goes first
    except (OSError, ValueError):
        return 0
    done = 0
    for copy in (_copy_file_range, _sendfile):
        while done < count:
            try:
                n = copy(fd, out_fd, offset + done, count - done)
            except OSError as exc:
                if done or exc.errno not in _NOT_SUPPORTED:
                    raise  # a failure of the write itself (disk full...), as write() would raise it
                break  # this way is not supported here: the next one, or the caller writes
            if n == 0:
                return done  # the source ended early
            done += n
        if done:
            break
    if done and isinstance(out, io.BufferedWriter | io.BufferedRandom):
        out.seek(0, os.SEEK_CUR)  # the buffered object re-reads the position the kernel moved
    return done


_NOT_SUPPORTED = frozenset(
    {errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EBADF, errno.ETXTBSY, errno.EPERM}
)


def _copy_file_range(src: int, dst: int, offset: int, count: int) -> int:
    copy_file_range = getattr(os, "copy_file_range", None)
    if copy_file_range is None:
        raise OSError(errno.ENOSYS, "copy_file_range is not available")
    return int(copy_file_range(src, dst, min(count, 1 << 30), offset))


def _sendfile(src: int, dst: int, offset: int, count: int) -> int:
    sendfile = getattr(os, "sendfile", None)
    if sendfile is None:
        raise OSError(errno.ENOSYS, "sendfile is not available")
    return int(sendfile(dst, src, offset, min(count, 1 << 30)))
