"""Hostile input: huge counts, huge lines, deep nesting, endless boundaries. Each finishes quickly with
a typed error or defects, in time linear in the input; a strict policy names the defect and its offset."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from smimekit.errors import MimeError, MimeLimitError, MimeParseError
from smimekit.mime import STRICT, BytesSource, Limits, Message, MimeParser, Policy, parse

# limits out of the way, to measure the parser itself on inputs the defaults would refuse
UNBOUNDED = Policy(
    limits=Limits(
        max_depth=1_000_000,
        max_parts=10_000_000,
        max_headers=10_000_000,
        max_header_line=1 << 30,
        max_header_block=1 << 30,
    )
)
BOUND_SECONDS = 10.0  # generous: what matters is that nothing hangs; linearity is checked by ratios


def timed(f: Callable[[], object]) -> tuple[float, object]:
    t0 = time.process_time()
    try:
        result: object = f()
    except MimeError as exc:
        result = exc
    return time.process_time() - t0, result


def best_of_3(f: Callable[[], object]) -> float:
    return min(timed(f)[0] for _ in range(3))


def assert_linear(make: Callable[[int], bytes], n: int, policy: Policy = UNBOUNDED) -> None:
    """Parsing 4x the input takes well under 16x the time (a quadratic parser would take ~16x)."""
    small, big = make(n), make(4 * n)
    t_small = best_of_3(lambda: parse(small, policy=policy))
    t_big = best_of_3(lambda: parse(big, policy=policy))
    assert t_big < 12 * max(t_small, 0.005), (t_small, t_big)


def multipart(n: int) -> bytes:
    return b"Content-Type: multipart/mixed; boundary=b\n\n" + b"--b\n\nx\n" * n + b"--b--\n"


def nested_multiparts(n: int) -> bytes:
    return b"".join(b"Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n" % (i, i) for i in range(n)) + (
        b"\nleaf\n"
    )


def nested_messages(n: int) -> bytes:
    return b"Content-Type: message/rfc822\n\n" * n + b"\nleaf\n"


def header_fields(n: int) -> bytes:
    return b"X-Field: value\n" * n + b"\nbody\n"


def header_line(n: int) -> bytes:
    return b"Subject: " + b"a" * n + b"\n\nbody\n"


def dash_lines(n: int) -> bytes:
    return b"Content-Type: multipart/mixed; boundary=b\n\n--b\n\n" + b"\n--" * n


# ------------------------------------------------------------------------------------ many parts


def test_100000_parts_hit_the_default_limit() -> None:
    data = multipart(100_000)
    seconds, result = timed(lambda: parse(data))
    assert isinstance(result, MimeLimitError)
    assert result.limit == "max_parts" and result.value == Limits().max_parts
    assert 0 < result.offset < len(data)
    assert seconds < BOUND_SECONDS


def test_100000_parts_parse_with_a_raised_limit() -> None:
    data = multipart(100_000)
    seconds, msg = timed(lambda: parse(data, policy=Policy(limits=Limits(max_parts=200_000))))
    assert isinstance(msg, Message)
    assert len(msg.parts) == 100_000
    assert msg.parts[-1].raw_body() == b"x"
    assert msg.to_bytes() == data
    assert msg.defects == []
    assert seconds < BOUND_SECONDS


def test_parts_take_linear_time() -> None:
    assert_linear(multipart, 10_000)


# ------------------------------------------------------------------------------------ header lines


def test_a_1mb_header_line_hits_max_header_line() -> None:
    data = header_line(1 << 20)
    seconds, result = timed(lambda: parse(data))
    assert isinstance(result, MimeLimitError)
    assert result.limit == "max_header_line"
    assert "max_header_line" in str(result)
    assert seconds < BOUND_SECONDS


def test_a_1mb_header_line_parses_with_raised_limits() -> None:
    data = header_line(1 << 20)
    policy = Policy(limits=Limits(max_header_line=2 << 20, max_header_block=4 << 20))
    msg = parse(data, policy=policy)
    subject = msg.headers.field("subject")
    assert subject is not None and len(subject.raw) == len(data) - len(b"\nbody\n")
    assert msg.raw_body() == b"body\n"
    assert msg.to_bytes() == data


def test_a_1mb_header_line_fed_in_pieces_is_refused_early() -> None:
    # the parser must not wait for the end of the line to notice it is too long
    data = header_line(1 << 20)
    parser = MimeParser(BytesSource(data))
    with pytest.raises(MimeLimitError) as info:
        for i in range(0, len(data), 4096):
            parser.feed(data[i : i + 4096])
    assert info.value.limit == "max_header_line"
    assert info.value.offset == 0


def test_a_header_line_takes_linear_time() -> None:
    assert_linear(header_line, 4 << 20)


def test_100000_header_fields() -> None:
    data = header_fields(100_000)
    seconds, result = timed(lambda: parse(data))
    assert isinstance(result, MimeLimitError) and result.limit == "max_headers"
    assert seconds < BOUND_SECONDS
    policy = Policy(limits=Limits(max_headers=100_000, max_header_block=len(data)))
    msg = parse(data, policy=policy)
    assert len(msg.headers) == 100_000
    assert msg.to_bytes() == data


def test_header_fields_take_linear_time() -> None:
    assert_linear(header_fields, 20_000)


# ------------------------------------------------------------------------------------ nesting


@pytest.mark.parametrize("make", [nested_multiparts, nested_messages], ids=["multipart", "message"])
def test_10000_deep_nesting_hits_max_depth(make: Callable[[int], bytes]) -> None:
    data = make(10_000)
    seconds, result = timed(lambda: parse(data))
    assert isinstance(result, MimeLimitError)
    assert result.limit == "max_depth" and result.value == Limits().max_depth
    assert seconds < BOUND_SECONDS
    # the limit is exact: 64 levels parse
    shallow = make(Limits().max_depth)
    assert max(e.depth for e in parse(shallow).walk()) == Limits().max_depth


@pytest.mark.parametrize("make", [nested_multiparts, nested_messages], ids=["multipart", "message"])
def test_10000_deep_nesting_without_limits_is_linear(make: Callable[[int], bytes]) -> None:
    data = make(10_000)
    seconds, msg = timed(lambda: parse(data, policy=UNBOUNDED))
    assert isinstance(msg, Message)
    assert max(e.depth for e in msg.walk()) == 10_000
    assert msg.to_bytes() == data
    assert seconds < BOUND_SECONDS
    assert_linear(make, 2_500)


# ------------------------------------------------------------------------------------ boundaries


def test_a_boundary_that_never_ends() -> None:
    data = b"Content-Type: multipart/mixed; boundary=b\n\n--b\n\n" + b"x" * 10_000_000
    seconds, msg = timed(lambda: parse(data))
    assert isinstance(msg, Message)
    assert len(msg.parts) == 1 and msg.parts[0].decoded_size == 10_000_000
    assert [d.name for d in msg.defects] == ["CloseBoundaryNotFound"]
    assert seconds < BOUND_SECONDS


def test_a_delimiter_lookalike_line_that_never_ends() -> None:
    data = b"Content-Type: multipart/mixed; boundary=b\n\n--b\n\n--b" + b"x" * 10_000_000
    seconds, msg = timed(lambda: parse(data))
    assert isinstance(msg, Message)
    assert len(msg.parts) == 1
    assert msg.to_bytes() == data
    assert seconds < BOUND_SECONDS


def test_a_10mb_line_of_dashes() -> None:
    data = b"Content-Type: multipart/mixed; boundary=b\n\n--b\n\n" + b"-" * 10_000_000 + b"\n--b--\n"
    seconds, msg = timed(lambda: parse(data))
    assert isinstance(msg, Message)
    assert len(msg.parts) == 1 and msg.parts[0].decoded_size == 10_000_000
    assert msg.defects == []
    assert seconds < BOUND_SECONDS


def test_newline_dash_dash_repeated() -> None:
    data = dash_lines(3_000_000)  # 9 MB of "\n--": every line a delimiter candidate
    seconds, msg = timed(lambda: parse(data))
    assert isinstance(msg, Message)
    assert len(msg.parts) == 1 and msg.to_bytes() == data
    assert seconds < BOUND_SECONDS


def test_delimiter_candidates_take_linear_time() -> None:
    assert_linear(dash_lines, 1_000_000)


def test_50mb_of_base64_in_one_part() -> None:
    raw = bytes(range(256)) * (3 * 1024 * 64)  # 48 MiB decoded
    import base64

    body = base64.encodebytes(raw)  # ~65 MB of 76-column lines
    data = (
        b"Content-Type: multipart/mixed; boundary=b\n\n--b\n"
        b"Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n" + body + b"--b--\n"
    )
    seconds, msg = timed(lambda: parse(data))
    assert isinstance(msg, Message)
    part = msg.parts[0]
    assert part.decoded_size == len(raw)
    assert part.decoded() == raw
    assert seconds < BOUND_SECONDS


# ------------------------------------------------------------------------------------ strict offsets

MP = b"Content-Type: multipart/mixed; boundary=b\n\n"

STRICT_CASES = [
    ("MissingHeaderBodySeparator", b"Subject: x\nnot a header\n", 11),
    ("MissingHeaderBodySeparator", MP + b"--b\nContent-Type: text/plain\n--b--\n", len(MP) + 29),
    ("InvalidHeaderLine", b" leading space\nSubject: x\n\nbody", 0),
    ("CloseBoundaryNotFound", MP + b"--b\n\nx\n", len(MP) + 7),
    ("StartBoundaryNotFound", MP + b"no parts here\n", len(MP)),
    ("NoBoundaryInMultipart", b"Content-Type: multipart/mixed\n\nbody\n", 31),
    (
        "InvalidMessageEncoding",
        b"Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\nAAAA\n",
        64,
    ),
    ("InvalidContentType", b"Subject: x\nContent-Type: text\n\nx", 11),
    (
        "BoundaryReused",
        MP + b"--b\nContent-Type: multipart/mixed; boundary=b\n\n--b--\n",
        len(MP) + 47,
    ),
    (
        # an outer delimiter ends an inner multipart that was never closed: at the line break before it
        "CloseBoundaryNotFound",
        b"Content-Type: multipart/mixed; boundary=o\n\n--o\n"
        b"Content-Type: multipart/mixed; boundary=i\n\n--i\n\nx\n--o--\n",
        96,
    ),
]


@pytest.mark.parametrize(("defect", "data", "offset"), STRICT_CASES, ids=[c[0] for c in STRICT_CASES])
def test_strict_names_the_defect_and_its_offset(defect: str, data: bytes, offset: int) -> None:
    with pytest.raises(MimeParseError) as info:
        parse(data, policy=STRICT)
    assert (info.value.defect, info.value.offset) == (defect, offset)
    assert f"at byte {offset}" in str(info.value)
    # the same input fed byte by byte fails at the same place
    parser = MimeParser(BytesSource(data), policy=STRICT)
    with pytest.raises(MimeParseError) as fed:
        for i in range(len(data)):
            parser.feed(data[i : i + 1])
        parser.close()
    assert (fed.value.defect, fed.value.offset) == (defect, offset)
    # lenient parsing records that defect at that offset instead
    found = [(d.name, d.offset) for e in parse(data).walk() for d in e.defects]
    assert (defect, offset) in found


def test_strict_two_delimiters_in_a_row() -> None:
    data = MP + b"--b\n--b\n\nx\n--b--\n"
    with pytest.raises(MimeParseError) as info:
        parse(data, policy=STRICT)
    assert (info.value.defect, info.value.offset) == ("EmptyPart", len(MP) + 4)


def test_strict_accepts_a_clean_message() -> None:
    data = (
        MP
        + b"--b\nContent-Type: text/plain\n\nx\n--b\nContent-Type: message/rfc822\n\nSubject: y\n\nz\n--b--\n"
    )
    msg = parse(data, policy=STRICT)
    assert [e.content_type for e in msg.walk()] == [
        "multipart/mixed",
        "text/plain",
        "message/rfc822",
        "text/plain",
    ]
    assert msg.to_bytes() == data


@pytest.mark.parametrize(
    "head",
    [MP + b"--b\n\nx\n--b--\n", b"Content-Type: application/octet-stream\n\n"],
    ids=["after-the-close-delimiter", "single-part"],
)
def test_max_size_holds_where_the_parser_only_counts(head: bytes) -> None:
    """Past the last delimiter the parser no longer looks at the bytes, but it still counts them."""
    limit = len(head) + 1000
    policy = Policy(limits=Limits(max_size=limit))
    parser = MimeParser(BytesSource(b""), policy=policy)
    parser.feed(head)
    for _ in range(9):
        parser.feed(b"y" * 100)
    parser.feed(b"y" * 100)  # exactly at the limit: fine
    with pytest.raises(MimeLimitError) as info:
        parser.feed(b"y")
    assert info.value.limit == "max_size"
