"""Header values: RFC 2047 encoded words, folding, and mailbox formatting.

Decoding is lenient like a mail client and reports defects; encoding and folding produce only what
RFC 5322 and RFC 2047 allow, and raise MimeBuildError when they cannot.
"""

from __future__ import annotations

import binascii
import email.utils
import re
from collections.abc import Callable

from smimekit.errors import MimeBuildError, UsageError
from smimekit.mime.charsets import decode_text, encode_text, lookup_codec
from smimekit.mime.transfer import decode_base64, decode_quoted_printable

__all__ = [
    "INVALID_ENCODED_WORD",
    "decode_header_value",
    "encode_header_value",
    "fold_header",
    "format_address",
    "parse_addresses",
]

INVALID_ENCODED_WORD = "InvalidEncodedWord"  # "=?charset?x?text?=" with no charset or an encoding not B/Q

_FOLD = re.compile(r"\r?\n(?=[ \t])")
_ENCODED_WORD = re.compile(r"=\?([^?\s]*)\?([^?\s]*)\?([^?\s]*)\?=")
_WSP_SPLIT = re.compile(r"([ \t]+)")
_SEGMENT = re.compile(r"[ \t]*[^ \t]+")
_HEADER_NAME = re.compile(r"[!-9;-~]+")  # printable ASCII except ':' (RFC 5322 §3.6.8)
_ATEXT = r"A-Za-z0-9!#$%&'*+\-/=?^_`{|}~"
_ATOM = re.compile(f"[{_ATEXT}]+")
_PHRASE_OF_ATOMS = re.compile(f"[{_ATEXT}]+(?: [{_ATEXT}]+)*")
# Q text may hold only these characters literally, so that the word is valid in a phrase too (§5 (3)).
_Q_LITERAL = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")
_Q_TABLE = tuple("_" if b == 32 else chr(b) if b in _Q_LITERAL else f"={b:02X}" for b in range(256))
_MAX_WORD = 75  # RFC 2047 §2: an encoded word is at most 75 characters
_MAX_LINE = 998  # RFC 5322 §2.1.1


# --------------------------------------------------------------------------------------------- decoding


def decode_header_value(raw: bytes | str) -> tuple[str, tuple[str, ...]]:
    """Unfold a header value and decode its RFC 2047 encoded words; never raises.

    Bytes are read as UTF-8 (RFC 6532), else as windows-1252 with a defect. One final line ending is
    dropped. Encoded words separated only by white space are joined without it; adjacent words in the same
    charset are decoded together, so a character split between them survives. Returns the text and the
    sorted defect names.
    """
    defects: set[str] = set()
    if isinstance(raw, bytes):
        if raw.isascii():
            text = raw.decode("ascii")
        else:
            text, found = decode_text(raw, "utf-8")
            defects.update(found)
    else:
        text = raw
    if "\n" in text:
        text = text[:-2] if text.endswith("\r\n") else text[:-1] if text.endswith("\n") else text
        text = _FOLD.sub("", text)
    if "=?" in text:
        text = _decode_words(text, defects)
    return text, tuple(sorted(defects))


def _decode_words(text: str, defects: set[str]) -> str:
    pieces: list[str] = []
    run_key = ""  # codec (or label) of the run of adjacent encoded words being collected
    run_label = ""
    run: list[bytes] = []
    pos = 0
    after_word = False

    def flush() -> None:
        if run:
            decoded, found = decode_text(b"".join(run), run_label)
            defects.update(found)
            pieces.append(decoded)
            run.clear()

    for match in _ENCODED_WORD.finditer(text):
        between = text[pos : match.start()]
        pos = match.end()
        word = _decode_word(match, defects)
        if word is None:
            flush()
            pieces.append(between + match.group())
            after_word = False
            continue
        label, data = word
        key = lookup_codec(label) or label.lower()
        if not (after_word and between.strip(" \t") == ""):
            flush()
            pieces.append(between)
        elif key != run_key:
            flush()
        run_key, run_label = key, label
        run.append(data)
        after_word = True
    flush()
    pieces.append(text[pos:])
    return "".join(pieces)


def _decode_word(match: re.Match[str], defects: set[str]) -> tuple[str, bytes] | None:
    """Return (charset label, bytes) of an encoded word, or None (with a defect) if it is malformed."""
    label = match.group(1).partition("*")[0]  # RFC 2231 §5: "charset*language"
    encoding = match.group(2).upper()
    payload = match.group(3)
    if not label or encoding not in ("B", "Q") or not payload.isascii():
        defects.add(INVALID_ENCODED_WORD)
        return None
    if encoding == "B":
        data, found = decode_base64(payload.encode("ascii"))
    else:
        data, found = decode_quoted_printable(payload.encode("ascii").replace(b"_", b" "))
    defects.update(found)
    return label, data


# --------------------------------------------------------------------------------------------- encoding


def encode_header_value(text: str, *, charset: str = "utf-8") -> str:
    """Return ``text`` ready for an unstructured header: ASCII unchanged, other words as encoded words.

    Only words with non-ASCII characters (or that would read as an encoded word) are encoded; adjacent
    ones share encoded words, which are at most 75 characters and never split a character. Q is used when
    most bytes are ASCII, B otherwise and for ISO-2022 charsets. Raises MimeBuildError for an unknown
    charset or text the charset cannot encode.
    """
    if text.isascii() and "=?" not in text:
        return text
    return _encode_words(text, charset, lambda word: not word.isascii() or "=?" in word)


