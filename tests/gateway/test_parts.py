"""The small pieces: DATA dot-stuffing in pieces, the spool and its journal, Postfix's queue id."""

from __future__ import annotations

import io
import os
import re
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smimekit.errors import GatewayError
from smimekit.gateway.log import postfix_queue_id
from smimekit.gateway.server import _stuffed
from smimekit.gateway.spool import Journal, Spool


class _Trickle(io.RawIOBase):
    """A stream that gives at most ``step`` bytes per read (so chunk boundaries fall everywhere)."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data, self.step, self.pos = data, step, 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        n = self.step if size < 0 else min(size, self.step)
        piece = self.data[self.pos : self.pos + n]
        self.pos += len(piece)
        return piece


def _reference(data: bytes) -> bytes:
    """CRLF line endings (a CR that ends the data ends its last line), dot-stuffed, CRLF.CRLF."""
    crlf = re.sub(rb"(?<!\r)\n", b"\r\n", data)
    if crlf.endswith(b"\r"):
        crlf += b"\n"
    stuffed = re.sub(rb"(?m)^\.", b"..", crlf)
    return stuffed + (b"" if stuffed.endswith(b"\r\n") or not stuffed else b"\r\n") + b".\r\n"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200).map(lambda b: b.replace(b"\x00", b".")), st.integers(1, 9))
def test_dot_stuffing_whole_or_in_pieces(data: bytes, step: int) -> None:
    data = data.replace(b"a", b"\n").replace(b"b", b"\r").replace(b"c", b".")  # the bytes that matter
    assert b"".join(_stuffed(_Trickle(data, step))) == _reference(data)  # type: ignore[arg-type]


def test_data_ending() -> None:
    assert b"".join(_stuffed(io.BytesIO(b""))) == b".\r\n"
    assert b"".join(_stuffed(io.BytesIO(b"x"))) == b"x\r\n.\r\n"
    assert b"".join(_stuffed(io.BytesIO(b".\r\n"))) == b"..\r\n.\r\n"


def test_spool_is_private_and_single(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    msg = spool.put("a@example.org", ["b@example.org"], b"Subject: x\r\n\r\nhi\r\n")
    assert stat.S_IMODE(os.stat(msg.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(spool.incoming).st_mode) == 0o700
    with pytest.raises(GatewayError, match="in use by another gateway"):
        Spool(tmp_path / "spool")
    spool.close()
    again = Spool(tmp_path / "spool")  # a restart clears what a dead gateway left
    assert not msg.path.exists()
    again.close()


def test_same_message_same_digest(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    a = spool.put("s@x.org", ["b@y.org", "a@y.org"], b"data")
    b = spool.put("s@x.org", ["a@y.org", "b@y.org"], b"data")
    c = spool.put("s@x.org", ["a@y.org"], b"data")
    assert a.digest == b.digest != c.digest
    spool.close()


def test_journal(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    digest = "ab" * 32
    assert journal.delivered(digest) == frozenset()
    journal.record(digest, ("bob@partner.example",))
    journal.record(digest, ("carol@partner.example",))
    assert Journal(tmp_path).delivered(digest) == {"bob@partner.example", "carol@partner.example"}
    assert journal.prune(now=os.path.getmtime(tmp_path / "journal" / "ab" / digest) + 7 * 86400) == 1
    assert journal.delivered(digest) == frozenset()
    with pytest.raises(ValueError):
        journal.delivered("../../etc/passwd")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            [
                b" from mx.smimekit.test (localhost [127.0.0.1])\r\n\tby mx.smimekit.test (Postfix) with ESMTP"
                b" id 4FqZ3k0Xz4z9sWx\r\n\tfor <dave@example.org>; Sat, 28 Nov 2026 18:00:00 +0000 (UTC)"
            ],
            "4FqZ3k0Xz4z9sWx",
        ),
        ([b" by mx (Postfix, from userid 0) id 8A1B2C3D4E; Sat, 28 Nov 2026"], "8A1B2C3D4E"),
        ([b" from a by b with ESMTP id 123; Sat, 28 Nov 2026"], None),  # not Postfix's
        ([], None),
    ],
)
def test_postfix_queue_id(fields: list[bytes], expected: str | None) -> None:
    assert postfix_queue_id(fields) == expected


def test_the_ending_travels_with_the_last_data() -> None:
    """The terminator is never a piece of its own (sent alone, it would wait out the next hop's delayed
    ACK: tens of milliseconds per message)."""
    assert list(_stuffed(io.BytesIO(b"Subject: x\r\n\r\nhi\r\n"))) == [b"Subject: x\r\n\r\nhi\r\n.\r\n"]
    big = b"".join(b"line %06d\r\n" % i for i in range(20000))  # several chunks
    pieces = list(_stuffed(io.BytesIO(big)))
    assert len(pieces) > 1 and pieces[-1].endswith(b"\r\n.\r\n") and len(pieces[-1]) > 5
    assert b"".join(pieces) == big + b".\r\n"


def test_next_hop_sessions_do_not_wait_for_nagle() -> None:
    import socket

    from smimekit.gateway.server import NextHop
    from tests.gateway._support import HOST, Sink

    with Sink() as sink:
        hop = NextHop((HOST, sink.port), timeout=5)
        try:
            with hop.session() as smtp:
                assert smtp.sock is not None
                assert smtp.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        finally:
            hop.close()


def _read_all(
    pieces: list[bytes],
    *,
    size_limit: int | None = None,
    limit: int = 1001,
    writes: list[bytes] | None = None,
) -> tuple[tuple[bytes | None, str], bytes]:
    """Run the gateway's DATA reader over ``pieces`` arriving one by one; returns its result (what it
    wrote and the rest joined, or None; the reply) and what it left unread."""
    import asyncio

    from smimekit.gateway.spool import read_data

    written = [] if writes is None else writes

    async def write(piece: bytes) -> None:
        written.append(piece)

    async def go() -> tuple[tuple[bytes | None, str], bytes]:
        reader = asyncio.StreamReader(limit=limit)

        async def feed() -> None:
            for piece in pieces:
                reader.feed_data(piece)
                await asyncio.sleep(0)
            reader.feed_eof()

        feeder = asyncio.create_task(feed())
        rest, problem = await read_data(reader, write, size_limit, limit)
        await feeder
        data = None if rest is None else b"".join(written) + rest
        return (data, problem), await reader.read()

    return asyncio.run(go())


_LINES = st.lists(
    st.sampled_from([b"", b".", b"..", b"a.", b"text.", b". x", b"x" * 300, b"...", b"end ."]), max_size=12
)


@settings(max_examples=300, deadline=None)
@given(_LINES, st.integers(1, 40))
def test_data_reader_undoes_dot_stuffing_whatever_the_pieces(lines: list[bytes], step: int) -> None:
    message = b"".join(line + b"\r\n" for line in lines)
    wire = b"".join(_stuffed(io.BytesIO(message))) + b"QUIT\r\n"
    pieces = [wire[i : i + step] for i in range(0, len(wire), step)]
    (data, problem), rest = _read_all(pieces)
    assert (data, problem) == (message, "")
    assert rest == b"QUIT\r\n"  # a pipelined command after the end is left for the session


def test_data_reader_limits() -> None:
    big = b"y" * 70 + b"\r\n"
    (data, problem), rest = _read_all([big * 100 + b".\r\nRSET\r\n"], size_limit=1000)
    assert data is None and problem.startswith("552") and rest == b"RSET\r\n"
    (data, problem), _ = _read_all([big * 10 + b".\r\n"], size_limit=719)
    assert data is None and problem.startswith("552")
    (data, problem), _ = _read_all([big * 10 + b".\r\n"], size_limit=720)
    assert data == big * 10 and problem == ""
    (data, problem), _ = _read_all([b"z" * 1200 + b"\r\n.\r\n"])
    assert data is None and problem.startswith("500 Line too long")
    (data, problem), _ = _read_all([b"z" * 999 + b"\r\n.\r\n"])
    assert data == b"z" * 999 + b"\r\n"
    (data, problem), _ = _read_all([b"partial line\r\nno end"])  # the connection ends first
    assert (data, problem) == (None, "")
    (data, problem), _ = _read_all([b".\r\n"])  # an empty message
    assert (data, problem) == (b"", "")


def _too_long(message: bytes, limit: int) -> bool:
    """aiosmtpd's rule: a line (as sent, CRLF-separated) with its CRLF longer than ``limit``."""
    return max(map(len, message.split(b"\r\n"))) + 2 > limit


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from([b"", b".", b"x" * 4, b"y" * 9, b"z" * 10, b"a\rb", b"c\nd", b"..e"]), max_size=16
    ),
    st.integers(1, 90),
    st.booleans(),
)
def test_data_reader_line_limit_whatever_the_pieces(lines: list[bytes], step: int, lf: bool) -> None:
    """Lines measured in pieces (with a window per step, not line by line) as aiosmtpd measures them."""
    limit = 12
    message = b"".join(line + (b"\n" if lf and i % 3 == 1 else b"\r\n") for i, line in enumerate(lines))
    wire = b"".join(_stuffed(io.BytesIO(message)))
    message = wire[:-3].replace(b"\r\n.", b"\r\n").removeprefix(b".")  # as SMTP carries it (CRLF lines)
    pieces = [wire[i : i + step] for i in range(0, len(wire), step)]
    (data, problem), _ = _read_all(pieces, limit=limit)
    if _too_long(wire[:-3], limit):
        assert (data, problem) == (None, "500 Line too long (see RFC5321 4.5.3.1.6)")
    else:
        assert (data, problem) == (message, "")


