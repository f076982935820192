"""Editing one part re-emits only that part: every byte outside it stays as read, so a signature over
another part still verifies."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from smimekit.errors import MimeBuildError
from smimekit.mime import Entity, Message, parse, parse_file

VECTORS = Path(__file__).resolve().parents[3] / "shared" / "vectors"
STDLIB = VECTORS / "python-stdlib-email"


def shape(msg: Entity) -> list[tuple[int, str]]:
    return [(e.depth, e.content_type) for e in msg.walk()]


def only_target_changed(data: bytes, msg: Message, target: Entity) -> bytes:
    """Check that the output is the input with the target's span replaced; return the new target bytes."""
    out = msg.to_bytes()
    start, end = target.span
    new = target.to_bytes()
    assert out == data[:start] + new + data[end:]
    buf = io.BytesIO()
    msg.write_to(buf)
    assert buf.getvalue() == out
    return new


def test_set_header_on_a_nested_part_re_emits_only_that_part() -> None:
    # msg_02: multipart/mixed > multipart/digest > message/rfc822 > text/plain
    data = (STDLIB / "msg_02.txt").read_bytes()
    msg = parse(data)
    digest = msg.parts[2]
    inner = digest.parts[1].message
    assert inner is not None
    before = {id(e): e.to_bytes() for e in msg.walk()}
    inner.set_header("Subject", "edited")
    new = only_target_changed(data, msg, inner)
    assert b"Subject: edited\n" in new
    # the target, and only its ancestors, are marked modified; every other entity keeps its bytes
    ancestors = {id(msg), id(digest), id(digest.parts[1]), id(inner)}
    for e in msg.walk():
        assert e.modified == (id(e) in ancestors)
        if id(e) not in ancestors:
            assert e.to_bytes() == before[id(e)]
    # the result parses back to the same structure, with the new value in place of the old one
    again = parse(msg.to_bytes())
    assert shape(again) == shape(msg)
    edited = again.parts[2].parts[1].message
    assert edited is not None
    assert edited.headers.get_all("subject") == ["edited"]
    assert [h.name for h in edited.headers] == [h.name for h in inner.headers]  # kept its place


@pytest.mark.parametrize("cte", ["base64", "quoted-printable", "7bit"])
def test_set_body_on_a_nested_leaf(cte: str) -> None:
    data = (STDLIB / "msg_13.txt").read_bytes()  # LF line endings; multipart > multipart > text, gif
    msg = parse(data)
    inner = msg.parts[1]
    assert inner.content_type == "multipart/mixed"
    target = inner.parts[0]
    assert target.raw_body() == b"Hi there,\n\nThis is the dingus fish.\n"
    text = "new body with a line\nand caf\u00e9\n" if cte != "7bit" else "plain new body\n"
    target.set_body(text.encode(), transfer_encoding=cte)
    new = only_target_changed(data, msg, target)
    assert b"\r\n" not in new  # line endings follow the part's own (LF) headers
    again = parse(msg.to_bytes())
    assert shape(again) == shape(msg)
    edited = again.parts[1].parts[0]
    assert edited.transfer_encoding == cte
    assert edited.decoded() == text.encode()
    # every other leaf decodes exactly as before
    old_leaves = [e for e in parse(data).walk() if not e.children]
    new_leaves = [e for e in again.walk() if not e.children]
    assert len(old_leaves) == len(new_leaves) == 3
    assert [e.decoded() for e in new_leaves if e is not edited] == [
        e.decoded() for e in old_leaves if e.span != target.span
    ]


def test_editing_the_signature_part_keeps_the_signed_part_exact() -> None:
    # RFC 1847: the signed content is the first part's bytes, up to the line break before the delimiter
    data = (STDLIB / "msg_45.txt").read_bytes()
    signed = re.search(rb"^--borderline\n(.*?)\n--borderline$", data, re.S | re.M)
    assert signed is not None
    msg = parse(data)
    msg.parts[1].set_header("Content-Description", "replaced")
    msg.remove_header("X-Long-Line")
    again = parse(msg.to_bytes())
    assert again.parts[0].to_bytes() == signed.group(1)
    assert again.parts[1].headers.get("content-description") == "replaced"
    assert again.parts[1].decoded() == msg.parts[1].decoded()


