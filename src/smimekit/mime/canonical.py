"""The canonical form of a MIME entity for signing (RFC 8551 §3.1.1, RFC 2049 §4).

Every line ends in CRLF and every leaf has a 7-bit-safe transfer encoding, so that the bytes signed are the
bytes any mail system will deliver. Leaves whose body is 8bit or binary (as declared, or in fact: non-ASCII
bytes, NUL, a bare CR or a line over 998 octets) are re-encoded, text as quoted-printable and everything
else as base64; every other byte stays as it is except for its line endings. Header fields, preambles and
epilogues are not re-encoded: 8-bit bytes there (RFC 6532 UTF-8 headers) stay 8-bit.

:func:`iter_canonical` streams the canonical form in pieces, so memory does not grow with the message:

- every leaf body is scanned once, in chunks, to decide what must change (the *plan*);
- when nothing but line endings changes, the bytes are read back from the message's source;
- otherwise a private parse of the same bytes (no copy of them) is edited with the public editing API and
  written with :meth:`Entity.write_to` — so the canonical form is exactly that of an edited copy — while
  the bytes it would write from the source, and the re-encoded bodies of large leaves, are only recorded
  as placeholders and streamed when the pieces are read.
"""

from __future__ import annotations

import binascii
import itertools
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import pybase64

from ..errors import MimeBuildError
from .charsets import lookup_codec
from .entity import Entity, Message
from .parser import MimeParser
from .source import CHUNK, Source, SpoolSource
from .transfer import Base64Encoder, QuotedPrintableEncoder, decoder_for

__all__ = ["canonicalize", "is_canonical", "iter_canonical", "iter_canonical_content", "to_canonical"]

_KNOWN_CTES = frozenset({"7bit", "8bit", "binary", "quoted-printable", "base64"})
_MAX_LINE = 998  # octets in a line, CRLF excluded (RFC 5322 §2.1.1)
_SMALL = 4096  # reads (and leaf bodies) up to this size are handled as bytes; larger ones as placeholders
CRLF = b"\r\n"
# The SIMD decoder of pybase64 (without its C extension, its fallback would be slower than counting).
_SIMD = "C extension active" in pybase64.get_version()
_DEFAULT_CONTENT_TYPE = b"Content-Type: text/plain; charset=us-ascii\r\n"


def _is_leaf(entity: Entity) -> bool:
    return not entity.is_multipart() and entity.message is None


