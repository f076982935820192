"""A deterministic corpus of realistic mail for the MIME benchmark.

Every message is built from one seeded ``random.Random``, so the same seed gives the same bytes on every
machine and Python 3.11+. The messages look like what a mailbox holds: trace headers (a Received chain,
Authentication-Results, DKIM-Signature, sometimes an ARC set), RFC 2047 subjects and display names, UTF-8
quoted-printable text, Outlook/Gmail/Apple-style multipart/alternative, attachments of 10 KB to 2 MB in
base64, forwarded messages (``message/rfc822``), and multipart/related HTML with inline images. Most
messages use CRLF (as on the wire), some LF only (as in a maildir). Encodings come from the stdlib
(``email.header``, ``email.utils``, ``binascii``), so the corpus does not depend on the code it measures.

Kinds: ``plain`` (1-4 KB), ``alternative``, ``attachment``, ``forwarded``, ``related``.

As a script it writes the corpus as ``.eml`` files::

    python3 bench/corpus.py --out /tmp/corpus [--mixed 600] [--small 3000]
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import html
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.header import Header
from email.utils import encode_rfc2231, formataddr

__all__ = [
    "KINDS",
    "LargeMessage",
    "Sample",
    "mixed_corpus",
    "small_corpus",
    "write_eml",
    "write_large_message",
]

KINDS = ("plain", "alternative", "attachment", "forwarded", "related")
# share of each kind in the mixed corpus (by message count)
_MIX = {"plain": 0.45, "alternative": 0.25, "attachment": 0.15, "forwarded": 0.10, "related": 0.05}

# base64 of 57 bytes is one 76-character line; this many lines make a ~1 MiB chunk
_B64_LINE_IN = 57
_CHUNK_LINES = 18396


@dataclass(frozen=True)
class Sample:
    """One generated message."""

    kind: str
    data: bytes


@dataclass(frozen=True)
class LargeMessage:
    """What :func:`write_large_message` wrote: the attachment's decoded size and SHA-256, to check against."""

    path: str
    size: int
    filename: str
    decoded_size: int
    sha256: str


# ---------------------------------------------------------------------------------------------- words


