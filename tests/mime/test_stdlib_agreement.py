"""The structure we find agrees with the stdlib parser, an independent implementation, on the corpus:
entity count, content types in walk order, decoded leaf payloads and the decoded Subject."""

from __future__ import annotations

import email
import email.message
import email.policy
from collections.abc import Iterator
from pathlib import Path

import pytest

from smimekit.mime import Entity, parse

VECTORS = Path(__file__).resolve().parents[3] / "shared" / "vectors"
CORPUS = sorted((VECTORS / "python-stdlib-email").glob("msg_*.txt")) + sorted(
    (VECTORS / "mimekit-testdata" / "UnitTests" / "TestData" / "messages").iterdir()
)
CORPUS.append(VECTORS / "mimekit-testdata" / "Benchmarks" / "TestData" / "messages" / "startrek.eml")

# Only these message/* types hold a nested message for us; any other message/* part is a leaf.
NESTED = {"message/rfc822", "message/global", "message/news"}

# Malformed messages, where two lenient readings may legitimately differ. Today the stdlib and we agree
# on all of them; they are listed so that a difference there is read as a choice, not a regression.
MALFORMED = {
    "msg_14.txt": "Content-Type without a subtype (read as text/plain)",
    "msg_15.txt": "an inner multipart reuses the outer boundary",
    "msg_17.txt": "multipart without any delimiter",
    "msg_19.txt": "not a message: the expected body text of msg_02 (no header/body separator)",
    "msg_25.txt": "multipart/report without a boundary parameter",
    "msg_31.txt": "the boundary parameter does not match the delimiters",
    "msg_35.txt": "no blank line between headers and body",
    "msg_37.txt": "two and four delimiters in a row",
    "msg_38.txt": "inner parts contain the outer boundaries; unterminated inner multiparts",
    "msg_39.txt": "nested multiparts all reuse one boundary",
    "msg_41.txt": "multipart/alternative without a boundary parameter",
    "msg_42.txt": "a nested multipart that has only a close delimiter",
    "msg_47.txt": "parts without a blank line after their headers",
    "bounce.txt": "a part without a blank line after its headers",
    "delivery-status-multiple-blank-lines.txt": "the close delimiter is missing",
    "empty-multipart.txt": "a multipart without any delimiter",
    "issue358.txt": "a part without a blank line after its headers",
    "missing-subtype.txt": "Content-Type without a subtype (read as text/plain)",
    "rfc2060.txt": "the close delimiter is missing",
    "startrek.eml": "one part has Content-Type 'X-BE2' (read as text/plain)",
}


def stdlib_walk(part: email.message.Message) -> Iterator[email.message.Message]:
    """The stdlib's walk(), normalised to our model of nesting.

    Deliberate differences: the stdlib parses a message/delivery-status body into one sub-message per
    header block, and every other message/* type (disposition-notification, external-body, partial,
    feedback-report ...) into a nested message. We nest only message/rfc822, message/global and
    message/news, the types whose body is a whole message; the others stay leaves whose body is kept
    as read. So the walk does not descend into those.
    """
    yield part
    ctype = part.get_content_type()
    if ctype.startswith("message/") and ctype not in NESTED:
        return
    if part.is_multipart():
        for child in part.get_payload():
            assert isinstance(child, email.message.Message)
            yield from stdlib_walk(child)


def stdlib_parse(data: bytes) -> email.message.Message:
    # Deliberate difference: we skip a leading UTF-8 byte-order mark (as MimeKit does; Windows tools
    # write one); the stdlib reads the first line as a non-header and the whole message as its body.
    return email.message_from_bytes(data.removeprefix(b"\xef\xbb\xbf"), policy=email.policy.default)


def is_leaf(e: Entity) -> bool:
    return not e.children and not e.content_type.startswith("multipart/")


@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
def test_structure_and_payloads_agree_with_the_stdlib(path: Path) -> None:
    data = path.read_bytes()
    ours = list(parse(data).walk())
    theirs = list(stdlib_walk(stdlib_parse(data)))
    assert len(ours) == len(theirs)
    assert [e.content_type for e in ours] == [p.get_content_type() for p in theirs]
    compared = 0
    for e, p in zip(ours, theirs, strict=True):
        if is_leaf(e) and not p.is_multipart():
            assert e.decoded() == p.get_payload(decode=True), e.content_type
            compared += 1
        elif not e.children:
            # a leaf for us that the stdlib took apart (see stdlib_walk): its body is kept as read
            assert e.decoded() == e.raw_body() == data[e.body_span[0] : e.body_span[1]]
    assert compared >= 1 or path.name in MALFORMED


@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
def test_decoded_subject_agrees_with_the_stdlib(path: Path) -> None:
    data = path.read_bytes()
    subject = stdlib_parse(data)["subject"]
    assert parse(data).headers.get("subject") == (None if subject is None else str(subject))


def test_the_corpus_exercises_the_comparison() -> None:
    # guard against a comparison that silently compares nothing
    assert len(CORPUS) >= 80
    leaves = subjects = encoded = 0
    for path in CORPUS:
        msg = parse(path.read_bytes())
        leaves += sum(1 for e in msg.walk() if is_leaf(e))
        field = msg.headers.field("subject")
        subjects += field is not None
        encoded += field is not None and b"=?" in field.raw
    assert leaves >= 150 and subjects >= 50 and encoded >= 1


def test_the_malformed_list_is_exactly_the_messages_with_defects() -> None:
    # a message belongs in MALFORMED when either parser finds something wrong with it (the stdlib says
    # nothing about a Content-Type without a subtype; we record InvalidContentType)
    flagged = set()
    for path in CORPUS:
        data = path.read_bytes()
        stdlib = stdlib_parse(data)
        if any(e.defects for e in parse(data).walk()) or any(p.defects for p in stdlib.walk()):
            flagged.add(path.name)
    assert flagged == set(MALFORMED)
