"""The MIME side of S/MIME: which entities are S/MIME, their CMS bytes, and the wrapping of new layers.

Internal to smimekit.smime. Nothing here does cryptography.
"""

from __future__ import annotations

import contextlib
import enum
import io
import itertools
import secrets
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO, Protocol

import pybase64

from smimekit import mime
from smimekit.errors import SmimeFormatError
from smimekit.mime import Entity, Message
from smimekit.mime.canonical import iter_canonical_content
from smimekit.mime.params import format_params
from smimekit.mime.rfc2047 import fold_header
from smimekit.mime.source import SpoolSource
from smimekit.mime.transfer import Base64Encoder

CRLF = b"\r\n"
PKCS7_MIME = frozenset({"application/pkcs7-mime", "application/x-pkcs7-mime"})
PKCS7_SIGNATURE = frozenset({"application/pkcs7-signature", "application/x-pkcs7-signature"})
#: Decoded CMS data, canonical content and new messages up to this size are handled in memory; larger
#: ones go through streams and private temporary files.
IN_MEMORY = 8 << 20
CHUNK = 1 << 20
#: A new message (:class:`OutputSpool`) is held in memory up to this size, then in a temporary file.
SPOOL_MEMORY = 2 << 20

OID_SIGNED = "1.2.840.113549.1.7.2"
OID_ENVELOPED = "1.2.840.113549.1.7.3"
OID_AUTH_ENVELOPED = "1.2.840.113549.1.9.16.1.23"
OID_COMPRESSED = "1.2.840.113549.1.9.16.1.9"


class CmsKind(enum.Enum):
    """What an ``application/pkcs7-mime`` body holds; the value is its RFC 8551 ``smime-type``."""

    SIGNED = "signed-data"
    ENVELOPED = "enveloped-data"
    AUTH_ENVELOPED = "authEnveloped-data"
    COMPRESSED = "compressed-data"


_KIND_BY_OID = {
    OID_SIGNED: CmsKind.SIGNED,
    OID_ENVELOPED: CmsKind.ENVELOPED,
    OID_AUTH_ENVELOPED: CmsKind.AUTH_ENVELOPED,
    OID_COMPRESSED: CmsKind.COMPRESSED,
}
_KIND_BY_SMIME_TYPE = {k.value.lower(): k for k in CmsKind}


# --------------------------------------------------------------------------------------------- detection


def _filename_ext(entity: Entity) -> str:
    name = (entity.filename or "").strip().lower()
    return name.rsplit(".", 1)[-1] if "." in name else ""


def is_pkcs7_mime(entity: Entity) -> bool:
    """``application/(x-)pkcs7-mime``, or Outlook's ``application/octet-stream`` named ``*.p7m``/``*.p7z``."""
    ctype = entity.content_type
    if ctype in PKCS7_MIME:
        return True
    return ctype == "application/octet-stream" and _filename_ext(entity) in ("p7m", "p7z")


def is_signature_part(entity: Entity) -> bool:
    """``application/(x-)pkcs7-signature``, or ``application/octet-stream`` named ``*.p7s``."""
    ctype = entity.content_type
    if ctype in PKCS7_SIGNATURE:
        return True
    return ctype == "application/octet-stream" and _filename_ext(entity) == "p7s"


def is_smime_signed_multipart(entity: Entity) -> bool:
    """A ``multipart/signed`` whose protocol (or second part) is a PKCS#7 signature (not PGP/MIME)."""
    if entity.content_type != "multipart/signed":
        return False
    protocol = entity.params.get("protocol", "").strip().lower()
    if protocol in PKCS7_SIGNATURE:
        return True
    parts = entity.parts
    return len(parts) >= 2 and is_signature_part(parts[1])


def cms_kind(entity: Entity) -> CmsKind | None:
    """What the CMS ContentInfo in a pkcs7-mime body is, read from its content type OID (the
    ``smime-type`` parameter is only a hint: the DER decides). None when the body is not CMS."""
    with entity.decoded_stream() as stream:
        head = stream.read(64)
    oid = content_info_oid(head)
    if oid is None:
        hint = entity.params.get("smime-type", "").strip().lower()
        return _KIND_BY_SMIME_TYPE.get(hint) if not head else None
    return _KIND_BY_OID.get(oid)


