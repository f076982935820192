"""The canonical form of a MIME entity for signing (RFC 8551 §3.1.1, RFC 2049 §4).

Every line ends in CRLF and every leaf has a 7-bit-safe transfer encoding, so that the bytes signed are the
bytes any mail system will deliver. Leaves whose body is 8bit or binary (as declared, or in fact: non-ASCII
bytes, NUL, a bare CR or a line over 998 octets) are re-encoded, text as quoted-printable and everything
else as base64; every other byte stays as it is except for its line endings. Header fields, preambles and
epilogues are not re-encoded: 8-bit bytes there (RFC 6532 UTF-8 headers) stay 8-bit.

:func:`iter_canonical` streams the canonical form in pieces, so memory does not grow with the message:

- every leaf body is scanned once, in chunks, to decide what must change (the *plan*, :mod:`._canonplan`;
  the scan is :mod:`._safety`);
- when nothing but line endings changes, the bytes are read back from the message's source;
- otherwise a private parse of the same bytes is edited with the public editing API and written with
  :meth:`Entity.write_to`, the ranges it streams and the large bodies to re-encode recorded as typed
  markers and streamed when the pieces are read (:mod:`._canonedit`);
- line endings are made CRLF last (:mod:`._lineends`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator

from ._canonedit import _View, edited
from ._canonplan import _emit_unchanged, _plan
from ._lineends import Piece, _crlf_pieces
from ._lineends import _crlf_only as _crlf_only  # importable from here, where it was first defined
from ._safety import _is_leaf, _needs_reencoding
from ._safety import _SafetyScan as _SafetyScan  # importable from here, where it was first defined
from .entity import Entity, Message
from .parser import MimeParser
from .source import CHUNK, SpoolSource

__all__ = ["canonicalize", "is_canonical", "iter_canonical", "iter_canonical_content", "to_canonical"]

CRLF = b"\r\n"
_DEFAULT_CONTENT_TYPE = b"Content-Type: text/plain; charset=us-ascii\r\n"


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
        pieces = edited(_View(prefix, root._source, start, end), chunk, (root, shift, plan))
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