class _SafetyScan:
    """Decides, piece by piece, whether data is 7-bit safe: ASCII without NUL, every CR part of a CRLF,
    no line over 998 octets (RFC 5322 §2.1.1); and whether every line break is already a CRLF. Holds a few
    integers, whatever the size of the data.

    Bodies with lines of one length (base64, most text) are checked with strided slices and one counting
    pass; anything else line by line.
    """

    def __init__(self) -> None:
        self.safe = True
        self.crlf = True  # every LF so far is the end of a CRLF
        self._line = 0  # octets of the current line so far, not counting a CR at its end
        self._cr = False  # the data so far ends in a CR (a CRLF may straddle two pieces)

    def feed(self, data: bytes) -> bool:
        """Take the next piece; returns False once the data is known not to be safe."""
        if not self.safe or not data:
            return self.safe
        if not data.isascii() or b"\0" in data:
            return self._unsafe()
        first = data.find(b"\n")
        if first < 0:
            self._partial(data)
            return self.safe
        last = data.rfind(b"\n")
        self._end_line(data[: first + 1])
        if self.safe and last > first:
            self._lines(data, first + 1, last + 1)
        if self.safe:
            self._partial(data[last + 1 :])
        return self.safe

    def close(self) -> bool:
        """True when everything fed was safe (a CR at the very end is a bare CR)."""
        if self._cr:
            self.safe = False
        return self.safe

    def _unsafe(self) -> bool:
        self.safe = False
        return False

    def _partial(self, seg: bytes) -> None:
        """A piece of a line without its LF."""
        if not seg:
            return
        ends_cr = seg[-1] == 0x0D
        if self._cr or seg.count(b"\r") != ends_cr:
            self._unsafe()
            return
        self._line += len(seg) - ends_cr
        self._cr = ends_cr
        if self._line > _MAX_LINE:
            self._unsafe()

    def _end_line(self, seg: bytes) -> None:
        """The rest of the current line: ``seg`` holds one LF, at its end."""
        if self._cr:
            if len(seg) != 1:  # the CR that ended the last piece is not followed by this LF
                self._unsafe()
                return
        else:
            has_cr = len(seg) > 1 and seg[-2] == 0x0D
            if seg.count(b"\r") != has_cr:
                self._unsafe()
                return
            self.crlf = self.crlf and has_cr
            self._line += len(seg) - 1 - has_cr
        if self._line > _MAX_LINE:
            self._unsafe()
        self._line, self._cr = 0, False

    def _lines(self, data: bytes, start: int, end: int) -> None:
        """Whole lines: ``data[start:end]`` starts a line and ends with an LF."""
        size = end - start
        lf = data.find(b"\n", start)
        step = lf - start + 1
        if size % step == 0:
            count = size // step
            cr = step > 1 and data[lf - 1] == 0x0D
            # a line break every ``step`` octets, and no CR or LF anywhere else
            if (
                data[lf:end:step].count(b"\n") == count
                and (not cr or data[lf - 1 : end : step].count(b"\r") == count)
                and _only_breaks(data, start, end, count * (1 + cr))
            ):
                self.crlf = self.crlf and cr
                if step - 1 - cr > _MAX_LINE:
                    self._unsafe()
                return
        region = data[start:end]
        pairs = region.count(b"\r\n")
        if region.count(b"\r") != pairs:
            self._unsafe()
            return
        self.crlf = self.crlf and region.count(b"\n") == pairs
        lines = region.split(b"\n")
        longest = max(map(len, lines))
        if longest > _MAX_LINE and max(len(line) - line.endswith(b"\r") for line in lines) > _MAX_LINE:
            self._unsafe()


def _only_breaks(data: bytes, start: int, end: int, breaks: int) -> bool:
    """True when ``data[start:end]`` holds exactly ``breaks`` CR and LF octets (those the caller found).

    Base64 bodies take a fast path: when the SIMD base64 decoder, which discards every byte outside the
    alphabet, decodes all but ``breaks`` octets, nothing else in the range is outside the alphabet
    (padding, which would stop the decoder, is ruled out first). Anything else is counted.
    """
    alphabet = end - start - breaks
    if _SIMD and alphabet % 4 == 0 and data.find(b"=", start, end) < 0:
        try:
            if len(pybase64.b64decode(memoryview(data)[start:end], validate=False)) * 4 == alphabet * 3:
                return True
        except (binascii.Error, ValueError):
            pass
    return end - start - len(data[start:end].translate(None, b"\r\n")) == breaks


def _scan(pieces: Iterable[bytes]) -> _SafetyScan:
    """``pieces`` scanned (up to the first unsafe one)."""
    scan = _SafetyScan()
    for piece in pieces:
        if not scan.feed(piece):
            return scan
    scan.close()
    return scan


def _needs_reencoding(entity: Entity, *, check: bool = True, scan: _SafetyScan | None = None) -> bool:
    cte = entity.transfer_encoding
    if cte in ("8bit", "binary"):
        return True
    safe = (scan or _scan(entity.iter_raw_body())).safe
    if check and cte not in _KNOWN_CTES and not safe:
        raise MimeBuildError(
            f"a {entity.content_type} part has the unknown transfer encoding {cte!r} and 8-bit content, "
            "so it has no canonical form"
        )
    return not safe


def _line_based_text(entity: Entity) -> bool:
    """True for text whose charset writes line breaks as ASCII CR LF (not UTF-16 or UTF-32)."""
    if entity.maintype != "text":
        return False
    codec = lookup_codec(entity.charset)
    return codec is None or "\r\n".encode(codec, "ignore") == b"\r\n"


# --------------------------------------------------------------------------------------------- line ends


