"""The immutable parts of a message to build — :class:`TextPart`, :class:`BinaryPart`, :class:`Multipart`,
:class:`MessagePart` — and :func:`render` / :func:`build`, which turn a tree of them into bytes or a parsed
message. Every constructor checks its arguments at once and raises MimeBuildError."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass

from ._buildcheck import (
    _BOUNDARY,
    _PART_FIELDS,
    _check_bytes,
    _check_content_id,
    _check_cte,
    _check_eol,
    _check_fields,
    _check_filename,
    _check_seq,
    _check_str,
    _check_token,
    _fail,
    _media_type,
    _set,
    mime_charset,
)
from .charsets import encode_text
from .entity import Entity, Message
from .params import format_params
from .rfc2047 import fold_header
from .transfer import choose_transfer_encoding, encode_base64, encode_quoted_printable

__all__ = ["BinaryPart", "MessagePart", "Multipart", "Part", "TextPart", "build", "render"]


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
