"""The base64 body of new S/MIME layers: the same lines (76 characters and CRLF) however the CMS bytes
arrive, with numpy's strided copy and without it, and never a buffer that a reader keeps and sees change."""

from __future__ import annotations

import base64
import io
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smimekit import mime, smime
from smimekit.smime import _mime
from smimekit.smime._mime import Base64Writer, base64_crlf_lines


def reference(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


@pytest.fixture(params=["numpy", "plain"])
def numpy_or_not(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "plain":
        monkeypatch.setattr(_mime, "_NUMPY", None)
    else:
        pytest.importorskip("numpy")
        monkeypatch.setattr(_mime, "_NUMPY", False)  # imported again on first use
    return str(request.param)


class Keeper:
    """A writer that keeps copies of what it was given (and the objects themselves, to see them change)."""

    def __init__(self) -> None:
        self.copies: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.copies.append(bytes(data))
        return len(data)


@pytest.mark.parametrize(
    "sizes",
    [
        [0],
        [1],
        [57],
        [56, 1, 1],
        [57 * 64],
        [57 * 64 + 1],
        [57 * 18396],  # one block
        [5, 57 * 18396, 3],  # a block straddling writes
        [1 << 20, 1 << 20, 1 << 20, 12345],
        [3 << 20],
    ],
)
def test_lines_equal_the_stdlib_encoding(numpy_or_not: str, sizes: list[int]) -> None:
    chunks = [os.urandom(n) for n in sizes]
    out = Keeper()
    writer = Base64Writer(out, head=b"HEAD\r\n\r\n")
    for chunk in chunks:
        assert writer.write(chunk) == len(chunk)
    writer.close()
    written = b"".join(out.copies)
    assert written == b"HEAD\r\n\r\n" + reference(b"".join(chunks))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=200_000), max_size=6), st.booleans())
def test_any_write_pattern_gives_the_same_lines(sizes: list[int], plain: bool) -> None:
    data = os.urandom(sum(sizes))
    saved = _mime._NUMPY
    _mime._NUMPY = None if plain else saved
    try:
        out = io.BytesIO()
        writer = Base64Writer(out)
        pos = 0
        for n in sizes:
            writer.write(memoryview(data)[pos : pos + n])
            pos += n
        writer.close()
    finally:
        _mime._NUMPY = saved
    assert out.getvalue() == reference(data)


def test_whole_lines_helper(numpy_or_not: str) -> None:
    data = os.urandom(57 * 1000)
    assert base64_crlf_lines(data) == reference(data)


def test_nothing_is_written_before_the_first_line() -> None:
    out = io.BytesIO()
    writer = Base64Writer(out, head=b"H: v\r\n\r\n")
    writer.write(b"ab")
    assert out.getvalue() == b""  # held until a line is complete or the writer is closed
    writer.close()
    assert out.getvalue() == b"H: v\r\n\r\nYWI=\r\n"


def test_a_large_compressed_message_parses_to_its_own_bytes(numpy_or_not: str) -> None:
    # the spool parses what it is written: a reused buffer must not change what it kept
    body = os.urandom(3 << 20)
    raw = (
        b"From: a@example.org\r\nSubject: big\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + reference(body)
    )
    packed = smime.compress(mime.parse(raw))
    with packed:
        reparsed = mime.parse(packed.to_bytes())
        assert reparsed.decoded() == packed.decoded()
        inner = smime.decompress(packed)
    with inner:
        assert inner.decoded() == body
