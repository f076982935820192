"""The MIME side of S/MIME: which entities are S/MIME, their CMS bytes, and the wrapping of new layers.

Internal to smimekit.smime. Nothing here does cryptography.
"""

from __future__ import annotations

import enum
import io
import secrets
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from smimekit import mime
from smimekit.errors import SmimeFormatError
from smimekit.mime import Entity, Message
from smimekit.mime.params import format_params
from smimekit.mime.rfc2047 import fold_header
from smimekit.mime.transfer import Base64Encoder

CRLF = b"\r\n"
PKCS7_MIME = frozenset({"application/pkcs7-mime", "application/x-pkcs7-mime"})
PKCS7_SIGNATURE = frozenset({"application/pkcs7-signature", "application/x-pkcs7-signature"})
#: Decoded CMS data up to this size is handled in memory; larger goes through a stream.
IN_MEMORY = 8 << 20

OID_SIGNED = "1.2.840.113549.1.7.2"
OID_ENVELOPED = "1.2.840.113549.1.7.3"
OID_AUTH_ENVELOPED = "1.2.840.113549.1.9.16.1.23"
OID_COMPRESSED = "1.2.840.113549.1.9.16.1.9"


class CmsKind(enum.Enum):
    """What an ``application/pkcs7-mime`` body holds; the value is its RFC 8551 ``smime-type``."""

    SIGNED = "signed-data"
    ENVELOPED = "enveloped-data"
    AUTH_ENVELOPED = "authEnveloped-data"
    COMPRESSED = "compressed-data"


_KIND_BY_OID = {
    OID_SIGNED: CmsKind.SIGNED,
    OID_ENVELOPED: CmsKind.ENVELOPED,
    OID_AUTH_ENVELOPED: CmsKind.AUTH_ENVELOPED,
    OID_COMPRESSED: CmsKind.COMPRESSED,
}
_KIND_BY_SMIME_TYPE = {k.value.lower(): k for k in CmsKind}


# --------------------------------------------------------------------------------------------- detection


def _filename_ext(entity: Entity) -> str:
    name = (entity.filename or "").strip().lower()
    return name.rsplit(".", 1)[-1] if "." in name else ""


def is_pkcs7_mime(entity: Entity) -> bool:
    """``application/(x-)pkcs7-mime``, or Outlook's ``application/octet-stream`` named ``*.p7m``/``*.p7z``."""
    ctype = entity.content_type
    if ctype in PKCS7_MIME:
        return True
    return ctype == "application/octet-stream" and _filename_ext(entity) in ("p7m", "p7z")


def is_signature_part(entity: Entity) -> bool:
    """``application/(x-)pkcs7-signature``, or ``application/octet-stream`` named ``*.p7s``."""
    ctype = entity.content_type
    if ctype in PKCS7_SIGNATURE:
        return True
    return ctype == "application/octet-stream" and _filename_ext(entity) == "p7s"


def is_smime_signed_multipart(entity: Entity) -> bool:
    """A ``multipart/signed`` whose protocol (or second part) is a PKCS#7 signature (not PGP/MIME)."""
    if entity.content_type != "multipart/signed":
        return False
    protocol = entity.params.get("protocol", "").strip().lower()
    if protocol in PKCS7_SIGNATURE:
        return True
    parts = entity.parts
    return len(parts) >= 2 and is_signature_part(parts[1])


def cms_kind(entity: Entity) -> CmsKind | None:
    """What the CMS ContentInfo in a pkcs7-mime body is, read from its content type OID (the
    ``smime-type`` parameter is only a hint: the DER decides). None when the body is not CMS."""
    with entity.decoded_stream() as stream:
        head = stream.read(64)
    oid = content_info_oid(head)
    if oid is None:
        hint = entity.params.get("smime-type", "").strip().lower()
        return _KIND_BY_SMIME_TYPE.get(hint) if not head else None
    return _KIND_BY_OID.get(oid)


def content_info_oid(head: bytes) -> str | None:
    """The contentType OID at the start of a BER ContentInfo, or None when ``head`` does not start one."""
    if len(head) < 4 or head[0] != 0x30:
        return None
    pos = 2
    first = head[1]
    if first & 0x80 and first != 0x80:
        pos += first & 0x7F
    if pos + 2 > len(head) or head[pos] != 0x06:
        return None
    size = head[pos + 1]
    body = head[pos + 2 : pos + 2 + size]
    if size > 32 or len(body) != size or not body:
        return None
    arcs: list[int] = []
    value = 0
    for byte in body:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if not arcs:
        return None
    first_arc = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in (first_arc, arcs[0] - 40 * first_arc, *arcs[1:]))


def cms_data(entity: Entity) -> bytes | BinaryIO:
    """The decoded CMS bytes of a pkcs7 body: bytes when small, else a stream (memory stays flat)."""
    start, end = entity.body_span
    if end - start <= IN_MEMORY * 4 // 3 + 4096:
        return entity.decoded()
    return entity.decoded_stream()


# --------------------------------------------------------------------------------------------- paths


def part_paths(root: Entity) -> dict[int, str]:
    """``id(entity) -> path`` for every entity under ``root``: ``""`` for the root, ``"1"``, ``"1.2"`` for
    its parts (as IMAP numbers them); the message inside a ``message/rfc822`` part is its child ``1``."""
    out = {id(root): ""}
    stack: list[tuple[Entity, str]] = [(root, "")]
    while stack:
        entity, path = stack.pop()
        for i, child in enumerate(entity.children, 1):
            child_path = f"{path}.{i}" if path else str(i)
            out[id(child)] = child_path
            stack.append((child, child_path))
    return out


