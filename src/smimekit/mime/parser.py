"""The MIME parser: a push state machine in the manner of h11.

``MimeParser.feed(chunk)`` takes bytes as they arrive and ``close()`` returns the :class:`Message`. The
parser never copies bodies: it records where every header block, delimiter and body starts and ends, in
absolute offsets of the input, and keeps only the few bytes it has not classified yet. Feeding a message
whole or in pieces of any size gives the same tree.

One pass finds every delimiter: candidates are located with ``bytes.find(b"\\n--")`` (C speed) and
checked against the stack of open multipart boundaries, innermost first, so the time is linear in the input
whatever the nesting, and an outer boundary closes inner parts that were never closed (as mail clients do).
"""

from __future__ import annotations

import re
from typing import Final

from ..errors import MimeLimitError, MimeParseError
from .entity import _IDENTITY_CTE, _NESTED_MESSAGE_TYPES, Entity, Message
from .headers import Header
from .policy import LENIENT, Defect, Policy
from .source import Source

__all__ = ["MimeParser"]

# a header field: name, optional WSP (obsolete syntax), colon, value, folded continuation lines
_FIELD: Final = re.compile(rb"([!-9;-~]+)[ \t]*:[^\n]*(?:\n[ \t][^\n]*)*\n?")
# a stray continuation line (a field that starts with whitespace)
_CONT_LINE: Final = re.compile(rb"[ \t][^\n]*(?:\n[ \t][^\n]*)*\n?")
_MAX_PADDING: Final = 1024  # transport padding allowed after a boundary
_MAX_NEEDLES: Final = 4  # up to this many open boundaries are searched for one by one

_HEADERS, _SCAN, _REST = 0, 1, 2


def ct_field_offset(entity: Entity, field: Header) -> int:
    """Absolute offset of ``field`` in the input (fields are contiguous after any mbox From_ line)."""
    pos = entity._start + len(entity.unixfrom)
    for h in entity.headers:
        if h is field:
            return pos
        pos += len(h.raw)
    return pos


class _Frame:
    __slots__ = ("delim", "entity")

    def __init__(self, delim: bytes, entity: Entity) -> None:
        self.delim = delim
        self.entity = entity


