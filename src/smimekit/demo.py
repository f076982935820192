"""The ``smimekit demo``: a realistic message built, written, read back and checked, as a list of steps.

Every file in the message is generated here (a PNG drawn with zlib, a one-page PDF with a correct xref
table, a WAV made with :mod:`wave`), so the demo needs nothing but smimekit itself. Each step takes the
shared :class:`DemoContext` and returns a :class:`StepResult`. After composing and parsing, the message is
signed and encrypted with a throwaway CA made on the spot (:mod:`smimekit._demo_pki`), then decrypted and
verified again.
"""

from __future__ import annotations

import io
import math
import struct
import wave
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import serialization

from .errors import SmimekitError
from .mime import Entity, Message, parse_file
from .mime.build import Attachment, compose

if TYPE_CHECKING:
    from ._demo_pki import DemoIdentity

__all__ = [
    "STEPS",
    "DemoContext",
    "DemoFile",
    "Step",
    "StepResult",
    "build_message",
    "demo_files",
    "make_pdf",
    "make_png",
    "make_wav",
    "run",
]

SENDER_ADDRESS = "juergen@example.com"
RECIPIENT_ADDRESS = "taro@example.jp"
SENDER = f"Jürgen Müller <{SENDER_ADDRESS}>"
RECIPIENT = f"山田 太郎 <{RECIPIENT_ADDRESS}>"
SUBJECT = "Grüße aus Köln 📷 — 東京の件"
LOGO_CID = "logo@smimekit.example"

TEXT = (
    "Hallo Taro,\n"
    "\n"
    "herzliche Grüße aus Köln! Anbei der Bericht als PDF, zwei kurze Notizen\n"
    "und eine Sprachnachricht.\n"
    "\n"
    "東京でお会いできるのを楽しみにしています。🎌\n"
    "\n"
    "Bis bald ☕\n"
    "Jürgen\n"
)
HTML = (
    "<!DOCTYPE html>\n"
    '<html lang="de"><head><meta charset="utf-8"><title>Grüße aus Köln</title></head>\n'
    "<body>\n"
    f'<p><img src="cid:{LOGO_CID}" alt="smimekit logo" width="48" height="48"></p>\n'
    "<p>Hallo Taro,</p>\n"
    "<p>herzliche <b>Grüße</b> aus Köln! Anbei der Bericht als PDF, zwei kurze Notizen und eine\n"
    "Sprachnachricht.</p>\n"
    '<p lang="ja">東京でお会いできるのを楽しみにしています。🎌</p>\n'
    "<p>Bis bald ☕<br>Jürgen</p>\n"
    "</body></html>\n"
)
NOTE_LATIN1 = "Notiz für Taro: Treffpunkt »Café Domblick«, Domkloster 4, 50667 Köln, ½ Stunde vorher.\n"
NOTE_JIS = "来週の金曜日、午後三時に東京駅で会いましょう。\n"


@dataclass(frozen=True)
class DemoFile:
    """One attachment of the demo message, with the bytes it must decode back to."""

    filename: str
    content_type: str
    data: bytes
    charset: str | None = None
    inline: bool = False
    content_id: str | None = None


# --------------------------------------------------------------------------------------------- files


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def make_png(size: int = 48) -> bytes:
    """A valid RGB PNG of ``size`` x ``size`` pixels: a blue-green gradient with an orange disc."""
    rows = []
    c = (size - 1) / 2
    for y in range(size):
        row = bytearray(b"\x00")  # filter type None
        for x in range(size):
            if (x - c) ** 2 + (y - c) ** 2 <= (size / 3) ** 2:
                row += bytes((0xF5, 0x8A, 0x1F))
            else:
                row += bytes((0x20, 0x60 + 0x90 * y // size, 0xA0 + 0x50 * x // size))
        rows.append(bytes(row))
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)  # 8-bit truecolour, no interlace
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
        + _png_chunk(b"IEND", b"")
    )


