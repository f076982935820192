"""Quoted-printable (RFC 2045 §6.7): a lenient decoder and a strict encoder, one-shot or incremental.

Re-exported by :mod:`smimekit.mime.transfer`, which holds the promises common to every transfer encoding.
"""

from __future__ import annotations

import binascii
import re

from smimekit.errors import UsageError

__all__ = [
    "INVALID_QP_ESCAPE",
    "QuotedPrintableDecoder",
    "QuotedPrintableEncoder",
    "decode_quoted_printable",
    "encode_quoted_printable",
]

INVALID_QP_ESCAPE = "InvalidQuotedPrintableEscape"  # '=' not followed by two hex digits or a line break

_EOLS = (b"\r\n", b"\n")


def _check_eol(eol: bytes) -> None:
    if eol not in _EOLS:
        raise UsageError(f"the line ending must be CRLF or LF, not {eol!r}")


# --------------------------------------------------------------------------------------------- decoder

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
    if _QP_IRREGULAR.search(data) is None:  # the usual case: every '=' is an escape or a soft break
        return binascii.a2b_qp(data), ()
    decoder = QuotedPrintableDecoder()
    out = decoder.feed(data)
    tail = decoder.close()
    return (out + tail if tail else out), decoder.defects


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


# --------------------------------------------------------------------------------------------- encoder

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