def _split(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_WORDS = _split(
    "the of and to in is for that on with as it be at by this from we are not have your you our will "
    "can all has more about their which when there was one new also been would please meeting report "
    "project update attached find below review budget quarter team customer contract invoice schedule "
    "thanks regards proposal draft version deadline approval feedback agenda call tomorrow next week "
    "office release server migration certificate renewal account access request ticket issue status "
    "results numbers figures slides presentation document signed copy order shipment delivery payment "
    "support question answer details information change plan travel hotel flight booking confirmation "
    "board minutes summary action items owner date time room link calendar invitation reminder quick "
    "note follow up discussed agreed decision open point risk cost estimate timeline milestone launch"
)
_INTL = _split(
    "Grüße Änderung Übersicht Besprechung für über München Zürich café déjà naïve résumé Société "
    "reçu señor mañana año Kraków Łódź Gdańsk Škoda Ελλάδα Αθήνα Москва привет спасибо отчёт 東京 "
    "会議 資料 こんにちは ありがとう 서울 회의 – — € “quoted” ‘single’ … ½ ±5 °C №7"
)
_FIRST = _split("Anna Jürgen Émilie Zoë Søren Łukasz José Mei Ольга Ανδρέας Priya Tom Sarah Björn Chloé Ken")
_LAST = _split("Müller Dubois García Nowak Smith Jensen Åström Tanaka Иванова Παπαδόπουλος Patel Brown Kovač")
_DOMAINS = _split(
    "example.com example.org example.net mail.example.de example.co.uk corp.example lists.example.org "
    "example.fr example.jp"
)
_MTAS = (
    "Postfix",
    "Exim 4.97",
    "Microsoft SMTP Server (version=TLS1_2)",
    "Google Transport Security",
    "qmail",
)
_MAILERS = (
    "Microsoft Outlook 16.0",
    "Apple Mail (2.3774.500.171.1.1)",
    "Mozilla Thunderbird 115.10.1",
    "Roundcube Webmail/1.6.6",
    None,
)
_ATTACH_TYPES = (
    ("application/pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", (".pdf",)),
    ("image/jpeg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", (".jpg",)),
    ("image/png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", (".png",)),
    ("application/zip", b"PK\x03\x04\x14\x00\x00\x00", (".zip",)),
    (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        b"PK\x03\x04\x14\x00\x06\x00",
        (".docx",),
    ),
)
_FILE_STEMS = (
    "Rechnung_2024-05",
    "scan0042",
    "Präsentation Q3",
    "contract_signed",
    "IMG_4711",
    "relevé_de_compte",
    "budget-final-v7",
    "отчёт",
    "会議資料",
    "photo",
)
_OUTLOOK_CSS = (
    '<style><!--\n/* Font Definitions */\n@font-face\n\t{font-family:"Cambria Math";\n\tpanose-1:2 4 5 3 5 4 6 3 2 4;}\n'
    "@font-face\n\t{font-family:Calibri;\n\tpanose-1:2 15 5 2 2 2 4 3 2 4;}\n/* Style Definitions */\n"
    'p.MsoNormal, li.MsoNormal, div.MsoNormal\n\t{margin:0cm;\n\tfont-size:11.0pt;\n\tfont-family:"Calibri",sans-serif;'
    "\n\tmso-ligatures:standardcontextual;\n\tmso-fareast-language:EN-US;}\na:link, span.MsoHyperlink\n\t"
    "{mso-style-priority:99;\n\tcolor:#0563C1;\n\ttext-decoration:underline;}\nspan.E-MailFormatvorlage17\n\t"
    '{mso-style-type:personal-compose;\n\tfont-family:"Calibri",sans-serif;\n\tcolor:windowtext;}\n'
    ".MsoChpDefault\n\t{mso-style-type:export-only;\n\tfont-size:10.0pt;\n\tmso-fareast-language:EN-US;}\n"
    "@page WordSection1\n\t{size:612.0pt 792.0pt;\n\tmargin:70.85pt 70.85pt 2.0cm 70.85pt;}\n"
    "div.WordSection1\n\t{page:WordSection1;}\n--></style>"
)


class _Gen:
    """Builds messages from one random stream; ``eol`` is chosen per message."""

    def __init__(self, rng: random.Random) -> None:
        self.r = rng
        self.eol = "\r\n"
        self._serial = 0

    # ---------------------------------------------------------------- small pieces

    def serial(self) -> int:
        self._serial += 1
        return self._serial

    def word(self) -> str:
        r = self.r
        return r.choice(_INTL) if r.random() < 0.06 else r.choice(_WORDS)

    def sentence(self) -> str:
        n = self.r.randint(5, 16)
        s = " ".join(self.word() for _ in range(n))
        return s[0].upper() + s[1:] + self.r.choice((".", ".", ".", "?", "!"))

    def paragraph(self) -> str:
        return " ".join(self.sentence() for _ in range(self.r.randint(1, 5)))

    def person(self) -> tuple[str, str]:
        r = self.r
        first, last = r.choice(_FIRST), r.choice(_LAST)
        initial = first[0].lower() if first.isascii() else r.choice("abcdefghijklmnopqrstuvwxyz")
        return f"{first} {last}", f"{initial}.{r.randint(1, 99999)}@{r.choice(_DOMAINS)}"

    def address(self) -> str:
        name, addr = self.person()
        return formataddr((name, addr), charset="utf-8")

    def date(self, ts: float | None = None) -> tuple[str, float]:
        r = self.r
        ts = ts if ts is not None else 1_600_000_000 + r.randint(0, 150_000_000)
        off = r.choice((0, 60, 120, -300, -240, 330, 540, 60))
        t = time.gmtime(ts + off * 60)
        sign = "+" if off >= 0 else "-"
        day = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[t.tm_wday]
        mon = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")[
            t.tm_mon - 1
        ]
        text = f"{day}, {t.tm_mday:d} {mon} {t.tm_year} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} "
        return text + f"{sign}{abs(off) // 60:02d}{abs(off) % 60:02d}", ts

    def token(self, n: int, alphabet: str = "abcdefghijklmnopqrstuvwxyz0123456789") -> str:
        return "".join(self.r.choice(alphabet) for _ in range(n))

    def b64_token(self, nbytes: int) -> str:
        return base64.b64encode(self.r.randbytes(nbytes)).decode("ascii")

    def boundary(self) -> str:
        r = self.r
        n = self.serial()
        style = r.randrange(4)
        if style == 0:
            return f"----=_Part_{n}_{r.randint(10**8, 10**9)}.{r.randint(10**12, 10**13)}"
        if style == 1:
            return f"0000000000{r.getrandbits(64):016x}{n:04x}"
        if style == 2:
            return (
                f"Apple-Mail={self.token(8).upper()}-{self.token(4).upper()}-{n:04d}-{self.token(12).upper()}"
            )
        return f"_{n:03d}_{self.token(20).upper()}_"

    def subject(self) -> str:
        r = self.r
        words = [self.word() for _ in range(r.randint(3, 10))]
        if r.random() < 0.5:
            words.insert(r.randrange(len(words) + 1), r.choice(_INTL))
        text = " ".join(words)
        prefix = r.choice(("", "", "", "Re: ", "RE: ", "AW: ", "Fwd: ", "WG: "))
        return prefix + text[0].upper() + text[1:]

    # ---------------------------------------------------------------- header blocks

    def fold(self, name: str, value: str) -> str:
        """A header line folded at spaces near 76 characters, as most mailers do."""
        eol = self.eol
        line = f"{name}: "
        out: list[str] = []
        for tok in value.split(" "):
            if len(line) + len(tok) > 76 and line.strip() and not line.endswith(": "):
                out.append(line.rstrip(" "))
                line = "\t" + tok + " "
            else:
                line += tok + " "
        out.append(line.rstrip(" "))
        return eol.join(out) + eol

    def encoded(self, name: str, text: str) -> str:
        """A header whose value is RFC 2047 encoded when it is not ASCII."""
        if text.isascii():
            return self.fold(name, text)
        value = Header(text, "utf-8", header_name=name).encode(linesep=self.eol)
        return f"{name}: {value}{self.eol}"

    def trace(self, sender_domain: str, rcpt: str, ts: float) -> str:
        r, eol = self.r, self.eol
        lines = [f"Return-Path: <bounce-{self.token(10)}@{sender_domain}>{eol}", f"Delivered-To: {rcpt}{eol}"]
        for _hop in range(r.randint(2, 6)):
            host = f"mx{r.randint(1, 9)}.{r.choice(_DOMAINS)}"
            ip = f"{r.choice((192, 198, 203))}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}"
            d, ts = self.date(ts - r.randint(1, 30))
            lines.append(
                f"Received: from {host} ({host} [{ip}]){eol}\tby mail.{r.choice(_DOMAINS)} ({r.choice(_MTAS)}) "
                f"with ESMTPS id {self.token(12, 'ABCDEFGHJKLMNPQRSTUVWXYZ0123456789')}{eol}"
                f"\tfor <{rcpt}>; {d}{eol}"
            )
        if r.random() < 0.2:
            lines.append(
                self.fold(
                    "ARC-Seal",
                    f"i=1; a=rsa-sha256; t={int(ts)}; cv=none; d=google.com; s=arc-20160816; b={self.b64_token(256)}",
                )
            )
            lines.append(
                self.fold(
                    "ARC-Message-Signature",
                    "i=1; a=rsa-sha256; c=relaxed/relaxed; d=google.com; s=arc-20160816; "
                    f"h=to:subject:message-id:date:from:mime-version; bh={self.b64_token(32)}; b={self.b64_token(256)}",
                )
            )
        lines.append(
            self.fold(
                "Authentication-Results",
                f"mx.{r.choice(_DOMAINS)}; dkim=pass header.d={sender_domain} header.s=s{r.randint(1, 3)} "
                f"header.b={self.b64_token(6)}; spf=pass (domain of {sender_domain} designates "
                f"203.0.113.{r.randint(1, 254)} as permitted sender) smtp.mailfrom={sender_domain}; "
                f"dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from={sender_domain}",
            )
        )
        sig = self.b64_token(256)
        folded_sig = f"{eol}\t ".join(sig[i : i + 70] for i in range(0, len(sig), 70))
        lines.append(
            f"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d={sender_domain};{eol}"
            f"\ts=s{r.randint(1, 3)}; t={int(ts)}; bh={self.b64_token(32)};{eol}"
            f"\th=From:To:Cc:Subject:Date:Message-ID:MIME-Version:Content-Type;{eol}"
            f"\tb={folded_sig}{eol}"
        )
        return "".join(lines)

    def top_headers(self, *, trace: bool = True, subject: str | None = None) -> str:
        """Trace and originator headers of a message (without the MIME headers)."""
        r, eol = self.r, self.eol
        sender_name, sender = self.person()
        sender_domain = sender.split("@", 1)[1]
        rcpt = self.person()[1]
        date, ts = self.date()
        out = [self.trace(sender_domain, rcpt, ts)] if trace else []
        out.append(f"From: {formataddr((sender_name, sender), charset='utf-8')}{eol}")
        out.append(self.fold("To", ", ".join(self.address() for _ in range(r.randint(1, 4)))))
        if r.random() < 0.3:
            out.append(self.fold("Cc", ", ".join(self.address() for _ in range(r.randint(1, 3)))))
        out.append(self.encoded("Subject", subject or self.subject()))
        out.append(f"Date: {date}{eol}")
        out.append(f"Message-ID: <{self.token(24)}@{sender_domain}>{eol}")
        if r.random() < 0.4:
            ref = f"<{self.token(20)}@{r.choice(_DOMAINS)}>"
            out.append(f"In-Reply-To: {ref}{eol}")
            out.append(self.fold("References", " ".join([f"<{self.token(20)}@{r.choice(_DOMAINS)}>", ref])))
        mailer = r.choice(_MAILERS)
        if mailer:
            out.append(f"X-Mailer: {mailer}{eol}")
        if r.random() < 0.2:
            out.append(f"List-Unsubscribe: <mailto:unsubscribe-{self.token(12)}@{sender_domain}>{eol}")
        out.append(f"MIME-Version: 1.0{eol}")
        return "".join(out)

    # ---------------------------------------------------------------- bodies

    def text_body(self, min_bytes: int) -> str:
        r = self.r
        name = r.choice(_FIRST)
        parts = [f"Hi {name},", ""]
        size = 0
        while size < min_bytes or len(parts) < 4:
            p = self.paragraph()
            parts.extend((p, ""))
            size += len(p.encode()) + 1
        if r.random() < 0.3:
            parts.append(f"On {self.date()[0]}, {self.person()[0]} wrote:")
            parts.extend("> " + self.sentence() for _ in range(r.randint(2, 8)))
            parts.append("")
        who = self.person()[0]
        parts.extend(
            (
                "-- ",
                who,
                "Example GmbH · Hauptstraße 12 · 80331 München",
                f"Tel. +49 89 {r.randint(1000000, 9999999)}",
            )
        )
        return "\n".join(parts) + "\n"

    def encode_text(self, text: str, cte: str, charset: str = "utf-8") -> bytes:
        raw = text.encode(charset, "replace")
        eol = self.eol.encode()
        if cte == "quoted-printable":
            return binascii.b2a_qp(raw, istext=True).replace(b"\n", eol)
        if cte == "base64":
            return base64.encodebytes(raw).replace(b"\n", eol)
        return raw.replace(b"\n", eol)

    def text_part(self, text: str, *, subtype: str = "plain") -> bytes:
        r, eol = self.r, self.eol
        x = r.random()
        if x < 0.7:
            charset, cte = "utf-8", "quoted-printable"
        elif x < 0.8:
            charset, cte = "utf-8", "base64"
        elif x < 0.9:
            charset, cte = "utf-8", "8bit"
        else:
            charset, cte = "iso-8859-1", "quoted-printable"
        if subtype == "plain" and text.isascii():
            charset, cte = "us-ascii", "7bit"
        head = f'Content-Type: text/{subtype}; charset="{charset}"{eol}Content-Transfer-Encoding: {cte}{eol}{eol}'
        return head.encode() + self.encode_text(text, cte, charset)

    def html_of(self, text: str, images: Sequence[str] = ()) -> str:
        r = self.r
        paras = [p for p in text.split("\n\n") if p.strip()]
        body = "".join(
            '<p class="MsoNormal" style="margin:0 0 12px 0">'
            + html.escape(p).replace("\n", "<br>\n")
            + "<o:p></o:p></p>\n"
            for p in paras
        )
        for cid in images:
            body += f'<p class="MsoNormal"><img width="{r.randint(100, 600)}" height="{r.randint(50, 400)}" src="cid:{cid}" alt="image"></p>\n'
        css = (
            _OUTLOOK_CSS
            if r.random() < 0.5
            else "<style>body{font-family:Arial,sans-serif;font-size:14px}</style>"
        )
        return (
            '<html xmlns:o="urn:schemas-microsoft-com:office:office"><head>'
            '<meta http-equiv="Content-Type" content="text/html; charset=utf-8">\n'
            f'<meta name="Generator" content="Microsoft Word 15 (filtered medium)">\n{css}\n</head>\n'
            f'<body lang="DE" link="#0563C1" vlink="#954F72" style="word-wrap:break-word">\n<div class="WordSection1">\n'
            f"{body}</div>\n</body>\n</html>\n"
        )

    def html_part(self, text: str, images: Sequence[str] = ()) -> bytes:
        eol = self.eol
        head = f'Content-Type: text/html; charset="utf-8"{eol}Content-Transfer-Encoding: quoted-printable{eol}{eol}'
        return head.encode() + self.encode_text(self.html_of(text, images), "quoted-printable")

    def multipart(
        self, subtype: str, parts: list[bytes], *, extra: str = "", preamble: bool = False
    ) -> bytes:
        eol = self.eol
        b = self.boundary()
        head = f'Content-Type: multipart/{subtype};{extra}{eol}\tboundary="{b}"{eol}{eol}'
        e = eol.encode()
        out = [head.encode()]
        if preamble:
            out.append(b"This is a multi-part message in MIME format." + e + e)
        for p in parts:
            out.append(b"--" + b.encode() + e + p)
            if not p.endswith(e):
                out.append(e)
        out.append(b"--" + b.encode() + b"--" + e)
        return b"".join(out)

    def filename(self, ext: str) -> str:
        return self.r.choice(_FILE_STEMS) + ext

    def binary_part(self, size: int, *, inline_cid: str | None = None) -> bytes:
        r, eol = self.r, self.eol
        ctype, magic, exts = r.choice(_ATTACH_TYPES) if inline_cid is None else _ATTACH_TYPES[2]
        data = magic + r.randbytes(max(0, size - len(magic)))
        name = self.filename(exts[0])
        if name.isascii():
            name_param = f'name="{name}"'
            file_param = f'filename="{name}"'
        else:
            name_param = f'name="{Header(name, "utf-8").encode()}"'
            file_param = f"filename*={encode_rfc2231(name, 'utf-8')}"
        disp = "inline" if inline_cid else "attachment"
        head = [f"Content-Type: {ctype};{eol}\t{name_param}{eol}"]
        head.append(f"Content-Disposition: {disp};{eol}\t{file_param}; size={len(data)}{eol}")
        if inline_cid:
            head.append(f"Content-ID: <{inline_cid}>{eol}")
        head.append(f"Content-Transfer-Encoding: base64{eol}{eol}")
        return "".join(head).encode() + base64.encodebytes(data).replace(b"\n", eol.encode())

    def attachment_size(self) -> int:
        # log-uniform between 10 KB and 2 MB: many small files, a few large ones, as in real mailboxes
        return int(math.exp(self.r.uniform(math.log(10_000), math.log(2_000_000))))

    # ---------------------------------------------------------------- message kinds

    def plain(self, *, trace: bool = True) -> bytes:
        """A plain text message of 1-4 KB; a quarter of them without trace headers (as in a Sent folder)."""
        r = self.r
        target = r.randint(1024, 4096)
        head = self.top_headers(trace=trace and r.random() < 0.75).encode()
        while len(head) > target - 300:  # a long Received chain: draw again, fewer hops are as common
            head = self.top_headers(trace=trace and r.random() < 0.5).encode()
        room = target - len(head)
        body = b""
        for shrink in (1.0, 0.8, 0.6, 0.4, 0.2, 0.1, 0.0, 0.0, 0.0, 0.0):
            body = self.text_part(self.text_body(max(100, int((room - 90) / 1.2 * shrink))))
            if len(head) + len(body) <= 4096:
                break
        return head + body

    def alternative(self, *, trace: bool = True) -> bytes:
        head = self.top_headers(trace=trace)
        text = self.text_body(self.r.randint(300, 6000))
        body = self.multipart("alternative", [self.text_part(text), self.html_part(text)])
        return head.encode() + body

    def attachment(self, *, trace: bool = True, max_size: int | None = None) -> bytes:
        r = self.r
        head = self.top_headers(trace=trace)
        text = self.text_body(r.randint(200, 2000))
        first = (
            self.multipart("alternative", [self.text_part(text), self.html_part(text)])
            if r.random() < 0.6
            else self.text_part(text)
        )
        n = r.choices((1, 2, 3), weights=(6, 3, 1))[0]
        sizes = [self.attachment_size() for _ in range(n)]
        if max_size is not None:
            sizes = [min(s, max_size) for s in sizes]
        parts = [first] + [self.binary_part(s) for s in sizes]
        return head.encode() + self.multipart("mixed", parts, preamble=r.random() < 0.5)

    def forwarded(self) -> bytes:
        r, eol = self.r, self.eol
        inner_kind = r.choice(("plain", "alternative", "attachment"))
        if inner_kind == "plain":
            inner = self.plain()
        elif inner_kind == "alternative":
            inner = self.alternative()
        else:
            inner = self.attachment(max_size=300_000)
        head = self.top_headers(subject="Fwd: " + self.subject())
        note = self.text_part(self.text_body(r.randint(100, 600)))
        rfc822 = (
            f'Content-Type: message/rfc822{eol}Content-Disposition: attachment;{eol}\tfilename="forwarded.eml"{eol}{eol}'
        ).encode() + inner
        return head.encode() + self.multipart("mixed", [note, rfc822])

    def related(self) -> bytes:
        r = self.r
        head = self.top_headers()
        text = self.text_body(r.randint(300, 3000))
        cids = [f"image{i:03d}.png@01DA{self.token(12).upper()}" for i in range(r.randint(1, 3))]
        images = [self.binary_part(r.randint(5_000, 80_000), inline_cid=c) for c in cids]
        if r.random() < 0.5:  # Outlook: related(alternative(text, html), images)
            alt = self.multipart("alternative", [self.text_part(text), self.html_part(text, cids)])
            body = self.multipart("related", [alt, *images], extra=' type="multipart/alternative";')
        else:  # Thunderbird/Apple: alternative(text, related(html, images))
            rel = self.multipart("related", [self.html_part(text, cids), *images], extra=' type="text/html";')
            body = self.multipart("alternative", [self.text_part(text), rel])
        return head.encode() + body

    def make(self, kind: str) -> bytes:
        self.eol = "\r\n" if self.r.random() < 0.7 else "\n"
        builders: dict[str, Callable[[], bytes]] = {
            "plain": self.plain,
            "alternative": self.alternative,
            "attachment": self.attachment,
            "forwarded": self.forwarded,
            "related": self.related,
        }
        return builders[kind]()


