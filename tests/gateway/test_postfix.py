"""The gateway behind a real Postfix, delivering to a real Dovecot (LMTP, Maildir), and its faults.

The flow: a client submits to Postfix -> Postfix's content filter is ``smimekit gateway run`` (a separate
process, started with the flags the outside checks use) -> the gateway re-injects through a TCP relay
(:class:`Switch`, so that the re-injection listener can be made unreachable or silent) into Postfix's
re-injection listener -> LMTP to Dovecot for example.org, or the relay host (an aiosmtpd sink) for
everything else.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import signal
import smtplib
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from smimekit import mime, smime
from smimekit.gateway.results import authserv_id_of
from tests.gateway._proc import HOST, GatewayProcess
from tests.gateway._support import (
    NOW,
    PASSPHRASE,
    Sink,
    encrypted_for,
    free_port,
    make_store,
    message,
    pki,
    signed_by,
)

postfix_mod = pytest.importorskip("tests.servers.postfix")
dovecot_mod = pytest.importorskip("tests.servers.dovecot")

ALICE, DAVE = "alice@example.org", "dave@example.org"
BOB, CAROL = "bob@partner.example", "carol@partner.example"


class Switch:
    """A TCP relay to ``target`` that can be on, off (connections refused), stalled (connections
    accepted and left without a word, as a hung server does) or "cut-after-data" (the first message of a
    session goes through, then what the client sends is swallowed)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.target: tuple[str, int] | None = None
        self.mode = "on"
        self._listener: socket.socket | None = None
        self._held: list[socket.socket] = []
        self._listen()

    def _listen(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, self.port))
        sock.listen(64)
        self._listener = sock
        threading.Thread(target=self._accept, args=(sock,), daemon=True).start()

    def _accept(self, sock: socket.socket) -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            if self.mode == "stall":
                self._held.append(conn)
                continue
            threading.Thread(target=self._relay, args=(conn,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        assert self.target is not None
        try:
            server = socket.create_connection(self.target, timeout=10)
        except OSError:
            client.close()
            return
        server.settimeout(None)

        def pipe(a: socket.socket, b: socket.socket, upstream: bool = False) -> None:
            tail = b""
            try:
                while data := a.recv(65536):
                    if upstream and self.mode == "cut-after-data" and b"\r\n.\r\n" in tail:
                        continue  # after the first message: swallowed, the client waits for a reply
                    b.sendall(data)
                    if upstream:
                        tail = (tail + data)[-8:] if b"\r\n.\r\n" not in tail else tail
            except OSError:
                pass
            finally:
                with contextlib.suppress(OSError):
                    b.shutdown(socket.SHUT_WR)

        t = threading.Thread(target=pipe, args=(server, client), daemon=True)
        t.start()
        pipe(client, server, upstream=True)
        t.join(30)
        client.close()
        server.close()

    def off(self) -> None:
        self.mode = "off"
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None

    def on(self) -> None:
        self.mode = "on"
        for conn in self._held:
            conn.close()
        self._held.clear()
        if self._listener is None:
            self._listen()

    def stall(self) -> None:
        self.on()
        self.mode = "stall"

    def close(self) -> None:
        self.off()
        for conn in self._held:
            conn.close()


class Rig:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.store = make_store(tmp / "store.sqlite3")
        self.password_file = tmp / "password"
        self.password_file.write_bytes(PASSPHRASE + b"\n")
        self.gw_port = free_port()
        self.switch = Switch()
        self.stack = contextlib.ExitStack()
        self.sink = self.stack.enter_context(Sink())
        self.dovecot = self.stack.enter_context(dovecot_mod.Dovecot(tmp, users={ALICE: "a-pw", DAVE: "d-pw"}))
        self.postfix = self.stack.enter_context(
            postfix_mod.Postfix(
                tmp,
                lmtp=(self.dovecot.host, self.dovecot.lmtp_port),
                content_filter=(HOST, self.gw_port),
                mailboxes=[ALICE, DAVE],
                relayhost=(HOST, self.sink.port),
                relay_domains=(),
            )
        )
        self.switch.target = (self.postfix.host, self.postfix.reinject_port)
        self.runs = 0

    def gateway(self, *extra: str, spool: str = "spool") -> GatewayProcess:
        self.runs += 1
        return GatewayProcess(
            self.store,
            port=self.gw_port,
            next_hop=self.switch.port,
            spool=self.tmp / spool,
            password_file=self.password_file,
            extra=extra,
        )

    def submit(self, sender: str, rcpts: list[str], data: bytes) -> None:
        with smtplib.SMTP(self.postfix.host, self.postfix.submit_port, timeout=30) as s:
            s.sendmail(sender, rcpts, data)

    def mailbox(self, user: str) -> list[bytes]:
        return self.dovecot.messages_on_disk(user)

    def close(self) -> None:
        self.stack.close()
        self.switch.close()


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    try:
        r = Rig(tmp_path_factory.mktemp("rig"))
    except (postfix_mod.PostfixError, RuntimeError) as exc:
        if "not installed" in str(exc):
            pytest.skip(str(exc))
        raise
    try:
        yield r
    finally:
        r.close()


@pytest.fixture
def clean(rig: Rig) -> Iterator[Rig]:
    """Each test starts with an empty queue, the relay switched on and no message at the sink."""
    rig.switch.on()
    rig.sink.messages.clear()
    yield rig
    rig.switch.on()


def _ours(data: bytes) -> list[str]:
    with mime.parse(data) as m:
        return [
            v for v in m.headers.get_all("Authentication-Results") if authserv_id_of(v) == "gw.example.org"
        ]


def _new(rig: Rig, user: str, before: int, timeout: float = 30) -> bytes:
    msgs = rig.postfix.wait_for(lambda: rig.mailbox(user)[before:], timeout)
    assert len(msgs) == 1, f"{len(msgs)} messages arrived for {user}"
    return msgs[0]


def test_outgoing_signed_and_encrypted_into_the_maildir(clean: Rig) -> None:
    rig = clean
    before = len(rig.mailbox(DAVE))
    with rig.gateway() as gw:
        rig.submit(ALICE, [DAVE, BOB], message(ALICE, f"{DAVE}, {BOB}", subject="secret plans"))
        on_disk = _new(rig, DAVE, before)
        rig.postfix.wait_for(lambda: rig.sink.messages)
        rig.postfix.wait_queue_empty()
    # one JSON line, naming the queue id Postfix gave the message
    (record,) = [json.loads(x) for x in gw.log_text().splitlines() if '"sender"' in x]
    assert record["action"] == ["sign+encrypt"] and record["result"].startswith("250 ")
    assert record["queue_id"] and f"{record['queue_id']}: " in rig.postfix.log_text()
    # the file Dovecot wrote is encrypted (smime.p7m); the plaintext is nowhere in it
    with mime.parse(on_disk) as m:
        assert m.content_type == "application/pkcs7-mime" and m.filename == "smime.p7m"
    assert b"the figures are attached" not in on_disk
    opened = smime.open(
        mime.parse(on_disk), now=NOW, keys=[(pki().dave.cert, pki().dave.key)], anchors=[pki().root.cert]
    )
    assert opened.encrypted and opened.signed and opened.ok
    assert b"the figures are attached" in opened.inner.to_bytes()
    # Bob (outside, through the relay host) got his own encrypted copy
    (relayed,) = rig.sink.messages
    assert relayed.recipients == (BOB,) and b"smime.p7m" in relayed.data


def test_incoming_signed_gets_result_header_and_forgery_removed(clean: Rig) -> None:
    rig = clean
    before = len(rig.mailbox(ALICE))
    forged = {"Authentication-Results": "gw.example.org; smime=pass body.smime-identifier=ceo@example.org"}
    signed = signed_by(pki().bob, message(BOB, ALICE, extra=forged))
    unsigned = message(CAROL, ALICE, subject="forged", extra=forged)
    with rig.gateway():
        rig.submit(BOB, [ALICE], signed)
        first = _new(rig, ALICE, before)
        rig.submit(CAROL, [ALICE], unsigned)
        second = _new(rig, ALICE, before + 1)
    (result,) = _ours(first)
    assert result.startswith("gw.example.org; smime=pass (not encrypted)") and f"identifier={BOB}" in result
    assert "ceo@example.org" not in first.decode(errors="replace")
    assert _ours(second) == ["gw.example.org; smime=none (not encrypted)"]
    with mime.parse(first) as m:  # what Dovecot stored still verifies for Alice's client
        assert smime.verify(m, now=NOW, anchors=[pki().root.cert]).ok


def test_incoming_encrypted_is_decrypted_for_the_recipient(clean: Rig) -> None:
    rig = clean
    before = len(rig.mailbox(ALICE))
    data = encrypted_for(signed_by(pki().bob, message(BOB, ALICE, subject="for alice")), pki().alice)
    with rig.gateway():
        rig.submit(BOB, [ALICE], data)
        on_disk = _new(rig, ALICE, before)
    (result,) = _ours(on_disk)
    assert "smime=pass (decrypted: AES-256-GCM)" in result
    assert b"the figures are attached" in on_disk


def test_reinjection_listener_down_then_back(clean: Rig) -> None:
    """Mail stays queued while the next hop is unreachable and arrives exactly once when it is back."""
    rig = clean
    before = len(rig.mailbox(DAVE))
    rig.switch.off()
    with rig.gateway() as gw:
        rig.submit(ALICE, [DAVE], message(ALICE, DAVE, subject="while down"))
        rig.postfix.wait_for(lambda: "451 4.4.0" in gw.log_text(), 30)
        assert rig.postfix.queue_ids()  # Postfix kept it
        assert rig.mailbox(DAVE)[before:] == []
        rig.switch.on()
        rig.postfix.flush()
        _new(rig, DAVE, before)
        rig.postfix.wait_queue_empty()
        time.sleep(1)
    assert len(rig.mailbox(DAVE)) == before + 1  # exactly once


def test_gateway_killed_mid_message(clean: Rig) -> None:
    """SIGKILL while the gateway is forwarding: Postfix keeps the message; after a restart it is
    delivered once."""
    rig = clean
    before = len(rig.mailbox(DAVE))
    rig.switch.stall()  # the gateway will hang waiting for the next hop's greeting
    gw = rig.gateway(spool="spool-kill")
    gw.start()
    try:
        rig.submit(ALICE, [DAVE], message(ALICE, DAVE, subject="killed"))
        rig.postfix.wait_for(lambda: rig.switch._held, 30)  # the gateway is in the middle of it
        gw.signal(signal.SIGKILL)
        gw.wait(10)
    finally:
        gw.stop()
    rig.switch.on()
    assert rig.postfix.wait_for(rig.postfix.queue_ids, 30)
    with rig.gateway(spool="spool-kill"):  # same spool: the journal survives the restart
        rig.postfix.flush()
        _new(rig, DAVE, before, timeout=60)
        rig.postfix.wait_queue_empty(60)
        time.sleep(1)
    assert len(rig.mailbox(DAVE)) == before + 1


def test_gateway_killed_between_copies_serves_no_one_twice(clean: Rig) -> None:
    """Dave's encrypted copy was accepted by the next hop, then the gateway died before Carol's clear copy
    went out: after the restart Postfix sends the message again and only Carol gets it (the journal)."""
    rig = clean
    before = len(rig.mailbox(DAVE))
    rig.switch.on()
    rig.switch.mode = "cut-after-data"
    gw = rig.gateway(spool="spool-cut")
    gw.start()
    try:
        rig.submit(ALICE, [DAVE, CAROL], message(ALICE, f"{DAVE}, {CAROL}", subject="two copies"))
        _new(rig, DAVE, before)  # the first copy is through
        time.sleep(0.5)  # the gateway now waits for the next hop to answer the second MAIL FROM
        gw.signal(signal.SIGKILL)
        gw.wait(10)
    finally:
        gw.stop()
    assert rig.sink.messages == []
    rig.switch.on()
    with rig.gateway(spool="spool-cut") as again:
        rig.postfix.flush()
        rig.postfix.wait_for(lambda: rig.sink.messages, 60)
        rig.postfix.wait_queue_empty(60)
        time.sleep(1)
    assert len(rig.mailbox(DAVE)) == before + 1  # not twice
    assert [m.recipients for m in rig.sink.messages] == [(CAROL,)]
    assert "already served" in again.log_text()


def test_store_locked_then_delivered(clean: Rig) -> None:
    rig = clean
    before = len(rig.mailbox(DAVE))
    config = rig.tmp / "locked.toml"
    config.write_text('[gateway]\nstore_timeout = 1\n[policy]\ninternal_domains = ["example.org"]\n')
    holder = sqlite3.connect(rig.store, isolation_level=None)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with rig.gateway("--config", str(config), spool="spool-locked") as gw:
            rig.submit(ALICE, [DAVE], message(ALICE, DAVE, subject="store locked"))
            rig.postfix.wait_for(lambda: "451 4.3.0 the certificate store is busy" in gw.log_text(), 60)
            assert rig.postfix.queue_ids() and rig.mailbox(DAVE)[before:] == []
            holder.execute("COMMIT")
            holder.close()
            holder = None
            rig.postfix.flush()
            on_disk = _new(rig, DAVE, before, timeout=60)
            rig.postfix.wait_queue_empty(60)
    finally:
        if holder is not None:
            holder.close()
    assert b"smime.p7m" in on_disk


def test_required_encryption_without_certificate_is_never_sent(clean: Rig) -> None:
    rig = clean
    before = len(rig.mailbox(ALICE))
    with rig.gateway("--encrypt", "required") as gw:
        rig.submit(ALICE, [CAROL], message(ALICE, CAROL, subject="for carol", body="TOP SECRET BODY\n"))
        bounce = _new(rig, ALICE, before)  # Postfix bounced it to the sender
        rig.postfix.wait_queue_empty()
        assert "554 5.7.1" in gw.log_text()
    assert rig.sink.messages == []  # nothing went out, in clear or otherwise
    assert b"no usable certificate for carol@partner.example" in b" ".join(bounce.split())  # unfolded


def test_deferred_until_the_certificate_arrives(clean: Rig) -> None:
    """on_missing_certificate = "defer": Postfix keeps the message; once the recipient's certificate is
    in the store, the next retry sends it, encrypted."""
    from smimekit.store import open_store
    from tests.testpki import make_ee

    rig = clean
    heidi_addr = "heidi@partner.example"
    heidi = make_ee(
        heidi_addr, pki().root, not_before=NOW - dt.timedelta(days=1), not_after=NOW + dt.timedelta(days=9)
    )
    config = rig.tmp / "defer.toml"
    config.write_text('[policy]\ninternal_domains = ["example.org"]\non_missing_certificate = "defer"\n')
    with rig.gateway("--config", str(config), "--encrypt", "required", spool="spool-defer") as gw:
        rig.submit(ALICE, [heidi_addr], message(ALICE, heidi_addr, body="LATER\n"))
        rig.postfix.wait_for(lambda: "451 4.7.1" in gw.log_text(), 30)
        assert rig.postfix.queue_ids() and rig.sink.messages == []  # kept, nothing sent
        with open_store(rig.store) as store:
            store.add_certificate(heidi.cert)
        rig.postfix.flush()
        (got,) = rig.postfix.wait_for(lambda: rig.sink.messages, 60)
        rig.postfix.wait_queue_empty(60)
    assert got.recipients == (heidi_addr,) and b"LATER" not in got.data
    opened = smime.open(
        mime.parse(got.data), now=NOW, keys=[(heidi.cert, heidi.key)], anchors=[pki().root.cert]
    )
    assert opened.encrypted and opened.ok and b"LATER" in opened.inner.to_bytes()
