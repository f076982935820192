"""Content-transfer-encodings (RFC 2045 §6): lenient decoders, strict encoders, one-shot or incremental.

Decoders never raise on bad input: they return what a mail client would show and name what was wrong as
defects. Every incremental class returns, for any chunking of its input, exactly the bytes (and defects) of
the matching one-shot function. All state is bounded: a decoder or encoder holds at most a few hundred bytes
between calls, plus one unfinished line for the base64 decoder (at most ``_B64_CARRY`` bytes) and for the
quoted-printable encoder (at most ``_QP_HOLD`` bytes), and the input of less than four lines (less than one
when the width is a multiple of four) for the base64 encoder.

Base64 goes through pybase64's SIMD codec when its C extension is there, else through ``binascii``; the fast
paths take only input whose decoding they can prove equal to the exact path's (see
:func:`_decode_base64_regular`). Quoted-printable lives in :mod:`smimekit.mime.qp` and is re-exported here.
"""

from __future__ import annotations

import binascii
import functools
import math
from collections.abc import Callable
from typing import Protocol

import pybase64

from smimekit.errors import UsageError
from smimekit.mime.qp import (
    _QP_LITERAL,
    INVALID_QP_ESCAPE,
    QuotedPrintableDecoder,
    QuotedPrintableEncoder,
    _check_eol,
    decode_quoted_printable,
    encode_quoted_printable,
)

__all__ = [
    "BASE64_DATA_AFTER_PADDING",
    "INVALID_BASE64_CHARACTERS",
    "INVALID_BASE64_LENGTH",
    "INVALID_BASE64_PADDING",
    "INVALID_QP_ESCAPE",
    "Base64Decoder",
    "Base64Encoder",
    "IdentityDecoder",
    "QuotedPrintableDecoder",
    "QuotedPrintableEncoder",
    "TransferDecoder",
    "choose_transfer_encoding",
    "decode_base64",
    "decode_quoted_printable",
    "decoder_for",
    "encode_base64",
    "encode_quoted_printable",
]

INVALID_BASE64_CHARACTERS = "InvalidBase64Characters"  # bytes other than the alphabet and white space
INVALID_BASE64_PADDING = "InvalidBase64Padding"  # missing, short or excess '='
INVALID_BASE64_LENGTH = "InvalidBase64Length"  # one dangling character (6 bits) that cannot form a byte
BASE64_DATA_AFTER_PADDING = "Base64DataAfterPadding"  # alphabet characters after the padding (ignored)

_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_DELETE = bytes(b for b in range(256) if b not in _B64_ALPHABET + b"=")
_B64_TAIL = frozenset(b" \t\r\n=")
_EXPECTED_PADS = (0, -1, 2, 1)  # by the number of characters in the last quantum; -1: no valid padding
_B64_CARRY = 64 << 10  # the base64 decoder holds back an unfinished line up to this size for its fast path
_B64_BLOCK = 1 << 20  # encode CRLF lines in blocks of about this many input bytes (to stay in cache)

# The codec. Both decoders take each alphabet byte once for its six bits and no other byte for any bits:
# that is what lets a length check prove that an input held nothing but the alphabet. pybase64 is several
# times faster than binascii, but its pure-Python fallback is slower: binascii stays when its C extension
# is not there.
_PYBASE64 = "C extension active" in pybase64.get_version()
_b64decode: Callable[[bytes | memoryview], bytes] = (
    functools.partial(pybase64.b64decode, validate=False) if _PYBASE64 else binascii.a2b_base64
)
_b64encode: Callable[[bytes | memoryview], bytes] = (
    pybase64.b64encode if _PYBASE64 else functools.partial(binascii.b2a_base64, newline=False)
)


class TransferDecoder(Protocol):
    """What every incremental decoder offers."""

    def feed(self, chunk: bytes) -> bytes: ...

    def close(self) -> bytes: ...

    @property
    def defects(self) -> tuple[str, ...]: ...


def _one_shot(decoder: TransferDecoder, data: bytes) -> tuple[bytes, tuple[str, ...]]:
    out = decoder.feed(data)
    tail = decoder.close()
    return (out + tail if tail else out), decoder.defects


# --------------------------------------------------------------------------------------------- base64


def decode_base64(data: bytes) -> tuple[bytes, tuple[str, ...]]:
    """Decode base64 like a mail client: skip non-alphabet bytes, stop at padding, mend missing padding.

    Returns the bytes and the sorted defect names; never raises.
    """
    fast = _decode_base64_regular(data)
    if fast is not None:
        return fast, ()
    return _one_shot(Base64Decoder(), data)


