"""Just enough MIME for the CMS tests: split a stored multipart/signed or pkcs7-mime message.

Test-only (the real MIME layer is smimekit.mime). The signed part is taken as the bytes between the
first boundary line and the CRLF before the next one, in canonical form (bare LF -> CRLF, RFC 8551 §3.1.1),
since the vector files are stored with LF line endings.
"""

from __future__ import annotations

import base64
import re


def canonical(data: bytes) -> bytes:
    """Bare LF to CRLF."""
    return re.sub(rb"(?<!\r)\n", b"\r\n", data)


def _boundary(headers: bytes) -> bytes:
    unfolded = re.sub(rb"\r?\n[ \t]+", b" ", headers)
    m = re.search(rb'boundary="?([^";\r\n]+)"?', unfolded, re.IGNORECASE)
    assert m, "no boundary"
    return m.group(1)


def split_signed(message: bytes) -> tuple[bytes, bytes]:
    """(signed content in canonical form, DER of the detached signature) of a multipart/signed message."""
    msg = canonical(message)
    head, _, body = msg.partition(b"\r\n\r\n")
    delim = b"--" + _boundary(head)
    parts = body.split(b"\r\n" + delim)
    first = body.split(delim + b"\r\n", 1)[1]
    content = first.split(b"\r\n" + delim, 1)[0]
    sig_part = parts[2] if parts[0].startswith(delim) is False else parts[1]
    sig_part = sig_part.split(b"\r\n", 1)[1]
    _, _, sig_b64 = sig_part.partition(b"\r\n\r\n")
    return content, base64.b64decode(sig_b64)


def opaque_der(message: bytes) -> bytes:
    """DER of an application/pkcs7-mime message (base64 body)."""
    msg = canonical(message)
    _, _, body = msg.partition(b"\r\n\r\n")
    return base64.b64decode(body)
