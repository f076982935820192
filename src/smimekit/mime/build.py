"""Building messages: a tree of immutable parts rendered to bytes, and :func:`compose` for everyday mail.

:func:`build` renders a tree of :class:`TextPart`, :class:`BinaryPart`, :class:`Multipart` and
:class:`MessagePart` and parses the result, so a built message is a parsed message like any other and
re-emits its bytes exactly. Every constructor checks its arguments at once and raises
:class:`~smimekit.errors.MimeBuildError` with a sentence saying what is wrong.
"""

from __future__ import annotations

import codecs
import email.utils
import mimetypes
import os
import re
import secrets
from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn

from ..errors import MimeBuildError, UsageError
from .charsets import encode_text, lookup_codec
from .entity import Entity, Message
from .params import format_params, parse_param_header
from .rfc2047 import decode_header_value, encode_header_value, fold_header, format_address
from .transfer import choose_transfer_encoding, encode_base64, encode_quoted_printable

__all__ = [
    "Attachment",
    "BinaryPart",
    "MessagePart",
    "Multipart",
    "Part",
    "TextPart",
    "build",
    "compose",
    "mime_charset",
    "render",
]

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
_CONTENT_ID = re.compile(r"[!-;=?-~]+")  # printable ASCII but '<' and '>'
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\ud800-\udfff]")  # and surrogates, which UTF-8 cannot hold
_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+")
_U = "\u00a0-\ud7ff\ue000-\U0010ffff"  # non-ASCII, no C1 controls, no surrogates (RFC 6532)
_DOT_ATOM = rf"[A-Za-z0-9!#$%&'*+\-/=?^_`{{|}}~{_U}]+(?:\.[A-Za-z0-9!#$%&'*+\-/=?^_`{{|}}~{_U}]+)*"
_ADDRESS = re.compile(
    rf'(?:{_DOT_ATOM}|"(?:[^"\\\x00-\x1f\x7f]|\\[ -~])*")'
    rf"@(?:[A-Za-z0-9{_U}](?:[A-Za-z0-9\-{_U}]*[A-Za-z0-9{_U}])?"
    rf"(?:\.[A-Za-z0-9{_U}](?:[A-Za-z0-9\-{_U}]*[A-Za-z0-9{_U}])?)*|\[[!-Z^-~]*\])"
)
_CTES = ("7bit", "8bit", "binary", "quoted-printable", "base64")
_PART_FIELDS = frozenset({"content-type", "content-transfer-encoding", "content-disposition", "content-id"})
_COMPOSE_FIELDS = _PART_FIELDS | {
    "from",
    "to",
    "cc",
    "reply-to",
    "subject",
    "date",
    "message-id",
    "mime-version",
}
_MIMETYPES = mimetypes.MimeTypes()  # the built-in table only: the same guesses on every machine
_COMPRESSED = {"gzip": "application/gzip", "bzip2": "application/x-bzip2", "xz": "application/x-xz"}
_MIME_NAMES = {
    "ascii": "us-ascii",
    "cp932": "windows-31j",
    "mac-roman": "macintosh",
    "shift_jis": "shift_jis",
}


# --------------------------------------------------------------------------------------------- checks


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


# --------------------------------------------------------------------------------------------- parts


@dataclass(frozen=True)
class _Leaf:
    """What every leaf may carry besides its content."""

    _: KW_ONLY
    disposition: str | None = None
    filename: str | None = None
    content_id: str | None = None
    headers: Sequence[tuple[str, str]] = ()

    def _check_leaf(self) -> None:
        disposition = self.disposition
        _set(
            self,
            disposition=None if disposition is None else _check_token(disposition, "disposition"),
            filename=_check_filename(self.filename),
            content_id=_check_content_id(self.content_id),
            headers=_check_fields(self.headers, "headers", _PART_FIELDS),
        )

    def _fields(self, ctype: str, params: Sequence[tuple[str, str]], cte: str) -> list[tuple[str, str]]:
        name = self.filename
        named = [*params, ("name", name)] if name is not None else list(params)
        fields = [("Content-Type", format_params(ctype, named)), ("Content-Transfer-Encoding", cte)]
        if self.disposition is not None or name is not None:
            disp = format_params(self.disposition or "attachment", [("filename", name)] if name else [])
            fields.append(("Content-Disposition", disp))
        if self.content_id is not None:
            fields.append(("Content-ID", f"<{self.content_id}>"))
        return fields + list(self.headers)


