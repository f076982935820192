"""Whether a MIME body is 7-bit safe (RFC 5322 §2.1.1, RFC 2049 §4), decided piece by piece with a few
integers of state: the scan behind the canonical form's choice of what to re-encode."""

from __future__ import annotations

import binascii
from collections.abc import Iterable

import pybase64

from ..errors import MimeBuildError
from .charsets import lookup_codec
from .entity import Entity

_KNOWN_CTES = frozenset({"7bit", "8bit", "binary", "quoted-printable", "base64"})
_MAX_LINE = 998  # octets in a line, CRLF excluded (RFC 5322 §2.1.1)
# The SIMD decoder of pybase64 (without its C extension, its fallback would be slower than counting).
_SIMD = "C extension active" in pybase64.get_version()


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