def _encode_words(text: str, charset: str, needs_encoding: Callable[[str], bool]) -> str:
    """Encode each maximal run of words that need it (with the white space inside the run)."""
    tokens = _WSP_SPLIT.split(text)  # words at even indexes, white space at odd ones
    out: list[str] = []
    i = 0
    while i < len(tokens):
        if tokens[i] and needs_encoding(tokens[i]):
            j = i
            while j + 2 < len(tokens) and tokens[j + 2] and needs_encoding(tokens[j + 2]):
                j += 2
            out.append(" ".join(_encoded_words("".join(tokens[i : j + 1]), charset)))
            i = j
        else:
            out.append(tokens[i])
        if i + 1 < len(tokens):
            out.append(tokens[i + 1])
        i += 2
    return "".join(out)


def _encoded_words(text: str, charset: str) -> list[str]:
    """Split ``text`` into as few encoded words of at most 75 characters as possible."""
    data = encode_text(text, charset)
    codec = lookup_codec(charset) or ""
    escaped = sum(len(_Q_TABLE[b]) > 1 for b in data)
    use_b = codec.startswith("iso2022") or escaped * 2 > len(data)  # Q while mostly ASCII
    label = charset.strip()
    prefix = f"=?{label}?{'B' if use_b else 'Q'}?"
    room = _MAX_WORD - len(prefix) - 2

    def encoded(part: str) -> str:
        raw = encode_text(part, charset)
        if use_b:
            return binascii.b2a_base64(raw, newline=False).decode("ascii")
        return "".join(_Q_TABLE[b] for b in raw)

    words: list[str] = []
    start = 0
    while start < len(text):
        # The longest prefix that fits: each character takes at least one encoded character.
        low, high = start + 1, min(len(text), start + room)
        if len(encoded(text[start:low])) > room:
            raise MimeBuildError(
                f"the charset name {charset!r} leaves no room in a 75-character encoded word"
            )
        while low < high:
            mid = (low + high + 1) // 2
            if len(encoded(text[start:mid])) <= room:
                low = mid
            else:
                high = mid - 1
        words.append(f"{prefix}{encoded(text[start:low])}?=")
        start = low
    return words


# --------------------------------------------------------------------------------------------- folding


def fold_header(
    name: str, value: str, *, eol: bytes = b"\r\n", max_line: int = 78, utf8: bool = False
) -> bytes:
    """Return ``b"Name: value" + eol``, folded before white space so lines stay within ``max_line``.

    Continuation lines start with the white space they were folded at (one space for single-spaced text);
    a token longer than ``max_line`` stays whole. A non-ASCII value is first encoded with
    :func:`encode_header_value`, unless ``utf8`` (RFC 6532, for SMTPUTF8) keeps it as UTF-8. Raises
    MimeBuildError for an invalid name, a value with CR, LF or NUL, or a line that would exceed 998 octets,
    and UsageError for an eol other than CRLF/LF.
    """
    if not _HEADER_NAME.fullmatch(name):
        raise MimeBuildError(f"{name!r} is not a valid header field name")
    if "\r" in value or "\n" in value or "\0" in value:
        raise MimeBuildError(f"the value of the header {name} contains CR, LF or NUL")
    if eol not in (b"\r\n", b"\n"):
        raise UsageError(f"the line ending must be CRLF or LF, not {eol!r}")
    if not utf8 and not value.isascii():
        value = encode_header_value(value)
    segments = _SEGMENT.findall(value)
    trailing = value[len(value.rstrip(" \t")) :]
    if segments:
        segments[-1] += trailing
    elif trailing:
        segments = [trailing]
    lines: list[str] = []
    line = f"{name}: "
    width = len(line)
    for index, segment in enumerate(segments):
        size = len(segment.encode("utf-8")) if utf8 else len(segment)
        if index and width + size > max_line:
            lines.append(line)
            line, width = segment, size
        else:
            line, width = line + segment, width + size
        if width > _MAX_LINE:
            raise MimeBuildError(f"the header {name} has a token too long to fold within 998 octets")
    lines.append(line)
    newline = eol.decode("ascii")
    return (newline.join(lines) + newline).encode("utf-8" if utf8 else "ascii")


# --------------------------------------------------------------------------------------------- addresses


def format_address(display_name: str, address: str) -> str:
    """Return an RFC 5322 mailbox: ``Name <address>``, or the bare address without a name.

    An ASCII name is kept as atoms or quoted; a non-ASCII name becomes encoded words (RFC 2047 §5 (3)).
    A non-ASCII address is kept as UTF-8 (RFC 6532); fold such a header with ``utf8=True``, which leaves
    it alone. Raises MimeBuildError for an empty address or one with CR, LF, NUL, '<' or '>', and for a
    name with CR, LF or NUL.
    """
    if not address or any(c in address for c in "\r\n\0<>"):
        raise MimeBuildError(f"{address!r} is not a valid address")
    if any(c in display_name for c in "\r\n\0"):
        raise MimeBuildError(f"the display name {display_name!r} contains CR, LF or NUL")
    if not display_name:
        return address
    if not display_name.isascii() or "=?" in display_name:
        phrase = _encode_words(display_name, "utf-8", lambda w: not _ATOM.fullmatch(w) or "=?" in w)
    elif _PHRASE_OF_ATOMS.fullmatch(display_name):
        phrase = display_name
    else:
        phrase = '"' + display_name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{phrase} <{address}>"


def parse_addresses(value: str) -> list[tuple[str, str]]:
    """Parse an address-list header value into (display name, address) pairs with decoded names.

    The value is split before names are decoded, so a comma inside an encoded word does not split it.
    Malformed parts are skipped; never raises.
    """
    pairs = email.utils.getaddresses([_FOLD.sub("", value)])
    result: list[tuple[str, str]] = []
    for name, address in pairs:
        if not name and not address:
            continue
        result.append((decode_header_value(name)[0] if "=?" in name else name, address))
    return result