@dataclass(frozen=True)
class TextPart(_Leaf):
    """A ``text/<subtype>`` leaf: ``text`` encoded in ``charset`` with its line breaks made the message's.

    The transfer encoding is chosen for the encoded text (7bit, quoted-printable or base64; 8bit only with
    ``allow_8bit``) unless given. Raises MimeBuildError for an unknown charset, text it cannot encode, or
    a transfer encoding that cannot carry the text.
    """

    text: str
    _: KW_ONLY
    subtype: str = "plain"
    charset: str = "utf-8"
    transfer_encoding: str | None = None
    allow_8bit: bool = False

    def __post_init__(self) -> None:
        _check_str(self.text, "text")
        self._check_leaf()
        cte = _check_cte(self.transfer_encoding, bool(self.allow_8bit))
        subtype = _check_token(self.subtype, "subtype")
        _set(self, subtype=subtype, charset=mime_charset(self.charset), transfer_encoding=cte)
        self._content(b"\r\n")  # raises now rather than when rendered

    def render(self, eol: bytes) -> tuple[list[tuple[str, str]], bytes]:
        """(header fields, body) of this part for line ending ``eol``."""
        cte, data = self._content(eol)
        fields = self._fields(f"text/{self.subtype}", [("charset", self.charset)], cte)
        return fields, _encode_body(data, cte, eol, text=True)

    def _content(self, eol: bytes) -> tuple[str, bytes]:
        lines = self.text.replace("\r\n", "\n").replace("\r", "\n")
        data = encode_text(lines.replace("\n", eol.decode("ascii")), self.charset)
        best = choose_transfer_encoding(data, text=True, allow_8bit=self.allow_8bit)
        cte = self.transfer_encoding or best
        _check_fits(cte, best, f"the text in {self.charset}")
        if cte == "base64" and eol != b"\r\n":  # RFC 2045 §6.8: text lines end in CRLF before base64
            data = encode_text(lines.replace("\n", "\r\n"), self.charset)
        return cte, data


@dataclass(frozen=True)
class BinaryPart(_Leaf):
    """A leaf holding ``data`` exactly as given; ``content_type`` may carry parameters.

    The transfer encoding keeps the bytes exact: 7bit when they already are, else base64 (8bit or binary
    only with ``allow_8bit``) unless given. Raises MimeBuildError for a bad media type, filename, Content-ID
    or a transfer encoding that cannot carry the data.
    """

    data: bytes
    content_type: str
    _: KW_ONLY
    params: Sequence[tuple[str, str]] = ()
    charset: str | None = None
    transfer_encoding: str | None = None
    allow_8bit: bool = False

    def __post_init__(self) -> None:
        self._check_leaf()
        ctype, params = _media_type(self.content_type, "content_type")
        params += _check_fields(self.params, "params", frozenset())
        charset = None if self.charset is None else mime_charset(self.charset)
        params += (("charset", charset),) if charset else ()
        cte = _check_cte(self.transfer_encoding, bool(self.allow_8bit))
        data = _check_bytes(self.data, "data")
        _set(self, data=data, content_type=ctype, params=params, charset=charset, transfer_encoding=cte)
        self._cte()

    def render(self, eol: bytes) -> tuple[list[tuple[str, str]], bytes]:
        """(header fields, body) of this part for line ending ``eol``."""
        cte = self._cte()
        body = _encode_body(self.data, cte, eol, text=False)
        return self._fields(self.content_type, self.params, cte), body

    def _cte(self) -> str:
        best = choose_transfer_encoding(self.data, text=False, allow_8bit=self.allow_8bit)
        cte = self.transfer_encoding or best
        _check_fits(cte, best, f"the data of this {self.content_type} part")
        return cte