def test_data_reader_writes_bounded_pieces() -> None:
    """A large message reaches ``write`` in pieces of about 1 MiB as it arrives, never whole."""
    from smimekit.gateway.spool import PIECE

    line = b".dotted line of a large message, long enough to look like text, 0123456789\r\n"
    message = line * (5 * PIECE // len(line))
    wire = b"".join(_stuffed(io.BytesIO(message))) + b"QUIT\r\n"
    pieces = [wire[i : i + 65536] for i in range(0, len(wire), 65536)]
    writes: list[bytes] = []
    (data, problem), rest = _read_all(pieces, writes=writes)
    assert (data, problem, rest) == (message, "", b"QUIT\r\n")
    assert len(writes) >= 4 and max(map(len, writes)) < PIECE + 2 * 65536


def test_spool_writer_streams_and_digests(tmp_path: Path) -> None:
    from smimekit.gateway.spool import message_digest

    spool = Spool(tmp_path)
    writer = spool.writer("s@x.org", ["b@y.org", "a@y.org"])
    writer.write(b"Subject: x\r\n\r\n")
    writer.write(b"body\r\n")
    msg = writer.finish(b"end\r\n")
    assert msg.path.read_bytes() == b"Subject: x\r\n\r\nbody\r\nend\r\n" and msg.size == 25
    assert msg.digest == message_digest("s@x.org", ["a@y.org", "b@y.org"], msg.path.read_bytes())
    assert stat.S_IMODE(os.stat(msg.path).st_mode) == 0o600
    writer.discard()  # after finish: the spooled message is not the writer's any more
    assert msg.path.exists()
    dropped = spool.writer("s@x.org", ["b@y.org"])
    dropped.write(b"partial")
    dropped.discard()
    assert list(spool.incoming.iterdir()) == [msg.path]
    spool.close()
