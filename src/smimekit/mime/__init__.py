"""smimekit.mime — byte-exact, streaming MIME parsing and building. Pure: bytes or binary streams in.

``parse(data_or_stream)`` returns a :class:`Message` whose ``to_bytes()`` gives the input back unchanged
until something is modified; ``walk()`` visits every entity depth-first.
"""

from __future__ import annotations

import io
import os
from typing import BinaryIO

from .build import (
    Attachment,
    BinaryPart,
    MessagePart,
    Multipart,
    Part,
    TextPart,
    build,
    compose,
    mime_charset,
    render,
)
from .canonical import canonicalize, is_canonical, iter_canonical, iter_canonical_content, to_canonical
from .entity import Entity, Message
from .headers import Header, HeaderList
from .parser import MimeParser
from .policy import LENIENT, STRICT, Defect, Limits, Policy
from .source import CHUNK, BytesSource, FileSource, Source, SpoolSource
from .stdlib import from_email_message, to_email_message

__all__ = [
    "LENIENT",
    "STRICT",
    "Attachment",
    "BinaryPart",
    "BytesSource",
    "Defect",
    "Entity",
    "FileSource",
    "Header",
    "HeaderList",
    "Limits",
    "Message",
    "MessagePart",
    "MimeParser",
    "Multipart",
    "Part",
    "Policy",
    "Source",
    "SpoolSource",
    "TextPart",
    "build",
    "canonicalize",
    "compose",
    "from_email_message",
    "is_canonical",
    "iter_canonical",
    "iter_canonical_content",
    "mime_charset",
    "parse",
    "parse_file",
    "render",
    "to_canonical",
    "to_email_message",
]


def parse(data: bytes | bytearray | memoryview | BinaryIO, *, policy: Policy = LENIENT) -> Message:
    """Parse a message from bytes or a binary stream.

    A seekable file is read in chunks and its bodies stay on disk (read back when asked for), so the
    memory used does not grow with the message; other streams are spooled to a private temporary file.
    Raises :class:`~smimekit.errors.MimeLimitError` when a limit of ``policy`` is exceeded and, under a
    strict policy, :class:`~smimekit.errors.MimeParseError` at the first defect.
    """
    if isinstance(data, bytes | bytearray | memoryview):
        raw = bytes(data) if not isinstance(data, bytes) else data
        parser = MimeParser(BytesSource(raw), policy=policy)
        parser.feed(raw)
        return parser.close()
    if isinstance(data, io.BytesIO):
        return parse(data.getvalue()[data.tell() :], policy=policy)
    fd = _seekable_fd(data)
    if fd is not None:
        base = data.tell()
        src = FileSource(os.dup(fd), base=base)
        msg = _feed_source(src, policy)
        msg._owns_source = True
        return msg
    spool = SpoolSource()
    parser = MimeParser(spool, policy=policy)
    try:
        while piece := data.read(CHUNK):
            spool.append(piece)
            parser.feed(piece)
        msg = parser.close()
    except BaseException:
        spool.close()
        raise
    msg._owns_source = True
    return msg


def parse_file(path: str | os.PathLike[str], *, policy: Policy = LENIENT) -> Message:
    """Parse the message in the file at ``path``; close the result (or use ``with``) to release the file."""
    src = FileSource.open(path)
    msg = _feed_source(src, policy)
    msg._owns_source = True
    return msg


def _seekable_fd(stream: BinaryIO) -> int | None:
    try:
        if not stream.seekable():
            return None
        fd = stream.fileno()
        stream.tell()
    except (AttributeError, OSError, io.UnsupportedOperation):
        return None
    return fd


def _feed_source(src: Source, policy: Policy) -> Message:
    parser = MimeParser(src, policy=policy)
    try:
        pos = 0
        size = src.size
        while pos < size:
            piece = src.read(pos, min(pos + CHUNK, size))
            if not piece:
                break
            parser.feed(piece)
            pos += len(piece)
        return parser.close()
    except BaseException:
        src.close()
        raise
