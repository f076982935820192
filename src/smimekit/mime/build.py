"""Building messages: a tree of immutable parts rendered to bytes, and :func:`compose` for everyday mail.

:func:`build` renders a tree of :class:`TextPart`, :class:`BinaryPart`, :class:`Multipart` and
:class:`MessagePart` and parses the result, so a built message is a parsed message like any other and
re-emits its bytes exactly. Every constructor checks its arguments at once and raises
:class:`~smimekit.errors.MimeBuildError` with a sentence saying what is wrong.

The building API in one place; it lives in modules of one concept each: :mod:`.parts` (the parts,
:func:`render`, :func:`build`), :mod:`.composer` (:func:`compose`, :class:`Attachment`) and
:mod:`._buildcheck` (the argument checks and :func:`mime_charset`).
"""

from __future__ import annotations

from ._buildcheck import mime_charset
from .composer import Attachment, compose
from .parts import BinaryPart, MessagePart, Multipart, Part, TextPart, build, render

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