def _pdf_string(text: str) -> bytes:
    raw = text.encode("cp1252")  # WinAnsiEncoding
    out = bytearray(b"(")
    for b in raw:
        if b in b"()\\":
            out += b"\\" + bytes((b,))
        elif 0x20 <= b < 0x7F:
            out.append(b)
        else:
            out += b"\\%03o" % b
    return bytes(out + b")")


def make_pdf(lines: tuple[str, ...] = ("smimekit demo", "Bericht aus Köln")) -> bytes:
    """A valid one-page PDF 1.4 showing ``lines`` in Helvetica, with a byte-exact cross-reference table."""
    text = b"BT /F1 24 Tf 72 760 Td 30 TL " + b" ' ".join(_pdf_string(s) for s in lines) + b" ' ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length %d >>\nstream\n" % len(text) + text + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n" % (len(objects) + 1)
    out += b"0000000000 65535 f \n"
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def make_wav(seconds: float = 0.6, rate: int = 8000) -> bytes:
    """A valid mono 16-bit PCM WAV: two short notes (A4, then E5) with a gentle fade."""
    frames = bytearray()
    n = int(seconds * rate)
    for i in range(n):
        freq = 440.0 if i < n // 2 else 659.25
        fade = min(1.0, i / 400, (n - i) / 400)
        frames += struct.pack("<h", int(12000 * fade * math.sin(2 * math.pi * freq * i / rate)))
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(frames))
    return buf.getvalue()


def demo_files() -> tuple[DemoFile, ...]:
    """The attachments of the demo message: an inline logo, two legacy-charset notes, a PDF, a WAV."""
    return (
        DemoFile("logo.png", "image/png", make_png(), inline=True, content_id=LOGO_CID),
        DemoFile("Notiz für Taro.txt", "text/plain", NOTE_LATIN1.encode("iso-8859-1"), charset="iso-8859-1"),
        DemoFile("予定.txt", "text/plain", NOTE_JIS.encode("iso-2022-jp"), charset="iso-2022-jp"),
        DemoFile("Bericht.pdf", "application/pdf", make_pdf()),
        DemoFile("Sprachnachricht.wav", "audio/wav", make_wav()),
    )


# --------------------------------------------------------------------------------------------- message


def _attachment(f: DemoFile) -> Attachment:
    return Attachment(
        f.data,
        f.filename,
        f.content_type,
        disposition="inline" if f.inline else "attachment",
        content_id=f.content_id,
        charset=f.charset,
    )


def build_message(
    files: tuple[DemoFile, ...] | None = None, *, date: datetime | None = None, message_id: str | None = None
) -> Message:
    """The demo message: multipart/mixed [ multipart/alternative [ text/plain (UTF-8),
    multipart/related [ text/html, image/png ] ], the notes, the PDF and the WAV ]."""
    files = demo_files() if files is None else files
    return compose(
        from_=SENDER,
        to=(RECIPIENT,),
        subject=SUBJECT,
        text=TEXT,
        html=HTML,
        inline=tuple(_attachment(f) for f in files if f.inline),
        attachments=tuple(_attachment(f) for f in files if not f.inline),
        date=date,
        message_id=message_id,
    )


# --------------------------------------------------------------------------------------------- steps


@dataclass
class DemoContext:
    """What the steps share: where to write, what was made, and the messages to close at the end."""

    out_dir: Path
    date: datetime | None = None
    files: tuple[DemoFile, ...] = ()
    written: dict[str, Path] = field(default_factory=dict)
    """Files the steps wrote, by name (``"message"`` is the composed message, ``"signed"`` and ``"sealed"``
    it signed and then encrypted; ``"ca"``, ``"sender_cert"``, ``"sender_key"``, ``"recipient_cert"`` and
    ``"recipient_key"`` the throwaway PKI)."""
    pki: dict[str, DemoIdentity] = field(default_factory=dict)
    """The throwaway CA and people (``"ca"``, ``"sender"``, ``"recipient"``), once made."""
    _open: list[Message] = field(default_factory=list)

    def keep_open(self, msg: Message) -> Message:
        """Close ``msg`` when the demo ends (a step's result may still show it until then)."""
        self._open.append(msg)
        return msg

    def close(self) -> None:
        while self._open:
            self._open.pop().close()