def content_info_oid(head: bytes) -> str | None:
    """The contentType OID at the start of a BER ContentInfo, or None when ``head`` does not start one."""
    if len(head) < 4 or head[0] != 0x30:
        return None
    pos = 2
    first = head[1]
    if first & 0x80 and first != 0x80:
        pos += first & 0x7F
    if pos + 2 > len(head) or head[pos] != 0x06:
        return None
    size = head[pos + 1]
    body = head[pos + 2 : pos + 2 + size]
    if size > 32 or len(body) != size or not body:
        return None
    arcs: list[int] = []
    value = 0
    for byte in body:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if not arcs:
        return None
    first_arc = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in (first_arc, arcs[0] - 40 * first_arc, *arcs[1:]))


def is_large(entity: Entity) -> bool:
    """True when ``entity`` is too large to be handled in memory: its copies go to temporary files."""
    start, end = entity.span
    return end - start > IN_MEMORY


def cms_data(entity: Entity) -> bytes | BinaryIO:
    """The decoded CMS bytes of a pkcs7 body: bytes when small, else a stream (memory stays flat)."""
    start, end = entity.body_span
    if end - start <= IN_MEMORY * 4 // 3 + 4096:
        return entity.decoded()
    return entity.decoded_stream()


def content_limit(entity: Entity) -> int:
    """How much of the content inside the pkcs7 body of ``entity`` may be held in memory: all of a small
    one; nothing of a large one, which goes to a private temporary file at once."""
    return 0 if is_large(entity) else IN_MEMORY


@contextlib.contextmanager
def cms_stream(entity: Entity) -> Iterator[bytes | BinaryIO]:
    """:func:`cms_data` as a context: a stream is closed at its end."""
    data = cms_data(entity)
    try:
        yield data
    finally:
        if not isinstance(data, bytes):
            data.close()


# --------------------------------------------------------------------------------------------- paths


def part_paths(root: Entity, base: str = "1") -> dict[int, str]:
    """``id(entity) -> path`` for every entity under ``root``: ``base`` (``"1"``) for the root, ``"1.1"``,
    ``"1.2"`` for its parts — the numbering of ``smimekit inspect``; the message inside a ``message/rfc822``
    part is its child ``.1``."""
    out = {id(root): base}
    stack: list[tuple[Entity, str]] = [(root, base)]
    while stack:
        entity, path = stack.pop()
        for i, child in enumerate(entity.children, 1):
            child_path = f"{path}.{i}"
            out[id(child)] = child_path
            stack.append((child, child_path))
    return out


def child_path(parent: str, index: int) -> str:
    return f"{parent}.{index}"


def subtree_paths(root: Entity, prefix: str) -> tuple[str, ...]:
    """Paths of ``root`` (numbered ``prefix``) and every entity inside it."""
    return sort_paths(part_paths(root, prefix).values())


def _path_key(path: str) -> tuple[int, ...]:
    return tuple(int(x) for x in path.split(".") if x)


def sort_paths(paths: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(paths), key=_path_key))


# --------------------------------------------------------------------------------------------- content


def crlf(data: bytes) -> bytes:
    """Every line ending (CRLF or a bare LF) as CRLF."""
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def outer_fields(message: Entity) -> list[bytes]:
    """The header fields of ``message`` that stay outside an S/MIME layer (all but Content-*), as raw
    CRLF lines in their order."""
    return [crlf(h.raw) for h in message.headers if h.name and not h.lname.startswith("content-")]


def content_entity(message: Entity) -> bytes:
    """The body entity of ``message`` — its Content-* fields and body — in canonical form (RFC 8551 §3.1.1).

    Raises MimeBuildError when the content has no canonical form.
    """
    return b"".join(iter_canonical_content(message))


def content_pieces(message: Entity) -> Iterator[bytes]:
    """:func:`content_entity` in pieces of about 1 MiB, read from the message's source as they are asked
    for. Raises MimeBuildError (at the call) when the content has no canonical form."""
    return iter_canonical_content(message)