def _crlf(data: bytes) -> bytes:
    if _crlf_only(data):
        return data
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _crlf_only(data: bytes) -> bool:
    """True when every LF in ``data`` follows a CR (lines of one length take a fast path)."""
    first = data.find(b"\n")
    if first < 0:
        return True
    if first == 0 or data[first - 1] != 0x0D:
        return False
    last = data.rfind(b"\n")
    step = data.find(b"\n", first + 1) - first
    if step > 1 and (last - first) % step == 0:
        count = (last - first) // step + 1
        lfs = data[first : last + 1 : step]
        if lfs.count(b"\n") == count and data[first - 1 : last : step].count(b"\r") == count:
            inner_start, inner_end = first + 1, last - 1  # between the first LF and the last CR
            breaks = 2 * (count - 2)
            if inner_end <= inner_start or _only_breaks(data, inner_start, inner_end, breaks):
                return True
    return data.count(b"\n") == data.count(b"\r\n")


Piece = tuple[bytes, bool]  # bytes, and whether every line break in them is known to be CRLF already


def _crlf_pieces(pieces: Iterable[Piece]) -> Iterator[bytes]:
    """Every line ending of the concatenated ``pieces`` as CRLF, also where a CRLF straddles two pieces.

    Pieces known to hold only CRLF line breaks go through untouched."""
    held = b""
    for piece, clean in pieces:
        if not piece:
            continue
        if clean:
            if held:  # a CR before a clean piece is either a bare CR or the start of its first CRLF
                yield held
                held = b""
            yield piece
            continue
        if held:
            piece, held = held + piece, b""
        if piece[-1] == 0x0D:
            piece, held = piece[:-1], b"\r"
            if not piece:
                continue
        yield _crlf(piece)
    if held:
        yield held


# --------------------------------------------------------------------------------------------- the plan


@dataclass
class _Plan:
    """What the canonical form changes: leaves to re-encode (id -> new encoding) and multipart or message
    entities to declare 7bit. ``clean`` are the leaves kept as they are whose line breaks are all CRLF."""

    reencode: dict[int, str] = field(default_factory=dict)
    seven_bit: set[int] = field(default_factory=set)
    clean: set[int] = field(default_factory=set)

    @property
    def edits(self) -> bool:
        return bool(self.reencode or self.seven_bit)


def _plan(root: Entity) -> _Plan:
    """Read every leaf once to decide what must change; raises MimeBuildError for content without a
    canonical form."""
    plan = _Plan()
    for entity in root.walk():
        if _is_leaf(entity):
            scan = None if entity.transfer_encoding in ("8bit", "binary") else _scan(entity.iter_raw_body())
            if not _needs_reencoding(entity, scan=scan):
                if scan is not None and scan.crlf:
                    plan.clean.add(id(entity))
            else:
                plan.reencode[id(entity)] = "quoted-printable" if _line_based_text(entity) else "base64"
        elif entity.transfer_encoding in ("8bit", "binary"):
            # a multipart or message/rfc822 holds what its parts hold: all 7-bit once they are re-encoded
            plan.seven_bit.add(id(entity))
    return plan


# --------------------------------------------------------------------------------------------- unchanged


def _ranges(source: Source, start: int, end: int, chunk: int, clean: bool = False) -> Iterator[Piece]:
    for piece in source.iter_range(start, end, chunk):
        yield piece, clean


def _emit_unchanged(root: Entity, plan: _Plan, chunk: int, *, start: int) -> Iterator[Piece]:
    """The bytes of the unmodified ``root`` from ``start`` on, the bodies of its clean leaves marked."""
    source = root._source
    pos, end = start, root.span[1]
    for leaf in root.walk():
        if id(leaf) in plan.clean:
            body_start, body_end = leaf.body_span
            if pos <= body_start <= body_end <= end:
                yield from _ranges(source, pos, body_start, chunk)
                yield from _ranges(source, body_start, body_end, chunk, clean=True)
                pos = body_end
    yield from _ranges(source, pos, end, chunk)


# --------------------------------------------------------------------------------------------- edited


