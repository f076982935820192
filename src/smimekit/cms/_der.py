"""DER writing, streaming BER reading and private spooling for the CMS layer.

The writers build DER (or BER with indefinite lengths, for content streamed in chunks) from already encoded
parts (typed, no asn1crypto). The reader walks BER — definite and indefinite lengths, constructed OCTET
STRINGs — over a seekable stream without loading the content, so that a large signed, encrypted or
compressed payload can be streamed in chunks. Every problem with the input raises CmsFormatError.
:class:`Spool` keeps content that may be large in memory up to a limit, then in a private temporary file.
"""

from __future__ import annotations

import io
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, cast

from smimekit.errors import CmsFormatError

CHUNK = 1 << 20  # the unit of streaming: 1 MiB
MAX_DEPTH = 32  # nesting of constructed strings and of skipped structures
MAX_ELEMENT = 16 << 20  # a structure read whole (e.g. the RecipientInfos) may not exceed 16 MiB

UNIVERSAL, APPLICATION, CONTEXT, PRIVATE = 0, 1, 2, 3
SEQUENCE, SET, OCTET_STRING, INTEGER, OID, NULL = 16, 17, 4, 2, 6, 5


# ----------------------------------------------------------------------------------------------- writing


def length(n: int) -> bytes:
    """DER length octets for ``n``."""
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def tlv(tag: int, body: bytes) -> bytes:
    """One element with a single-byte ``tag``."""
    return bytes([tag]) + length(len(body)) + body


def seq(*parts: bytes) -> bytes:
    return tlv(0x30, b"".join(parts))


def set_of(parts: list[bytes]) -> bytes:
    """DER SET OF: the elements sorted by their encodings."""
    return tlv(0x31, b"".join(sorted(parts)))


def octets(value: bytes) -> bytes:
    return tlv(0x04, value)


def integer(value: int) -> bytes:
    raw = value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True)
    return tlv(0x02, raw)


def oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    body = bytearray()
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body.extend(reversed(chunk))
    return tlv(0x06, bytes(body))


def algorithm(dotted: str, params: bytes | None = None) -> bytes:
    """An AlgorithmIdentifier; ``params`` is the DER of the parameters, None for absent."""
    return seq(oid(dotted), params or b"")


def explicit(number: int, body: bytes) -> bytes:
    """A constructed context tag [number] around ``body`` (EXPLICIT, or IMPLICIT of a constructed type)."""
    return tlv(0xA0 | number, body)


def implicit_primitive(number: int, value: bytes) -> bytes:
    """A primitive context tag [number] IMPLICIT around the content octets ``value``."""
    return tlv(0x80 | number, value)


def header(tag: int, n: int | None) -> bytes:
    """An element header; ``n`` None writes the BER indefinite length."""
    return bytes([tag]) + (b"\x80" if n is None else length(n))


def element_size(n: int) -> int:
    """Size of a single-byte-tag element whose content is ``n`` octets."""
    return 1 + len(length(n)) + n


EOC = b"\x00\x00"  # the end-of-contents octets that close an element of indefinite length


# ----------------------------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Header:
    """An element header: class, constructed bit, tag number, length (None: indefinite), offsets."""

    cls: int
    constructed: bool
    number: int
    length: int | None
    offset: int
    content_offset: int

    def is_(self, cls: int, number: int) -> bool:
        return self.cls == cls and self.number == number


def seekable(data: bytes | BinaryIO) -> BinaryIO:
    """A seekable binary stream over ``data``; a non-seekable stream is spooled to a private temp file."""
    if isinstance(data, bytes | bytearray | memoryview):
        return io.BytesIO(bytes(data))
    try:
        if data.seekable():
            return data
    except (AttributeError, ValueError) as exc:
        raise CmsFormatError(f"the input is not a readable stream: {exc}") from exc
    spool = tempfile.TemporaryFile()  # noqa: SIM115  (handed to the caller, closed with it)
    shutil.copyfileobj(data, spool, CHUNK)
    spool.seek(0)
    return spool


