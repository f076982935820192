"""Content-transfer-encodings (RFC 2045 §6): lenient decoders, strict encoders, one-shot or incremental.

Decoders never raise on bad input: they return what a mail client would show and name what was wrong as
defects. Every incremental class returns, for any chunking of its input, exactly the bytes (and defects) of
the matching one-shot function. All state is bounded: a decoder or encoder holds at most a few hundred bytes
between calls (plus, for the quoted-printable encoder, one unfinished line of at most ``_QP_HOLD`` bytes).
"""

from __future__ import annotations

import binascii
import re
from typing import Protocol

from smimekit.errors import UsageError

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
INVALID_QP_ESCAPE = "InvalidQuotedPrintableEscape"  # '=' not followed by two hex digits or a line break

_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_DELETE = bytes(b for b in range(256) if b not in _B64_ALPHABET + b"=")
_B64_TAIL = frozenset(b" \t\r\n=")
_EXPECTED_PADS = (0, -1, 2, 1)  # by the number of characters in the last quantum; -1: no valid padding
_EOLS = (b"\r\n", b"\n")


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
        out = binascii.a2b_base64(data)
    except binascii.Error:
        return None
    return out if len(out) == chars * 3 // 4 else None


def _only_whitespace(chunk: bytes, deleted: int) -> bool:
    """True if the ``deleted`` non-alphabet bytes of ``chunk`` are all white space."""
    for ws in (b"\n", b"\r", b" ", b"\t"):
        deleted -= chunk.count(ws)
        if deleted == 0:
            return True
    return False


class Base64Decoder:
    """Incremental form of :func:`decode_base64`."""

    def __init__(self) -> None:
        self._pending = b""  # alphabet characters that do not yet make a quantum of four
        self._pads = -1  # '=' counted since padding started; -1 before it started
        self._expected = 0  # '=' the last quantum needed; -1 when no padding can be right
        self._after = False  # alphabet data was seen after the padding
        self._defects: set[str] = set()

    @property
    def defects(self) -> tuple[str, ...]:
        return tuple(sorted(self._defects))

    def feed(self, chunk: bytes) -> bytes:
        """Decode what ``chunk`` completes; keeps at most three characters back."""
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
            return binascii.a2b_base64(memoryview(data)[:full])
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
            return binascii.a2b_base64(view[:full])
        pad = b"=" * (4 - rem)
        if data.startswith(pad, end):  # a2b_base64 stops after the padding by itself
            return binascii.a2b_base64(view[: end + len(pad)])
        return binascii.a2b_base64(view[:full]) + binascii.a2b_base64(bytes(view[full:end]) + pad)

    def close(self) -> bytes:
        """Decode the last partial quantum and settle the padding defects."""
        out = b""
        if self._pads < 0:
            rem = len(self._pending)
            if rem == 1:
                self._defects.add(INVALID_BASE64_LENGTH)
            elif rem:
                self._defects.add(INVALID_BASE64_PADDING)
                out = binascii.a2b_base64(self._pending + b"=" * (4 - rem))
            self._pending = b""
        elif self._expected >= 0 and self._pads != self._expected:
            self._defects.add(INVALID_BASE64_PADDING)
        return out

    def _count_padding(self, cleaned: bytes) -> None:
        if self._after or not cleaned:
            return
        data = cleaned.lstrip(b"=")
        self._pads += len(cleaned) - len(data)
        if data:
            self._after = True
            self._defects.add(BASE64_DATA_AFTER_PADDING)


# ------------------------------------------------------------------------------------------ quoted-printable

# '=' then up to _QP_PAD blanks then a line break is a soft break with transport padding (RFC 2045 §6.7 (3)).
_QP_PAD = 256
_QP_IRREGULAR = re.compile(rb"=(?![0-9A-Fa-f]{2}|\r?\n)")  # any '=' that is not a plain escape or soft break
# The stray '=' that a2b_qp mangles (it keeps "=G" right): "==", "=\r" without LF, '=' + blank, '=' at the
# end of a part whose next byte is '=' (feed holds back every other open end). In the last part a final
# '=' is a soft break.
_QP_MANGLED = re.compile(rb"=(?==|\r(?!\n)|[ \t]|\Z)")
_QP_MANGLED_END = re.compile(rb"=(?==|\r(?!\n)|[ \t])")
_QP_STRAY_END = re.compile(rb"=(?![0-9A-Fa-f]{2}|\r?\n|\Z)")
_QP_PADDED = re.compile(rb"=[ \t]{1,%d}(?=\r?\n)" % _QP_PAD)
_QP_PADDED_END = re.compile(rb"=[ \t]{1,%d}(?=\r?\n|\Z)" % _QP_PAD)
_QP_UNDECIDED = re.compile(rb"=(?:[ \t]{0,%d}\r?|[0-9A-Fa-f])" % _QP_PAD)


