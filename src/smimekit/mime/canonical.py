"""The canonical form of a MIME entity for signing (RFC 8551 §3.1.1, RFC 2049 §4).

Every line ends in CRLF and every leaf has a 7-bit-safe transfer encoding, so that the bytes signed are the
bytes any mail system will deliver. Leaves whose body is 8bit or binary (as declared, or in fact: non-ASCII
bytes, NUL, a bare CR or a line over 998 octets) are re-encoded, text as quoted-printable and everything
else as base64; every other byte stays as it is except for its line endings. Header fields, preambles and
epilogues are not re-encoded: 8-bit bytes there (RFC 6532 UTF-8 headers) stay 8-bit.
"""

from __future__ import annotations

from ..errors import MimeBuildError
from .charsets import lookup_codec
from .entity import Entity, Message

__all__ = ["canonicalize", "is_canonical", "to_canonical"]

_KNOWN_CTES = frozenset({"7bit", "8bit", "binary", "quoted-printable", "base64"})


def _is_leaf(entity: Entity) -> bool:
    return not entity.is_multipart() and entity.message is None


def _seven_bit_safe(data: bytes) -> bool:
    """ASCII without NUL, every CR part of a CRLF, no line over 998 octets (RFC 5322 §2.1.1)."""
    if not data.isascii() or b"\0" in data or data.count(b"\r") != data.count(b"\r\n"):
        return False
    return max(map(len, data.split(b"\n"))) <= 998 or all(
        len(line.removesuffix(b"\r")) <= 998 for line in data.split(b"\n")
    )


def _needs_reencoding(entity: Entity, *, check: bool = True) -> bool:
    cte = entity.transfer_encoding
    safe = _seven_bit_safe(entity.raw_body())
    if check and cte not in _KNOWN_CTES and not safe:
        raise MimeBuildError(
            f"a {entity.content_type} part has the unknown transfer encoding {cte!r} and 8-bit content, "
            "so it has no canonical form"
        )
    return cte in ("8bit", "binary") or not safe


def _line_based_text(entity: Entity) -> bool:
    """True for text whose charset writes line breaks as ASCII CR LF (not UTF-16 or UTF-32)."""
    if entity.maintype != "text":
        return False
    codec = lookup_codec(entity.charset)
    return codec is None or "\r\n".encode(codec, "ignore") == b"\r\n"


def _crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _reencode(copy: Entity) -> None:
    """Give every leaf of ``copy`` a 7-bit-safe encoding in place, through the Entity editing API."""
    for entity in copy.walk():
        if _is_leaf(entity):
            if _needs_reencoding(entity):
                text = _line_based_text(entity)
                _open_header_block(entity)
                entity.set_body(entity.decoded(), transfer_encoding="quoted-printable" if text else "base64")
        elif entity.transfer_encoding in ("8bit", "binary"):
            # a multipart or message/rfc822 holds what its parts hold: all 7-bit once they are re-encoded
            _open_header_block(entity)
            entity.set_header("Content-Transfer-Encoding", "7bit")


def _open_header_block(entity: Entity) -> None:
    # An entity read without the blank line after its header block (it had a line that is no header) would
    # re-emit an edited header block straight into its body; give it the blank line (made CRLF below).
    if not entity.separator:
        entity.separator = b"\n"


def canonicalize(entity: Entity) -> bytes:
    """The canonical bytes of ``entity``: CRLF line endings and a 7-bit-safe encoding for every leaf.

    ``entity`` itself is not changed. Raises MimeBuildError for a leaf with an unknown transfer encoding
    and 8-bit content (its content cannot be re-encoded without knowing what it is).
    """
    from . import parse

    data = entity.to_bytes()
    if is_canonical(entity):
        return data
    copy = parse(data)
    _reencode(copy)
    return _crlf(copy.to_bytes())


def to_canonical(msg: Message) -> Message:
    """A new parsed message holding :func:`canonicalize` of ``msg``; ``msg`` is not changed."""
    from . import parse

    return parse(canonicalize(msg))


def is_canonical(entity: Entity) -> bool:
    """True when :func:`canonicalize` would return the entity's bytes unchanged."""
    data = entity.to_bytes()
    if data.count(b"\n") != data.count(b"\r\n"):
        return False
    for e in entity.walk():
        if _is_leaf(e):
            if _needs_reencoding(e, check=False):
                return False
        elif e.transfer_encoding in ("8bit", "binary"):
            return False
    return True
