"""The parsed MIME tree: entities that remember the exact bytes they came from.

An entity is a span of the message's :class:`~smimekit.mime.source.Source`: its header fields keep their raw
lines, its body is an offset range that is read (and decoded) only when asked. An unmodified entity writes
out exactly the bytes it was read from; a modified one rebuilds itself from its pieces, and every
unmodified piece inside it still writes its original bytes.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, BinaryIO, Protocol

from .headers import Header, HeaderList
from .params import ParamValue, format_params, parse_param_header
from .policy import Defect
from .source import CHUNK, Source

if TYPE_CHECKING:
    from .transfer import TransferDecoder as Decoder

__all__ = ["Entity", "Message"]

_IDENTITY_CTE = frozenset({"7bit", "8bit", "binary", ""})
_NESTED_MESSAGE_TYPES = frozenset({"message/rfc822", "message/global", "message/news"})
_BOM = b"\xef\xbb\xbf"
_HEADER_LIKE = re.compile(rb"[!-9;-~]+[ \t]*:")
_ADDRESS_FIELDS = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "reply-to",
        "sender",
        "resent-from",
        "resent-to",
        "resent-cc",
        "resent-sender",
    }
)


class Entity:
    """One MIME entity: a message, a part of a multipart, or a message nested in a ``message/rfc822`` part."""

    __slots__ = (
        "_body_start",
        "_close",
        "_cte",
        "_ctype",
        "_delims",
        "_disp",
        "_end",
        "_eol",
        "_message",
        "_modified",
        "_new_body",
        "_parts",
        "_preamble_end",
        "_source",
        "_start",
        "defects",
        "headers",
        "parent",
        "separator",
        "unixfrom",
    )

    def __init__(self, source: Source, start: int, parent: Entity | None) -> None:
        self._source = source
        self._start = start
        self._end = start
        self._body_start = start
        self.parent = parent
        self.headers = HeaderList()
        self.separator = b""
        """The blank line that ends the header block, as read (``b""`` when it was missing)."""
        self.unixfrom = b""
        """Bytes before the first header field, as read: an mbox ``From `` line or a UTF-8 byte-order mark."""
        self.defects: list[Defect] = []
        self._parts: list[Entity] | None = None
        self._delims: list[tuple[int, int]] = []
        self._close: tuple[int, int] | None = None
        self._preamble_end = -1
        self._message: Message | None = None
        self._modified = False
        self._new_body: bytes | None = None
        self._ctype: ParamValue | None = None
        self._cte: str | None = None
        self._disp: ParamValue | None = None
        self._eol = b"\r\n"

    # ------------------------------------------------------------------ structure

    def is_multipart(self) -> bool:
        """True for ``multipart/*`` entities that were split into parts."""
        return self._parts is not None

    @property
    def parts(self) -> list[Entity]:
        """The parts of a multipart (empty for anything else)."""
        return self._parts if self._parts is not None else []

    @property
    def message(self) -> Message | None:
        """The message nested in a ``message/rfc822`` entity, or None."""
        return self._message

    @property
    def children(self) -> list[Entity]:
        """The entities directly inside this one: the parts, or the nested message."""
        if self._parts is not None:
            return self._parts
        return [self._message] if self._message is not None else []

    def walk(self) -> Iterator[Entity]:
        """Every entity depth-first, this one first, into nested messages too (like the stdlib's ``walk``)."""
        stack: list[Entity] = [self]
        while stack:
            e = stack.pop()
            yield e
            kids = e.children
            if kids:
                stack.extend(reversed(kids))

    @property
    def depth(self) -> int:
        d, e = 0, self.parent
        while e is not None:
            d, e = d + 1, e.parent
        return d

    # ------------------------------------------------------------------ header-derived values

    def _param_header(self, name: str) -> ParamValue | None:
        h = self.headers.field(name)
        return None if h is None else parse_param_header(h.unfolded_ascii())

    def _content_type_value(self) -> ParamValue:
        if self._ctype is None:
            pv = self._param_header("content-type")
            if pv is None or "/" not in pv.value or not pv.value.split("/", 1)[1]:
                default = "text/plain"
                if self.parent is not None and self.parent.content_type == "multipart/digest":
                    default = "message/rfc822"
                pv = ParamValue(default, pv.params if pv is not None and pv.value else {}, ())
            self._ctype = pv
        return self._ctype

    @property
    def content_type(self) -> str:
        """``"type/subtype"`` in lowercase, with the RFC 2045 defaults when the header is missing or bad."""
        return self._content_type_value().value

    @property
    def maintype(self) -> str:
        return self.content_type.split("/", 1)[0]

    @property
    def subtype(self) -> str:
        return self.content_type.split("/", 1)[1]

    @property
    def params(self) -> dict[str, str]:
        """The Content-Type parameters, names lowercased, RFC 2231 decoded."""
        return self._content_type_value().params

    @property
    def charset(self) -> str | None:
        """The declared charset, lowercased; ``us-ascii`` for text without one; None for non-text."""
        cs = self.params.get("charset")
        if cs:
            return cs.strip().lower()
        return "us-ascii" if self.maintype == "text" else None

    @property
    def boundary(self) -> str | None:
        return self.params.get("boundary")

    @property
    def transfer_encoding(self) -> str:
        """The Content-Transfer-Encoding, lowercased; ``7bit`` when absent."""
        if self._cte is None:
            h = self.headers.field("content-transfer-encoding")
            self._cte = (h.unfolded_ascii().lower() if h is not None else "") or "7bit"
        return self._cte

    @property
    def disposition(self) -> str | None:
        """``"inline"``, ``"attachment"`` or None when there is no Content-Disposition."""
        if self._disp is None:
            self._disp = self._param_header("content-disposition") or ParamValue("", {}, ())
        return self._disp.value or None

    @property
    def filename(self) -> str | None:
        """The filename from Content-Disposition, else the ``name`` parameter of Content-Type."""
        self.disposition  # noqa: B018 - fills the cache
        assert self._disp is not None
        return self._disp.params.get("filename") or self.params.get("name")

    @property
    def content_id(self) -> str | None:
        cid = self.headers.get("content-id")
        return cid.strip().strip("<>") if cid else None

    def is_attachment(self) -> bool:
        return self.disposition == "attachment"

    # ------------------------------------------------------------------ bytes

    @property
    def span(self) -> tuple[int, int]:
        """The byte range of this entity in the original input."""
        return (self._start, self._end)

    @property
    def body_span(self) -> tuple[int, int]:
        """The byte range of the body (after the blank line) in the original input."""
        return (self._body_start, self._end)

    def raw_body(self) -> bytes:
        """The body exactly as it stands in the message (transfer-encoded)."""
        if self._new_body is not None:
            return self._new_body
        if self._modified and (self._parts is not None or self._message is not None):
            out = io.BytesIO()
            self._emit_body(out)
            return out.getvalue()
        return self._source.read(self._body_start, self._end)

    def iter_raw_body(self, chunk: int = CHUNK) -> Iterator[bytes]:
        """The raw body in pieces, without holding it in memory."""
        if self._new_body is not None or (
            self._modified and (self._parts is not None or self._message is not None)
        ):
            yield self.raw_body()
            return
        yield from self._source.iter_range(self._body_start, self._end, chunk)

    def _decoder(self) -> Decoder:
        from .transfer import decoder_for

        return decoder_for(self.transfer_encoding)

    def decoded(self) -> bytes:
        """The body with its Content-Transfer-Encoding undone.

        For a multipart this is its raw body (multiparts carry no transfer encoding of their own)."""
        if self._parts is not None:
            return self.raw_body()
        cte = self.transfer_encoding
        if cte in _IDENTITY_CTE:
            return self.raw_body()
        from .transfer import decode_base64, decode_quoted_printable

        if cte == "base64":
            return decode_base64(self.raw_body())[0]
        if cte == "quoted-printable":
            return decode_quoted_printable(self.raw_body())[0]
        return self.raw_body()

    def decoded_stream(self, chunk: int = CHUNK) -> BinaryIO:
        """The decoded body as a readable binary stream; memory does not grow with the body size."""
        return io.BufferedReader(_DecodedReader(self, chunk), buffer_size=chunk)

    @property
    def decoded_size(self) -> int:
        """Size of the decoded body in bytes (decodes it in chunks to count)."""
        if self._parts is None and self.transfer_encoding in _IDENTITY_CTE:
            return self._end - self._body_start if self._new_body is None else len(self._new_body)
        total = 0
        with self.decoded_stream() as s:
            while piece := s.read(CHUNK):
                total += len(piece)
        return total

    def text(self) -> str:
        """The decoded body as text in its declared charset (with a lenient fallback for bad bytes)."""
        from .charsets import decode_text

        return decode_text(self.decoded(), self.charset)[0]

    def to_bytes(self) -> bytes:
        """The entity as bytes: exactly the input when nothing was modified."""
        if not self._modified:
            return self._source.read(self._start, self._end)
        out = io.BytesIO()
        self.write_to(out)
        return out.getvalue()

    def iter_bytes(self, chunk: int = CHUNK) -> Iterator[bytes]:
        """:meth:`to_bytes` in pieces: an unmodified entity streams from its source without a copy in memory."""
        if not self._modified:
            yield from self._source.iter_range(self._start, self._end, chunk)
        else:
            yield self.to_bytes()

    def write_to(self, out: SupportsWrite, chunk: int = CHUNK) -> None:
        """Write :meth:`to_bytes` to a stream without building it in memory."""
        if not self._modified:
            self._source.write_range(out, self._start, self._end, chunk)
            return
        eol = self._eol
        last = b""
        # pieces an edit put after a line the input left unterminated must start on a line of their own
        for piece in (self.unixfrom, *(h.raw for h in self.headers)):
            if piece:
                if last and not last.endswith(b"\n") and last != _BOM:
                    out.write(eol)
                out.write(piece)
                last = piece
        sep = self.separator or (eol if self._body_needs_separator() else b"")
        if sep and last and not last.endswith(b"\n") and last != _BOM:
            out.write(eol)
        out.write(sep)
        self._emit_body(out, chunk)

    def _body_needs_separator(self) -> bool:
        """True when the header block lacked its blank line and the body would now read as headers."""
        if not self.headers._fields:
            return False
        if self._message is not None:
            inner = self._message
            head = inner.unixfrom or (inner.headers._fields[0].raw if inner.headers._fields else b"")
        elif self._new_body is not None:
            head = self._new_body[:1024]
        else:
            head = self._source.read(self._body_start, min(self._end, self._body_start + 1024))
        return bool(head) and (head[:1] in (b" ", b"\t") or _HEADER_LIKE.match(head) is not None)

    def _emit_body(self, out: SupportsWrite, chunk: int = CHUNK) -> None:
        src = self._source
        if self._new_body is not None:
            out.write(self._new_body)
        elif self._parts is not None:
            pre_end = self._preamble_end if self._preamble_end >= 0 else self._end
            for piece in src.iter_range(self._body_start, pre_end, chunk):
                out.write(piece)
            for i, ((ds, de), part) in enumerate(zip(self._delims, self._parts, strict=True)):
                delim = src.read(ds, de)
                out.write(delim)
                if part._modified and not delim.endswith(b"\n"):
                    out.write(self._eol)  # the delimiter line was cut short by the end of the input
                if not part._modified:
                    part.write_to(out, chunk)
                    continue
                tail = _Tail(out)
                part.write_to(tail, chunk)
                following = self._delims[i + 1][0] if i + 1 < len(self._delims) else None
                if following is None and self._close is not None:
                    following = self._close[0]
                if (
                    following is not None
                    and tail.last != b"\n"
                    and src.read(following, following + 1) == b"-"
                ):
                    # the next delimiter had no line break of its own (the part's body was empty): an
                    # edited part must not run into it
                    out.write(self._eol)
            if self._close is not None:
                cs = self._close[0]
                for piece in src.iter_range(cs, self._end, chunk):
                    out.write(piece)
        elif self._message is not None:
            self._message.write_to(out, chunk)
        else:
            for piece in src.iter_range(self._body_start, self._end, chunk):
                out.write(piece)

    # ------------------------------------------------------------------ editing

    @property
    def modified(self) -> bool:
        return self._modified

    def _touch(self) -> None:
        e: Entity | None = self
        while e is not None and not e._modified:
            e._modified = True
            e = e.parent

    def _make_field(self, name: str, value: str) -> Header:
        from .rfc2047 import fold_header, parse_addresses

        # an internationalised address (RFC 6532) must stay raw UTF-8: encoded words would break it
        utf8 = (
            name.lower() in _ADDRESS_FIELDS
            and not value.isascii()
            and any(not addr.isascii() for _, addr in parse_addresses(value))
        )
        return Header(name, fold_header(name, value, eol=self._eol, utf8=utf8))

    def _reset_caches(self) -> None:
        self._ctype = None
        self._disp = None
        self._cte = None

    def set_header(self, name: str, value: str) -> None:
        """Replace the first field called ``name`` (keeping its place) and drop the others; add it when
        missing. Only this entity and its ancestors re-emit; everything else keeps its bytes."""
        fields = self.headers._fields
        lname = name.lower()
        new = self._make_field(name, value)
        idx = next((i for i, h in enumerate(fields) if h.lname == lname), None)
        if idx is None:
            fields.append(new)
        else:
            fields[idx] = new
            fields[idx + 1 :] = [h for h in fields[idx + 1 :] if h.lname != lname]
        self._reset_caches()
        self._touch()

    def add_header(self, name: str, value: str, *, first: bool = False) -> None:
        """Add a field at the end (or at the top with ``first``), keeping any existing ones."""
        new = self._make_field(name, value)
        if first:
            self.headers._fields.insert(0, new)
        else:
            self.headers._fields.append(new)
        self._reset_caches()
        self._touch()

    def remove_header(self, name: str) -> int:
        """Remove every field called ``name``; returns how many were removed."""
        fields = self.headers._fields
        lname = name.lower()
        kept = [h for h in fields if h.lname != lname]
        n = len(fields) - len(kept)
        if n:
            self.headers._fields = kept
            self._reset_caches()
            self._touch()
        return n

    def set_content_type(self, value: str, params: dict[str, str] | None = None) -> None:
        self.set_header("Content-Type", format_params(value, params or {}))

    def set_body(self, data: bytes, *, transfer_encoding: str | None = None) -> None:
        """Replace the body of a leaf with ``data`` (decoded bytes), transfer-encoding it.

        ``transfer_encoding`` defaults to the best one for the data (7bit, quoted-printable or base64);
        line endings of the encoded body follow this entity's headers.
        """
        from .transfer import choose_transfer_encoding, encode_base64, encode_quoted_printable

        if self._parts is not None or self._message is not None:
            from ..errors import MimeBuildError

            raise MimeBuildError("set_body() is for leaf parts; edit the parts of a multipart instead")
        is_text = self.maintype == "text"
        cte = (transfer_encoding or choose_transfer_encoding(data, text=is_text)).lower()
        if cte == "base64":
            body = encode_base64(data, eol=self._eol)
        elif cte == "quoted-printable":
            body = encode_quoted_printable(data, eol=self._eol, text=is_text)
        else:
            body = data
        self._new_body = body
        self.set_header("Content-Transfer-Encoding", cte)


class Message(Entity):
    """A whole message, or one nested in a ``message/rfc822`` part. Use as a context manager (or call
    :meth:`close`) to release the file behind a message parsed from a path."""

    __slots__ = ("_owns_source",)

    def __init__(self, source: Source, start: int, parent: Entity | None) -> None:
        super().__init__(source, start, parent)
        self._owns_source = False

    @property
    def subject(self) -> str | None:
        return self.headers.get("subject")

    def all_defects(self) -> list[tuple[Entity, Defect]]:
        """Every defect in the tree, with the entity it belongs to."""
        return [(e, d) for e in self.walk() for d in e.defects]

    def close(self) -> None:
        if self._owns_source:
            self._source.close()

    def __enter__(self) -> Message:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SupportsWrite(Protocol):
    """Anything with ``write(bytes)``: a binary file, a BytesIO, a hash adapter."""

    def write(self, data: bytes, /) -> object: ...


class _Tail:
    """A writer that remembers the last byte written through it."""

    def __init__(self, out: SupportsWrite) -> None:
        self._out = out
        self.last = b""

    def write(self, data: bytes, /) -> object:
        if data:
            self.last = data[-1:]
        return self._out.write(data)


class _DecodedReader(io.RawIOBase):
    """Reads an entity's body through its transfer decoder, one source chunk at a time."""

    def __init__(self, entity: Entity, chunk: int) -> None:
        self._pieces = entity.iter_raw_body(chunk) if entity._parts is None else iter([entity.raw_body()])
        self._decoder = entity._decoder() if entity._parts is None else None
        self._buf = b""
        self._off = 0
        self._eof = False

    def readable(self) -> bool:
        return True

    def _fill(self) -> None:
        while not self._buf and not self._eof:
            piece = next(self._pieces, None)
            if piece is None:
                self._eof = True
                if self._decoder is not None:
                    self._buf = self._decoder.close()
            else:
                self._buf = self._decoder.feed(piece) if self._decoder is not None else piece

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            out = [self._buf[self._off :]]
            self._buf, self._off = b"", 0
            while not self._eof:
                self._fill()
                out.append(self._buf)
                self._buf = b""
            return b"".join(out)
        if self._off >= len(self._buf):
            self._buf, self._off = b"", 0
            self._fill()
        data = self._buf[self._off : self._off + size]
        self._off += len(data)
        return data

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(b))
        n = len(data)
        b[:n] = data
        return n
