"""Reading mbox files: the messages of a mailbox, each with the exact bytes it is stored as.

A message starts at a line that begins with ``From `` (the From_ line) and ends just before the line
break that precedes the next From_ line, or at the end of the file; this reads mboxo and mboxrd files
(whose writers quote every body line that begins with ``From ``) and is what MimeKit, mutt and the stdlib
``mailbox`` module do. When a message has a ``Content-Length`` header that points exactly at the next
From_ line (or at the end of the file) it is trusted, so that the unquoted ``From `` lines of an
mboxcl2 body do not split it. Bytes are kept as stored: ``>From`` quoting is not undone.

The mailbox is read in chunks: from a path, a file or bytes, memory does not grow with the mailbox or
its messages; from a non-seekable stream, each message is held in memory while it is read (and, when
its Content-Length points further, up to where it points).
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, Final

from .entity import Message
from .parser import MimeParser
from .policy import LENIENT, Policy
from .source import CHUNK, FileSource, Source

__all__ = ["MboxMessage", "iter_mbox"]

_FROM: Final = b"\nFrom "
_BOM: Final = b"\xef\xbb\xbf"
_MAX_HEADER_SCAN: Final = 1024 * 1024  # Content-Length is looked for in this much of a header block
_BLANK_LINE: Final = re.compile(rb"\n\r?\n")
_CONTENT_LENGTH: Final = re.compile(rb"(?im)^content-length[ \t]*:[ \t]*([0-9]{1,18})[ \t]*\r?$")


class _Store:
    """Where the bytes of a mailbox can be read back from."""

    def read(self, start: int, end: int) -> bytes:
        raise NotImplementedError

    def open_source(self, start: int, end: int) -> Source | None:
        """A :class:`Source` over ``[start, end)`` that the caller closes, or None to parse bytes instead."""
        return None


class _BytesStore(_Store):
    def __init__(self, data: bytes, base: int = 0) -> None:
        self._data = data
        self._base = base

    def read(self, start: int, end: int) -> bytes:
        return self._data[start - self._base : end - self._base]


class _PathStore(_Store):
    """A mailbox file named by its path: opened again for each read, so a message outlives the iteration."""

    def __init__(self, path: str) -> None:
        self._path = path

    def read(self, start: int, end: int) -> bytes:
        src = self.open_source(start, end)
        try:
            return src.read(0, end - start)
        finally:
            src.close()

    def open_source(self, start: int, end: int) -> Source:
        fd = os.open(self._path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        return FileSource(fd, base=start, size=end - start)


class _FdStore(_Store):
    """A seekable file object of the caller's, read with ``pread``; it must stay open while it is used."""

    def __init__(self, fd: int, base: int) -> None:
        self._fd = fd
        self._base = base

    def read(self, start: int, end: int) -> bytes:
        src = FileSource(self._fd, base=self._base + start, size=end - start, owned=False)
        return src.read(0, end - start)

    def open_source(self, start: int, end: int) -> Source:
        return FileSource(os.dup(self._fd), base=self._base + start, size=end - start)


@dataclass(frozen=True)
class MboxMessage:
    """One message of a mailbox: where it is, its From_ line, and its bytes on demand.

    ``offset`` is where the From_ line starts; ``from_line`` is that line as stored, line ending included;
    the message itself is the byte range ``[start, end)`` of the mailbox (``start`` is ``offset +
    len(from_line)``). The line break before the next From_ line is not part of the message.
    """

    offset: int
    from_line: bytes
    start: int
    end: int
    _store: _Store = field(repr=False, compare=False)

    @property
    def size(self) -> int:
        """Bytes of the message (without its From_ line)."""
        return self.end - self.start

    def to_bytes(self) -> bytes:
        """The message exactly as stored in the mailbox (without its From_ line)."""
        return self._store.read(self.start, self.end)

    def parse(self, *, policy: Policy = LENIENT) -> Message:
        """Parse the message; its bodies stay in the mailbox file when there is one.

        Close the result (or use ``with``) to release the file. Raises what
        :func:`smimekit.mime.parse` raises.
        """
        src = self._store.open_source(self.start, self.end)
        if src is None:
            from . import parse

            return parse(self.to_bytes(), policy=policy)
        parser = MimeParser(src, policy=policy)
        try:
            for piece in src.iter_range(0, src.size):
                parser.feed(piece)
            msg = parser.close()
        except BaseException:
            src.close()
            raise
        msg._owns_source = True
        return msg