def content_input(message: Entity) -> bytes | BinaryIO:
    """The canonical body entity as the CMS layer takes it: bytes when it is small (so that the CMS output
    is DER), else a stream that produces it as it is read (the CMS output is then streamed BER)."""
    content = content_chunks(message)
    return content if isinstance(content, bytes) else reader(content)


def content_chunks(message: Entity) -> bytes | Iterator[bytes]:
    """:func:`content_input` with a large content as its pieces (about 1 MiB each, read from the message's
    source as they are asked for), for a consumer that takes them as they come without copying them."""
    pieces = content_pieces(message)
    if is_large(message):
        return pieces
    head: list[bytes] = []
    size = 0
    for piece in pieces:
        head.append(piece)
        size += len(piece)
        if size > IN_MEMORY:
            return itertools.chain(head, pieces)
    return b"".join(head)


def new_boundary(*contents: bytes) -> str:
    """A random boundary that occurs in none of ``contents``."""
    while True:
        boundary = "----=_smimekit_" + secrets.token_hex(16)
        marker = boundary.encode("ascii")
        if not any(marker in c for c in contents):
            return boundary


def field(name: str, value: str) -> bytes:
    return fold_header(name, value, eol=CRLF)


def pkcs7_fields(ctype: str, smime_type: str | None, filename: str) -> list[bytes]:
    params = [("smime-type", smime_type)] if smime_type else []
    params.append(("name", filename))
    return [
        field("Content-Type", format_params(ctype, params)),
        field("Content-Transfer-Encoding", "base64"),
        field("Content-Disposition", format_params("attachment", [("filename", filename)])),
    ]


def base64_body(data: bytes) -> bytes:
    encoder = Base64Encoder(line_length=76, eol=CRLF)
    return encoder.feed(data) + encoder.close()


def wrap(outer: list[bytes], fields: list[bytes], body: bytes) -> Message:
    """Parse a new top-level entity: ``outer`` fields, ``MIME-Version`` unless there, then ``fields``."""
    head = list(outer)
    if not any(f[:13].lower() == b"mime-version:" for f in head):
        head.append(b"MIME-Version: 1.0\r\n")
    return mime.parse(b"".join(head + fields) + CRLF + body)


def pkcs7_head(message: Entity, kind: CmsKind, filename: str = "smime.p7m") -> bytes:
    """The header block of a new ``application/pkcs7-mime`` message over ``message``: its outer fields,
    ``MIME-Version`` unless there, the pkcs7 fields and the blank line; the base64 body follows."""
    head = outer_fields(message)
    if not any(f[:13].lower() == b"mime-version:" for f in head):
        head.append(b"MIME-Version: 1.0\r\n")
    return b"".join([*head, *pkcs7_fields("application/pkcs7-mime", kind.value, filename), CRLF])


def wrap_pkcs7(message: Entity, kind: CmsKind, der: bytes, filename: str = "smime.p7m") -> Message:
    """``message``'s outer fields over an ``application/pkcs7-mime`` body holding ``der``."""
    fields = pkcs7_fields("application/pkcs7-mime", kind.value, filename)
    return wrap(outer_fields(message), fields, base64_body(der))


# --------------------------------------------------------------------------------------------- streams


def reader(pieces: Iterable[bytes]) -> BinaryIO:
    """A readable binary stream over byte pieces; reads return up to 1 MiB at a time."""
    return io.BufferedReader(ChainReader(pieces), buffer_size=CHUNK)


_LINE_IN = 57  # input bytes per base64 line of 76 characters
_WRITE_LINES = 18396  # lines encoded at a time: about 1 MiB of input, 1.4 MiB of output