@dataclass(frozen=True)
class StepResult:
    """What one step did, for people: a title, a few lines, and optionally a file and a message to show."""

    title: str
    lines: tuple[str, ...] = ()
    path: Path | None = None
    message: Message | None = None


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[DemoContext], StepResult]


def _step_compose(ctx: DemoContext) -> StepResult:
    ctx.files = demo_files()
    msg = build_message(ctx.files, date=ctx.date)
    path = ctx.out_dir / "demo.eml"
    data = msg.to_bytes()
    path.write_bytes(data)
    ctx.written["message"] = path
    return StepResult(
        "Compose a message",
        (
            "text in UTF-8 (German, Japanese, emoji) with an HTML alternative and an inline PNG (cid:),",
            "notes in ISO-8859-1 and ISO-2022-JP, a PDF report and a WAV voice message",
            f"wrote {path} ({len(data)} bytes)",
        ),
        path=path,
    )


def _find(msg: Message, pred: Callable[[Entity], bool], what: str) -> Entity:
    for e in msg.walk():
        if pred(e):
            return e
    raise SmimekitError(f"demo check failed: the parsed message has no {what}")


def _named(filename: str) -> Callable[[Entity], bool]:
    return lambda e: e.filename == filename


def _step_parse(ctx: DemoContext) -> StepResult:
    path = ctx.written["message"]
    original = path.read_bytes()
    msg = ctx.keep_open(parse_file(path))
    if msg.to_bytes() != original:
        raise SmimekitError(f"demo check failed: {path} does not re-serialize to the bytes read")
    text = _find(msg, lambda e: e.content_type == "text/plain" and e.filename is None, "text/plain body")
    html = _find(msg, lambda e: e.content_type == "text/html", "text/html part")
    if text.text().replace("\r\n", "\n") != TEXT or html.text().replace("\r\n", "\n") != HTML:
        raise SmimekitError("demo check failed: the text or HTML did not decode to what was composed")
    for f in ctx.files:
        part = _find(msg, _named(f.filename), f"part named {f.filename}")
        if part.decoded() != f.data or part.content_type != f.content_type:
            raise SmimekitError(f"demo check failed: {f.filename} did not decode to the bytes attached")
        if f.content_id is not None and part.content_id != f.content_id:
            raise SmimekitError(f"demo check failed: {f.filename} lost its Content-ID")
    entities = sum(1 for _ in msg.walk())
    return StepResult(
        "Parse it back",
        (
            f"parsed {entities} MIME entities from {path}",
            f"re-serialized byte-exact: {len(original)} of {len(original)} bytes identical",
            f"decoded text, HTML and all {len(ctx.files)} attachments are identical to what was composed",
        ),
        message=msg,
    )


def _clock(ctx: DemoContext) -> datetime:
    """The demo's "now": ``ctx.date`` when set (UTC if naive), else the current time."""
    if ctx.date is None:
        return datetime.now(UTC)
    return ctx.date if ctx.date.tzinfo is not None else ctx.date.replace(tzinfo=UTC)