class MimeParser:
    """Incremental MIME parser. ``source`` must hold (or receive) the same bytes that are fed."""

    def __init__(self, source: Source, *, policy: Policy = LENIENT) -> None:
        self._policy = policy
        self._limits = policy.limits
        self._source = source
        self._buf: bytes | bytearray = b""
        self._base = 0  # absolute offset of _buf[0]
        self._total = 0  # bytes fed so far
        self.root = Message(source, 0, None)
        self._open: list[Entity] = [self.root]  # entities whose end is not known yet
        self._frames: list[_Frame] = []  # open multipart boundaries, innermost last
        self._index: dict[bytes, int] = {}  # delimiter -> index in _frames (boundaries are unique)
        self._needles: list[bytes] = []
        self._needle_max = 3
        self._state = _HEADERS
        self._pos = 0  # absolute position of the next unclassified byte
        self._region = 0  # absolute start of the region being scanned for delimiters
        self._field_count = 0
        self._fields: list[Header] = []
        self._count = 1
        self._max_delim = 0
        self._closed = False

    # ------------------------------------------------------------------ feeding

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Take the next bytes of the message.

        What the parser keeps of ``data`` it copies (unless it is ``bytes``), so the caller may reuse its
        buffer once this returns. Once no delimiter can follow (the last open multipart is closed, or the
        body is a single part), the bytes are only counted: they belong to the span being read.
        """
        if isinstance(data, memoryview):
            data = data.cast("B")  # len() in bytes
        n = len(data)
        if not n:
            return
        self._total += n
        if self._total > self._limits.max_size:
            raise MimeLimitError("max_size", self._limits.max_size, offset=self._limits.max_size)
        if self._state == _REST:
            # the final state: nothing of the rest is looked at, so nothing is buffered (no copy, no search)
            self._buf = b""
            self._base = self._pos = self._total
            return
        if not self._buf:
            self._buf = data if isinstance(data, bytes) else bytes(data)
        elif self._state == _SCAN and self._tail_is_spent(data):
            # nothing kept can start a delimiter: the new bytes are scanned where they are, not copied
            self._base += len(self._buf)
            self._pos = self._base
            self._buf = data if isinstance(data, bytes) else bytes(data)
        else:
            if isinstance(self._buf, bytes):
                self._buf = bytearray(self._buf)
            self._buf += data
        self._run(final=False)
        self._trim()

    def _tail_is_spent(self, data: bytes | bytearray | memoryview) -> bool:
        """True when the bytes kept from earlier feeds (the scan's lookbehind) cannot be part of a
        delimiter line, so that scanning may go on in ``data`` alone: no line break followed by "-" can
        start in them, none ends them before a "-" of ``data``, they do not end in a CR (of a CRLF before
        a delimiter at the start of ``data``), and the region being scanned started before them."""
        buf = self._buf
        if len(buf) > 4096 or self._region >= self._pos:
            return False
        if b"\n-" in buf or buf[-1:] == b"\r":
            return False
        return not (buf[-1:] == b"\n" and bytes(data[:1]) == b"-")

    def close(self) -> Message:
        """Finish parsing and return the message tree."""
        if not self._closed:
            self._closed = True
            self._run(final=True)
            end = self._total
            for e in reversed(self._open):
                self._finish(e, end)
            self._open.clear()
            self._buf = b""
        return self.root

    def _trim(self) -> None:
        # keep from the earliest byte still needed: the header being read, or the scan lookbehind
        keep = self._pos - 2
        cut = keep - self._base
        if cut > 65536 or (cut > 0 and cut * 2 > len(self._buf)):
            self._buf = self._buf[cut:]
            self._base += cut

    # ------------------------------------------------------------------ defects

    def _defect(self, entity: Entity, name: str, offset: int, message: str) -> None:
        if self._policy.strict:
            raise MimeParseError(message, offset=offset, defect=name)
        entity.defects.append(Defect(name, offset, message))

    # ------------------------------------------------------------------ the state machine

    def _run(self, final: bool) -> None:
        while True:
            if self._state == _HEADERS:
                if not self._headers(final):
                    return
            elif self._state == _SCAN:
                if not self._scan(final):
                    return
            else:  # _REST: the remaining input belongs to the current region, no boundary can end it
                self._pos = self._base + len(self._buf)
                return

    # ---- header block

    def _headers(self, final: bool) -> bool:
        """Read header fields of the innermost open entity; False when more input is needed."""
        buf, base = self._buf, self._base
        n = len(buf)
        entity = self._open[-1]
        limits = self._limits
        fields = self._fields
        while True:
            i = self._pos - base
            if i >= n:
                if not final:
                    return False
                self._end_headers(entity, b"", self._pos)
                return True
            c = buf[i]
            if c == 0x0A or (c == 0x0D and i + 1 < n and buf[i + 1] == 0x0A):
                sep = 1 if c == 0x0A else 2
                self._end_headers(entity, bytes(buf[i : i + sep]), self._pos + sep)
                return True
            if c == 0x0D and i + 1 >= n and not final:
                return False
            if c == 0x2D and self._frames and buf[i : i + 2] == b"--":
                # a boundary ends the header block of a part that has no blank line
                j = buf.find(b"\n", i)
                if j < 0 and not final:
                    if n - i > self._max_delim:
                        pass  # too long to be a delimiter
                    else:
                        return False
                if self._match_delim(buf[i : (n if j < 0 else j)]) is not None:
                    if fields or self._pos != entity._start:  # an empty part is reported as EmptyPart
                        self._defect(
                            entity,
                            "MissingHeaderBodySeparator",
                            self._pos,
                            "a boundary line ends the header block",
                        )
                    self._end_headers(entity, b"", self._pos)
                    return True
            if entity is self.root and self._pos == 0 and not fields and buf[i : i + 3] == b"\xef\xbb\xbf":
                if n - i < 4 and not final:
                    return False
                entity.unixfrom = b"\xef\xbb\xbf"  # a UTF-8 byte-order mark before the headers
                self._pos += 3
                continue
            if (
                not fields
                and entity.unixfrom in (b"", b"\xef\xbb\xbf")
                and self._pos == entity._start + len(entity.unixfrom)
                and isinstance(entity, Message)
                and (buf[i : i + 5] == b"From " or (entity is not self.root and buf[i : i + 6] == b">From "))
            ):
                # an mbox From_ line (or its munged >From form at the top of a forwarded message)
                j = buf.find(b"\n", i)
                if j < 0:
                    if not final:
                        self._check_header_size(entity, n - i)
                        return False
                    j = n - 1
                entity.unixfrom += bytes(buf[i : j + 1])
                self._pos += j + 1 - i
                continue
            m = _FIELD.match(buf, i)
            if m is None and c in (0x20, 0x09):
                m = _CONT_LINE.match(buf, i)
                if m is not None and (m.end() < n or final):
                    self._defect(
                        entity, "InvalidHeaderLine", self._pos, "a header field starts with whitespace"
                    )
            if m is None:
                if not final and buf.find(b"\n", i) < 0:
                    self._check_header_size(entity, n - i)
                    return False
                self._defect(
                    entity,
                    "MissingHeaderBodySeparator",
                    self._pos,
                    "a line that is not a header field ends the header block",
                )
                self._end_headers(entity, b"", self._pos)
                return True
            end = m.end()
            if end >= n and not final:
                self._check_header_size(entity, n - i)
                return False
            if end - i > limits.max_header_line:
                raise MimeLimitError("max_header_line", limits.max_header_line, offset=self._pos)
            raw = bytes(buf[i:end])
            name = m.group(1).decode("ascii") if m.lastindex else ""
            fields.append(Header(name, raw))
            if len(fields) > limits.max_headers:
                raise MimeLimitError("max_headers", limits.max_headers, offset=self._pos)
            self._pos += end - i
            if self._pos - entity._start > limits.max_header_block:
                raise MimeLimitError("max_header_block", limits.max_header_block, offset=self._pos)
            if not raw.endswith(b"\n"):
                # the input ended inside the header block
                continue

    def _check_header_size(self, entity: Entity, pending: int) -> None:
        limits = self._limits
        if pending > limits.max_header_line:
            raise MimeLimitError("max_header_line", limits.max_header_line, offset=self._pos)
        if self._pos + pending - entity._start > limits.max_header_block:
            raise MimeLimitError("max_header_block", limits.max_header_block, offset=self._pos)

    def _end_headers(self, entity: Entity, sep: bytes, body_start: int) -> None:
        fields = self._fields
        self._fields = []
        entity.headers._fields = fields
        entity.separator = sep
        entity._body_start = body_start
        if fields:
            if fields[0].raw.endswith(b"\n") and not fields[0].raw.endswith(b"\r\n"):
                entity._eol = b"\n"
        elif sep:
            entity._eol = sep
        elif entity.parent is not None:
            entity._eol = entity.parent._eol
        self._pos = body_start
        ctype = entity.content_type
        ct_field = entity.headers.field("content-type")
        if ct_field is not None:
            pv = entity._ctype
            if pv is not None and pv.defects:
                for name in pv.defects:
                    self._defect(
                        entity,
                        name,
                        ct_field_offset(entity, ct_field),
                        "a Content-Type parameter is malformed",
                    )
            raw_main = ct_field.unfolded_ascii().split(";", 1)[0].strip()
            if "/" not in raw_main or not raw_main.split("/", 1)[1].strip():
                self._defect(
                    entity,
                    "InvalidContentType",
                    ct_field_offset(entity, ct_field),
                    f"Content-Type {raw_main!r} is not type/subtype",
                )
        if ctype.startswith("multipart/"):
            boundary = entity.params.get("boundary")
            if boundary:
                if len(self._frames) >= self._limits.max_depth:
                    raise MimeLimitError("max_depth", self._limits.max_depth, offset=body_start)
                delim = b"--" + boundary.encode("utf-8", "surrogateescape")
                entity._parts = []
                if delim in self._index:
                    # RFC 2046 forbids reusing an enclosing boundary: the outer one wins, this has no parts
                    self._defect(
                        entity, "BoundaryReused", body_start, "a multipart reuses an enclosing boundary"
                    )
                    self._region = body_start
                    self._state = _SCAN
                    return
                self._push_frame(_Frame(delim, entity))
                self._max_delim = max(self._max_delim, len(delim) + 2 + _MAX_PADDING)
                self._region = body_start
                self._state = _SCAN
                return
            self._defect(
                entity, "NoBoundaryInMultipart", body_start, "a multipart without a boundary parameter"
            )
        elif ctype in _NESTED_MESSAGE_TYPES:
            if entity.transfer_encoding in _IDENTITY_CTE:
                if len(self._open) > self._limits.max_depth:
                    raise MimeLimitError("max_depth", self._limits.max_depth, offset=body_start)
                self._add_entity(Message(self._source, body_start, entity))
                entity._message = self._open[-1]  # type: ignore[assignment]
                self._state = _HEADERS
                return
            self._defect(
                entity,
                "InvalidMessageEncoding",
                body_start,
                "a message/rfc822 part must not be transfer-encoded",
            )
        self._region = body_start
        self._state = _SCAN if self._frames else _REST

    def _add_entity(self, e: Entity) -> None:
        self._count += 1
        if self._count > self._limits.max_parts:
            raise MimeLimitError("max_parts", self._limits.max_parts, offset=e._start)
        self._open.append(e)

    # ---- delimiters

    def _match_delim(self, line: bytes | bytearray) -> tuple[int, bool] | None:
        """(frame index, is close delimiter) when ``line`` (without its line ending) is a delimiter."""
        core = bytes(line).rstrip(b" \t\r")
        index = self._index
        k = index.get(core)
        if k is not None:
            return k, False
        if core.endswith(b"--"):
            k = index.get(core[:-2])
            if k is not None:
                return k, True
        return None

    def _push_frame(self, frame: _Frame) -> None:
        self._index[frame.delim] = len(self._frames)
        self._frames.append(frame)
        self._set_needles()

    def _pop_frame(self) -> _Frame:
        frame = self._frames.pop()
        del self._index[frame.delim]
        self._set_needles()
        return frame

    def _set_needles(self) -> None:
        # innermost first; with many open boundaries one generic search beats one search per boundary
        frames = self._frames
        if 0 < len(frames) <= _MAX_NEEDLES:
            self._needles = [b"\n" + f.delim for f in reversed(frames)]
            self._needle_max = max(len(x) for x in self._needles)
        else:
            self._needles = []

    def _scan(self, final: bool) -> bool:
        """Look for the next delimiter of any open multipart; False when more input is needed."""
        buf, base = self._buf, self._base
        n = len(buf)
        region = self._region
        find = buf.find
        r = region - base
        at_region = self._pos <= region
        start = max(self._pos - base - 1, r, 0)
        while True:
            if at_region:
                # a region always starts at the beginning of a line: a delimiter may stand right there
                at_region = False
                if n - r < 2 and not final:
                    self._pos = region
                    return False
                if buf[r : r + 2] != b"--":
                    continue
                p = r
            else:
                needles = self._needles
                keep = self._needle_max if needles else 3
                # every delimiter has a "-" right after its line break: memchr finds the first "-" ten
                # times faster than a search for the delimiter, and base64 bodies (most of the bytes of
                # mail) have none, so their scan ends there; the delimiter search starts at that "-"
                dash = find(b"-", start + 1)
                if dash < 0:
                    i = -1
                elif needles:
                    # few open boundaries: look for each one itself (several times faster than "\n--")
                    i = find(needles[0], dash - 1)
                    for needle in needles[1:]:
                        k = find(needle, dash - 1, n if i < 0 else i + len(needle))
                        if k >= 0 and (i < 0 or k < i):
                            i = k
                else:
                    i = find(b"\n--", dash - 1)
                if i < 0:
                    self._pos = base + (n if final else max(n - keep + 1, start + 1))
                    return False
                p = i + 1  # the "--"
            j = find(b"\n", p)
            if j < 0:
                if not final and n - p <= self._max_delim:
                    self._pos = base + p - 1
                    return False
                line = buf[p:n]
                line_end = n
            else:
                if j - p > self._max_delim:
                    start = p
                    continue
                line = buf[p:j]
                line_end = j + 1
            hit = self._match_delim(line)
            if hit is None:
                start = p
                continue
            dstart = p
            if p - 1 >= 0 and base + p - 1 >= region and buf[p - 1] == 0x0A:
                dstart = p - 1
                if p - 2 >= 0 and base + p - 2 >= region and buf[p - 2] == 0x0D:
                    dstart = p - 2
            if hit[1] and line_end > p and buf[line_end - 1] == 0x0A:
                # RFC 2046: the line break after a close delimiter starts the epilogue (it belongs to
                # an enclosing delimiter when one follows at once), so the multipart ends before it
                line_end -= 2 if line_end - 2 >= p and buf[line_end - 2] == 0x0D else 1
            self._on_delimiter(hit[0], hit[1], base + dstart, base + line_end)
            return True

    def _on_delimiter(self, k: int, close: bool, dstart: int, dend: int) -> None:
        frame = self._frames[k]
        owner = frame.entity
        last = self._open[-1]
        if (
            not close
            and owner._parts
            and last is owner._parts[-1]
            and last._start == dstart
            and len(self._frames) == k + 1
        ):
            # two delimiters in a row: no empty part between them (as the stdlib reads RFC 2046)
            self._defect(owner, "EmptyPart", dstart, "two boundaries follow each other with nothing between")
            owner._delims[-1] = (owner._delims[-1][0], dend)
            last.headers._fields = []
            last.separator = b""
            last._ctype = last._disp = last._cte = None
            last._start = last._body_start = dend
            self._pos = dend
            self._state = _HEADERS
            return
        # everything opened inside the multipart that owns this boundary ends here
        while self._open[-1] is not owner:
            self._finish(self._open.pop(), dstart)
        while len(self._frames) > k + 1:
            lost = self._pop_frame()
            self._defect(
                lost.entity,
                "CloseBoundaryNotFound",
                dstart,
                "a multipart was not closed before an outer boundary",
            )
        if owner._preamble_end < 0:
            owner._preamble_end = dstart
        self._pos = dend
        if close:
            if not owner._parts:
                self._defect(
                    owner, "StartBoundaryNotFound", dstart, "a multipart is closed before its first part"
                )
            owner._close = (dstart, dend)
            self._pop_frame()
            self._region = dend
            self._state = _SCAN if self._frames else _REST
            return
        assert owner._parts is not None
        part = Entity(self._source, dend, owner)
        owner._parts.append(part)
        owner._delims.append((dstart, dend))
        if len(self._open) > self._limits.max_depth:
            raise MimeLimitError("max_depth", self._limits.max_depth, offset=dend)
        self._add_entity(part)
        self._state = _HEADERS

    def _finish(self, e: Entity, end: int) -> None:
        e._end = end
        if e._parts is not None:
            if e._preamble_end < 0:
                e._preamble_end = end
                self._defect(e, "StartBoundaryNotFound", e._body_start, "a multipart has no parts")
            if self._frames and self._frames[-1].entity is e:
                self._defect(e, "CloseBoundaryNotFound", end, "the multipart is not closed")
                self._pop_frame()