def child_path(parent: str, index: int) -> str:
    return f"{parent}.{index}" if parent else str(index)


def subtree_paths(root: Entity, prefix: str) -> tuple[str, ...]:
    """Paths of ``root`` (numbered ``prefix``) and every entity inside it."""
    return sort_paths(_join(prefix, p) for p in part_paths(root).values())


def _join(prefix: str, path: str) -> str:
    if not path:
        return prefix
    return f"{prefix}.{path}" if prefix else path


def _path_key(path: str) -> tuple[int, ...]:
    return tuple(int(x) for x in path.split(".") if x)


def sort_paths(paths: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(paths), key=_path_key))


# --------------------------------------------------------------------------------------------- content


def crlf(data: bytes) -> bytes:
    """Every line ending (CRLF or a bare LF) as CRLF."""
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def outer_fields(message: Entity) -> list[bytes]:
    """The header fields of ``message`` that stay outside an S/MIME layer (all but Content-*), as raw
    CRLF lines in their order."""
    return [crlf(h.raw) for h in message.headers if h.name and not h.lname.startswith("content-")]


def content_entity(message: Entity) -> bytes:
    """The body entity of ``message`` — its Content-* fields and body — in canonical form (RFC 8551 §3.1.1).

    Raises MimeBuildError when the content has no canonical form.
    """
    fields = [crlf(h.raw) for h in message.headers if h.lname.startswith("content-")]
    if not any(f[:13].lower() == b"content-type:" for f in fields):
        fields.insert(0, b"Content-Type: text/plain; charset=us-ascii\r\n")
    entity = mime.parse(b"".join(fields) + CRLF + message.raw_body())
    return mime.canonicalize(entity)


def new_boundary(*contents: bytes) -> str:
    """A random boundary that occurs in none of ``contents``."""
    while True:
        boundary = "----=_smimekit_" + secrets.token_hex(16)
        marker = boundary.encode("ascii")
        if not any(marker in c for c in contents):
            return boundary


def field(name: str, value: str) -> bytes:
    return fold_header(name, value, eol=CRLF)


def pkcs7_fields(ctype: str, smime_type: str | None, filename: str) -> list[bytes]:
    params = [("smime-type", smime_type)] if smime_type else []
    params.append(("name", filename))
    return [
        field("Content-Type", format_params(ctype, params)),
        field("Content-Transfer-Encoding", "base64"),
        field("Content-Disposition", format_params("attachment", [("filename", filename)])),
    ]


def base64_body(data: bytes) -> bytes:
    encoder = Base64Encoder(line_length=76, eol=CRLF)
    return encoder.feed(data) + encoder.close()


def wrap(outer: list[bytes], fields: list[bytes], body: bytes) -> Message:
    """Parse a new top-level entity: ``outer`` fields, ``MIME-Version`` unless there, then ``fields``."""
    head = list(outer)
    if not any(f[:13].lower() == b"mime-version:" for f in head):
        head.append(b"MIME-Version: 1.0\r\n")
    return mime.parse(b"".join(head + fields) + CRLF + body)


def wrap_pkcs7(message: Entity, kind: CmsKind, der: bytes, filename: str = "smime.p7m") -> Message:
    """``message``'s outer fields over an ``application/pkcs7-mime`` body holding ``der``."""
    fields = pkcs7_fields("application/pkcs7-mime", kind.value, filename)
    return wrap(outer_fields(message), fields, base64_body(der))


# --------------------------------------------------------------------------------------------- streams


class ChainReader(io.RawIOBase):
    """A readable stream over a sequence of byte pieces (not seekable: parse() spools it)."""

    def __init__(self, pieces: Iterable[bytes]) -> None:
        self._pieces: Iterator[bytes] = iter(pieces)
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buf:
            piece = next(self._pieces, None)
            if piece is None:
                return 0
            self._buf = piece
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def parse_pieces(pieces: Iterable[bytes]) -> Message:
    """Parse a message given in pieces; large ones are spooled to a private temporary file."""
    return mime.parse(io.BufferedReader(ChainReader(pieces), buffer_size=1 << 20))


def header_merge(outer: Entity, inner: Entity) -> tuple[list[bytes], list[str]]:
    """Header lines of ``outer`` that ``inner`` lacks (RFC 8551 §3.1: the inner entity may carry only
    Content-* fields; the outer ones then apply), and notes where the two disagree on From or Subject."""
    have = {h.lname for h in inner.headers}
    extra = [
        crlf(h.raw)
        for h in outer.headers
        if h.name and not h.lname.startswith("content-") and h.lname not in have
    ]
    notes: list[str] = []
    for name in ("From", "Subject"):
        inside, outside = inner.headers.get(name), outer.headers.get(name)
        if inside is not None and outside is not None and inside.strip() != outside.strip():
            notes.append(
                f"the {name} inside the S/MIME layer ({inside!r}) differs from the one outside ({outside!r})"
            )
    return extra, notes


def require(condition: bool, reason: str, part: str) -> None:
    if not condition:
        raise SmimeFormatError(reason, part=part)
