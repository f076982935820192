"""``smimekit gateway run`` as a process: flags only, JSON log lines, SIGTERM drains, bad flags are one line."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import smtplib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from smimekit import mime
from tests.gateway._proc import HOST, GatewayProcess
from tests.gateway._support import PASSPHRASE, Sink, free_port, make_store, message


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_store(tmp_path_factory.mktemp("store") / "store.sqlite3")


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "password"
    path.write_bytes(PASSPHRASE + b"\n")
    return path


class SlowSink(Sink):
    """A next hop that takes its time before it accepts (so a message is in flight for a while)."""

    delay = 1.5
    started = threading.Event()

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.started.set()
        await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


def _send(port: int, sender: str, rcpts: list[str], data: bytes) -> tuple[int, bytes]:
    with smtplib.SMTP(HOST, port, timeout=60) as s:
        s.ehlo()
        s.mail(sender)
        for r in rcpts:
            s.rcpt(r)
        return s.data(data)


@pytest.fixture
def sink() -> Iterator[Sink]:
    with Sink() as s:
        yield s


def test_run_with_flags_only(store: Path, password_file: Path, tmp_path: Path, sink: Sink) -> None:
    port = free_port()
    with GatewayProcess(
        store, port=port, next_hop=sink.port, spool=tmp_path / "spool", password_file=password_file
    ) as gw:
        code, _ = _send(port, "alice@example.org", ["bob@partner.example"], message())
        assert code == 250
        gw.stop()
        assert gw.proc is not None and gw.proc.returncode == 0
    with mime.parse(sink.messages[0].data) as m:
        assert m.content_type == "application/pkcs7-mime"
    records = [json.loads(line) for line in gw.log_text().splitlines() if '"sender"' in line]
    assert len(records) == 1 and records[0]["action"] == ["sign+encrypt"]


def test_sigterm_drains_the_message_in_flight(store: Path, password_file: Path, tmp_path: Path) -> None:
    port = free_port()
    SlowSink.started.clear()
    with (
        SlowSink() as sink,
        GatewayProcess(
            store, port=port, next_hop=sink.port, spool=tmp_path / "spool", password_file=password_file
        ) as gw,
    ):
        result: list[tuple[int, bytes]] = []
        client = threading.Thread(
            target=lambda: result.append(
                _send(port, "alice@example.org", ["carol@partner.example"], message())
            )
        )
        client.start()
        assert SlowSink.started.wait(30)  # the gateway is forwarding it now
        gw.signal(signal.SIGTERM)
        time.sleep(0.3)
        with pytest.raises(OSError):  # no new sessions once draining
            smtplib.SMTP(HOST, port, timeout=5)
        client.join(30)
        assert result and result[0][0] == 250  # the message in flight was finished and acknowledged
        assert gw.wait(30) == 0
        assert len(sink.messages) == 1
    assert '"event":"stopped"' in gw.log_text()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--listen", "nowhere", "--internal-domain", "example.org"], "listen must be HOST:PORT"),
        (["--listen", "127.0.0.1:0"], "no internal domain"),
        (["--internal-domain", "example.org", "--encrypt", "sometimes"], "Invalid value for '--encrypt'"),
        # review finding: a public listener (an open relay signing with our keys) needs --allow-public
        (["--listen", "0.0.0.0:10025", "--internal-domain", "example.org"], "not a loopback address"),
        (["--listen", "[::]:10025", "--internal-domain", "example.org"], "--allow-public"),
        (
            ["--listen", "0.0.0.0:10025", "--allow-public"],
            "no internal domain",
        ),  # accepted, then the next check
        (["--listen", "[::1", "--internal-domain", "example.org"], "listen must be HOST:PORT"),
        (["--next-hop", "[::1", "--internal-domain", "example.org"], "next_hop must be HOST:PORT"),
    ],
)
def test_bad_flags_are_one_line(tmp_path: Path, args: list[str], words: str) -> None:
    from tests.gateway._proc import _MAIN

    proc = subprocess.run(
        [sys.executable, "-c", _MAIN, "--store", str(tmp_path / "s.sqlite3"), "gateway", "run", *args],
        capture_output=True,
        timeout=60,
        env=os.environ | {"PYTHONPATH": _pythonpath()},
    )
    err = proc.stderr.decode()
    assert proc.returncode == 2 and words in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def _pythonpath() -> str:
    from tests.gateway import _proc

    return f"{_proc._SRC}:{_proc._ROOT}"