# ---------------------------------------------------------------------------------- reading the mailbox


class _Reader:
    """Reads of the mailbox for the scan, mostly forward (``read`` returns fewer bytes only at the end)."""

    def read(self, start: int, end: int) -> bytes:
        raise NotImplementedError

    def find(self, pattern: bytes, start: int) -> int:
        """Absolute offset of the first ``pattern`` at or after ``start``, or -1."""
        raise NotImplementedError

    def end_from(self, pos: int) -> int:
        """The offset of the end of the mailbox, reading on from ``pos`` if it must."""
        raise NotImplementedError

    def release(self, pos: int) -> None:
        """Bytes before ``pos`` will not be read again."""

    def store(self, start: int, end: int) -> _Store:
        raise NotImplementedError


class _BytesReader(_Reader):
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._store = _BytesStore(data)

    def read(self, start: int, end: int) -> bytes:
        return self._data[start:end]

    def find(self, pattern: bytes, start: int) -> int:
        return self._data.find(pattern, start)

    def end_from(self, pos: int) -> int:
        return len(self._data)

    def store(self, start: int, end: int) -> _Store:
        return self._store


class _WindowReader(_Reader):
    """A window of the mailbox, ``_buf`` at offset ``_base``, extended a chunk at a time as the scan
    moves on, so that each byte is read once however small the messages are."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._base = 0
        self._eof = False

    def _more(self) -> bytes:
        """The next chunk after the window (empty at the end)."""
        raise NotImplementedError

    def _forget(self, pos: int) -> None:
        """The scan has passed ``pos``; a reader that can read those bytes again may drop them."""

    def _extend(self) -> None:
        piece = self._more()
        if piece:
            self._buf += piece
        else:
            self._eof = True

    def _drop(self, pos: int) -> None:
        cut = pos - self._base
        if cut > 0:
            del self._buf[:cut]
            self._base = pos

    def read(self, start: int, end: int) -> bytes:
        while not self._eof and self._base + len(self._buf) < end:
            self._extend()
        lo = start - self._base
        return bytes(self._buf[lo : max(end - self._base, lo)])

    def find(self, pattern: bytes, start: int) -> int:
        pos = start
        while True:
            j = self._buf.find(pattern, pos - self._base)
            if j >= 0:
                return self._base + j
            if self._eof:
                return -1
            pos = max(pos, self._base + len(self._buf) - len(pattern) + 1)
            self._forget(pos)
            self._extend()

    def end_from(self, pos: int) -> int:
        while not self._eof:
            self._extend()
        return self._base + len(self._buf)

    def release(self, pos: int) -> None:
        self._drop(pos)


class _FdReader(_WindowReader):
    """A file: the window never holds much more than a chunk, bytes behind it are read again with
    ``pread`` when asked for (a Content-Length check may look far ahead)."""

    def __init__(self, fd: int, base: int, store: _Store | None) -> None:
        super().__init__()
        self._src = FileSource(fd, base=base, owned=False)
        self._store = store if store is not None else _FdStore(fd, base)

    def _more(self) -> bytes:
        pos = self._base + len(self._buf)
        return self._src.read(pos, pos + CHUNK)

    def _forget(self, pos: int) -> None:
        if pos - self._base > CHUNK:
            self._drop(pos)

    def read(self, start: int, end: int) -> bytes:
        if start < self._base or start > self._base + len(self._buf) + CHUNK:
            return self._src.read(start, end)
        return super().read(start, end)

    def end_from(self, pos: int) -> int:
        return self._src.size

    def store(self, start: int, end: int) -> _Store:
        return self._store


class _StreamReader(_WindowReader):
    """A non-seekable stream: the window holds the current message, which is given to it when it ends."""

    def __init__(self, stream: BinaryIO) -> None:
        super().__init__()
        self._stream = stream

    def _more(self) -> bytes:
        return self._stream.read(CHUNK)

    def store(self, start: int, end: int) -> _Store:
        return _BytesStore(self.read(start, end), start)


def iter_mbox(
    source: bytes | bytearray | memoryview | BinaryIO | str | os.PathLike[str],
) -> Iterator[MboxMessage]:
    """The messages of an mbox mailbox given as bytes, a binary stream or a path, in order.

    Bytes before the first From_ line (a byte-order mark, stray text) belong to no message. A path is
    opened and read, nothing else; a stream is read from its current position and left open.
    """
    if isinstance(source, bytes | bytearray | memoryview):
        yield from _scan(_BytesReader(bytes(source)))
        return
    if isinstance(source, str | os.PathLike):
        path = os.fspath(source)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        try:
            yield from _scan(_FdReader(fd, 0, _PathStore(path)))
        finally:
            os.close(fd)
        return
    if isinstance(source, io.BytesIO):
        yield from _scan(_BytesReader(source.getvalue()[source.tell() :]))
        return
    stream_fd = _seekable_fd(source)
    if stream_fd is not None:
        yield from _scan(_FdReader(stream_fd, source.tell(), None))
        return
    yield from _scan(_StreamReader(source))


def _seekable_fd(stream: BinaryIO) -> int | None:
    try:
        if not stream.seekable():
            return None
        stream.tell()
        return stream.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        return None


def _scan(reader: _Reader) -> Iterator[MboxMessage]:
    head = reader.read(0, len(_BOM) + 5)
    pos = len(_BOM) if head.startswith(_BOM) else 0
    if reader.read(pos, pos + 5) != b"From ":
        i = reader.find(_FROM, pos)
        if i < 0:
            return
        pos = i + 1
    while pos >= 0:
        reader.release(pos)
        eol = reader.find(b"\n", pos)
        if eol < 0:
            line = reader.read(pos, pos + (1 << 62))
            yield MboxMessage(pos, line, pos + len(line), pos + len(line), reader.store(pos, pos))
            return
        start = eol + 1
        from_line = reader.read(pos, start)
        end, nxt = _by_content_length(reader, start)
        if end < 0:
            end, nxt = _by_from_line(reader, start)
        yield MboxMessage(pos, from_line, start, end, reader.store(start, end))
        pos = nxt


def _by_from_line(reader: _Reader, start: int) -> tuple[int, int]:
    """(end of the message, offset of the next From_ line or -1) from the next From_ line."""
    if reader.read(start, start + 5) == b"From ":
        return start, start  # an empty message: a From_ line right after the From_ line
    i = reader.find(_FROM, start)
    if i < 0:
        return reader.end_from(start), -1
    end = i - 1 if i > start and reader.read(i - 1, i) == b"\r" else i
    return end, i + 1


def _by_content_length(reader: _Reader, start: int) -> tuple[int, int]:
    """(end, next From_ offset or -1) when a Content-Length header points exactly at the next From_
    line or at the end of the mailbox; (-1, -1) when there is none or it points anywhere else."""
    want = 4096
    while True:
        block = reader.read(start, start + want)
        if block.startswith((b"\n", b"\r\n", b"From ")):
            return -1, -1  # no header fields, or none at all: the next From_ line follows
        m = _BLANK_LINE.search(block)
        cut = block.find(_FROM)
        if m is not None and (cut < 0 or cut > m.start()):
            break
        if cut >= 0 or len(block) < want or want >= _MAX_HEADER_SCAN:
            return -1, -1  # the headers end at a From_ line, the mailbox ends, or they are too long
        want *= 2
    length = _CONTENT_LENGTH.search(block, 0, m.start() + 1)
    if length is None:
        return -1, -1
    stop = start + m.end() + int(length.group(1))
    tail = reader.read(stop - 1, stop + 7)
    if len(tail) == 1:  # the end of the mailbox
        return stop, -1
    if tail[1:].startswith(_FROM):
        return stop, stop + 1
    if tail[1:].startswith(b"\r" + _FROM):
        return stop, stop + 2
    if tail.startswith(_FROM):
        return stop, stop  # it counted the line break before the From_ line
    return -1, -1
