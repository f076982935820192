"""Structured header values with parameters: Content-Type and Content-Disposition (RFC 2045, 2183, 2231)."""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field

__all__ = ["ParamValue", "format_params", "parse_param_header"]

# tspecials plus the RFC 2231 characters ' * % that parsers misread in an unquoted value
_TOKEN_SPECIALS = frozenset("()<>@,;:\\\"/[]?= \t'*%")
# one parameter: name = "quoted" | token-ish (lenient: unquoted values may hold spaces up to the next ';')
_PARAM = re.compile(
    r"""\s*;?\s*(?P<name>[^=;\s"]+)\s*=\s*(?:"(?P<q>(?:[^"\\]|\\.)*)"?|(?P<t>[^;]*))""",
    re.DOTALL,
)
_UNESCAPE = re.compile(r"\\(.)", re.DOTALL)
_CONT = re.compile(r"^(?P<base>[^*]+)\*(?P<num>\d+)(?P<ext>\*?)$")


@dataclass(frozen=True)
class ParamValue:
    """A parsed header value: ``value`` is ``"type/subtype"`` or the disposition, lowercased."""

    value: str
    params: dict[str, str] = field(default_factory=dict)
    defects: tuple[str, ...] = ()


def _decode_2231(text: str) -> tuple[str, str | None]:
    """Split ``charset'lang'pct-encoded`` and decode it; returns (value, error)."""
    parts = text.split("'", 2)
    if len(parts) != 3:
        return urllib.parse.unquote(text, "utf-8", "replace"), "InvalidRFC2231Value"
    charset = parts[0] or "us-ascii"
    raw = urllib.parse.unquote_to_bytes(parts[2])
    from .charsets import decode_text

    value, defects = decode_text(raw, charset)
    return value, (defects[0] if defects else None)


def parse_param_header(value: str) -> ParamValue:
    """Parse ``main; a=b; c*=utf-8''x`` into its lowercased main value and parameters.

    Parameter names are lowercased; RFC 2231 continuations and charsets are joined and decoded; RFC 2047
    encoded words inside quoted values (what Outlook writes for filenames) are decoded too. Never raises:
    problems become defect names.
    """
    semi = value.find(";")
    main = (value if semi < 0 else value[:semi]).strip().lower()
    if main.endswith("\r") or "\n" in main:
        main = "".join(main.split())
    params: dict[str, str] = {}
    defects: list[str] = []
    if semi < 0:
        return ParamValue(main, params, ())
    # pieces for RFC 2231 continuations: name -> {index: (text, extended)}
    pieces: dict[str, dict[int, tuple[str, bool]]] = {}
    simple: dict[str, tuple[str, bool]] = {}
    pos = semi
    n = len(value)
    while pos < n:
        m = _PARAM.match(value, pos)
        if m is None:
            nxt = value.find(";", pos + 1)
            rest = value[pos:].strip(" \t\r\n;")
            if rest:
                defects.append("InvalidParameter")
            if nxt < 0:
                break
            pos = nxt
            continue
        pos = m.end()
        name = m.group("name").lower()
        quoted = m.group("q") is not None
        text = m.group("q") if quoted else (m.group("t") or "").strip()
        if quoted and "\\" in text:
            text = _UNESCAPE.sub(r"\1", text)
        cm = _CONT.match(name)
        if cm:
            pieces.setdefault(cm.group("base"), {})[int(cm.group("num"))] = (text, bool(cm.group("ext")))
        elif name.endswith("*"):
            simple[name[:-1]] = (text, True)
        else:
            simple.setdefault(name, (text, False))
    for name, (text, ext) in simple.items():
        if ext:
            decoded, err = _decode_2231(text)
            if err:
                defects.append(err)
            params[name] = decoded
        else:
            params[name] = _maybe_2047(text)
    for name, idx in pieces.items():
        if name in params and not simple.get(name, ("", False))[1]:
            pass  # an extended or continued value wins over a plain one
        ordered = [idx[i] for i in sorted(idx)]
        if sorted(idx) != list(range(len(idx))):
            defects.append("InvalidRFC2231Continuation")
        if any(ext for _, ext in ordered):
            # the first piece carries charset'lang'; later extended pieces are pct-encoded only
            first = ordered[0]
            head = first[0] if first[1] else "us-ascii''" + urllib.parse.quote(first[0])
            joined = head + "".join(t if e else urllib.parse.quote(t) for t, e in ordered[1:])
            decoded, err = _decode_2231(joined)
            if err:
                defects.append(err)
            params[name] = decoded
        else:
            params[name] = "".join(t for t, _ in ordered)
    return ParamValue(main, params, tuple(defects))


def _maybe_2047(text: str) -> str:
    if "=?" not in text:
        return text
    from .rfc2047 import decode_header_value

    return decode_header_value(text)[0]


def _needs_quotes(value: str) -> bool:
    return not value or any(c in _TOKEN_SPECIALS or ord(c) < 0x21 or ord(c) > 0x7E for c in value)


def format_params(main: str, params: dict[str, str] | list[tuple[str, str]], *, max_piece: int = 60) -> str:
    """Format ``main; name=value; ...``: ASCII values as tokens or quoted strings, anything else with
    RFC 2231 (UTF-8, percent-encoded, split into continuations when long)."""
    out = [main]
    items = params.items() if isinstance(params, dict) else params
    for name, value in items:
        if value.isascii() and "\r" not in value and "\n" not in value:
            if not _needs_quotes(value):
                out.append(f"{name}={value}")
            else:
                esc = value.replace("\\", "\\\\").replace('"', '\\"')
                out.append(f'{name}="{esc}"')
            continue
        enc = urllib.parse.quote(value.encode("utf-8"), safe="!#$&+-.^_`|~")
        if len(enc) + len(name) <= max_piece:
            out.append(f"{name}*=utf-8''{enc}")
            continue
        chunks: list[str] = []
        cur = "utf-8''"
        i = 0
        while i < len(enc):
            # never split a %XX escape
            step = enc[i : i + 3] if enc[i] == "%" else enc[i]
            if len(cur) + len(step) > max_piece:
                chunks.append(cur)
                cur = ""
            cur += step
            i += len(step)
        chunks.append(cur)
        out.extend(f"{name}*{k}*={c}" for k, c in enumerate(chunks))
    return "; ".join(out)