def _decode_base64_regular(data: bytes) -> bytes | None:
    """Decode well-formed base64 (fixed-width lines, right padding) without copying it, or return None.

    Lines are checked with strided slices; any byte that is not alphabet makes the output shorter than
    ``3 * alphabet_count // 4``, so a length mismatch sends the input to the exact (slower) path.
    """
    end = len(data)
    limit = max(end - 64, 0)
    while end > limit and data[end - 1] in _B64_TAIL:  # by hand: rstrip() would copy the whole input
        end -= 1
    if end == limit and limit:
        return None  # a long tail of padding or blanks: not the regular layout
    verified = 0
    lf = data.find(b"\n", 0, end)
    if lf >= 0:
        step = lf + 1
        lfs = data[lf:end:step]
        if lfs.count(b"\n") != len(lfs):
            return None
        verified = len(lfs)
        if lf > 0 and data[lf - 1] == 13:
            crs = data[lf - 1 : lf + (len(lfs) - 1) * step : step]
            if crs.count(b"\r") != len(crs):
                return None
            verified += len(crs)
    chars = end - verified
    if data.count(b"=", end) != _EXPECTED_PADS[chars % 4]:
        return None
    try:
        out = _b64decode(data)
    except ValueError:  # binascii.Error
        return None
    return out if len(out) == chars * 3 // 4 else None


def _decode_regular_lines(data: bytes, end: int) -> bytes | None:
    """Decode ``data[:end]`` if it is lines of one width, all ended by LF or all by CRLF; else return None.

    The same proof as :func:`_decode_base64_regular`, for whole lines without padding: the strided slices
    count the line breaks, and any other byte that is not alphabet ('=' included) would make the output
    shorter than ``3 * chars // 4``. ``chars`` must be a multiple of four, so that nothing is left over.
    """
    lf = data.find(b"\n", 0, end)
    step = lf + 1
    if lf < 0 or (end - step) % step:  # the last line must end at end - 1 like the first at lf
        return None
    lfs = data[lf:end:step]
    if lfs.count(b"\n") != len(lfs):
        return None
    chars = end - len(lfs)
    if lf and data[lf - 1] == 13:
        crs = data[lf - 1 : end : step]
        if crs.count(b"\r") != len(crs):
            return None
        chars -= len(crs)
    if chars % 4:
        return None
    try:
        out = _b64decode(data if end == len(data) else memoryview(data)[:end])
    except ValueError:  # binascii.Error
        return None
    return out if len(out) == chars // 4 * 3 else None


def _only_whitespace(chunk: bytes, deleted: int) -> bool:
    """True if the ``deleted`` non-alphabet bytes of ``chunk`` are all white space."""
    for ws in (b"\n", b"\r", b" ", b"\t"):
        deleted -= chunk.count(ws)
        if deleted == 0:
            return True
    return False


