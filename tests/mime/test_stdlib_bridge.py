"""Conversion to and from the stdlib's EmailMessage: structure, headers and decoded payloads survive."""

from __future__ import annotations

import email
import email.message
import email.policy
from datetime import UTC, datetime
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smimekit.errors import MimeBuildError
from smimekit.mime import Attachment, Entity, Message, compose, from_email_message, parse, to_email_message

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(200))


def nl(text: str) -> str:
    return text.replace("\r\n", "\n")


def structure(msg: Entity) -> list[str]:
    return [e.content_type for e in msg.walk()]


def std_structure(em: email.message.Message) -> list[str]:
    return [p.get_content_type() for p in em.walk()]


def stdlib_message() -> email.message.EmailMessage:
    """A message built with the stdlib's own EmailMessage API, non-ASCII everywhere."""
    em = email.message.EmailMessage()
    em["From"] = "Jürgen Groß <j@example.de>"
    em["To"] = "Zoë Ünïcode <z@example.org>, plain@example.org"
    em["Subject"] = "Grüße — 日本語の件名"
    em["Date"] = email.utils.format_datetime(datetime(2024, 5, 17, tzinfo=UTC))
    em.set_content("Grüße aus Köln\nzweite Zeile\n")
    em.add_alternative('<p>Grüße <img src="cid:logo@x"></p>\n', subtype="html")
    html = em.get_payload()[1]  # type: ignore[index]
    html.add_related(PNG, maintype="image", subtype="png", cid="<logo@x>")
    em.add_attachment(
        b"%PDF-1.7\n\xe2\xe3\xcf\xd3", maintype="application", subtype="pdf", filename="Bericht für März.pdf"
    )
    inner = email.message.EmailMessage()
    inner["Subject"] = "innen"
    inner.set_content("eingebettet ✓\n")
    em.add_attachment(inner)
    return em


def test_from_email_message_keeps_structure_headers_and_payloads() -> None:
    em = stdlib_message()
    msg = from_email_message(em)
    assert isinstance(msg, Message)
    assert (
        structure(msg)
        == std_structure(em)
        == [
            "multipart/mixed",
            "multipart/alternative",
            "text/plain",
            "multipart/related",
            "text/html",
            "image/png",
            "application/pdf",
            "message/rfc822",
            "text/plain",
        ]
    )
    assert msg.subject == "Grüße — 日本語の件名"
    assert msg.headers["From"] == "Jürgen Groß <j@example.de>"
    assert msg.headers["To"] == "Zoë Ünïcode <z@example.org>, plain@example.org"
    leaves = [e for e in msg.walk() if not e.is_multipart() and e.message is None]
    std_leaves = [p for p in em.walk() if not p.is_multipart()]
    assert len(leaves) == len(std_leaves)
    for mine, theirs in zip(leaves, std_leaves, strict=True):
        if mine.maintype == "text":
            assert nl(mine.text()) == nl(theirs.get_content())  # type: ignore[attr-defined]
        else:
            assert mine.decoded() == theirs.get_content()  # type: ignore[attr-defined]
        assert mine.filename == theirs.get_filename()
    assert next(e for e in msg.walk() if e.content_type == "image/png").content_id == "logo@x"
    nested = next(e for e in msg.walk() if e.content_type == "message/rfc822").message
    assert nested is not None and nested.subject == "innen"
    # a normal parsed message: byte-exact from here on, CRLF by default, no >From mangling
    data = msg.to_bytes()
    assert parse(data).to_bytes() == data and data.count(b"\n") == data.count(b"\r\n")


def test_from_compat32_message() -> None:
    outer = MIMEMultipart()
    outer["Subject"] = "compat32"
    outer.attach(MIMEText("From the start\nbody ünïcode\n", "plain", "utf-8"))
    outer.attach(MIMEApplication(b"\x00\xff", Name="blob.bin"))
    msg = from_email_message(outer, eol=b"\n")
    assert structure(msg) == ["multipart/mixed", "text/plain", "application/octet-stream"]
    assert msg.parts[0].text() == "From the start\nbody ünïcode\n"
    assert msg.parts[1].decoded() == b"\x00\xff"
    assert b"\r" not in msg.to_bytes() and b">From" not in msg.to_bytes()