def test_root_header_edits_keep_the_body_bytes() -> None:
    data = (STDLIB / "msg_07.txt").read_bytes()
    msg = parse(data)
    body = data[msg.body_span[0] :]
    assert msg.remove_header("X-Nonexistent") == 0
    assert not msg.modified  # removing nothing changes nothing
    assert msg.remove_header("Date") == 1
    msg.add_header("X-First", "at the top", first=True)
    msg.add_header("X-Last", "at the end")
    msg.set_header("Subject", "replaced")
    out = msg.to_bytes()
    assert out.endswith(msg.separator + body)
    again = parse(out)
    names = [h.name for h in again.headers]
    assert (names[0], names[-1]) == ("X-First", "X-Last")
    assert "date" not in again.headers
    assert again.headers.get("subject") == "replaced"
    assert again.raw_body() == body
    assert [p.to_bytes() for p in again.parts] == [p.to_bytes() for p in parse(data).parts]


def test_set_header_replaces_every_occurrence_in_place() -> None:
    data = b"A: 1\nB: 2\nA: 3\nC: 4\n\nbody\n"
    msg = parse(data)
    msg.set_header("a", "new")
    assert [h.raw for h in msg.headers] == [b"a: new\n", b"B: 2\n", b"C: 4\n"]
    assert msg.to_bytes() == b"a: new\nB: 2\nC: 4\n\nbody\n"


def test_editing_a_message_parsed_from_a_file(tmp_path: Path) -> None:
    data = (STDLIB / "msg_10.txt").read_bytes()
    path = tmp_path / "m.eml"
    path.write_bytes(data)
    with parse_file(path) as msg:
        target = msg.parts[3]
        target.set_body(b"replaced\n")
        only_target_changed(data, msg, target)
        assert parse(msg.to_bytes()).parts[3].decoded() == b"replaced\n"


def test_set_body_refuses_a_multipart() -> None:
    msg = parse((STDLIB / "msg_02.txt").read_bytes())
    with pytest.raises(MimeBuildError):
        msg.set_body(b"x")
    with pytest.raises(MimeBuildError):
        msg.parts[2].parts[0].set_body(b"x")  # a message/rfc822 part
    assert not msg.modified


# ------------------------------------------------------------------------------------ known bugs


def test_an_inner_multipart_ends_before_the_line_break_of_the_outer_delimiter() -> None:
    # RFC 2046: the line break before a delimiter belongs to the delimiter, also right after an inner
    # close delimiter; otherwise a signature over the inner multipart (multipart/signed > multipart/mixed)
    # would be computed over one line break too many
    inner = b"Content-Type: multipart/mixed; boundary=i\n\n--i\n\nx\n--i--"
    data = b"Content-Type: multipart/signed; boundary=o\n\n--o\n" + inner + b"\n--o\n\nsig\n--o--\n"
    msg = parse(data)
    assert msg.parts[0].to_bytes() == inner


def test_set_body_on_an_empty_part() -> None:
    msg = parse(b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\n--b--\n")
    msg.parts[0].set_body(b"new", transfer_encoding="7bit")
    again = parse(msg.to_bytes())
    assert [d.name for e in again.walk() for d in e.defects] == []
    assert again.parts[0].decoded() == b"new"


def test_add_a_field_after_a_truncated_field() -> None:
    msg = parse(b"Subject: hi")
    msg.set_header("X-Test", "v")
    again = parse(msg.to_bytes())
    assert again.headers.get("subject") == "hi"
    assert again.headers.get("x-test") == "v"


def test_add_a_field_after_a_truncated_delimiter() -> None:
    msg = parse(b"Content-Type: multipart/mixed; boundary=a\n\n--a")
    msg.parts[0].set_header("X-Test", "v")
    again = parse(msg.to_bytes())
    assert len(again.parts) == 1
    assert again.parts[0].headers.get("x-test") == "v"


def test_add_a_field_to_a_message_whose_parent_has_no_blank_line() -> None:
    msg = parse(b"Content-Type: message/rfc822\nnot a header\n")
    inner = msg.message
    assert inner is not None
    inner.set_header("X-Test", "v")
    again = parse(msg.to_bytes())
    assert "x-test" not in again.headers
    assert again.message is not None and again.message.headers.get("x-test") == "v"