def decode_quoted_printable(data: bytes) -> tuple[bytes, tuple[str, ...]]:
    """Decode quoted-printable: soft breaks go, hard line endings stay as they are, =XX become bytes.

    A '=' that starts no valid escape is kept literally and reported; a final '=' (a soft break at the end
    of the data) is dropped. Returns the bytes and the defect names; never raises.
    """
    return _one_shot(QuotedPrintableDecoder(), data)


class QuotedPrintableDecoder:
    """Incremental form of :func:`decode_quoted_printable`."""

    def __init__(self) -> None:
        self._pending = b""  # an escape or soft break that the next chunk may complete
        self._defects: set[str] = set()

    @property
    def defects(self) -> tuple[str, ...]:
        return tuple(sorted(self._defects))

    def feed(self, chunk: bytes) -> bytes:
        """Decode ``chunk``; an unfinished escape at its end (at most 259 bytes) waits for the next one."""
        data = self._pending + chunk if self._pending else chunk
        cut = data.rfind(b"=", max(0, len(data) - _QP_PAD - 3))
        if cut < 0 or not _QP_UNDECIDED.fullmatch(data, cut):
            cut = len(data)
        self._pending = data[cut:]
        return self._decode(data[:cut] if cut < len(data) else data, final=False)

    def close(self) -> bytes:
        """Decode what is left; a trailing '=' is a soft break."""
        data, self._pending = self._pending, b""
        return self._decode(data, final=True)

    def _decode(self, data: bytes, *, final: bool) -> bytes:
        # a2b_qp is exact once transport padding is cut from soft breaks and the stray '=' it would mangle
        # are escaped as "=3D"; every pass runs in C.
        if _QP_IRREGULAR.search(data) is None:
            return binascii.a2b_qp(data)
        data = (_QP_PADDED_END if final else _QP_PADDED).sub(b"=", data)
        if (_QP_STRAY_END if final else _QP_IRREGULAR).search(data):
            self._defects.add(INVALID_QP_ESCAPE)
        return binascii.a2b_qp((_QP_MANGLED_END if final else _QP_MANGLED).sub(b"=3D", data))


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


def _check_eol(eol: bytes) -> None:
    if eol not in _EOLS:
        raise UsageError(f"the line ending must be CRLF or LF, not {eol!r}")


def encode_base64(data: bytes, *, line_length: int = 76, eol: bytes = b"\r\n") -> bytes:
    """Encode ``data`` as base64 lines of ``line_length`` characters, each ended by ``eol``.

    Empty input gives b"". Raises UsageError for a line length below 4 or an eol other than CRLF/LF.
    """
    encoder = Base64Encoder(line_length=line_length, eol=eol)
    return encoder.feed(data) + encoder.close()


class Base64Encoder:
    """Incremental form of :func:`encode_base64`."""

    def __init__(self, *, line_length: int = 76, eol: bytes = b"\r\n") -> None:
        _check_eol(eol)
        if line_length < 4:
            raise UsageError(f"a base64 line must hold at least 4 characters, not {line_length}")
        self._length = line_length
        self._eol = eol
        self._raw = b""  # input bytes short of a 3-byte group
        self._line = b""  # encoded characters short of a full line

    def feed(self, chunk: bytes) -> bytes:
        """Return the complete lines that ``chunk`` finishes."""
        data = self._raw + chunk if self._raw else chunk
        full = len(data) - len(data) % 3
        self._raw = data[full:]
        return self._lines(self._line + binascii.b2a_base64(data[:full], newline=False), final=False)

    def close(self) -> bytes:
        """Return the last, possibly short, line."""
        raw, self._raw = self._raw, b""
        return self._lines(self._line + binascii.b2a_base64(raw, newline=False), final=True)

    def _lines(self, enc: bytes, *, final: bool) -> bytes:
        size = self._length
        end = len(enc) if final else len(enc) - len(enc) % size
        self._line = enc[end:]
        if not end:
            return b""
        return self._eol.join([enc[i : i + size] for i in range(0, end, size)]) + self._eol


# Literal in quoted-printable: TAB, SPACE and printable ASCII except '=' (RFC 2045 §6.7 (2), (3)).
_QP_LITERAL = b"\t" + bytes(b for b in range(32, 127) if b != 61)
_QP_HOLD = 8192  # quote an unfinished line once this much of it is buffered
_QP_MAX = 76


