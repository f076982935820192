"""Parsing policy: strict or lenient, and the limits that bound the work done on hostile input."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

__all__ = ["LENIENT", "STRICT", "Defect", "Limits", "Policy"]


@dataclass(frozen=True)
class Limits:
    """Bounds on what a message may contain; exceeding one raises :class:`~smimekit.errors.MimeLimitError`.

    The defaults accept every real message seen in the wild while keeping hostile input cheap: parsing
    time stays linear in the input and memory does not grow with body sizes.
    """

    max_depth: int = 64
    """Nesting of multiparts and message/rfc822 parts."""
    max_parts: int = 10_000
    """Entities in one message, all levels together."""
    max_headers: int = 1_000
    """Header fields of one entity."""
    max_header_line: int = 256 * 1024
    """Bytes of one header field, folded lines included."""
    max_header_block: int = 1024 * 1024
    """Bytes of the header block of one entity."""
    max_size: int = 16 * 1024**3
    """Bytes of the whole message."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if int(getattr(self, f.name)) < 1:
                raise ValueError(f"limit {f.name} must be positive")


@dataclass(frozen=True)
class Policy:
    """How to parse: ``strict`` raises :class:`~smimekit.errors.MimeParseError` on the first defect
    instead of recording it; ``limits`` always raise."""

    strict: bool = False
    limits: Limits = Limits()

    def clone(self, **changes: Any) -> Policy:
        """A copy with some fields changed, e.g. ``policy.clone(strict=True)``."""
        return dataclasses.replace(self, **changes)


LENIENT = Policy()
STRICT = Policy(strict=True)


@dataclass(frozen=True)
class Defect:
    """A problem found while parsing, kept on the entity where it was found."""

    name: str
    """A stable identifier such as ``"MissingHeaderBodySeparator"``."""
    offset: int
    """Byte offset in the input where it was found."""
    message: str
    """A sentence for people."""

    def __str__(self) -> str:
        return f"{self.name} at byte {self.offset}: {self.message}"
