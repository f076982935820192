"""Header fields that keep the exact bytes they were read from and decode their value only when asked."""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ["Header", "HeaderList"]


class Header:
    """One header field.

    ``raw`` holds the field exactly as read or written, folded lines and line ending included; ``name`` is
    the field name as written (``""`` for a line that is not a header field, kept so that nothing is lost).
    """

    __slots__ = ("_value", "lname", "name", "raw")

    def __init__(self, name: str, raw: bytes) -> None:
        self.name = name
        self.lname = name.lower()
        self.raw = raw
        self._value: str | None = None

    @property
    def raw_value(self) -> bytes:
        """The bytes after the colon, line ending removed, folding kept."""
        colon = self.raw.find(b":")
        body = self.raw[colon + 1 :] if colon >= 0 and self.name else self.raw
        if body.endswith(b"\n"):
            body = body[:-2] if body.endswith(b"\r\n") else body[:-1]
        return body

    @property
    def value(self) -> str:
        """The unfolded value with RFC 2047 encoded words and UTF-8 (RFC 6532) decoded."""
        if self._value is None:
            from .rfc2047 import decode_header_value

            self._value = decode_header_value(self.raw_value)[0].strip(" \t\r\n")
        return self._value

    def unfolded_ascii(self) -> str:
        """The unfolded value as Latin-1 text, for structured parsing that must see the raw octets."""
        v = self.raw_value
        if b"\n" in v:
            v = b"".join(v.replace(b"\r\n", b"\n").split(b"\n"))
        return v.decode("latin-1").strip()

    def __repr__(self) -> str:
        return f"Header({self.name!r}, {self.raw!r})"


class HeaderList:
    """The header fields of one entity in their order. Read access only; change them through the entity
    (``set_header``, ``add_header``, ``remove_header``) so that it knows to re-emit itself."""

    __slots__ = ("_fields",)

    def __init__(self, fields: list[Header] | None = None) -> None:
        self._fields: list[Header] = fields if fields is not None else []

    def __iter__(self) -> Iterator[Header]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.field(name) is not None

    def field(self, name: str) -> Header | None:
        """The first field called ``name`` (case-insensitive), or None."""
        lname = name.lower()
        for h in self._fields:
            if h.lname == lname:
                return h
        return None

    def fields(self, name: str) -> list[Header]:
        """Every field called ``name``, in order."""
        lname = name.lower()
        return [h for h in self._fields if h.lname == lname]

    def get(self, name: str, default: str | None = None) -> str | None:
        """The decoded value of the first field called ``name``, or ``default``."""
        h = self.field(name)
        return default if h is None else h.value

    def get_all(self, name: str) -> list[str]:
        """The decoded values of every field called ``name``."""
        return [h.value for h in self.fields(name)]

    def __getitem__(self, name: str) -> str:
        h = self.field(name)
        if h is None:
            raise KeyError(name)
        return h.value

    def items(self) -> list[tuple[str, str]]:
        """(name, decoded value) of every well-formed field, in order."""
        return [(h.name, h.value) for h in self._fields if h.name]

    def to_bytes(self) -> bytes:
        return b"".join(h.raw for h in self._fields)