@dataclass(frozen=True, init=False)
class MessagePart(_Leaf):
    """A ``message/rfc822`` part holding a whole message (bytes, or a parsed entity's bytes).

    Its line endings become the enclosing message's unless it holds binary data. Raises MimeBuildError
    when it holds 8-bit or binary data without ``allow_8bit``.
    """

    message: bytes
    allow_8bit: bool

    def __init__(
        self,
        message: bytes | Entity,
        *,
        allow_8bit: bool = False,
        disposition: str | None = None,
        filename: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        data = message.to_bytes() if isinstance(message, Entity) else _check_bytes(message, "message")
        _set(self, message=data, allow_8bit=bool(allow_8bit), disposition=disposition, filename=filename)
        _set(self, content_id=None, headers=headers)
        self._check_leaf()
        self.render(b"\r\n")

    def render(self, eol: bytes) -> tuple[list[tuple[str, str]], bytes]:
        """(header fields, body) of this part for line ending ``eol``."""
        data = self.message
        if b"\0" not in data and data.count(b"\r") == data.count(b"\r\n"):
            data = data.replace(b"\r\n", b"\n").replace(b"\n", eol)
        cte = choose_transfer_encoding(
            data, text=True, allow_8bit=self.allow_8bit, allow_binary=self.allow_8bit
        )
        if cte not in ("7bit", "8bit", "binary"):
            _fail("the message holds 8-bit or binary data; pass allow_8bit=True to attach it as it is")
        return self._fields("message/rfc822", (), cte), data


@dataclass(frozen=True)
class Multipart:
    """A ``multipart/<subtype>`` of ``parts`` (at least one).

    The boundary is random unless given; either way it is checked not to occur in the content, preamble
    or epilogue. Raises MimeBuildError for a bad subtype or boundary, no parts, or a part of the wrong type.
    """

    subtype: str
    parts: Sequence[Part]
    _: KW_ONLY
    boundary: str | None = None
    preamble: bytes = b""
    epilogue: bytes = b""
    params: Sequence[tuple[str, str]] = ()
    headers: Sequence[tuple[str, str]] = ()

    def __post_init__(self) -> None:
        parts = tuple(_check_part(p) for p in _check_seq(self.parts, "parts"))
        if not parts:
            _fail("a multipart needs at least one part")
        boundary = self.boundary
        if boundary is not None and not _BOUNDARY.fullmatch(_check_str(boundary, "boundary")):
            _fail(f"{boundary!r} is not a valid boundary (1-70 characters of RFC 2046 bchars)")
        _set(
            self,
            subtype=_check_token(self.subtype, "subtype"),
            parts=parts,
            preamble=_check_bytes(self.preamble, "preamble"),
            epilogue=_check_bytes(self.epilogue, "epilogue"),
            params=_check_fields(self.params, "params", frozenset({"boundary"})),
            headers=_check_fields(self.headers, "headers", _PART_FIELDS),
        )

    def render(self, eol: bytes) -> tuple[list[tuple[str, str]], bytes]:
        """(header fields, body) of this multipart for line ending ``eol``."""
        children = [_entity(*p.render(eol), eol) for p in self.parts]
        boundary = self.boundary or _new_boundary()
        while not self.boundary and self._occurs(boundary, children):
            boundary = _new_boundary()
        if self._occurs(boundary, children):
            _fail(f"the boundary {boundary!r} occurs in the content of the multipart")
        delim = b"--" + boundary.encode("ascii")
        pieces = [self.preamble, _eol_before(self.preamble, eol)] if self.preamble else []
        for child in children:
            pieces += [delim, eol, child, _eol_before(child, eol)]
        body = b"".join([*pieces, delim, b"--", eol, self.epilogue])
        ctype = format_params(f"multipart/{self.subtype}", [("boundary", boundary), *self.params])
        return [("Content-Type", ctype), *self.headers], body

    def _occurs(self, boundary: str, children: list[bytes]) -> bool:
        b = boundary.encode("ascii")
        return any(b in c for c in children) or b in self.preamble or b in self.epilogue


Part = TextPart | BinaryPart | Multipart | MessagePart


def _check_part(part: object) -> Part:
    if not isinstance(part, TextPart | BinaryPart | Multipart | MessagePart):
        _fail(f"a body or a multipart holds TextPart, BinaryPart, Multipart or MessagePart, not {part!r}")
    return part


def _check_fits(cte: str, best: str, what: str) -> None:
    if (cte == "7bit" and best != "7bit") or (cte == "8bit" and best not in ("7bit", "8bit")):
        _fail(f"{what} cannot be sent as {cte}: use {best} instead")


def _encode_body(data: bytes, cte: str, eol: bytes, *, text: bool) -> bytes:
    if cte == "base64":
        return encode_base64(data, eol=eol)
    if cte == "quoted-printable":
        return encode_quoted_printable(data, eol=eol, text=text)
    return data


def _eol_before(data: bytes, eol: bytes) -> bytes:
    # data ending in CR keeps it only if a CRLF, not a lone LF, comes before the delimiter
    return b"\r\n" if data.endswith(b"\r") else eol


def _new_boundary() -> str:
    # "=_" cannot occur in base64 or quoted-printable text, so a clash needs 7bit or 8bit content
    return "=_" + secrets.token_hex(16)


def _entity(fields: list[tuple[str, str]], body: bytes, eol: bytes, head: Sequence[bytes] = ()) -> bytes:
    return b"".join([*head, *(fold_header(n, v, eol=eol) for n, v in fields), eol, body])


# --------------------------------------------------------------------------------------------- rendering


def render(body: Part, *, headers: Sequence[tuple[str, str]] = (), eol: bytes = b"\r\n") -> bytes:
    """The message bytes: ``headers`` (non-ASCII values as RFC 2047 encoded words), ``MIME-Version: 1.0``
    unless given, then ``body``. Raises MimeBuildError for bad headers or Content-* fields in ``headers``."""
    eol = _check_eol(eol)
    fields = _check_fields(headers, "headers", _PART_FIELDS)
    head = [fold_header(name, value, eol=eol) for name, value in fields]
    if not any(name.lower() == "mime-version" for name, _ in fields):
        head.append(b"MIME-Version: 1.0" + eol)
    return _entity(*_check_part(body).render(eol), eol, head)


def build(body: Part, *, headers: Sequence[tuple[str, str]] = (), eol: bytes = b"\r\n") -> Message:
    """:func:`render` the message and parse it: a normal parsed :class:`Message`."""
    from . import parse

    return parse(render(body, headers=headers, eol=eol))


# --------------------------------------------------------------------------------------------- compose


@dataclass(frozen=True, init=False)
class Attachment:
    """A file to attach: ``data`` under ``filename``, its media type guessed from the name when not given.

    Raises MimeBuildError for bad data, filename, media type, Content-ID or transfer encoding.
    """

    data: bytes
    filename: str
    content_type: str
    disposition: str
    content_id: str | None
    transfer_encoding: str | None
    charset: str | None

    def __init__(
        self,
        data: bytes,
        filename: str,
        content_type: str | None = None,
        *,
        disposition: str = "attachment",
        content_id: str | None = None,
        transfer_encoding: str | None = None,
        charset: str | None = None,
    ) -> None:
        name = _check_filename(filename)
        if name is None:
            _fail("an attachment needs a filename")
        if content_type is None:
            guess, packed = _MIMETYPES.guess_type(name, strict=False)
            content_type = _COMPRESSED.get(packed, "application/octet-stream") if packed else guess
        ctype = content_type or "application/octet-stream"
        _media_type(ctype, "content_type")
        _set(
            self,
            data=_check_bytes(data, "data"),
            filename=name,
            content_type=ctype,
            disposition=_check_token(disposition, "disposition"),
            content_id=_check_content_id(content_id),
            transfer_encoding=_check_cte(transfer_encoding, True),
            charset=None if charset is None else mime_charset(charset),
        )

    @classmethod
    def from_path(cls, path: str | os.PathLike[str], **options: Any) -> Attachment:
        """The file at ``path`` (its base name as filename unless given). Raises UsageError if unreadable."""
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise UsageError(f"cannot read the attachment {os.fsdecode(path)}: {exc.strerror}") from exc
        options.setdefault("filename", os.path.basename(os.fsdecode(path)))
        return cls(data, **options)

    def part(self, *, allow_8bit: bool = False, disposition: str | None = None) -> BinaryPart:
        """This attachment as a :class:`BinaryPart`."""
        return BinaryPart(
            self.data,
            self.content_type,
            charset=self.charset,
            filename=self.filename,
            disposition=disposition or self.disposition,
            content_id=self.content_id,
            transfer_encoding=self.transfer_encoding,
            allow_8bit=allow_8bit,
        )


def _mailbox(value: object, what: str, charset: str) -> tuple[str, str]:
    """(formatted mailbox, address) of ``Name <addr>`` or ``addr``, the name encoded in ``charset``."""
    text = _check_str(value, what).strip()
    name, addr = "", text
    if text.endswith(">") and "<" in text:
        lt = text.rindex("<")
        name, addr = text[:lt].strip(), text[lt + 1 : -1].strip()
        if len(name) >= 2 and name[0] == name[-1] == '"':
            name = re.sub(r"\\(.)", r"\1", name[1:-1])
    if not _ADDRESS.fullmatch(addr) or any(c.isspace() for c in addr):
        _fail(f"{text!r} in {what} is not a valid e-mail address")
    if _CONTROL.search(name):
        _fail(f"the display name in {text!r} contains control characters")
    plain = format_address(name, addr)
    if name.isascii() or not all(_ATOM.fullmatch(w) for w in re.split(r"[ \t]+", name) if w.isascii()):
        return plain, addr  # format_address quotes or encodes (in UTF-8) what a phrase cannot hold
    phrase = _in_charset(name, charset)
    return (plain if phrase is None else f"{phrase} <{addr}>"), addr


def _in_charset(value: str, charset: str) -> str | None:
    """``value`` as RFC 2047 encoded words in ``charset``, if it can say it and readers get it back."""
    try:
        encoded = encode_header_value(value, charset=charset)
    except MimeBuildError:
        return None
    return encoded if decode_header_value(encoded)[0] == value else None


def _unstructured(value: str, charset: str) -> str:
    """``value`` for an unstructured field: encoded words in ``charset`` where it can, else UTF-8."""
    return _in_charset(value, charset) or encode_header_value(value, charset="utf-8")


def _message_id(value: str | None, address: str) -> str:
    if value is None:
        domain = address.rpartition("@")[2]
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            domain = "smimekit.invalid"
        return f"<{secrets.token_hex(16)}@{domain}>"
    mid = _check_str(value, "message_id").strip()
    mid = mid[1:-1] if mid.startswith("<") and mid.endswith(">") else mid
    if not re.fullmatch(r"[!-;=?-~]+@[!-;=?-~]+", mid):
        _fail(f"{value!r} is not a valid Message-ID such as '<unique@example.org>'")
    return f"<{mid}>"


def _attachments(values: object, what: str, allow_8bit: bool, disposition: str | None = None) -> list[Part]:
    out: list[Part] = []
    for value in _check_seq(values, what):
        if not isinstance(value, Attachment):
            _fail(f"{what} must hold Attachment objects, not {type(value).__name__}")
        if disposition == "inline" and value.content_id is None:
            _fail("every inline attachment needs a content_id for the HTML to refer to")
        out.append(value.part(allow_8bit=allow_8bit, disposition=disposition))
    return out


def compose(
    *,
    from_: str,
    to: Sequence[str] = (),
    cc: Sequence[str] = (),
    reply_to: str | Sequence[str] | None = None,
    subject: str = "",
    text: str | None = None,
    html: str | None = None,
    attachments: Sequence[Attachment] = (),
    inline: Sequence[Attachment] = (),
    charset: str = "utf-8",
    text_transfer_encoding: str | None = None,
    allow_8bit: bool = False,
    headers: Sequence[tuple[str, str]] = (),
    message_id: str | None = None,
    date: datetime | None = None,
    boundary: str | None = None,
    eol: bytes = b"\r\n",
) -> Message:
    """Compose a message and return it parsed.

    The body is text/plain, text/html, or multipart/alternative of both; ``inline`` images (each with a
    ``content_id`` the HTML refers to as ``cid:``) make the HTML a multipart/related; ``attachments``
    wrap all in multipart/mixed. Text is encoded in ``charset``; subjects, display names and non-ASCII
    ``headers`` values are RFC 2047 encoded in it where it can, else in UTF-8; non-ASCII addresses are
    written as UTF-8 (RFC 6532). ``date=None`` means the current time (UTC) and ``message_id=None`` a
    random ``<hex@domain-of-from>``; ``boundary`` (else random) gets a suffix per multipart. Pass all
    three for byte-identical output. Raises MimeBuildError for anything that cannot be composed as asked.
    """
    eol = _check_eol(eol)
    cs = mime_charset(charset)
    tte = _check_cte(text_transfer_encoding, bool(allow_8bit))
    sender, address = _mailbox(from_, "from_", cs)
    fields = [("From", sender)]
    for name, values in (("To", to), ("Cc", cc), ("Reply-To", reply_to)):
        items = (
            (values,) if isinstance(values, str) and name == "Reply-To" else _check_seq(values or (), name)
        )
        if items:
            fields.append((name, ", ".join(_mailbox(v, name, cs)[0] for v in items)))
    subject = _check_str(subject, "subject").strip()  # white space around a subject means nothing
    if _CONTROL.search(subject.replace("\t", " ")):
        _fail("the subject contains control characters")
    if subject:
        fields.append(("Subject", _unstructured(subject, cs)))
    date = datetime.now(UTC) if date is None else date
    if not isinstance(date, datetime) or date.utcoffset() is None:
        _fail("date must be a timezone-aware datetime")
    fields += [("Date", email.utils.format_datetime(date)), ("Message-ID", _message_id(message_id, address))]
    fields += [(n, _unstructured(v, cs)) for n, v in _check_fields(headers, "headers", _COMPOSE_FIELDS)]
    fields.append(("MIME-Version", "1.0"))

    counter = iter(range(1, 10))

    def multipart(subtype: str, parts: list[Part], **kw: Any) -> Multipart:
        tag = None if boundary is None else f"{_check_str(boundary, 'boundary')}-{next(counter)}"
        return Multipart(subtype, parts, boundary=tag, **kw)

    def text_part(body: object, subtype: str) -> TextPart:
        what = "text" if subtype == "plain" else subtype
        return TextPart(
            _check_str(body, what), subtype=subtype, charset=cs, transfer_encoding=tte, allow_8bit=allow_8bit
        )

    images = _attachments(inline, "inline", allow_8bit, "inline")
    if images and html is None:
        _fail("inline attachments need an html body that refers to them")
    files = _attachments(attachments, "attachments", allow_8bit)
    alternatives: list[Part] = [text_part(text, "plain")] if text is not None else []
    if html is not None:
        page = text_part(html, "html")
        related = [("type", "text/html")]
        alternatives.append(multipart("related", [page, *images], params=related) if images else page)
    body: Part = multipart("alternative", alternatives) if len(alternatives) == 2 else text_part("", "plain")
    if len(alternatives) == 1:
        body = alternatives[0]
    if files:
        body = multipart("mixed", [body, *files] if alternatives else files)
    from . import parse

    head = [fold_header(n, v, eol=eol, utf8=not v.isascii()) for n, v in fields]
    return parse(_entity(*body.render(eol), eol, head))
