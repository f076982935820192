"""Argument checks shared by the message builders (:mod:`.parts`, :mod:`.composer`): every one raises
MimeBuildError with a sentence saying what is wrong, at the call that was given the bad value."""

from __future__ import annotations

import codecs
import re
from collections.abc import Sequence
from typing import Any, NoReturn

from ..errors import MimeBuildError
from .charsets import lookup_codec
from .params import parse_param_header
from .rfc2047 import fold_header

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
_CONTENT_ID = re.compile(r"[!-;=?-~]+")  # printable ASCII but '<' and '>'
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\ud800-\udfff]")  # and surrogates, which UTF-8 cannot hold
_CTES = ("7bit", "8bit", "binary", "quoted-printable", "base64")
_PART_FIELDS = frozenset({"content-type", "content-transfer-encoding", "content-disposition", "content-id"})
_MIME_NAMES = {
    "ascii": "us-ascii",
    "cp932": "windows-31j",
    "mac-roman": "macintosh",
    "shift_jis": "shift_jis",
}


def _fail(message: str) -> NoReturn:
    raise MimeBuildError(message)


def _check_str(value: object, what: str) -> str:
    if not isinstance(value, str):
        _fail(f"{what} must be a str, not {type(value).__name__}")
    return value


def _check_bytes(value: object, what: str) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        _fail(f"{what} must be bytes, not {type(value).__name__}")
    return bytes(value)


def _check_seq(values: object, what: str) -> Sequence[object]:
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        _fail(f"{what} must be a sequence (a list or tuple), not {type(values).__name__}")
    return values


def _check_fields(fields: object, what: str, reserved: frozenset[str]) -> tuple[tuple[str, str], ...]:
    out = []
    for item in _check_seq(fields, what):
        if not (isinstance(item, tuple) and len(item) == 2):
            _fail(f"{what} must hold (name, value) pairs, not {item!r}")
        name, value = _check_str(item[0], "a header name"), _check_str(item[1], f"the value of {item[0]}")
        if name.lower() in reserved:
            _fail(f"the header {name} is set from the arguments, not from {what}")
        fold_header(name, value)  # raises for a bad name or CR, LF, NUL in the value
        out.append((name, value))
    return tuple(out)


def _check_cte(cte: object, allow_8bit: bool) -> str | None:
    if cte is None:
        return None
    value = _check_str(cte, "transfer_encoding").strip().lower()
    if value not in _CTES:
        _fail(f"{cte!r} is not a transfer encoding; use one of {', '.join(_CTES)}")
    if value in ("8bit", "binary") and not allow_8bit:
        _fail(f"the transfer encoding {value} needs allow_8bit=True")
    return value


def _check_token(value: object, what: str) -> str:
    text = _check_str(value, what).strip().lower()
    if not _TOKEN.fullmatch(text):
        _fail(f"{value!r} is not a valid {what}")
    return text


def _check_content_id(value: object) -> str | None:
    if value is None:
        return None
    cid = _check_str(value, "content_id").strip()
    cid = cid[1:-1] if cid.startswith("<") and cid.endswith(">") else cid
    if not _CONTENT_ID.fullmatch(cid):
        _fail(f"{value!r} is not a valid Content-ID (printable ASCII without spaces or angle brackets)")
    return cid


def _check_filename(value: object) -> str | None:
    if value is None:
        return None
    name = _check_str(value, "filename")
    if not name or _CONTROL.search(name):
        _fail(f"{value!r} is not a valid filename (empty, or with control characters)")
    return name


def _media_type(value: object, what: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """Split ``type/subtype; name=value`` into the lowercased media type and its parameters."""
    parsed = parse_param_header(_check_str(value, what))
    kind, _, sub = parsed.value.partition("/")
    if not (_TOKEN.fullmatch(kind) and _TOKEN.fullmatch(sub)) or parsed.defects:
        _fail(f"{value!r} is not a valid media type such as 'application/pdf'")
    return parsed.value, tuple(parsed.params.items())


def mime_charset(charset: str) -> str:
    """The canonical MIME name of a charset label (``"latin-1"`` -> ``"iso-8859-1"``).

    Raises MimeBuildError when the label names no charset Python can encode.
    """
    label = _check_str(charset, "charset").strip().strip("\"'").lower()
    if lookup_codec(label) is None:
        _fail(f"the charset {charset!r} is unknown")
    try:
        name = codecs.lookup(label).name
    except LookupError:
        name = lookup_codec(label) or label
    if m := re.fullmatch(r"iso8859-(\d+)", name):
        return f"iso-8859-{m.group(1)}"
    if m := re.fullmatch(r"cp(125\d|874)", name):
        return f"windows-{m.group(1)}"
    if m := re.fullmatch(r"iso2022_(\w+)", name):
        return f"iso-2022-{m.group(1)}".replace("_", "-")
    return _MIME_NAMES.get(name) or name.replace("_", "-")


def _check_eol(eol: object) -> bytes:
    if eol not in (b"\r\n", b"\n"):
        _fail(f"the line ending must be b'\\r\\n' or b'\\n', not {eol!r}")
    return b"\r\n" if eol == b"\r\n" else b"\n"


def _set(obj: object, **values: Any) -> None:
    for name, value in values.items():
        object.__setattr__(obj, name, value)