class Base64Writer:
    """A write-only stream that writes what it is given to ``out`` as base64 lines of 76 characters and
    CRLF; :meth:`close` writes the last line. Holds less than 1 MiB between writes. ``head`` (the header
    block of the entity) is written before the first line, so that nothing reaches ``out`` when the
    producer fails before it writes.

    Small writes are gathered up to a block of lines (about 1 MiB); a large write is encoded straight from
    the caller's buffer, so the bytes of a 1 MiB cipher chunk are not copied before they are encoded (only
    the few that complete the line left open by the previous write). The lines are made in one buffer that
    is written again and again: ``out`` must not keep what it is given past its ``write()`` (the contract
    of Python's binary streams)."""

    def __init__(self, out: Writable, *, head: bytes = b"") -> None:
        self._out = out
        self._head = head
        self._held = bytearray()  # input short of a block of lines (whole lines and the start of one)
        self._lines = _LineBuffer()

    def write(self, data: bytes | bytearray | memoryview) -> int:
        view = memoryview(data).cast("B")
        size = len(view)
        held = self._held
        block = _WRITE_LINES * _LINE_IN
        if len(held) + size < block:
            held += view
            return size
        if held:
            # complete the open line from ``data`` (``block`` is whole lines, so there is enough)
            need = -len(held) % _LINE_IN
            held += view[:need]
            view = view[need:]
        whole = len(view) - len(view) % _LINE_IN
        first = min(whole, block - len(held))  # what fills the first block along with the held lines
        self._emit(self._lines.encode(held, view[:first]))
        held.clear()
        for i in range(first, whole, block):
            self._emit(self._lines.encode(b"", view[i : min(i + block, whole)]))
        held += view[whole:]
        return size

    def close(self) -> None:
        held = bytes(self._held)
        self._held.clear()
        # the rest (less than a block): wrapped in C line by line, which needs no numpy import for a
        # small message
        self._emit(pybase64.encodebytes(held).replace(b"\n", CRLF) if held else b"")

    def _emit(self, data: bytes | bytearray | memoryview) -> None:
        if self._head:
            self._out.write(self._head)
            self._head = b""
        if data:
            self._out.write(data)


