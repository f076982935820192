"""The plan of a canonical form: which leaves to re-encode (and how) and which containers to declare
7bit, decided by reading every leaf once; and the bytes of a message the plan leaves unchanged."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field

from ._lineends import Piece
from ._safety import _is_leaf, _line_based_text, _needs_reencoding, _scan
from .entity import Entity
from .source import Source


@dataclass
class _Plan:
    """What the canonical form changes: leaves to re-encode (id -> new encoding) and multipart or message
    entities to declare 7bit. ``clean`` are the leaves kept as they are whose line breaks are all CRLF."""

    reencode: dict[int, str] = field(default_factory=dict)
    seven_bit: set[int] = field(default_factory=set)
    clean: set[int] = field(default_factory=set)

    @property
    def edits(self) -> bool:
        return bool(self.reencode or self.seven_bit)


def _plan(root: Entity) -> _Plan:
    """Read every leaf once to decide what must change; raises MimeBuildError for content without a
    canonical form."""
    plan = _Plan()
    for entity in root.walk():
        if _is_leaf(entity):
            scan = None if entity.transfer_encoding in ("8bit", "binary") else _scan(entity.iter_raw_body())
            if not _needs_reencoding(entity, scan=scan):
                if scan is not None and scan.crlf:
                    plan.clean.add(id(entity))
            else:
                plan.reencode[id(entity)] = "quoted-printable" if _line_based_text(entity) else "base64"
        elif entity.transfer_encoding in ("8bit", "binary"):
            # a multipart or message/rfc822 holds what its parts hold: all 7-bit once they are re-encoded
            plan.seven_bit.add(id(entity))
    return plan


# --------------------------------------------------------------------------------------------- unchanged


def _ranges(source: Source, start: int, end: int, chunk: int, clean: bool = False) -> Iterator[Piece]:
    for piece in source.iter_range(start, end, chunk):
        yield piece, clean


def _emit_unchanged(root: Entity, plan: _Plan, chunk: int, *, start: int) -> Iterator[Piece]:
    """The bytes of the unmodified ``root`` from ``start`` on, the bodies of its clean leaves marked."""
    source = root._source
    pos, end = start, root.span[1]
    for leaf in root.walk():
        if id(leaf) in plan.clean:
            body_start, body_end = leaf.body_span
            if pos <= body_start <= body_end <= end:
                yield from _ranges(source, pos, body_start, chunk)
                yield from _ranges(source, body_start, body_end, chunk, clean=True)
                pos = body_end
    yield from _ranges(source, pos, end, chunk)


def _carried(known: tuple[Entity, int, _Plan] | None, root: Entity) -> _Plan | None:
    """The plan of ``known`` moved onto the same entities of ``root``; None when they differ."""
    if known is None:
        return None
    old_root, shift, old = known
    plan = _Plan()
    for before, after in itertools.zip_longest(old_root.walk(), root.walk()):
        if before is None or after is None:
            return None
        start, end = before.body_span
        same = (
            after.body_span == (start + shift, end + shift)
            and _is_leaf(before) == _is_leaf(after)
            and (before.content_type, before.charset, before.transfer_encoding)
            == (after.content_type, after.charset, after.transfer_encoding)
        )
        if not same:
            return None
        if id(before) in old.reencode:
            plan.reencode[id(after)] = old.reencode[id(before)]
        if id(before) in old.seven_bit:
            plan.seven_bit.add(id(after))
    return plan