class Base64Decoder:
    """Incremental form of :func:`decode_base64`.

    Whole regular lines take a fast path (:func:`_decode_regular_lines`), everything else the exact path.
    For that the unfinished last line of a chunk (up to ``_B64_CARRY`` bytes) waits for the next chunk.
    """

    def __init__(self) -> None:
        self._carry = b""  # the unfinished last line, not decoded yet
        self._pending = b""  # alphabet characters that do not yet make a quantum of four
        self._pads = -1  # '=' counted since padding started; -1 before it started
        self._expected = 0  # '=' the last quantum needed; -1 when no padding can be right
        self._after = False  # alphabet data was seen after the padding
        self._defects: set[str] = set()

    @property
    def defects(self) -> tuple[str, ...]:
        return tuple(sorted(self._defects))

    def feed(self, chunk: bytes) -> bytes:
        """Decode the lines that ``chunk`` completes."""
        data = self._carry + chunk if self._carry else chunk
        self._carry = b""
        if self._pads >= 0:  # past the padding only '=' are counted: nothing to speed up
            return self._feed_exact(data)
        end = data.rfind(b"\n") + 1
        if len(data) - end > _B64_CARRY:
            end = len(data)  # too long a line to hold back: the exact path takes it now
        else:
            self._carry = data[end:]
        if not end:
            return b""
        if not self._pending:  # at a quantum boundary the exact path has no state that lines could change
            pad = data.find(b"=", 0, end)
            cut = end if pad < 0 else data.rfind(b"\n", 0, pad) + 1  # the lines before the padding's
            if cut:
                last = data.rfind(b"\n", 0, cut - 1) + 1
                if cut - last != data.find(b"\n") + 1:
                    cut = last  # a last line of another width (a body's short last one) goes exact too
            out = _decode_regular_lines(data, cut) if cut else None
            if out is not None:
                return out if cut == end else out + self._feed_exact(data[cut:end])
        return self._feed_exact(data if end == len(data) else data[:end])

    def close(self) -> bytes:
        """Decode the rest and the last partial quantum; settle the padding defects."""
        carry, self._carry = self._carry, b""
        out = self._feed_exact(carry) if carry else b""
        if self._pads < 0:
            rem = len(self._pending)
            if rem == 1:
                self._defects.add(INVALID_BASE64_LENGTH)
            elif rem:
                self._defects.add(INVALID_BASE64_PADDING)
                out += _b64decode(self._pending + b"=" * (4 - rem))
            self._pending = b""
        elif self._expected >= 0 and self._pads != self._expected:
            self._defects.add(INVALID_BASE64_PADDING)
        return out

    def _feed_exact(self, chunk: bytes) -> bytes:
        """Decode any input; keeps at most three characters back.

        The codec only ever sees alphabet characters, correctly padded: any decoder gives the same bytes.
        """
        cleaned = chunk.translate(None, _B64_DELETE)
        if len(cleaned) != len(chunk) and not _only_whitespace(chunk, len(chunk) - len(cleaned)):
            self._defects.add(INVALID_BASE64_CHARACTERS)
        if self._pads >= 0:
            self._count_padding(cleaned)
            return b""
        pad_at = cleaned.find(b"=")
        data = self._pending + cleaned if self._pending else cleaned
        if pad_at < 0:
            full = len(data) - len(data) % 4
            self._pending = data[full:]
            return _b64decode(memoryview(data)[:full])
        end = len(self._pending) + pad_at
        self._pending = b""
        rem = end % 4
        full = end - rem
        self._expected = _EXPECTED_PADS[rem]
        self._pads = 0
        self._count_padding(data[end:])
        view = memoryview(data)
        if rem < 2:
            if rem == 1:
                self._defects.add(INVALID_BASE64_LENGTH)
            return _b64decode(view[:full])
        pad = b"=" * (4 - rem)
        if data.startswith(pad, end):
            return _b64decode(view[: end + len(pad)])
        return _b64decode(view[:full]) + _b64decode(bytes(view[full:end]) + pad)

    def _count_padding(self, cleaned: bytes) -> None:
        if self._after or not cleaned:
            return
        data = cleaned.lstrip(b"=")
        self._pads += len(cleaned) - len(data)
        if data:
            self._after = True
            self._defects.add(BASE64_DATA_AFTER_PADDING)


class IdentityDecoder:
    """Decoder for 7bit, 8bit, binary and unknown encodings: returns its input."""

    @property
    def defects(self) -> tuple[str, ...]:
        return ()

    def feed(self, chunk: bytes) -> bytes:
        return chunk

    def close(self) -> bytes:
        return b""


def decoder_for(cte: str | None) -> TransferDecoder:
    """Return a fresh decoder for a Content-Transfer-Encoding value (case-insensitive; unknown: identity)."""
    name = (cte or "").strip().lower()
    if name == "base64":
        return Base64Decoder()
    if name == "quoted-printable":
        return QuotedPrintableDecoder()
    return IdentityDecoder()


# --------------------------------------------------------------------------------------------- encoders


def encode_base64(data: bytes, *, line_length: int = 76, eol: bytes = b"\r\n") -> bytes:
    """Encode ``data`` as base64 lines of ``line_length`` characters, each ended by ``eol``.

    Empty input gives b"". Raises UsageError for a line length below 4 or an eol other than CRLF/LF.
    """
    return _encode_lines(data, line_length, eol, _line_group(line_length, eol))


def _line_group(line_length: int, eol: bytes) -> int:
    """Check the encoder options; return the input size of the fewest whole lines that end on a quantum."""
    _check_eol(eol)
    if line_length < 4:
        raise UsageError(f"a base64 line must hold at least 4 characters, not {line_length}")
    return 4 // math.gcd(line_length, 4) * line_length * 3 // 4


