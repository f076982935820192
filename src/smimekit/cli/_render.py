"""How the commands show a parsed message: a rich tree for people, a JSON document for programs.

Both come from :func:`describe`, so they always agree. Part paths number every entity in walk order:
the message is ``1``, its parts ``1.1``, ``1.2``, ..., the message inside a ``message/rfc822`` part is
that part's only child (``1.2.1``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.text import Text
from rich.tree import Tree

from ..mime import Entity, Message

__all__ = [
    "PartInfo",
    "describe",
    "make_console",
    "numbered",
    "render_tree",
    "safe_text",
    "summary_headers",
    "to_json",
]

JSON_VERSION = 1
SUMMARY_HEADERS = ("From", "To", "Cc", "Subject", "Date")


@dataclass(frozen=True)
class PartInfo:
    """What the CLI shows of one entity."""

    path: str
    depth: int
    content_type: str
    charset: str | None
    transfer_encoding: str
    disposition: str | None
    filename: str | None
    content_id: str | None
    size: int | None
    """Decoded body bytes; None for a multipart (whose size is the sum of its parts plus boundaries)."""
    raw_size: int
    """Bytes of the entity as it stands in the input, header included."""
    defects: tuple[tuple[str, int, str], ...]
    entity: Entity

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "depth": self.depth,
            "content_type": self.content_type,
            "charset": self.charset,
            "transfer_encoding": self.transfer_encoding,
            "disposition": self.disposition,
            "filename": self.filename,
            "content_id": self.content_id,
            "size": self.size,
            "raw_size": self.raw_size,
            "defects": [{"name": n, "offset": o, "message": m} for n, o, m in self.defects],
        }


def numbered(msg: Entity) -> Iterator[tuple[str, Entity]]:
    """``(path, entity)`` for every entity in ``walk()`` order (paths as in the module docstring)."""
    stack: list[tuple[str, Entity]] = [("1", msg)]
    while stack:
        path, e = stack.pop()
        yield path, e
        kids = e.children
        stack.extend((f"{path}.{i}", kid) for i, kid in reversed(list(enumerate(kids, 1))))


def describe(msg: Message) -> list[PartInfo]:
    """One :class:`PartInfo` per entity, in ``walk()`` order. Decoded sizes are counted streaming."""
    out = []
    for path, e in numbered(msg):
        start, end = e.span
        out.append(
            PartInfo(
                path=path,
                depth=path.count("."),
                content_type=e.content_type,
                charset=e.charset,
                transfer_encoding=e.transfer_encoding,
                disposition=e.disposition,
                filename=e.filename,
                content_id=e.content_id,
                size=None if e.is_multipart() else e.decoded_size,
                raw_size=end - start,
                defects=tuple((d.name, d.offset, d.message) for d in e.defects),
                entity=e,
            )
        )
    return out


def summary_headers(msg: Entity) -> dict[str, str]:
    """The decoded From, To, Cc, Subject and Date of ``msg`` that are present."""
    out = {}
    for name in SUMMARY_HEADERS:
        value = msg.headers.get(name)
        if value is not None:
            out[name] = value
    return out


def to_json(msg: Message, parts: list[PartInfo] | None = None) -> dict[str, Any]:
    """The ``inspect --json`` document."""
    parts = describe(msg) if parts is None else parts
    start, end = msg.span
    return {
        "version": JSON_VERSION,
        "size": end - start,
        "headers": {k.lower(): v for k, v in summary_headers(msg).items()},
        "defect_count": sum(len(p.defects) for p in parts),
        "parts": [p.to_json() for p in parts],
    }


def safe_text(value: str) -> str:
    """``value`` made harmless for a terminal: control and bidi-override characters are escaped."""
    if value.isprintable():
        return value
    return "".join(c if c.isprintable() else _escape(c) for c in value)


def _escape(c: str) -> str:
    n = ord(c)
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"


def _label(p: PartInfo) -> Text:
    text = Text()
    text.append(p.path, style="dim")
    text.append(" ")
    text.append(p.content_type, style="bold cyan" if p.entity.is_multipart() else "bold")
    details = []
    if p.charset and p.entity.maintype == "text":
        details.append(f"charset={p.charset}")
    if not p.entity.is_multipart():
        details.append(p.transfer_encoding)
        details.append(f"{p.size} bytes")
    if details:
        text.append(", " + ", ".join(safe_text(d) for d in details))
    if p.disposition:
        text.append(f", {safe_text(p.disposition)}", style="yellow")
    if p.filename is not None:
        text.append(" ")
        text.append(f'"{safe_text(p.filename)}"', style="green")
    if p.content_id:
        text.append(f" <{safe_text(p.content_id)}>", style="magenta")
    if isinstance(p.entity, Message) and p.depth > 0:
        subject = p.entity.headers.get("subject")
        if subject is not None:
            text.append(f", subject: {safe_text(subject)}", style="italic")
    return text


def make_console(*, stderr: bool = False) -> Console:
    """A rich console on stdout (or stderr); when it is not a terminal, lines are never wrapped or cut."""
    console = Console(stderr=stderr, highlight=False)
    if not console.is_terminal:
        console.width = 10_000
    return console


def render_tree(msg: Message, console: Console, parts: list[PartInfo] | None = None) -> None:
    """Print the summary headers and the tree of ``msg``."""
    parts = describe(msg) if parts is None else parts
    for name, value in summary_headers(msg).items():
        console.print(Text.assemble((f"{name}: ", "bold"), safe_text(value)))
    nodes: dict[str, Tree] = {}
    root: Tree | None = None
    for p in parts:
        label = _label(p)
        if root is None:
            node = root = Tree(label)
        else:
            node = nodes[p.path.rsplit(".", 1)[0]].add(label)
        nodes[p.path] = node
        for name, offset, message in p.defects:
            node.add(Text(f"defect {name} at byte {offset}: {safe_text(message)}", style="red"))
    if root is not None:
        console.print(root)
    total = sum(len(p.defects) for p in parts)
    n = len(parts)
    console.print(
        f"{n} {'entity' if n == 1 else 'entities'}, {total} {'defect' if total == 1 else 'defects'}"
    )
