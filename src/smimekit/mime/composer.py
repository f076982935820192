"""Everyday mail: :func:`compose` builds a whole message (addresses, subject, date, Message-ID, text and
HTML bodies, attachments and inline images) from keyword arguments, checking each at once; files to attach
are :class:`Attachment` values."""

from __future__ import annotations

import email.utils
import mimetypes
import os
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..errors import MimeBuildError, UsageError
from ._buildcheck import (
    _CONTROL,
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
from .entity import Message
from .parts import BinaryPart, Multipart, Part, TextPart, _entity
from .rfc2047 import decode_header_value, encode_header_value, fold_header, format_address

__all__ = ["Attachment", "compose"]

_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+")
_U = "\u00a0-\ud7ff\ue000-\U0010ffff"  # non-ASCII, no C1 controls, no surrogates (RFC 6532)
_DOT_ATOM = rf"[A-Za-z0-9!#$%&'*+\-/=?^_`{{|}}~{_U}]+(?:\.[A-Za-z0-9!#$%&'*+\-/=?^_`{{|}}~{_U}]+)*"
_ADDRESS = re.compile(
    rf'(?:{_DOT_ATOM}|"(?:[^"\\\x00-\x1f\x7f]|\\[ -~])*")'
    rf"@(?:[A-Za-z0-9{_U}](?:[A-Za-z0-9\-{_U}]*[A-Za-z0-9{_U}])?"
    rf"(?:\.[A-Za-z0-9{_U}](?:[A-Za-z0-9\-{_U}]*[A-Za-z0-9{_U}])?)*|\[[!-Z^-~]*\])"
)
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