class ForwardStream:
    """A seekable view of a stream that cannot seek, without copying it.

    It reads forward, keeping the last ``MAX_ELEMENT`` + 1 MiB read so that the reader can look ahead and
    seek back over an element; a read of 1 MiB or more at the end of what is kept is handed through. The
    size is unknown (:meth:`at_eof` answers whether anything is left).
    """

    KEEP = MAX_ELEMENT + CHUNK

    def __init__(self, src: BinaryIO) -> None:
        self._src = src
        self._buf = b""
        self._bstart = 0  # the offset of _buf[0]
        self._pos = 0

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        self._buf = b""

    def _fill(self, upto: int) -> None:
        """Read until ``upto`` is buffered or the data ends; forget what lies more than KEEP before it."""
        end = self._bstart + len(self._buf)
        if end >= upto:
            return
        parts = [self._buf]
        while end < upto:
            more = self._src.read(max(CHUNK, upto - end))
            if not more:
                break
            parts.append(more)
            end += len(more)
        buf = b"".join(parts)
        drop = max(0, upto - self.KEEP - self._bstart)
        self._buf = buf[drop:]
        self._bstart += drop

    def at_eof(self) -> bool:
        self._fill(self._pos + 1)
        return self._pos >= self._bstart + len(self._buf)

    def read(self, n: int = -1) -> bytes:
        pos = self._pos
        end = self._bstart + len(self._buf)
        if n < 0:
            n = 1 << 62
        if n >= CHUNK and end - pos < n:  # a large read: what is kept ahead, then straight from the source
            kept = self._buf[pos - self._bstart :] if pos < end else b""
            rest = self._src.read(n - len(kept)) if n < 1 << 62 else self._src.read()
            data = kept + rest if kept else rest
            self._buf, self._bstart = data, pos  # kept for a look back over the last read only
            self._pos = pos + len(data)
            return data
        self._fill(pos + n)
        i = pos - self._bstart
        data = self._buf[i : i + n]
        self._pos = pos + len(data)
        return data

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_CUR:
            offset += self._pos
        elif whence != io.SEEK_SET:
            raise CmsFormatError("cannot seek to the end of a stream that is not seekable")
        if offset < self._bstart:
            raise CmsFormatError("cannot seek back this far in a stream that is not seekable")
        self._fill(offset)
        if offset > self._bstart + len(self._buf):
            raise CmsFormatError(f"the data is truncated before byte {offset}")
        self._pos = offset
        return offset


def forward(data: bytes | BinaryIO) -> BinaryIO:
    """Like :func:`seekable`, but a non-seekable stream is wrapped in a :class:`ForwardStream`, not copied."""
    if isinstance(data, bytes | bytearray | memoryview):
        return io.BytesIO(bytes(data))
    try:
        if data.seekable():
            return data
    except (AttributeError, ValueError) as exc:
        raise CmsFormatError(f"the input is not a readable stream: {exc}") from exc
    return cast(BinaryIO, ForwardStream(data))