def _encode_lines(data: bytes | memoryview, size: int, eol: bytes, group: int) -> bytes:
    """Base64 of ``data`` in lines of ``size`` characters, each ended by ``eol``; the last may be shorter."""
    if not data:
        return b""
    if not _PYBASE64 or size % 4:
        enc = _b64encode(data)
        lines = [enc[i : i + size] for i in range(0, len(enc), size)]
        lines.append(b"")  # for the final eol, without copying the whole output once more
        return eol.join(lines)
    if eol == b"\n":
        return _wrap_lf(data, size)
    if len(data) <= _B64_BLOCK:
        return _wrap_lf(data, size).replace(b"\n", eol)
    # Large input in blocks of whole lines: the LF-wrapped text of each block stays in the cache.
    step = max(group, _B64_BLOCK - _B64_BLOCK % group)
    view = memoryview(data)
    return b"".join(
        [_wrap_lf(view[i : i + step], size).replace(b"\n", eol) for i in range(0, len(view), step)]
    )


def _wrap_lf(data: bytes | memoryview, size: int) -> bytes:
    """pybase64 wraps lines in C: ``size`` (a multiple of 4) characters and an LF each."""
    return pybase64.encodebytes(data) if size == 76 else pybase64.b64encode(data, wrapcol=size) + b"\n"


class Base64Encoder:
    """Incremental form of :func:`encode_base64`."""

    def __init__(self, *, line_length: int = 76, eol: bytes = b"\r\n") -> None:
        self._group = _line_group(line_length, eol)
        self._length = line_length
        self._eol = eol
        self._raw = b""  # input short of a line group (57 bytes for 76-character lines)

    def feed(self, chunk: bytes) -> bytes:
        """Return the complete lines that ``chunk`` finishes."""
        data = self._raw + chunk if self._raw else chunk
        full = len(data) - len(data) % self._group
        self._raw = data[full:]
        if not full:
            return b""
        return _encode_lines(
            data if full == len(data) else memoryview(data)[:full], self._length, self._eol, self._group
        )

    def feed_parts(self, chunk: bytes) -> tuple[bytes, bytes]:
        """:meth:`feed` in two parts whose concatenation it returns, without copying ``chunk``: the line
        that the held input and the head of ``chunk`` complete, then the lines of the rest."""
        raw, group = self._raw, self._group
        if not raw:
            return b"", self.feed(chunk)
        need = group - len(raw)
        if len(chunk) < need:
            self._raw = raw + chunk
            return b"", b""
        self._raw = b""
        head = _encode_lines(raw + chunk[:need], self._length, self._eol, group)
        view = memoryview(chunk)[need:]
        full = len(view) - len(view) % group
        self._raw = bytes(view[full:])
        if not full:
            return head, b""
        return head, _encode_lines(view if full == len(view) else view[:full], self._length, self._eol, group)

    def close(self) -> bytes:
        """Return the last, possibly short, line."""
        raw, self._raw = self._raw, b""
        return _encode_lines(raw, self._length, self._eol, self._group)


# --------------------------------------------------------------------------------------------- choice


def choose_transfer_encoding(
    data: bytes, *, text: bool, allow_8bit: bool = False, allow_binary: bool = False
) -> str:
    """Pick a Content-Transfer-Encoding: "7bit", "8bit", "binary", "quoted-printable" or "base64".

    7bit and 8bit need lines of at most 998 octets, no NUL and no bare CR; for ``text`` a bare LF is fine
    because the canonical form turns LF into CRLF, for binary data every line break must already be CRLF.
    8bit and binary are chosen only when allowed; otherwise text in which at most one byte in five needs
    quoting gets quoted-printable, and everything else base64.
    """
    crlf = data.count(b"\r\n")
    line_breaks_ok = data.count(b"\r") == crlf and (text or data.count(b"\n") == crlf)
    if line_breaks_ok and b"\0" not in data and _longest_line(data) <= 998:
        if data.isascii():
            return "7bit"
        if allow_8bit:
            return "8bit"
    if allow_binary:
        return "binary"
    if text:
        quoted = len(data.translate(None, _QP_LITERAL + b"\r\n"))
        if quoted * 5 <= len(data):  # mostly ASCII: QP stays readable and at most ~1.4 times the size
            return "quoted-printable"
    return "base64"


def _longest_line(data: bytes) -> int:
    """Length of the longest line without its line ending (CRs are known to come only before LF)."""
    longest = max(map(len, data.split(b"\n")))
    if longest == 999:  # maybe a 998-octet line and the CR of its CRLF
        return max(len(line.removesuffix(b"\r")) for line in data.split(b"\n"))
    return longest