def test_to_email_message_of_a_composed_message() -> None:
    msg = compose(
        from_="Jöhn Dœ <john@example.org>",
        to=["Zoë <z@example.org>"],
        subject="Grüße",
        text="héllo\n",
        html="<p>héllo</p>",
        inline=[Attachment(PNG, "logo.png", content_id="logo@x")],
        attachments=[
            Attachment(b"\x00\x01", "dätä.bin"),
            Attachment("Привет\n".encode("koi8-r"), "ru.txt", charset="koi8-r"),
        ],
        charset="iso-8859-1",
    )
    before = msg.to_bytes()
    em = to_email_message(msg)
    assert isinstance(em, email.message.EmailMessage)
    assert msg.to_bytes() == before and not msg.modified
    assert std_structure(em) == structure(msg)
    assert em["subject"] == "Grüße"
    assert em["from"].addresses[0].display_name == "Jöhn Dœ"
    assert em["to"].addresses[0].addr_spec == "z@example.org"
    body = em.get_body(preferencelist=("plain",))
    assert body is not None and nl(body.get_content()) == "héllo\n"
    files = {p.get_filename(): p.get_content() for p in em.iter_attachments()}
    assert files == {"dätä.bin": b"\x00\x01", "ru.txt": "Привет\n"}


def test_both_directions_round_trip() -> None:
    em = stdlib_message()
    back = to_email_message(from_email_message(em))
    assert std_structure(back) == std_structure(em)
    assert str(back["subject"]) == str(em["subject"])
    for a, b in zip(em.walk(), back.walk(), strict=True):
        if a.get_content_maintype() == "text":  # now with CRLF line breaks
            assert nl(a.get_content()) == nl(b.get_content())  # type: ignore[attr-defined]
        elif not a.is_multipart():
            assert a.get_payload(decode=True) == b.get_payload(decode=True)


def test_bad_arguments() -> None:
    with pytest.raises(MimeBuildError, match=r"email\.message\.Message"):
        from_email_message(b"bytes")  # type: ignore[arg-type]
    with pytest.raises(MimeBuildError, match="line ending"):
        from_email_message(email.message.EmailMessage(), eol=b"\r")
    with pytest.raises(MimeBuildError, match="EmailPolicy"):
        to_email_message(parse(b"Subject: x\r\n\r\n"), policy=email.policy.compat32)


# --------------------------------------------------------------------------------------------- properties

TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r"), max_size=200)
NAME = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), min_size=1, max_size=30).filter(
    lambda s: s.strip() == s
)
FILES = st.lists(st.tuples(st.binary(max_size=300), NAME), max_size=3)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TEXT, st.none() | TEXT, FILES, st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=60))
def test_stdlib_built_messages_survive(
    text: str, html: str | None, files: list[tuple[bytes, str]], subject: str
) -> None:
    em = email.message.EmailMessage()
    em["From"] = "a@example.org"
    em["Subject"] = subject
    em.set_content(text)
    if html is not None:
        em.add_alternative(html, subtype="html")
    for data, name in files:
        em.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    msg = from_email_message(em)
    assert structure(msg) == std_structure(em)
    # RFC 5322 trims only white space (SP, HTAB) around a field value: a no-break space is content
    assert (msg.subject or "") == str(em["subject"]).strip(" \t")
    std_leaves = [p for p in em.walk() if not p.is_multipart()]
    leaves = [e for e in msg.walk() if not e.is_multipart()]
    for mine, theirs in zip(leaves, std_leaves, strict=True):
        content = theirs.get_content()  # type: ignore[attr-defined]
        if isinstance(content, str):
            assert nl(mine.text()) == nl(content)
        else:
            assert mine.decoded() == content
            assert mine.filename == theirs.get_filename()
    # and back again
    again = to_email_message(msg)
    back = [p.get_content() for p in again.walk() if not p.is_multipart()]  # type: ignore[attr-defined]
    want = [p.get_content() for p in std_leaves]  # type: ignore[attr-defined]
    assert [nl(c) if isinstance(c, str) else c for c in back] == [
        nl(c) if isinstance(c, str) else c for c in want
    ]