def _step_sign_encrypt(ctx: DemoContext) -> StepResult:
    from . import _demo_pki, cms, smime

    now = _clock(ctx)
    ca = _demo_pki.make_ca(now)
    sender = _demo_pki.make_person(ca, "Jürgen Müller", SENDER_ADDRESS, now, rsa_key=True)
    recipient = _demo_pki.make_person(ca, "山田 太郎", RECIPIENT_ADDRESS, now, rsa_key=False)
    ctx.pki = {"ca": ca, "sender": sender, "recipient": recipient}
    ca_path = ctx.out_dir / "ca.pem"
    ca_path.write_bytes(ca.certificate.public_bytes(serialization.Encoding.PEM))
    ctx.written["ca"] = ca_path
    for role, ident, stem in (("sender", sender, "juergen"), ("recipient", recipient, "taro")):
        ctx.written[f"{role}_cert"], ctx.written[f"{role}_key"] = ident.write(ctx.out_dir, stem)
    with parse_file(ctx.written["message"]) as msg:
        signed = smime.sign(msg, cms.Signer(sender.certificate, sender.key), signing_time=now)
    signed_path = ctx.out_dir / "demo-signed.eml"
    signed_path.write_bytes(signed.to_bytes())
    ctx.written["signed"] = signed_path
    sealed = smime.encrypt(signed, [recipient.certificate], include_sender=sender.certificate)
    sealed_path = ctx.out_dir / "demo-sealed.eml"
    data = sealed.to_bytes()
    sealed_path.write_bytes(data)
    ctx.written["sealed"] = sealed_path
    return StepResult(
        "Sign and encrypt it",
        (
            f"made a throwaway CA ({ca_path.name}) with certificates and keys for {SENDER_ADDRESS} (RSA-2048)",
            f"and {RECIPIENT_ADDRESS} (P-256), written unencrypted next to the messages: for the demo only",
            f"signed as {SENDER_ADDRESS} (multipart/signed, SHA-256): wrote {signed_path}",
            f"encrypted to {RECIPIENT_ADDRESS} and the sender (AES-256-GCM, ECDH and RSA-OAEP):",
            f"wrote {sealed_path} ({len(data)} bytes)",
        ),
        path=sealed_path,
        message=ctx.keep_open(sealed),
    )


def _step_decrypt_verify(ctx: DemoContext) -> StepResult:
    from . import smime
    from .smime import LayerKind

    ca, recipient = ctx.pki["ca"], ctx.pki["recipient"]
    path = ctx.written["sealed"]
    msg = ctx.keep_open(parse_file(path))
    result = smime.open(
        msg, now=_clock(ctx), keys=[(recipient.certificate, recipient.key)], anchors=[ca.certificate]
    )
    inner = ctx.keep_open(result.inner)
    kinds = [layer.kind for layer in result.layers]
    if kinds != [LayerKind.AUTH_ENVELOPED, LayerKind.SIGNED] or not result.ok:
        raise SmimekitError(f"demo check failed: {path} did not open as signed and encrypted, verified")
    decryption, verification = result.layers[0].decryption, result.layers[1].verification
    assert decryption is not None and verification is not None
    for f in ctx.files:
        if _find(inner, _named(f.filename), f"part named {f.filename}").decoded() != f.data:
            raise SmimekitError(f"demo check failed: {f.filename} did not survive signing and encryption")
    (sig,) = verification.signatures
    trust = sig.trust.now
    chain = " → ".join(trust.path) if trust is not None else ""
    return StepResult(
        "Decrypt and verify it",
        (
            f"decrypted {path.name} with the key of {RECIPIENT_ADDRESS}: {decryption.cipher.label}, "
            f"{decryption.recipient_type.name.lower().replace('_', ' ')}, authenticated",
            f"signature of {SENDER_ADDRESS}: intact, valid and trusted ({chain})",
            f"the signer matches From: {'yes' if verification.from_matches else 'no'}; "
            f"unsigned parts: {', '.join(verification.unsigned_parts) or 'none'}",
            f"the text, HTML and all {len(ctx.files)} attachments inside are identical to what was composed",
        ),
    )


STEPS: tuple[Step, ...] = (
    Step("compose", _step_compose),
    Step("parse", _step_parse),
    Step("sign-encrypt", _step_sign_encrypt),
    Step("decrypt-verify", _step_decrypt_verify),
)


def run(ctx: DemoContext, steps: tuple[Step, ...] = STEPS) -> Iterator[StepResult]:
    """Run ``steps`` in order, yielding each result as soon as it is ready; raises
    :class:`~smimekit.errors.SmimekitError` when a check fails. Call ``ctx.close()`` afterwards."""
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    for step in steps:
        yield step.run(ctx)