def mixed_corpus(count: int, *, seed: int = 2024) -> list[Sample]:
    """``count`` messages of every kind, in the proportions of a typical business mailbox."""
    rng = random.Random(seed)
    gen = _Gen(rng)
    kinds = list(_MIX)
    weights = [_MIX[k] for k in kinds]
    out = []
    for _ in range(count):
        kind = rng.choices(kinds, weights=weights)[0]
        out.append(Sample(kind, gen.make(kind)))
    return out


def small_corpus(count: int, *, seed: int = 5322) -> list[Sample]:
    """``count`` small plain messages of 1-4 KB (trace headers, encoded subject, QP UTF-8 text)."""
    gen = _Gen(random.Random(seed))
    return [Sample("plain", gen.make("plain")) for _ in range(count)]


def write_large_message(path: str, size: int, *, seed: int = 1) -> LargeMessage:
    """Write, streaming, a message of about ``size`` bytes: a short text part and one base64 attachment.

    Memory stays at a few MiB whatever ``size`` is. Returns the attachment's name, decoded size and
    SHA-256 so that an extraction can be checked.
    """
    rng = random.Random(seed)
    gen = _Gen(rng)
    gen.eol = "\r\n"
    eol = b"\r\n"
    boundary = gen.boundary().encode()
    filename = "backup-2024-05-14.tar"
    head = gen.top_headers(subject="Nightly backup – Datensicherung vom 14.05.2024").encode()
    head += b'Content-Type: multipart/mixed;\r\n\tboundary="' + boundary + b'"' + eol + eol
    head += b"--" + boundary + eol + gen.text_part(gen.text_body(800)) + eol
    head += b"--" + boundary + eol
    head += (
        b'Content-Type: application/x-tar;\r\n\tname="' + filename.encode() + b'"\r\n'
        b'Content-Disposition: attachment;\r\n\tfilename="' + filename.encode() + b'"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n"
    )
    tail = eol + b"--" + boundary + b"--" + eol
    # each 57 input bytes become 78 output bytes (76 + CRLF)
    lines = max(1, (size - len(head) - len(tail)) // 78)
    decoded_size = lines * _B64_LINE_IN
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        f.write(head)
        left = decoded_size
        while left:
            n = min(left, _CHUNK_LINES * _B64_LINE_IN)
            data = rng.randbytes(n)
            digest.update(data)
            enc = base64.encodebytes(data).replace(b"\n", eol)
            f.write(enc[:-2] if left == n else enc)  # the delimiter's CRLF ends the last line
            left -= n
        f.write(tail)
        written = f.tell()
    return LargeMessage(path, written, filename, decoded_size, digest.hexdigest())


def write_eml(samples: list[Sample], directory: str) -> list[str]:
    """Write each sample as ``NNNNN-kind.eml`` in ``directory``; returns the paths."""
    os.makedirs(directory, exist_ok=True)
    paths = []
    for i, s in enumerate(samples):
        p = os.path.join(directory, f"{i:05d}-{s.kind}.eml")
        with open(p, "wb") as f:
            f.write(s.data)
        paths.append(p)
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description="Write the benchmark corpus as .eml files.")
    ap.add_argument("--out", required=True, help="directory to write mixed/ and small/ into")
    ap.add_argument("--mixed", type=int, default=600, help="messages in the mixed corpus")
    ap.add_argument("--small", type=int, default=3000, help="small plain messages")
    args = ap.parse_args()
    mixed = mixed_corpus(args.mixed)
    small = small_corpus(args.small)
    write_eml(mixed, os.path.join(args.out, "mixed"))
    write_eml(small, os.path.join(args.out, "small"))
    total = sum(len(s.data) for s in mixed) + sum(len(s.data) for s in small)
    print(f"wrote {len(mixed)} + {len(small)} messages ({total / 1e6:.1f} MB) under {args.out}")


if __name__ == "__main__":
    main()
