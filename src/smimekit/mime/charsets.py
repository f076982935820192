"""MIME charset names, and text decoding that never fails.

Mail labels text with names that Python does not know (``ks_c_5601-1987``, ``iso-8859-8-i``) or with a
name whose real content is a superset (``gb2312`` text is usually GBK, ``shift_jis`` is Windows-31J). For
decoding, :func:`lookup_codec` maps such labels to the superset codec, as mail clients do; for encoding,
:func:`encode_text` uses the strict codec of the label so that the bytes sent match what they claim.
"""

from __future__ import annotations

import codecs
import functools

from smimekit.errors import MimeBuildError

__all__ = ["UNDECODABLE_BYTES", "UNKNOWN_CHARSET", "decode_text", "encode_text", "lookup_codec"]

UNKNOWN_CHARSET = "UnknownCharset"  # the label names no charset we know; the text was guessed
UNDECODABLE_BYTES = "UndecodableBytes"  # bytes invalid in the declared charset; the text was guessed

# Labels mail uses that Python does not know, knows differently, or that mean "no idea" (None).
# Keys are normalised: lower case, '_' as '-'.
_ALIASES: dict[str, str | None] = {
    "utf8": "utf-8",
    "unicode-1-1-utf-8": "utf-8",
    "x-unknown": None,
    "unknown": None,
    "unknown-8bit": None,
    "x-user-defined": None,
    "us-ascii": "ascii",
    "ascii": "ascii",
    "ansi-x3.4-1968": "ascii",
    "iso-8859-8-i": "iso8859-8",
    "iso-8859-8-e": "iso8859-8",
    "iso-8859-6-i": "iso8859-6",
    "iso-8859-6-e": "iso8859-6",
    "ks-c-5601-1987": "cp949",
    "ks-c-5601-1989": "cp949",
    "ksc5601": "cp949",
    "ksc-5601": "cp949",
    "euc-kr": "cp949",
    "windows-949": "cp949",
    "x-windows-949": "cp949",
    "gb2312": "gb18030",
    "csgb2312": "gb18030",
    "euc-cn": "gb18030",
    "x-euc-cn": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "windows-936": "gb18030",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "ms-kanji": "cp932",
    "csshiftjis": "cp932",
    "windows-31j": "cp932",
    "iso-2022-jp": "iso2022_jp_ext",  # JIS X 0201 katakana (ESC ( I) is common in Japanese mail
    "csiso2022jp": "iso2022_jp_ext",
    "euc-jp": "euc_jp",
    "x-euc-jp": "euc_jp",
    "big5": "big5",
    "x-x-big5": "big5",
    "cn-big5": "big5",
    "koi8-r": "koi8-r",
    "koi8-u": "koi8-u",
    "windows-874": "cp874",
    "x-mac-roman": "mac-roman",
}
for _n in range(1250, 1259):
    _ALIASES[f"windows-{_n}"] = _ALIASES[f"x-cp{_n}"] = f"cp{_n}"

# Encoding uses the charset the label names, not the superset decoding accepts.
_ENCODE_CODECS: dict[str, str] = {
    "gb2312": "gb2312",
    "csgb2312": "gb2312",
    "euc-cn": "gb2312",
    "gbk": "gbk",
    "x-gbk": "gbk",
    "euc-kr": "euc_kr",
    "shift-jis": "shift_jis",
    "sjis": "shift_jis",
    "csshiftjis": "shift_jis",
    "iso-2022-jp": "iso2022_jp",
    "csiso2022jp": "iso2022_jp",
}

# Codecs Python knows that are no charsets (transforms, escapes, placeholders).
_NOT_CHARSETS = frozenset(
    {"idna", "punycode", "unicode-escape", "raw-unicode-escape", "undefined", "charmap", "mbcs", "oem"}
)

# windows-1252, with latin-1 for its five unassigned bytes: decodes anything.
_CP1252_TABLE = "".join(bytes([b]).decode("cp1252", errors="ignore") or chr(b) for b in range(256))


def _label(charset: str) -> str:
    """Normalise a MIME charset label: trim, unquote, lower case, drop an RFC 2231 language, '_' -> '-'."""
    return charset.strip().strip("\"'").partition("*")[0].strip().lower().replace("_", "-")


@functools.lru_cache(maxsize=256)
def lookup_codec(charset: str | None) -> str | None:
    """Return the Python codec name for a MIME charset label, or None when it names no known charset.

    ``x-unknown``, ``unknown-8bit`` and similar labels give None, as do empty labels and codecs that are
    not charsets (``base64``, ``rot13``, ``idna``...). Never raises.
    """
    if charset is None:
        return None
    label = _label(charset)
    if not label or len(label) > 64:
        return None
    if label in _ALIASES:
        return _ALIASES[label]
    try:
        info = codecs.lookup(label)
    except (LookupError, ValueError):
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in _NOT_CHARSETS:
        return None
    return info.name


def decode_text(data: bytes, charset: str | None) -> tuple[str, tuple[str, ...]]:
    """Decode ``data`` as ``charset`` (None: the us-ascii default of RFC 2045); never raises.

    An unknown charset (``UnknownCharset``) or bytes invalid in it (``UndecodableBytes``) make it fall back
    to UTF-8, then to windows-1252 (latin-1 for its unassigned bytes), and report the defect.
    """
    codec = "ascii" if charset is None or not _label(charset) else lookup_codec(charset)
    if codec is None:
        defect = UNKNOWN_CHARSET
    else:
        exact = _ENCODE_CODECS.get(_label(charset or ""))
        if exact and exact != codec:
            # text we wrote in the exact charset must read back unchanged; the superset is the fallback
            try:
                return data.decode(exact), ()
            except UnicodeDecodeError:
                pass
        try:
            return data.decode(codec), ()
        except UnicodeDecodeError:
            defect = UNDECODABLE_BYTES
    if codec != "utf-8":
        try:
            return data.decode("utf-8"), (defect,)
        except UnicodeDecodeError:
            pass
    return codecs.charmap_decode(data, "strict", _CP1252_TABLE)[0], (defect,)


def encode_text(text: str, charset: str) -> bytes:
    """Encode ``text`` in ``charset`` exactly as labelled.

    Raises MimeBuildError for an unknown charset or for text the charset cannot represent.
    """
    codec = _ENCODE_CODECS.get(_label(charset)) or lookup_codec(charset)
    if codec is None:
        raise MimeBuildError(f"the charset {charset!r} is unknown")
    try:
        return text.encode(codec)
    except UnicodeEncodeError as exc:
        raise MimeBuildError(
            f"the charset {charset!r} cannot encode {text[exc.start : exc.end]!r} at position {exc.start}"
        ) from exc