class _View(Source):
    """``prefix`` followed by ``base[start:end]``, as the source of a private parse.

    While ``recording``, a read of more than _SMALL bytes returns a placeholder (a new bytes object ending
    in the last byte of the range) and remembers the range, so that what :meth:`Entity.write_to` writes
    from the source can be recorded without reading it."""

    def __init__(self, prefix: bytes, base: Source, start: int, end: int) -> None:
        self._prefix = prefix
        self._base = base
        self._start = start
        self._size = len(prefix) + end - start
        self.recording = False
        self.placeholders: dict[int, tuple[bytes, int, int]] = {}
        self.token = b"smimekit-placeholder-" + secrets.token_hex(16).encode() + b"-"

    @property
    def size(self) -> int:
        return self._size

    def read(self, start: int, end: int) -> bytes:
        end = min(end, self._size)
        if end <= start:
            return b""
        if self.recording and end - start > _SMALL:
            placeholder = self.token + self.read_through(end - 1, end)
            self.placeholders[id(placeholder)] = (placeholder, start, end)
            return placeholder
        return self.read_through(start, end)

    def read_through(self, start: int, end: int) -> bytes:
        """The bytes in ``[start, end)``, never a placeholder."""
        n = len(self._prefix)
        head = self._prefix[start:end] if start < n else b""
        if end <= n:
            return head
        tail = self._base.read(self._start + max(start - n, 0), self._start + end - n)
        return head + tail if head else tail

    def range_pieces(self, start: int, end: int, chunk: int) -> Iterator[bytes]:
        pos = start
        while pos < end:
            n = min(chunk, end - pos)
            yield self.read_through(pos, pos + n)
            pos += n


@dataclass(frozen=True)
class _Body:
    """A large leaf body to re-encode when it is read: its raw span and encodings."""

    placeholder: bytes
    span: tuple[int, int]
    old_cte: str
    new_cte: str
    text: bool


class _Recorder:
    """Keeps what :meth:`Entity.write_to` writes (small bytes and placeholders), in order."""

    def __init__(self) -> None:
        self.items: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.items.append(data)
        return len(data)


def _parse_view(view: _View) -> Message:
    parser = MimeParser(view)
    for piece in view.range_pieces(0, view.size, CHUNK):
        parser.feed(piece)
    return parser.close()


def _edited(view: _View, chunk: int, known: tuple[Entity, int, _Plan] | None) -> Iterator[Piece]:
    """The canonical form of the message in ``view``: a private parse of it, edited as the plan says and
    written by :meth:`Entity.write_to` into a record that is played back (line endings not yet CRLF).

    ``known`` is a tree already planned whose bytes lie in the view shifted by the offset given; when the
    private parse has the same entities at the same places, its plan is taken over instead of scanning
    every body again."""
    root = _parse_view(view)
    plan = _carried(known, root) or _plan(root)
    bodies: dict[int, _Body] = {}
    for entity in list(root.walk()):
        cte = plan.reencode.get(id(entity))
        if cte is None and id(entity) not in plan.seven_bit:
            continue
        # An entity read without the blank line after its header block (it had a line that is no header)
        # would run an edited header block straight into its body; give it the blank line (made CRLF later).
        if not entity.separator:
            entity.separator = b"\n"
        if cte is None:
            entity.set_header("Content-Transfer-Encoding", "7bit")
            continue
        start, end = entity.body_span
        if end - start <= _SMALL:
            entity.set_body(entity.decoded(), transfer_encoding=cte)
            continue
        placeholder = view.token + b"body-" + str(len(bodies)).encode() + b"\n"
        bodies[id(placeholder)] = _Body(
            placeholder, (start, end), entity.transfer_encoding, cte, entity.maintype == "text"
        )
        entity.set_body(placeholder, transfer_encoding="7bit")  # kept as it is: written as it was given
        entity.set_header("Content-Transfer-Encoding", cte)
    record = _Recorder()
    view.recording = True
    try:
        root.write_to(record)
    finally:
        view.recording = False
    return _play(record.items, view, bodies, chunk)


