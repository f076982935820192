"""A message of 120 MB through a gateway process: delivered intact, and the process's memory does not grow
with it (DATA streams into the spool, copies are rendered to files, the next hop gets them in pieces)."""

from __future__ import annotations

import hashlib
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from smimekit import mime, smime
from smimekit.gateway.spool import read_data
from tests.gateway._proc import HOST, GatewayProcess
from tests.gateway._support import PASSPHRASE, free_port, make_store, pki

SIZE = 120_000_000  # bytes of body
RSS_BOUND = 150 << 20  # the gateway process's peak resident memory, whatever the message size
ALICE, BOB, CAROL = "alice@example.org", "bob@partner.example", "carol@partner.example"
_LINE = 76  # base64 lines, as a large attachment has them


@dataclass(frozen=True)
class Generated:
    sha256: str  # of the message as the gateway receives it (dot-unstuffed)
    body_sha256: str  # of the body alone
    size: int


def _head(to: str) -> bytes:
    return (
        f"From: {ALICE}\r\nTo: {to}\r\nSubject: a large report\r\nMessage-ID: <large-{to}@test>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
    ).encode()


def _blocks(n: int) -> Iterator[bytes]:
    """``n`` bytes of body in blocks of about 1 MiB: numbered 76-character lines, every 97th starting with
    a dot (which SMTP doubles), never the same block twice."""
    block = 0
    left = n
    while left > 0:
        lines = []
        for i in range(13797):  # 13797 lines of 78 bytes: about 1 MiB
            number = b"%012d" % (block * 13797 + i)
            lead = b"." if i % 97 == 0 else b"Q"
            lines.append(lead + number + b"x" * (_LINE - 13) + b"\r\n")
        data = b"".join(lines)[:left]
        if len(data) == left and not data.endswith(b"\r\n"):
            data = data[:-2] + b"\r\n"  # the message ends with a line end
        left -= len(data)
        block += 1
        yield data


def _send_streamed(port: int, to: str, body_size: int) -> tuple[int, bytes, Generated]:
    """Submit a message of ``body_size`` body bytes, generated and dot-stuffed on the fly (never whole in
    memory); returns the reply to DATA and the digests of what was sent."""
    whole = hashlib.sha256()
    body = hashlib.sha256()
    size = 0
    with socket.create_connection((HOST, port), timeout=120) as sock, sock.makefile("rb") as replies:

        def reply() -> tuple[int, bytes]:
            while True:
                line = replies.readline()
                if line[3:4] != b"-":
                    return int(line[:3]), line[4:].strip()

        def command(text: str, expected: int) -> None:
            sock.sendall(text.encode() + b"\r\n")
            code, said = reply()
            assert code == expected, (text, code, said)

        assert reply()[0] == 220
        command("EHLO client.test", 250)
        command(f"MAIL FROM:<{ALICE}>", 250)
        command(f"RCPT TO:<{to}>", 250)
        command("DATA", 354)
        head = _head(to)
        whole.update(head)
        size += len(head)
        sock.sendall(head)
        at_line_start = True
        for block in _blocks(body_size):
            whole.update(block)
            body.update(block)
            size += len(block)
            wire = block.replace(b"\r\n.", b"\r\n..")
            if at_line_start and wire.startswith(b"."):
                wire = b"." + wire
            at_line_start = wire.endswith(b"\r\n")
            sock.sendall(wire)
        sock.sendall(b".\r\n")
        code, text = reply()
        sock.sendall(b"QUIT\r\n")
    return code, text, Generated(whole.hexdigest(), body.hexdigest(), size)


@dataclass(frozen=True)
class Delivered:
    recipients: tuple[str, ...]
    path: Path
    sha256: str
    size: int