class BerReader:
    """Reads BER elements from a seekable stream, bounded in nesting and in the size of whole reads."""

    def __init__(self, stream: BinaryIO) -> None:
        self._s = stream
        self._start = stream.tell()
        self._fwd = stream if isinstance(stream, ForwardStream) else None
        if self._fwd is not None:
            self._size = 1 << 62  # unknown: a read past the end raises instead
        else:
            self._size = stream.seek(0, io.SEEK_END) - self._start
            stream.seek(self._start)

    @property
    def size(self) -> int:
        """The size of the data."""
        return self._size

    def tell(self) -> int:
        return self._s.tell() - self._start

    def seek(self, offset: int) -> None:
        self._s.seek(self._start + offset)

    def read_exact(self, n: int) -> bytes:
        data = self._s.read(n)
        if len(data) != n:
            parts = [data]
            left = n - len(data)
            while left and (more := self._s.read(left)):
                parts.append(more)
                left -= len(more)
            if left:
                raise CmsFormatError(f"the data is truncated at byte {self.tell()}")
            data = b"".join(parts)
        return data

    def at_end(self) -> bool:
        """True when nothing is left to read."""
        if self._fwd is not None:
            return self._fwd.at_eof()
        return self.tell() >= self._size

    def header(self) -> Header:
        offset = self.tell()
        first = self.read_exact(1)[0]
        cls, constructed, number = first >> 6, bool(first & 0x20), first & 0x1F
        if number == 0x1F:
            number = 0
            for _ in range(5):
                b = self.read_exact(1)[0]
                number = (number << 7) | (b & 0x7F)
                if not b & 0x80:
                    break
            else:
                raise CmsFormatError(f"a tag number is too long at byte {offset}")
        first_len = self.read_exact(1)[0]
        n: int | None
        if first_len < 0x80:
            n = first_len
        elif first_len == 0x80:
            if not constructed:
                raise CmsFormatError(f"a primitive element has an indefinite length at byte {offset}")
            n = None
        else:
            count = first_len & 0x7F
            if count > 8:
                raise CmsFormatError(f"a length is too long at byte {offset}")
            n = int.from_bytes(self.read_exact(count), "big")
        return Header(cls, constructed, number, n, offset, self.tell())

    def expect(self, cls: int, number: int, what: str, *, constructed: bool | None = None) -> Header:
        """Read a header that must have the given class and number; raises CmsFormatError otherwise."""
        h = self.header()
        if not h.is_(cls, number) or (constructed is not None and h.constructed != constructed):
            raise CmsFormatError(f"expected {what} at byte {h.offset}")
        return h

    def peek(self) -> Header | None:
        """The next header without consuming it; None at the end of the data or at an end-of-contents."""
        pos = self._s.tell()
        try:
            if self.at_end():
                return None
            h = self.header()
        finally:
            self._s.seek(pos)
        return None if h.is_(UNIVERSAL, 0) else h

    def next_in(self, parent: Header) -> Header | None:
        """The next header inside the constructed element ``parent`` without consuming it; None at its end."""
        if parent.length is not None and self.tell() >= parent.content_offset + parent.length:
            return None
        return self.peek()

    def end(self, h: Header) -> None:
        """Check that the constructed element ``h`` ends here (end-of-contents for indefinite lengths)."""
        if h.length is None:
            if self.read_exact(2) != b"\x00\x00":
                raise CmsFormatError(f"expected the end of an element at byte {self.tell() - 2}")
        elif self.tell() != h.content_offset + h.length:
            raise CmsFormatError(f"an element does not end where its length says, at byte {self.tell()}")

    def skip_content(self, h: Header, depth: int = 0) -> None:
        """Skip the content of the element whose header ``h`` was just read."""
        if depth > MAX_DEPTH:
            raise CmsFormatError(f"the data is nested too deeply at byte {h.offset}")
        if h.length is not None:
            if h.content_offset + h.length > self._size:
                raise CmsFormatError(
                    f"the data is truncated: an element at byte {h.offset} runs past the end"
                )
            self.seek(h.content_offset + h.length)
            return
        while True:
            child = self.header()
            if child.is_(UNIVERSAL, 0):
                if child.length != 0 or child.constructed:
                    raise CmsFormatError(f"a malformed end-of-contents at byte {child.offset}")
                return
            self.skip_content(child, depth + 1)

    def element(self, *, limit: int = MAX_ELEMENT) -> bytes:
        """The whole encoding (header and content) of the next element, at most ``limit`` bytes."""
        start = self.tell()
        h = self.header()
        self.skip_content(h)
        size = self.tell() - start
        if size > limit:
            raise CmsFormatError(f"an element of {size} bytes at byte {start} exceeds the limit of {limit}")
        self.seek(start)
        return self.read_exact(size)

    def string_chunks(self, h: Header, depth: int = 0) -> Iterator[bytes]:
        """The value of the string element ``h`` (primitive or constructed BER), in chunks of at most 1 MiB."""
        if depth > MAX_DEPTH:
            raise CmsFormatError(f"a constructed string is nested too deeply at byte {h.offset}")
        if not h.constructed:
            assert h.length is not None  # a primitive element always has a definite length
            left = h.length
            while left:
                chunk = self.read_exact(min(left, CHUNK))
                left -= len(chunk)
                yield chunk
            return
        while True:
            if h.length is not None and self.tell() >= h.content_offset + h.length:
                self.end(h)
                return
            child = self.header()
            if child.is_(UNIVERSAL, 0) and h.length is None:
                if child.length != 0 or child.constructed:
                    raise CmsFormatError(f"a malformed end-of-contents at byte {child.offset}")
                return
            if not child.is_(UNIVERSAL, OCTET_STRING):
                raise CmsFormatError(f"a constructed string holds a non-string at byte {child.offset}")
            yield from self.string_chunks(child, depth + 1)

    def string_batches(self, h: Header) -> Iterator[bytes]:
        """The value of the string element ``h`` in batches of about 1 MiB, in one forward pass.

        Like :meth:`string_chunks`, but the headers of the pieces of a constructed (BER) string are parsed
        from a 1 MiB window with index arithmetic rather than read one by one, and the pieces are joined
        into batches of about 1 MiB. The stream is left just after the element.
        """
        if not h.constructed:
            yield from self.string_chunks(h)
            return
        s = self._s
        base = self._start
        pos = h.content_offset  # the parse position, relative to the start of the data
        s.seek(base + pos)
        buf: bytes = b""
        view = memoryview(buf)
        bstart = pos  # the offset of buf[0]
        eof = False
        stack: list[int | None] = [None if h.length is None else h.content_offset + h.length]
        out: list[bytes | memoryview] = []
        outn = 0
        while stack:
            top = stack[-1]
            if top is not None and pos >= top:
                if pos != top:
                    raise CmsFormatError(f"an element does not end where its length says, at byte {pos}")
                stack.pop()
                continue
            i = pos - bstart
            if len(buf) - i < 10 and not eof:
                more = s.read(CHUNK)
                eof = not more
                buf = buf[i:] + more
                view = memoryview(buf)
                bstart, i = pos, 0
            avail = len(buf) - i
            if avail < 2:
                raise CmsFormatError(f"the data is truncated at byte {pos + avail}")
            t = buf[i]
            first_len = buf[i + 1]
            if t == 0:
                if top is not None:
                    raise CmsFormatError(f"a constructed string holds a non-string at byte {pos}")
                if first_len != 0:
                    raise CmsFormatError(f"a malformed end-of-contents at byte {pos}")
                pos += 2
                stack.pop()
                continue
            if t != 0x04 and t != 0x24:
                raise CmsFormatError(f"a constructed string holds a non-string at byte {pos}")
            n: int | None
            if first_len < 0x80:
                n, hl = first_len, 2
            elif first_len == 0x80:
                if t == 0x04:
                    raise CmsFormatError(f"a primitive element has an indefinite length at byte {pos}")
                n, hl = None, 2
            else:
                count = first_len & 0x7F
                if count > 8:
                    raise CmsFormatError(f"a length is too long at byte {pos}")
                if avail < 2 + count:
                    raise CmsFormatError(f"the data is truncated at byte {pos + avail}")
                n, hl = int.from_bytes(buf[i + 2 : i + 2 + count], "big"), 2 + count
            pos += hl
            i += hl
            if t == 0x24:
                if len(stack) > MAX_DEPTH:
                    raise CmsFormatError(f"a constructed string is nested too deeply at byte {pos - hl}")
                if n is not None and top is not None and pos + n > top:
                    raise CmsFormatError(f"an element does not end where its length says, at byte {pos}")
                stack.append(None if n is None else pos + n)
                continue
            assert n is not None
            if top is not None and pos + n > top:
                raise CmsFormatError(f"an element does not end where its length says, at byte {pos}")
            have = len(buf) - i
            if n <= have:
                out.append(view[i : i + n])
                outn += n
                pos += n
            else:
                if have:
                    out.append(view[i:])
                    outn += have
                left = n - have
                pos += have
                while left:
                    if outn >= CHUNK:
                        yield b"".join(out)
                        out, outn = [], 0
                    chunk = s.read(min(left, CHUNK))
                    if not chunk:
                        raise CmsFormatError(f"the data is truncated at byte {pos}")
                    out.append(chunk)
                    outn += len(chunk)
                    left -= len(chunk)
                    pos += len(chunk)
                buf, view, bstart, eof = b"", memoryview(b""), pos, False
            if outn >= CHUNK:
                yield b"".join(out)
                out, outn = [], 0
        if out:
            yield b"".join(out)
        s.seek(base + pos)


