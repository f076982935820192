"""The canonical form of a message that must change (a leaf to re-encode, a container to declare 7bit).

A private parse of the same bytes (no copy of them) is edited with the public editing API and written with
:meth:`Entity.write_to`, so that the canonical form is exactly that of an edited copy. What ``write_to``
would stream from the source, and the re-encoded bodies of large leaves, are not produced while it runs:

- while recording, the view's :meth:`_View.iter_range` hands out one :class:`_Range` per range instead of
  its bytes. ``write_to`` streams every range it does not inspect through ``iter_range`` and passes the
  pieces straight to the writer, so each one reaches the record as it was handed out; small reads
  (delimiters, a look at the start of a body) go through :meth:`_View.read`, which always returns the
  real bytes;
- a large body to re-encode is given to ``set_body`` as a :class:`_Body`, which ``write_to`` writes as
  it was given.

Both are ``bytes`` subclasses whose value is the last byte of what they stand for (``write_to`` looks at
the last byte written to decide on line breaks) and carry what to stream. Playing the record back streams
the ranges from the view and the bodies through their encoders. Every marker handed out must come back
exactly once; anything else (a marker joined to other bytes, or lost) raises AssertionError — a bug,
never a message to send.
"""

from __future__ import annotations

from collections.abc import Iterator

from ._canonplan import _carried, _Plan, _plan
from ._lineends import Piece
from .entity import Entity, Message
from .parser import MimeParser
from .source import CHUNK, Source
from .transfer import Base64Encoder, QuotedPrintableEncoder, decoder_for

CRLF = b"\r\n"
_SMALL = 4096  # leaf bodies up to this size are re-encoded at once, in memory


class _Range(bytes):
    """Stands for ``[start, end)`` of the view in the record; its value is the range's last byte."""

    start: int
    end: int


class _Body(bytes):
    """Stands for a large leaf body to re-encode as it is read; its value is the LF that ends it."""

    span: tuple[int, int]
    old_cte: str
    new_cte: str
    text: bool


def _range(start: int, end: int, last: bytes) -> _Range:
    marker = _Range(last)
    marker.start, marker.end = start, end
    return marker


def _body(span: tuple[int, int], old_cte: str, new_cte: str, text: bool) -> _Body:
    # both encoders end what they write with the line ending, so the body's last byte is an LF
    marker = _Body(b"\n")
    marker.span, marker.old_cte, marker.new_cte, marker.text = span, old_cte, new_cte, text
    return marker


class _View(Source):
    """``prefix`` followed by ``base[start:end]``, as the source of a private parse. While ``recording``,
    :meth:`iter_range` hands out :class:`_Range` markers (remembered in ``handed``) instead of bytes."""

    def __init__(self, prefix: bytes, base: Source, start: int, end: int) -> None:
        self._prefix = prefix
        self._base = base
        self._start = start
        self._size = len(prefix) + end - start
        self.recording = False
        self.handed: list[bytes] = []

    @property
    def size(self) -> int:
        return self._size

    def read(self, start: int, end: int) -> bytes:
        end = min(end, self._size)
        if end <= start:
            return b""
        n = len(self._prefix)
        head = self._prefix[start:end] if start < n else b""
        if end <= n:
            return head
        tail = self._base.read(self._start + max(start - n, 0), self._start + end - n)
        return head + tail if head else tail

    def iter_range(self, start: int, end: int, chunk: int = CHUNK) -> Iterator[bytes]:
        end = min(end, self._size)
        if not self.recording or end <= start:
            yield from super().iter_range(start, end, chunk)
            return
        marker = _range(start, end, self.read(end - 1, end))
        self.handed.append(marker)
        yield marker


class _Recorder:
    """Keeps what :meth:`Entity.write_to` writes (small bytes and markers), in order."""

    def __init__(self) -> None:
        self.items: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.items.append(data)
        return len(data)


def _parse_view(view: _View) -> Message:
    parser = MimeParser(view)
    for piece in view.iter_range(0, view.size, CHUNK):
        parser.feed(piece)
    return parser.close()


def edited(view: _View, chunk: int, known: tuple[Entity, int, _Plan] | None) -> Iterator[Piece]:
    """The canonical form of the message in ``view``: a private parse of it, edited as the plan says and
    written by :meth:`Entity.write_to` into a record that is played back (line endings not yet CRLF).

    ``known`` is a tree already planned whose bytes lie in the view shifted by the offset given; when the
    private parse has the same entities at the same places, its plan is taken over instead of scanning
    every body again."""
    root = _parse_view(view)
    plan = _carried(known, root) or _plan(root)
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
        marker = _body((start, end), entity.transfer_encoding, cte, entity.maintype == "text")
        view.handed.append(marker)
        entity.set_body(marker, transfer_encoding="7bit")  # 7bit: written as it is given
        entity.set_header("Content-Transfer-Encoding", cte)
    record = _Recorder()
    view.recording = True
    try:
        root.write_to(record)
    finally:
        view.recording = False
    played = [item for item in record.items if type(item) in (_Range, _Body)]
    if len(played) != len(view.handed) or {id(m) for m in played} != {id(m) for m in view.handed}:
        raise AssertionError("a part of the canonical form was not written as it was handed out")
    return _play(record.items, view, chunk)


def _play(items: list[bytes], view: _View, chunk: int) -> Iterator[Piece]:
    for item in items:
        if type(item) is _Range:
            for piece in view.iter_range(item.start, item.end, chunk):
                yield piece, False
        elif type(item) is _Body:
            yield from _encoded_body(view, item, chunk)
        else:
            yield item, False


def _encoded_body(view: _View, body: _Body, chunk: int) -> Iterator[Piece]:
    encoder: Base64Encoder | QuotedPrintableEncoder
    if body.new_cte == "quoted-printable":
        encoder = QuotedPrintableEncoder(eol=CRLF, text=body.text)
    else:
        encoder = Base64Encoder(eol=CRLF)
    decoder = decoder_for(body.old_cte)
    # both encoders write line breaks only as the eol given, and quote every CR and LF of the data
    for raw in view.iter_range(*body.span, chunk):
        if out := encoder.feed(decoder.feed(raw)):
            yield out, True
    yield encoder.feed(decoder.close()) + encoder.close(), True
