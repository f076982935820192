"""Line endings of the canonical form: every line break as CRLF, also where a CRLF straddles two pieces;
pieces already known to hold only CRLF pass through untouched."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ._safety import _only_breaks


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