# ----------------------------------------------------------------------------------------------- spooling


class Spool:
    """Collects content in memory up to ``limit`` bytes, then in a private temporary file.

    The file is created with mode 0600 and unlinked at once (``tempfile.TemporaryFile``), so nothing else
    can open it, and it disappears when closed. Nothing is handed out before :meth:`result`.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._buf = bytearray()
        self._file: BinaryIO | None = None
        self.size = 0

    def write(self, data: bytes) -> None:
        if not data:
            return
        self.size += len(data)
        if self._file is not None:
            self._file.write(data)
            return
        self._buf += data
        if len(self._buf) > self._limit:
            self._file = tempfile.TemporaryFile()  # noqa: SIM115  (mode 0600, unlinked; handed to the caller)
            self._file.write(self._buf)
            self._buf = bytearray()

    def result(self) -> bytes | BinaryIO:
        """The content: bytes, or the temporary file positioned at its start."""
        if self._file is None:
            return bytes(self._buf)
        self._file.flush()
        self._file.seek(0)
        return self._file

    def chunks(self) -> Iterator[bytes]:
        """What was collected so far, in chunks of at most 1 MiB (for a check before it is released)."""
        if self._file is None:
            view = memoryview(self._buf)
            for i in range(0, len(view), CHUNK):
                yield bytes(view[i : i + CHUNK])
            return
        self._file.flush()
        self._file.seek(0)
        while chunk := self._file.read(CHUNK):
            yield chunk
        self._file.seek(0, io.SEEK_END)

    def discard(self) -> None:
        """Drop what was collected (after a failure: nothing of it may be released)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self._buf = bytearray()