class _FileSink(SMTP):
    """A next hop that streams each message into a file (aiosmtpd's own DATA loop holds the message in
    memory and costs a coroutine step per line: minutes for 1.6 million lines)."""

    directory: Path
    delivered: list[Delivered]

    async def smtp_DATA(self, arg: str) -> None:
        assert self.envelope is not None
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        path = self.directory / f"delivered-{len(self.delivered)}"
        digest = hashlib.sha256()
        size = 0
        with open(path, "wb") as f:

            async def write(piece: bytes) -> None:
                nonlocal size
                f.write(piece)
                digest.update(piece)
                size += len(piece)

            rest, problem = await read_data(self._reader, write, None, 1001)
            assert rest is not None, problem
            await write(rest)
        self.delivered.append(Delivered(tuple(self.envelope.rcpt_tos), path, digest.hexdigest(), size))
        self._set_post_data_state()  # type: ignore[no-untyped-call]
        await self.push("250 2.0.0 Ok: queued as SINK")


class _SinkController(Controller):
    def __init__(self, directory: Path) -> None:
        super().__init__(object(), hostname=HOST, port=free_port())
        self.directory = directory
        self.delivered: list[Delivered] = []

    def factory(self) -> SMTP:
        session = _FileSink(self.handler, hostname=HOST)
        session.directory = self.directory
        session.delivered = self.delivered
        return session


def _peak_rss(pid: int) -> int:
    """VmHWM of ``pid``: its peak resident memory so far, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc")


@pytest.mark.slow
def test_120_mb_message_streams_through_in_bounded_memory(tmp_path: Path) -> None:
    store = make_store(tmp_path / "store.sqlite3")
    password = tmp_path / "password"
    password.write_bytes(PASSPHRASE + b"\n")
    config = tmp_path / "gateway.toml"
    config.write_text(
        "[gateway]\nmax_message_size = 200000000\n"
        '[policy]\ninternal_domains = ["example.org"]\nsign = false\nrevocation = "off"\n'
        f'[policy.recipients."{CAROL}"]\nencrypt = "never"\n'
    )
    sink = _SinkController(tmp_path)
    sink.start()
    port = free_port()
    gateway = GatewayProcess(
        store,
        port=port,
        next_hop=sink.port,
        spool=tmp_path / "spool",
        password_file=password,
        extra=("--config", str(config)),
    )
    try:
        with gateway:
            assert gateway.proc is not None
            idle = _peak_rss(gateway.proc.pid)
            started = time.monotonic()
            code, text, sent = _send_streamed(port, CAROL, SIZE)  # passed on as it came
            relayed = time.monotonic() - started
            assert code == 250, text
            after_relay = _peak_rss(gateway.proc.pid)
            started = time.monotonic()
            code, text, encrypted_sent = _send_streamed(port, BOB, SIZE)  # encrypted for bob
            encrypted = time.monotonic() - started
            assert code == 250, text
            after_encrypt = _peak_rss(gateway.proc.pid)
    finally:
        sink.stop()
    print(
        f"\npeak RSS of the gateway: {idle >> 20} MiB idle, {after_relay >> 20} MiB after relaying"
        f" {sent.size / 1e6:.0f} MB in {relayed:.1f} s, {after_encrypt >> 20} MiB after encrypting"
        f" {encrypted_sent.size / 1e6:.0f} MB in {encrypted:.1f} s"
    )
    relay_copy, encrypted_copy = sink.delivered
    assert relay_copy.recipients == (CAROL,)
    assert (relay_copy.size, relay_copy.sha256) == (sent.size, sent.sha256)  # byte for byte
    assert encrypted_copy.recipients == (BOB,)
    with mime.parse_file(encrypted_copy.path) as message:
        assert smime.kind_of(message) is not None and message.content_type == "application/pkcs7-mime"
        inner, _ = smime.decrypt(message, key=pki().bob.key, certificate=pki().bob.cert)
        with inner:
            body = hashlib.sha256()
            for piece in inner.iter_raw_body():
                body.update(piece)
            assert body.hexdigest() == encrypted_sent.body_sha256
    assert after_encrypt < RSS_BOUND, f"peak RSS {after_encrypt >> 20} MiB"
    assert not list((tmp_path / "spool" / "incoming").glob("msg-*"))  # nothing left in the spool