def _qp_quote(raw: bytes, *, line_end: bool) -> bytes:
    """Quote bytes as one run of quoted-printable text, CR and LF included; no line breaks are added.

    ``line_end``: ``raw`` ends a line, so trailing white space is quoted too.
    """
    if not raw.translate(None, _QP_LITERAL) and not (line_end and raw.endswith((b" ", b"\t"))):
        return raw
    # b2a_qp escapes in C; its soft breaks, its '.' rule and its blank at the very end are undone so that
    # the result does not depend on where the input was cut.
    quoted = binascii.b2a_qp(raw, istext=False).replace(b"=\r\n", b"").replace(b"=\n", b"")
    quoted = quoted.replace(b"=2E", b".")
    if not line_end and quoted.endswith((b"=20", b"=09")):
        quoted = quoted[:-3] + (b" " if quoted.endswith(b"=20") else b"\t")
    return quoted


def _qp_quote_lines(block: bytes) -> list[bytes]:
    """Quote complete text lines (``block`` ends with LF); a CR not right before LF is quoted."""
    block = block.replace(b"\r\n", b"\n")[:-1]
    if not block.translate(None, _QP_LITERAL + b"\n") and not (
        b" \n" in block or b"\t\n" in block or block.endswith((b" ", b"\t"))
    ):
        return block.split(b"\n")
    quoted = _qp_quote(block, line_end=True)
    # Every "=0A" is an LF of the input: no escape ends in '=' or starts with "0A".
    return quoted.replace(b" =0A", b"=20=0A").replace(b"\t=0A", b"=09=0A").split(b"=0A")


def encode_quoted_printable(data: bytes, *, eol: bytes = b"\r\n", text: bool = True) -> bytes:
    """Encode ``data`` as quoted-printable (RFC 2045 §6.7) with lines of at most 76 characters.

    Text mode turns CRLF and LF into ``eol`` hard breaks (a bare CR is quoted); binary mode quotes CR and LF.
    '=', non-printables and white space before a line end are quoted, and so are a leading "From " (as
    "=46rom ") and a line that is a lone "." so the result survives mbox files and SMTP. Raises UsageError
    for an eol other than CRLF/LF.
    """
    encoder = QuotedPrintableEncoder(eol=eol, text=text)
    return encoder.feed(data) + encoder.close()


class QuotedPrintableEncoder:
    """Incremental form of :func:`encode_quoted_printable`."""

    def __init__(self, *, eol: bytes = b"\r\n", text: bool = True) -> None:
        _check_eol(eol)
        self._eol = eol
        self._text = text
        self._raw = b""  # unquoted input of the current line
        self._enc = b""  # quoted, not yet emitted characters of the current line (from an output line start)

    def feed(self, chunk: bytes) -> bytes:
        """Return the output lines that ``chunk`` settles."""
        out: list[bytes] = []
        data = self._raw + chunk if self._raw else chunk
        end = data.rfind(b"\n") + 1 if self._text else 0
        if end:
            lines = _qp_quote_lines(data[:end])
            lines[0] = self._enc + lines[0]
            self._enc = b""
            out.append(
                self._eol.join(
                    [
                        self._wrap(line, final=True)
                        if len(line) > _QP_MAX or line.startswith(b"From ") or line == b"."
                        else line
                        for line in lines
                    ]
                )
            )
            out.append(self._eol)
            data = data[end:]
        self._raw = data
        if len(data) > _QP_HOLD:
            # Keep back the last byte (it may be trailing white space) and, in text mode, a CR with the byte
            # before it (CRLF may follow); everything before is quoted the same whatever comes next.
            keep = 2 if self._text and data.endswith(b"\r") else 1
            self._raw = data[-keep:]
            self._enc = self._wrap(self._enc + _qp_quote(data[:-keep], line_end=False), final=False, out=out)
        return b"".join(out)

    def close(self) -> bytes:
        """Return the rest; the data's last line gets no line ending."""
        enc = self._enc + _qp_quote(self._raw, line_end=True)
        self._raw = self._enc = b""
        return self._wrap(enc, final=True)

    def _wrap(self, enc: bytes, *, final: bool, out: list[bytes] | None = None) -> bytes:
        """Split quoted text into soft-broken lines.

        With ``final`` returns them all (the last without a line ending); otherwise appends the settled
        lines to ``out`` and returns the quoted rest, which the next call continues.
        """
        pieces: list[bytes] = [] if out is None else out
        soft = b"=" + self._eol
        pos, size = 0, len(enc)
        while final or size - pos > _QP_MAX + 5:  # 5: room to see a "From " at the next line's start
            prefix = b""
            if enc.startswith(b"From ", pos):
                prefix, pos = b"=46", pos + 1
            room = _QP_MAX - len(prefix)
            if size - pos <= room:
                last = enc[pos:]
                pieces.append(prefix + (b"=2E" if last == b"." and not prefix else last))
                pos = size
                break
            cut = pos + room - 1
            if enc[cut - 1] == 61:  # never split an =XX escape
                cut -= 1
            elif enc[cut - 2] == 61:
                cut -= 2
            pieces.append(prefix + enc[pos:cut] + soft)
            pos = cut
        if out is None:
            return b"".join(pieces)
        return enc[pos:]


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