def _carried(known: tuple[Entity, int, _Plan] | None, root: Entity) -> _Plan | None:
    """The plan of ``known`` moved onto the same entities of ``root``; None when they differ."""
    if known is None:
        return None
    old_root, shift, old = known
    plan = _Plan()
    for before, after in itertools.zip_longest(old_root.walk(), root.walk()):
        if before is None or after is None:
            return None
        start, end = before.body_span
        same = (
            after.body_span == (start + shift, end + shift)
            and _is_leaf(before) == _is_leaf(after)
            and (before.content_type, before.charset, before.transfer_encoding)
            == (after.content_type, after.charset, after.transfer_encoding)
        )
        if not same:
            return None
        if id(before) in old.reencode:
            plan.reencode[id(after)] = old.reencode[id(before)]
        if id(before) in old.seven_bit:
            plan.seven_bit.add(id(after))
    return plan


def _play(items: list[bytes], view: _View, bodies: dict[int, _Body], chunk: int) -> Iterator[Piece]:
    for item in items:
        placed = view.placeholders.get(id(item))
        if placed is not None and placed[0] is item:
            for piece in view.range_pieces(placed[1], placed[2], chunk):
                yield piece, False
            continue
        body = bodies.get(id(item))
        if body is not None and body.placeholder is item:
            yield from _encoded_body(view, body, chunk)
            continue
        if view.token in item:
            # write_to() wrote a placeholder other than as it was handed out (joined or copied): its bytes
            # must never reach the output
            raise AssertionError("a placeholder of the canonical form was not written as it was given")
        yield item, False


def _encoded_body(view: _View, body: _Body, chunk: int) -> Iterator[Piece]:
    encoder: Base64Encoder | QuotedPrintableEncoder
    if body.new_cte == "quoted-printable":
        encoder = QuotedPrintableEncoder(eol=CRLF, text=body.text)
    else:
        encoder = Base64Encoder(eol=CRLF)
    decoder = decoder_for(body.old_cte)
    # both encoders write line breaks only as the eol given, and quote every CR and LF of the data
    for raw in view.range_pieces(*body.span, chunk):
        if out := encoder.feed(decoder.feed(raw)):
            yield out, True
    yield encoder.feed(decoder.close()) + encoder.close(), True


# --------------------------------------------------------------------------------------------- copies


class _SpoolParser:
    """A write-only stream that parses what is written into a message spooled in memory, then (past
    8 MiB) in a private temporary file."""

    def __init__(self) -> None:
        self._spool = SpoolSource()
        self._parser = MimeParser(self._spool)

    def write(self, data: bytes) -> int:
        self._spool.append(data)
        self._parser.feed(data)
        return len(data)

    def close(self) -> Message:
        msg = self._parser.close()
        msg._owns_source = True
        return msg

    def discard(self) -> None:
        self._spool.close()


def _parse_pieces(pieces: Iterable[bytes]) -> Message:
    sink = _SpoolParser()
    try:
        for piece in pieces:
            sink.write(piece)
        return sink.close()
    except BaseException:
        sink.discard()
        raise


def _copy(entity: Entity) -> Message:
    """A freshly parsed, unmodified copy of ``entity`` as a message of its own."""
    sink = _SpoolParser()
    try:
        entity.write_to(sink)
        return sink.close()
    except BaseException:
        sink.discard()
        raise


# --------------------------------------------------------------------------------------------- API


def iter_canonical(entity: Entity, chunk: int = CHUNK) -> Iterator[bytes]:
    """The canonical bytes of ``entity`` in pieces of about ``chunk`` bytes (see :func:`canonicalize`).

    Bodies are read from the entity's source and re-encoded incrementally, so memory does not grow with
    the entity. An entity that is not a whole unmodified message (a part, or an edited message) is first
    copied to a private spool. ``entity`` itself is not changed. Raises MimeBuildError (at the call, before
    any piece) for a leaf with an unknown transfer encoding and 8-bit content.
    """
    return _canonical(entity, chunk, content_only=False)


