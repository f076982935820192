"""How the commands show a parsed message: a rich tree for people, a JSON document for programs.

Both come from :func:`describe`, so they always agree. Part paths number every entity in walk order:
the message is ``1``, its parts ``1.1``, ``1.2``, ..., the message inside a ``message/rfc822`` part is
that part's only child (``1.2.1``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.text import Text
from rich.tree import Tree

from ..mime import Entity, Message

if TYPE_CHECKING:  # the S/MIME stack is loaded only by the commands that use it, not by 'inspect'
    from ..smime import LayerReport, OpenResult, SignatureReport, VerificationReport

__all__ = [
    "PartInfo",
    "describe",
    "failures",
    "labelled",
    "make_console",
    "numbered",
    "render_layers",
    "render_tree",
    "render_verification",
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


# ---------------------------------------------------------------------------------------------- S/MIME reports


def _time(value: dt.datetime | None) -> str:
    if value is None:
        return "not given"
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _yes(flag: bool) -> tuple[str, str]:
    return ("yes", "green") if flag else ("no", "bold red")


def labelled(console: Console, indent: str, label: str, *pieces: str | tuple[str, str]) -> None:
    """One report line: ``label:`` padded to a column, then the pieces (``(text, style)`` or text)."""
    text = Text(indent)
    text.append(f"{label + ':':<14}", style="bold")
    for piece in pieces:
        if isinstance(piece, tuple):
            text.append(safe_text(piece[0]), style=piece[1])
        else:
            text.append(safe_text(piece))
    console.print(text)


def _parts(paths: Sequence[str]) -> str:
    return f"part{'s' if len(paths) > 1 else ''} {', '.join(paths)}"


def _where(part: str) -> str:
    return "the whole message" if part == "1" else f"part {part}"


def _who(sig: SignatureReport) -> str:
    if sig.signer is not None:
        return sig.signer.emails[0] if sig.signer.emails else sig.signer.subject
    return sig.signer_id


def failures(report: VerificationReport) -> list[str]:
    """One sentence per signature that is not intact, valid and trusted."""
    if not report.signatures:
        return ["the message holds no signature"]
    out = []
    for n, sig in enumerate(report.signatures, 1):
        if sig.ok:
            continue
        who = safe_text(_who(sig))
        if sig.intact and sig.valid:
            out.append(f"signature {n} ({who}) is not trusted: {sig.trust.reason}")
        else:
            out.append(f"signature {n} ({who}): {'; '.join(sig.reasons) or 'it is not intact or not valid'}")
    return out


def _revocation_lines(sig: SignatureReport, console: Console, indent: str) -> None:
    """The revocation status of the signer's certificate now and where it came from, and any CA
    certificate of the path whose status is not good."""
    verdict = sig.trust.now
    if verdict is None:
        return
    if verdict.revocation_mode == "off":
        labelled(console, indent, "Revocation", ("not checked (--revocation off)", "yellow"))
        return
    for n, entry in enumerate(verdict.revocation_path):
        if n and entry.status == "good":
            continue
        style = {"good": "green", "revoked": "bold red"}.get(entry.status, "yellow")
        pieces: list[str | tuple[str, str]] = [(entry.status, style)]
        if entry.status == "revoked":
            when = f", {entry.date:%Y-%m-%d}" if entry.date is not None else ""
            pieces.append(f" ({entry.reason or 'unspecified'}{when})")
        if entry.source:
            pieces.append(f" — {entry.source}")
        if entry.detail:
            pieces.append(f" — {entry.detail}")
        labelled(console, indent, "Revocation" if n == 0 else f"  CA {n}", *pieces)


def _render_signature(sig: SignatureReport, n: int, total: int, console: Console, indent: str) -> None:
    console.print(Text(f"{indent}Signature {n} of {total}: {sig.form}, {_where(sig.part)}", style="bold"))
    sub = indent + "  "
    if sig.signer is not None:
        s = sig.signer
        labelled(console, sub, "Signer", s.subject)
        labelled(console, sub, "E-mail", ", ".join(s.emails) or "none in the certificate")
        labelled(console, sub, "Issuer", s.issuer)
        labelled(console, sub, "Serial", format(s.serial_number, "x"))
        labelled(console, sub, "SHA-256", s.sha256_fingerprint)
        labelled(console, sub, "Key", f"{s.public_key}, valid {_time(s.not_before)} to {_time(s.not_after)}")
    else:
        labelled(console, sub, "Signer", sig.signer_id, ("  (certificate not found)", "red"))
    labelled(console, sub, "Signed at", _time(sig.signing_time))
    algorithms = ", ".join(a for a in (sig.digest_algorithm, sig.signature_algorithm) if a) or "unknown"
    labelled(console, sub, "Algorithms", algorithms)
    cms_reasons = tuple(r for r in sig.reasons if r != sig.trust.reason)
    labelled(
        console,
        sub,
        "Intact",
        _yes(sig.intact),
        "" if sig.intact else " — the content is not what was signed",
    )
    labelled(console, sub, "Valid", _yes(sig.valid), "" if sig.valid else " — the signature does not hold")
    for r in cms_reasons:
        labelled(console, sub, "  because", r)
    if sig.diagnosis:
        labelled(console, sub, "Diagnosis", (sig.diagnosis, "yellow"))
    if sig.trusted:
        now = sig.trust.now
        path = " → ".join(now.path) if now is not None else ""
        when = "at the signing time and now" if sig.trust.at_signing_time is not None else "now"
        labelled(console, sub, "Trusted", _yes(True), f" — {when}: {path}")
    else:
        labelled(console, sub, "Trusted", _yes(False), f" — {sig.trust.reason}")
        for label, verdict in (("  at signing", sig.trust.at_signing_time), ("  now", sig.trust.now)):
            if verdict is not None:
                state = "trusted" if verdict.trusted else verdict.reason
                labelled(console, sub, label, f"{_time(verdict.validated_at)}: {state}")
    _revocation_lines(sig, console, sub)
    labelled(console, sub, "Covers", _parts(sig.covered_parts) if sig.covered_parts else "nothing")
    labelled(console, sub, "From match", _yes(sig.from_matches))
    if sig.weak:
        labelled(console, sub, "Weak", (", ".join(sig.weak), "yellow"))


def render_verification(report: VerificationReport, console: Console, indent: str = "") -> None:
    """The text report of ``smimekit verify``: each signature, then what is unsigned and the verdict."""
    total = len(report.signatures)
    for n, sig in enumerate(report.signatures, 1):
        _render_signature(sig, n, total, console, indent)
    unsigned = ", ".join(report.unsigned_parts)
    labelled(
        console,
        indent,
        "Unsigned",
        (f"{_parts(report.unsigned_parts)} NOT covered by any signature", "bold yellow")
        if unsigned
        else "none: the signatures cover all content",
    )
    senders = ", ".join(report.from_addresses) or "none"
    match = ("matches a signer", "green") if report.from_matches else ("matches no signer", "bold red")
    labelled(console, indent, "From", f"{senders} — ", match)
    labelled(console, indent, "Weak algs", (", ".join(report.weak), "yellow") if report.weak else "none")
    for note in report.notes:
        labelled(console, indent, "Note", note)
    if report.ok:
        verdict = "OK: every signature is intact, valid and trusted"
        tail = "" if not unsigned else " (but not all content is signed)"
        labelled(console, indent, "Verdict", (verdict, "bold green"), tail)
    else:
        bad = sum(1 for s in report.signatures if not s.ok)
        labelled(console, indent, "Verdict", (f"NOT OK: {bad} of {total} signatures failed", "bold red"))


_LAYER_NAMES = {  # by smime.LayerKind name
    "SIGNED": "signed",
    "ENVELOPED": "encrypted (enveloped-data)",
    "AUTH_ENVELOPED": "encrypted (authEnveloped-data)",
    "COMPRESSED": "compressed (compressed-data)",
}


def _render_layer(layer: LayerReport, n: int, console: Console) -> None:
    console.print(Text(f"Layer {n}: {_LAYER_NAMES[layer.kind.name]}", style="bold"))
    if layer.decryption is not None:
        d = layer.decryption
        how = f"{d.cipher.label}, {d.recipient_type.name.lower().replace('_', ' ')}, {d.size} bytes, "
        labelled(
            console, "  ", "Decrypted", how, "authenticated" if d.authenticated else "not authenticated (CBC)"
        )
        if d.legacy:
            labelled(console, "  ", "Legacy", ("a legacy cipher was accepted (--legacy)", "yellow"))
    if layer.verification is not None:
        render_verification(layer.verification, console, "  ")
    for note in layer.notes:
        labelled(console, "  ", "Note", note)


def render_layers(result: OpenResult, console: Console) -> None:
    """The text report of ``smimekit open``: each layer, outermost first."""
    for n, layer in enumerate(result.layers, 1):
        _render_layer(layer, n, console)
    if not any(layer.verification for layer in result.layers):
        labelled(console, "", "Verdict", ("the message is not signed", "yellow"))
