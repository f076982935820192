"""Why a signed content is not intact: try the usual damage done in transit and see which one explains it.

A diagnosis only names a likely cause; the signature stays invalid whatever it finds. Each variant is
computed from the bytes as received: line endings converted, white space at line ends, quoted-printable or
base64 bodies re-encoded with standard 76-column lines, folded header fields unfolded.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from smimekit import mime
from smimekit.mime.transfer import encode_base64, encode_quoted_printable

__all__ = ["DIAGNOSIS_LIMIT", "diagnose"]

#: Content larger than this is not diagnosed (every variant is a copy of it in memory).
DIAGNOSIS_LIMIT = 16 << 20

_BARE_LF = re.compile(rb"(?<!\r)\n")
_TRAILING_WS = re.compile(rb"[ \t]+(?=\r?\n|\Z)")
_FOLD = re.compile(rb"\r?\n(?=[ \t])")
_LEAVES_MAX = 1000


def _to_crlf(data: bytes) -> bytes:
    return _BARE_LF.sub(b"\r\n", data)


def _to_lf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n")


def _strip_trailing(data: bytes) -> bytes:
    return _TRAILING_WS.sub(b"", data)


def _reencoded(data: bytes, cte: str) -> bytes:
    """``data`` with every leaf body in transfer encoding ``cte`` decoded and encoded again the standard way."""
    root = mime.parse(data)
    eol = b"\n" if b"\r\n" not in data else b"\r\n"
    out: list[bytes] = []
    pos = 0
    for n, entity in enumerate(e for e in root.walk() if not e.children):
        if n > _LEAVES_MAX:
            break
        if entity.transfer_encoding != cte:
            continue
        start, end = entity.body_span
        raw = data[start:end]
        decoded = entity.decoded()
        if cte == "base64":
            encoded = encode_base64(decoded, eol=eol)
        else:
            encoded = encode_quoted_printable(decoded, eol=eol, text=entity.maintype == "text")
        body = raw.rstrip(b"\r\n")
        out += [data[pos:start], encoded.rstrip(b"\r\n"), raw[len(body) :]]
        pos = end
    out.append(data[pos:])
    return b"".join(out)


def _unfolded(data: bytes) -> bytes:
    """``data`` with the continuation lines of every header block joined to the line before."""
    root = mime.parse(data)
    out: list[bytes] = []
    pos = 0
    for entity in root.walk():
        start, body = entity.span[0], entity.body_span[0]
        out += [data[pos:start], _FOLD.sub(b"", data[start:body])]
        pos = body
    out.append(data[pos:])
    return b"".join(out)


_Variant = tuple[str, Callable[[bytes], bytes]]
_VARIANTS: tuple[_Variant, ...] = (
    ("quoted-printable text re-encoded or re-wrapped", lambda d: _reencoded(d, "quoted-printable")),
    ("base64 re-wrapped", lambda d: _reencoded(d, "base64")),
    ("header fields re-folded", _unfolded),
    ("white space added at the ends of lines", _strip_trailing),
)


def _candidates(received: bytes) -> Iterator[tuple[str, bytes]]:
    has_bare_lf = _BARE_LF.search(received) is not None
    has_crlf = b"\r\n" in received
    if has_bare_lf:
        yield "line endings converted from CRLF to LF", _to_crlf(received)
    if has_crlf:
        yield "line endings converted from LF to CRLF", _to_lf(received)
    bases = [("", received)]
    if has_bare_lf:
        bases.append(("line endings converted from CRLF to LF and ", _to_crlf(received)))
    for prefix, base in bases:
        for what, transform in _VARIANTS:
            yield prefix + what, transform(base)


def diagnose(received: bytes, matches: Callable[[bytes], bool]) -> str | None:
    """The first kind of transit damage whose undoing makes ``matches`` true for the content, as the
    sentence "the content was altered in transit by ...", or None when none explains it."""
    if len(received) > DIAGNOSIS_LIMIT:
        return None
    tried = {received}
    for what, candidate in _candidates(received):
        if candidate in tried:
            continue
        tried.add(candidate)
        if matches(candidate):
            return f"the content was altered in transit by {what}"
    return None