def iter_canonical_content(message: Entity, chunk: int = CHUNK) -> Iterator[bytes]:
    """Like :func:`iter_canonical` for the body entity of ``message``: its Content-* header fields
    (``Content-Type: text/plain; charset=us-ascii`` first when it has none), a CRLF and its body.

    This is the entity S/MIME signs, encrypts and compresses (RFC 8551 §3.1): the other fields of the
    message stay outside. Raises MimeBuildError as :func:`iter_canonical` does.
    """
    return _canonical(message, chunk, content_only=True)


def _content_prefix(message: Entity) -> bytes:
    fields = [h.raw for h in message.headers if h.lname.startswith("content-")]
    if not any(h.lname == "content-type" for h in message.headers):
        fields.insert(0, _DEFAULT_CONTENT_TYPE)
    return b"".join(fields) + CRLF


def _canonical(entity: Entity, chunk: int, *, content_only: bool) -> Iterator[bytes]:
    if entity.parent is None and not entity.modified:
        return _canonical_root(entity, chunk, content_only=content_only)
    # A part or an edited message: first its bytes (or those of its body entity) as a message of its own.
    if content_only:
        copy = _parse_pieces(itertools.chain([_content_prefix(entity)], entity.iter_raw_body(chunk)))
    else:
        copy = _copy(entity)
    try:
        canonical = _canonical_root(copy, chunk, content_only=False)
    except BaseException:
        copy.close()
        raise
    return _closing(copy, canonical)


def _canonical_root(root: Entity, chunk: int, *, content_only: bool) -> Iterator[bytes]:
    """The canonical form of the unmodified message ``root`` (or of its body entity)."""
    start, end = root.span
    prefix = b""
    if content_only:
        prefix, start = _content_prefix(root), root.body_span[0]
    plan = _plan(root)
    # The body entity of a message whose header block is well formed has the message's own leaves;
    # otherwise (no blank line after it, a field cut short) its parse may differ: plan on that.
    well_formed = bool(root.separator) and all(h.raw.endswith(b"\n") for h in root.headers)
    if plan.edits or (content_only and not well_formed):
        shift = len(prefix) - start
        pieces = _edited(_View(prefix, root._source, start, end), chunk, (root, shift, plan))
    else:
        pieces = _emit_unchanged(root, plan, chunk, start=start)
        if prefix:
            pieces = _chain([(prefix, False)], pieces)
    return _crlf_pieces(pieces)


def _chain(first: list[Piece], rest: Iterator[Piece]) -> Iterator[Piece]:
    yield from first
    yield from rest


def _closing(msg: Message, pieces: Iterator[bytes]) -> Iterator[bytes]:
    with msg:
        yield from pieces


def canonicalize(entity: Entity) -> bytes:
    """The canonical bytes of ``entity``: CRLF line endings and a 7-bit-safe encoding for every leaf.

    ``entity`` itself is not changed. Raises MimeBuildError for a leaf with an unknown transfer encoding
    and 8-bit content (its content cannot be re-encoded without knowing what it is).
    """
    return b"".join(iter_canonical(entity))


def to_canonical(msg: Message) -> Message:
    """A new parsed message holding :func:`canonicalize` of ``msg`` (spooled to a private temporary file
    when large); ``msg`` is not changed."""
    return _parse_pieces(iter_canonical(msg))


class _LineEndings:
    """A write-only stream that checks that every line ending written is CRLF."""

    def __init__(self) -> None:
        self.crlf = True
        self._cr = False

    def write(self, data: bytes) -> int:
        if data and self.crlf:
            pairs = data.count(b"\r\n") + (self._cr and data[0] == 0x0A)
            self.crlf = data.count(b"\n") == pairs
            self._cr = data[-1] == 0x0D
        return len(data)


def is_canonical(entity: Entity) -> bool:
    """True when :func:`canonicalize` would return the entity's bytes unchanged."""
    endings = _LineEndings()
    entity.write_to(endings)
    if not endings.crlf:
        return False
    for e in entity.walk():
        if _is_leaf(e):
            if _needs_reencoding(e, check=False):
                return False
        elif e.transfer_encoding in ("8bit", "binary"):
            return False
    return True