class _LineBuffer:
    """Base64 of whole 57-byte lines as 76 characters and CRLF each (see :func:`base64_crlf_lines`),
    written into one buffer of a block of lines that is reused from one call to the next."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._grid: Any = None

    def encode(
        self, first: bytes | bytearray | memoryview, then: bytes | bytearray | memoryview
    ) -> bytes | memoryview:
        """The lines of ``first`` followed by those of ``then`` (each whole lines, a block at most)."""
        head = len(first) // _LINE_IN
        lines = head + len(then) // _LINE_IN
        np = _numpy() if lines >= 64 else None
        if np is None:
            return pybase64.encodebytes(bytes(first) + bytes(then)).replace(b"\n", CRLF)
        if self._grid is None or self._grid.shape[0] < lines:
            self._grid = None  # releases the buffer's export, so that it can be replaced
            rows = max(lines, _WRITE_LINES)
            self._buf = bytearray(rows * 78)
            self._grid = np.frombuffer(self._buf, dtype=np.uint8).reshape(rows, 78)
            self._grid[:, 76] = 13
            self._grid[:, 77] = 10
        grid = self._grid
        if head:
            grid[:head, :76] = np.frombuffer(pybase64.b64encode(first), dtype=np.uint8).reshape(head, 76)
        if lines > head:
            encoded = pybase64.b64encode(then)
            grid[head:lines, :76] = np.frombuffer(encoded, dtype=np.uint8).reshape(lines - head, 76)
        return memoryview(self._buf)[: lines * 78]


def base64_crlf_lines(data: bytes | bytearray | memoryview) -> bytes:
    """``data`` (whole lines: a multiple of 57 bytes) as base64 lines of 76 characters, each ending in CRLF.

    pybase64 encodes the whole in one SIMD pass; the CRLFs are then put in with one strided copy (numpy,
    when it is installed). Wrapping in C line by line and replacing every LF by CRLF costs four times as
    much: it was the largest part of encrypting a large message.
    """
    return bytes(_LineBuffer().encode(b"", data))


def _numpy() -> Any:
    """numpy, imported on first use (it is optional, and costs 40 ms to import); None without it."""
    global _NUMPY
    if _NUMPY is False:
        try:
            import numpy

            _NUMPY = numpy
        except ImportError:  # pragma: no cover - depends on the installation
            _NUMPY = None
    return _NUMPY


_NUMPY: Any = False  # not imported yet


class Writable(Protocol):
    def write(self, data: bytes | bytearray | memoryview, /) -> object: ...


class OutputSpool:
    """A new message being written, parsed as it is written (it is never read back to be parsed): in
    memory up to :data:`SPOOL_MEMORY`, then in a private temporary file (mode 0600, unlinked at once);
    :meth:`message` returns it (a large one keeps its bodies in that file). With ``large`` (the message it
    is made from is large) it goes to the file from the start."""

    def __init__(self, *, large: bool = False) -> None:
        self._source = SpoolSource(threshold=0 if large else SPOOL_MEMORY)
        self._parser = mime.MimeParser(self._source)
        self.size = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        # no copy here: the spool writes ``data`` out (or appends it to its memory) and the parser copies
        # only what it keeps (nothing once the header block of a single-part message is read), so a
        # writer may reuse its buffer as soon as this returns
        view = memoryview(data).cast("B")
        self._source.append(view)
        self._parser.feed(view)
        self.size += len(view)
        return len(view)

    def message(self) -> Message:
        """The message written, parsed; close it (or use ``with``) to release the temporary file."""
        try:
            msg = self._parser.close()
        except BaseException:
            self.discard()
            raise
        msg._owns_source = True  # closing the message closes the spool
        return msg

    def discard(self) -> None:
        self._source.close()


class NullSource(mime.Source):
    """The source of a parse that only checks structure (spans): it holds no bytes and refuses reads."""

    @property
    def size(self) -> int:
        return 0

    def read(self, start: int, end: int) -> bytes:
        raise AssertionError("a structure-only parse has no bytes to read")


class CheckedWriter:
    """Writes to ``out`` and feeds a structure-only parser, so that what was written can be checked
    (spans, types) without keeping or re-reading it. ``pos`` is the number of bytes written so far."""

    def __init__(self, out: Writable, *, check: bool) -> None:
        self._out = out
        self._parser = mime.MimeParser(NullSource()) if check else None
        self.pos = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._out.write(data)
        if self._parser is not None:
            self._parser.feed(data)  # the parser copies what it keeps: a writer may reuse its buffer
        self.pos += len(data)
        return len(data)

    def parsed(self) -> Message | None:
        """The structure of what was written (None without ``check``)."""
        return None if self._parser is None else self._parser.close()


class ChainReader(io.RawIOBase):
    """A readable stream over a sequence of byte pieces (not seekable: parse() spools it)."""

    def __init__(self, pieces: Iterable[bytes]) -> None:
        self._pieces: Iterator[bytes] = iter(pieces)
        self._buf = memoryview(b"")  # the rest of the current piece (a view: reads copy it only once)

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buf:
            piece = next(self._pieces, None)
            if piece is None:
                return 0
            self._buf = memoryview(piece)
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def parse_pieces(pieces: Iterable[bytes], *, large: bool = False) -> Message:
    """Parse a message given in pieces; large ones are spooled to a private temporary file (with ``large``,
    from the first piece on)."""
    if not large:
        return mime.parse(reader(pieces))
    spool = OutputSpool(large=True)
    try:
        for piece in pieces:
            spool.write(piece)
        return spool.message()
    except BaseException:
        spool.discard()
        raise


def header_merge(outer: Entity, inner: Entity) -> tuple[list[bytes], list[str]]:
    """Header lines of ``outer`` that ``inner`` lacks (RFC 8551 §3.1: the inner entity may carry only
    Content-* fields; the outer ones then apply), and notes where the two disagree on From or Subject."""
    have = {h.lname for h in inner.headers}
    extra = [
        crlf(h.raw)
        for h in outer.headers
        if h.name and not h.lname.startswith("content-") and h.lname not in have
    ]
    notes: list[str] = []
    for name in ("From", "Subject"):
        inside, outside = inner.headers.get(name), outer.headers.get(name)
        if inside is not None and outside is not None and inside.strip() != outside.strip():
            notes.append(
                f"the {name} inside the S/MIME layer ({inside!r}) differs from the one outside ({outside!r})"
            )
    return extra, notes


def require(condition: bool, reason: str, part: str) -> None:
    if not condition:
        raise SmimeFormatError(reason, part=part)
