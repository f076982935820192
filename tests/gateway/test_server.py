"""The SMTP adapter against aiosmtpd next hops: what arrives, and what Postfix is told.

A sink that records, a sink that is down, a sink that answers 4xx or 5xx; the store is a real SQLite
store holding the test PKI of ``_support``.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime as dt
import json
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from smimekit import mime, smime
from smimekit.gateway.results import authserv_id_of
from tests.gateway._support import (
    HOST,
    NOW,
    PASSPHRASE,
    GatewayThread,
    Sink,
    encrypted_for,
    make_store,
    message,
    pki,
    settings,
    signed_by,
)

ALICE, DAVE = "alice@example.org", "dave@example.org"
BOB, CAROL, ERIN = "bob@partner.example", "carol@partner.example", "erin@outside.example"


@pytest.fixture(scope="module")
def store_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_store(tmp_path_factory.mktemp("store") / "store.sqlite3")


@pytest.fixture
def store(store_template: Path, tmp_path: Path) -> Path:
    target = tmp_path / "store.sqlite3"
    target.write_bytes(store_template.read_bytes())
    return target


@pytest.fixture
def sink() -> Iterator[Sink]:
    with Sink() as s:
        yield s


def _gateway(sink_port: int, store: Path, tmp_path: Path, **policy: object) -> GatewayThread:
    return GatewayThread(settings(sink_port, **policy), store, tmp_path / "spool")


def _open(data: bytes, *idents: object) -> smime.OpenResult:
    p = pki()
    keys = [(i.cert, i.key) for i in idents]  # type: ignore[attr-defined]
    return smime.open(mime.parse(data), now=NOW, keys=keys, anchors=[p.root.cert])


def _results(data: bytes) -> list[str]:
    with mime.parse(data) as m:
        return m.headers.get_all("Authentication-Results")


# -------------------------------------------------------------------------------- outgoing


def test_outgoing_signed_and_encrypted_per_recipient(sink: Sink, store: Path, tmp_path: Path) -> None:
    with _gateway(sink.port, store, tmp_path) as gw:
        code, text = gw.send(ALICE, [BOB, CAROL], message(to=f"{BOB}, {CAROL}"))
    assert code == 250, text
    got = sink.by_recipient()
    assert set(got) == {BOB, CAROL} and len(sink.messages) == 2
    # Bob: encrypted for him, signed by Alice inside
    with mime.parse(got[BOB]) as m:
        assert m.content_type == "application/pkcs7-mime"
    opened = _open(got[BOB], pki().bob)
    assert opened.encrypted and opened.signed and opened.ok
    assert b"the figures are attached" in opened.inner.to_bytes()
    # Carol: no certificate, opportunistic: clear but signed
    with mime.parse(got[CAROL]) as m:
        assert m.content_type == "multipart/signed"
        report = smime.verify(m, now=NOW, anchors=[pki().root.cert])
        assert report.ok and report.signatures[0].signer is not None
        assert report.signatures[0].signer.emails == (ALICE,)
    (line,) = [json.loads(x) for x in gw.log_lines if '"sender"' in x]  # one line per message
    assert line["sender"] == ALICE and line["direction"] == "outgoing"
    assert line["action"] == ["sign+encrypt", "sign"] and line["result"].startswith("250")
    assert line["ms"] > 0 and set(line) >= {"queue_id", "recipients", "id"}


def test_required_encryption_without_certificate_is_rejected(sink: Sink, store: Path, tmp_path: Path) -> None:
    with _gateway(sink.port, store, tmp_path, encrypt="required") as gw:
        code, text = gw.send(ALICE, [BOB, CAROL], message(to=f"{BOB}, {CAROL}"))
    assert code == 554 and CAROL in text and "5.7.1" in text
    assert sink.messages == []  # nobody got it, not even Bob who has a certificate


def test_required_encryption_deferred(sink: Sink, store: Path, tmp_path: Path) -> None:
    with _gateway(sink.port, store, tmp_path, encrypt="required", on_missing_certificate="defer") as gw:
        code, text = gw.send(ALICE, [CAROL], message(to=CAROL))
    assert code == 451 and "4.7.1" in text and CAROL in text
    assert sink.messages == []


def test_subject_tag_forces_encryption_and_is_removed(sink: Sink, store: Path, tmp_path: Path) -> None:
    with _gateway(sink.port, store, tmp_path, encrypt="never") as gw:
        code, _ = gw.send(ALICE, [BOB], message(subject="[secure] salaries"))
        assert code == 250
        code, text = gw.send(ALICE, [CAROL], message(to=CAROL, subject="[secure] salaries"))
    assert code == 554 and CAROL in text  # tagged, no certificate: never in clear
    assert len(sink.messages) == 1
    data = sink.messages[0].data
    with mime.parse(data) as m:
        assert m.content_type == "application/pkcs7-mime"
        assert m.headers["Subject"] == "salaries"
    assert b"salaries" in _open(data, pki().bob).inner.to_bytes()


def test_wrong_passphrase_keeps_the_mail(sink: Sink, store: Path, tmp_path: Path) -> None:
    gw = GatewayThread(settings(sink.port), store, tmp_path / "spool", passphrase=b"wrong")
    with gw:
        code, text = gw.send(ALICE, [BOB], message())
    assert code == 451 and "4.3.5" in text and "private key" in text and sink.messages == []


# -------------------------------------------------------------------------------- the next hop


def test_next_hop_down_gives_4xx_and_leaves_nothing(store: Path, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind((HOST, 0))
        dead = s.getsockname()[1]  # bound, never listening
        with _gateway(dead, store, tmp_path) as gw:
            code, text = gw.send(ALICE, [BOB], message())
    assert code == 451 and "4.4.0" in text
    assert list((tmp_path / "spool" / "incoming").iterdir()) == []


@pytest.mark.parametrize(
    ("reply", "expected"), [("451 4.3.0 try later", 451), ("550 5.1.1 no such user", 554)]
)
def test_next_hop_refusal_is_passed_on(store: Path, tmp_path: Path, reply: str, expected: int) -> None:
    with Sink(reply=reply) as sink, _gateway(sink.port, store, tmp_path) as gw:
        code, text = gw.send(ALICE, [BOB], message())
    assert code == expected and reply.split(" ", 2)[2] in text


def test_retry_after_partial_delivery_serves_only_the_rest(store: Path, tmp_path: Path) -> None:
    """Bob's copy went out, Carol's was refused for now: Postfix retries the same message, and only Carol
    gets it then (the journal remembers Bob)."""
    data = message(to=f"{BOB}, {CAROL}")
    # as Postfix hands it over: its Received field names the queue id (what makes a retry a retry)
    received = b"Received: from submit (localhost [127.0.0.1])\r\n\tby mx.example.org (Postfix) with ESMTP id 4QxY7Z1abc\r\n\tfor <bob@partner.example>; Sat, 28 Nov 2026 18:00:00 +0000 (UTC)\r\n"
    data = received + data

    class Picky(Sink):
        async def handle_RCPT(self, server, session, envelope, address, options):  # type: ignore[no-untyped-def]
            if address == CAROL and self.reply == "refuse carol":
                return "450 4.2.0 mailbox busy"
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
            saved, self.reply = self.reply, None
            try:
                return await super().handle_DATA(server, session, envelope)
            finally:
                self.reply = saved

    with Picky(reply="refuse carol") as sink, _gateway(sink.port, store, tmp_path) as gw:
        code, _ = gw.send(ALICE, [BOB, CAROL], data)
        assert code == 451
        assert [m.recipients for m in sink.messages] == [(BOB,)]
        sink.reply = None
        code, _ = gw.send(ALICE, [BOB, CAROL], data)
        assert code == 250
    assert [m.recipients for m in sink.messages] == [(BOB,), (CAROL,)]
    records = [json.loads(x) for x in gw.log_lines if '"sender"' in x]
    assert [r["queue_id"] for r in records] == ["4QxY7Z1abc"] * 2


def test_identical_mail_without_queue_id_is_not_dropped(sink: Sink, store: Path, tmp_path: Path) -> None:
    """The same bytes twice, not from Postfix: two messages, not a retry."""
    with _gateway(sink.port, store, tmp_path) as gw:
        assert gw.send(ALICE, [CAROL], message(to=CAROL))[0] == 250
        assert gw.send(ALICE, [CAROL], message(to=CAROL))[0] == 250
    assert len(sink.messages) == 2


# -------------------------------------------------------------------------------- incoming


def test_forged_result_header_removed_and_signed_mail_annotated(
    sink: Sink, store: Path, tmp_path: Path
) -> None:
    forged = {"Authentication-Results": "GW.example.org; smime=pass body.smime-identifier=ceo@example.org"}
    other = "mx.partner.example; dkim=pass header.d=partner.example"
    data = message(BOB, ALICE, extra={**forged})
    data = data.replace(b"From:", f"Authentication-Results: {other}\r\nFrom:".encode(), 1)
    with _gateway(sink.port, store, tmp_path) as gw:
        code, _ = gw.send(BOB, [ALICE], signed_by(pki().bob, data))
    assert code == 250
    results = _results(sink.messages[0].data)
    ours = [r for r in results if authserv_id_of(r) == "gw.example.org"]
    assert len(ours) == 1 and "ceo@example.org" not in ours[0]
    assert ours[0].startswith("gw.example.org; smime=pass (not encrypted)")
    assert f"body.smime-identifier={BOB}" in ours[0]
    assert other in results  # someone else's results are left alone
    with mime.parse(sink.messages[0].data) as m:  # the signature still verifies for the user's client
        assert smime.verify(m, now=NOW, anchors=[pki().root.cert]).ok


def test_forged_header_removed_from_unsigned_mail(sink: Sink, store: Path, tmp_path: Path) -> None:
    data = message(ERIN, ALICE, extra={"Authentication-Results": "gw.example.org (v1); smime=pass"})
    with _gateway(sink.port, store, tmp_path) as gw:
        assert gw.send(ERIN, [ALICE], data)[0] == 250
    assert _results(sink.messages[0].data) == ["gw.example.org; smime=none (not encrypted)"]


def test_untrusted_and_tampered_signatures(sink: Sink, store: Path, tmp_path: Path) -> None:
    untrusted = signed_by(pki().erin, message(ERIN, ALICE))
    tampered = signed_by(pki().bob, message(BOB, ALICE)).replace(b"figures are", b"figures were")
    with _gateway(sink.port, store, tmp_path) as gw:
        assert gw.send(ERIN, [ALICE], untrusted)[0] == 250
        assert gw.send(BOB, [ALICE], tampered)[0] == 250
    first, second = (_results(m.data)[0] for m in sink.messages)
    assert "smime=policy" in first and "reason=" in first and f"body.smime-identifier={ERIN}" in first
    assert "smime=fail" in second


def test_encrypted_incoming_decrypted_per_recipient(sink: Sink, store: Path, tmp_path: Path) -> None:
    inner = message(BOB, f"{ALICE}, {DAVE}", extra={"Authentication-Results": "gw.example.org; smime=pass"})
    data = encrypted_for(signed_by(pki().bob, inner), pki().alice)  # for Alice only
    with _gateway(sink.port, store, tmp_path) as gw:
        assert gw.send(BOB, [ALICE, DAVE], data)[0] == 250
    got = sink.by_recipient()
    alice = _results(got[ALICE])
    assert len(alice) == 1 and alice[0].startswith("gw.example.org; smime=pass (decrypted: AES-256-GCM)")
    with mime.parse(got[ALICE]) as m:
        assert m.content_type == "multipart/signed"  # decrypted, the signature kept for her client
    # Dave has a key, but the message was not encrypted for him: he gets it as it came
    assert b"application/pkcs7-mime" in got[DAVE] and "smime=neutral" in _results(got[DAVE])[0]


def test_signer_certificate_harvested(sink: Sink, store: Path, tmp_path: Path) -> None:
    from smimekit.store import open_store

    with _gateway(sink.port, store, tmp_path) as gw:
        assert gw.send(ERIN, [ALICE], signed_by(pki().erin, message(ERIN, ALICE)))[0] == 250
    with open_store(store) as s:
        assert [r.source for r in s.find_by_email(ERIN)] == ["harvest"]
        learned = s.correspondent(ERIN)
        assert learned is not None and "2.16.840.1.101.3.4.1.46" in learned.capabilities  # AES-256-GCM


# -------------------------------------------------------------------------------- robustness


def test_store_locked_gives_4xx_then_delivers(sink: Sink, store: Path, tmp_path: Path) -> None:
    from smimekit.store import open_store

    gw = GatewayThread(settings(sink.port), store, tmp_path / "spool")
    gw.gateway.processor._open_store = lambda: open_store(store, timeout=0.3)
    with gw:
        # another process holds the store (an exclusive lock blocks even WAL readers)
        holder = sqlite3.connect(store, isolation_level=None)
        holder.execute("PRAGMA locking_mode=EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        try:
            code, text = gw.send(ALICE, [BOB], message())
        finally:
            holder.execute("COMMIT")
            holder.close()
        assert code == 451 and "store" in text
        assert sink.messages == []
        assert gw.send(ALICE, [BOB], message())[0] == 250
    assert len(sink.messages) == 1


def test_size_limit(sink: Sink, store: Path, tmp_path: Path) -> None:
    s = dataclasses.replace(settings(sink.port), max_message_size=64 * 1024)
    with GatewayThread(s, store, tmp_path / "spool") as gw:
        fits = message(body=("x" * 70 + "\n") * 800)
        huge = message(body=("y" * 70 + "\n") * 2000)
        assert gw.send(ALICE, [CAROL], fits)[0] == 250
        assert gw.send(ALICE, [CAROL], huge)[0] == 552
    assert len(sink.messages) == 1


def test_refused_data_leaves_nothing_and_the_session_goes_on(sink: Sink, store: Path, tmp_path: Path) -> None:
    """552 (too large, past several pieces written), 500 (a long line at the end) and a disk that refuses
    (451): the whole DATA is read, nothing stays in the spool, and the same session sends the next message."""
    import smtplib

    from smimekit.gateway.spool import SpoolWriter

    s = dataclasses.replace(settings(sink.port), max_message_size=3 << 20)
    with GatewayThread(s, store, tmp_path / "spool") as gw, smtplib.SMTP(HOST, gw.port, timeout=60) as c:
        c.ehlo()
        incoming = gw.gateway.spool.incoming
        ok = message(ALICE, CAROL)
        too_large = message(ALICE, CAROL, body=("y" * 70 + "\n") * 60000)  # 4.3 MB
        long_line = message(ALICE, CAROL, body=("z" * 70 + "\n") * 30000) + b"w" * 1200 + b"\r\n"

        def transaction(data: bytes) -> tuple[int, bytes]:  # no SIZE announced: the limit meets DATA
            assert c.mail(ALICE)[0] == 250 and c.rcpt(CAROL)[0] == 250
            return c.data(data)

        assert transaction(ok)[0] == 250
        for data, code in ((too_large, 552), (long_line, 500)):
            assert transaction(data)[0] == code
            assert not list(incoming.glob("msg-*"))
        real_write = SpoolWriter.write

        def disk_full(self: SpoolWriter, data: bytes) -> None:
            raise OSError(28, "No space left on device")

        SpoolWriter.write = disk_full  # type: ignore[method-assign]
        try:
            code, text = transaction(ok)
        finally:
            SpoolWriter.write = real_write  # type: ignore[method-assign]
        assert code == 451 and b"No space left" in text
        assert transaction(ok)[0] == 250
        assert not list(incoming.glob("msg-*"))
    assert len(sink.messages) == 2


def test_parallel_sessions(sink: Sink, store: Path, tmp_path: Path) -> None:
    with _gateway(sink.port, store, tmp_path) as gw, concurrent.futures.ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda i: gw.send(ALICE, [BOB], message(subject=f"n{i}"))[0], range(16)))
    assert codes == [250] * 16 and len(sink.messages) == 16
    assert len({m.data for m in sink.messages}) == 16


def test_passphrase_is_never_logged(sink: Sink, store: Path, tmp_path: Path) -> None:
    with _gateway(sink.port, store, tmp_path) as gw:
        gw.send(ALICE, [BOB], message())
    assert PASSPHRASE.decode() not in "\n".join(gw.log_lines)


def test_crash_in_processing_gives_4xx(sink: Sink, store: Path, tmp_path: Path) -> None:
    with _gateway(sink.port, store, tmp_path) as gw:

        def broken(*args: object, **kwargs: object) -> None:
            raise RuntimeError("a bug")

        gw.gateway.processor.process = broken  # type: ignore[method-assign,assignment]
        code, text = gw.send(ALICE, [BOB], message())
    assert code == 451 and "internal error" in text and sink.messages == []


def test_relayed_mail_is_byte_identical(sink: Sink, store: Path, tmp_path: Path) -> None:
    """Dots at line starts, a lone dot line, LF-only lines and 8-bit bytes survive SMTP both ways."""
    body = b".starts with a dot\r\n.\r\n..two\r\nmixed\nline\r\n\xc3\xa9t\xc3\xa9\r\nno newline at the end"
    data = message(ERIN, CAROL).split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n" + body
    with _gateway(sink.port, store, tmp_path) as gw:
        assert gw.send(ERIN, [CAROL], data, ("BODY=8BITMIME", "SMTPUTF8"))[0] == 250
    assert set(sink.messages[0].options) == {"BODY=8BITMIME", "SMTPUTF8"}  # passed on to the next hop
    # SMTP carries CRLF lines: what arrives is the input with its line endings made CRLF, nothing else
    assert sink.messages[0].data == data.replace(b"mixed\nline", b"mixed\r\nline") + b"\r\n"


def test_large_message_goes_through_files(sink: Sink, store: Path, tmp_path: Path) -> None:
    """A 3 MB message is signed and encrypted from its spool file (not rendered in memory)."""
    body = "".join(
        f"line {i:07d} of a long report, with some words to make it look like text\n" for i in range(40000)
    )
    with _gateway(sink.port, store, tmp_path) as gw:
        assert gw.send(ALICE, [BOB, CAROL], message(body=body))[0] == 250
    got = sink.by_recipient()
    assert len(got[BOB]) > 3_000_000
    opened = _open(got[BOB], pki().bob)
    assert opened.ok and opened.encrypted
    assert b"line 0039999 of a long report" in opened.inner.to_bytes()
    with mime.parse(got[CAROL]) as m:
        assert smime.verify(m, now=NOW, anchors=[pki().root.cert]).ok


def test_worker_processes(sink: Sink, store: Path, tmp_path: Path) -> None:
    """With processes = 2 the copies are rendered in worker processes: same results, same replies."""
    body = "".join(f"line {i:07d} of a long report\n" for i in range(60000))  # > 1 MiB: a file comes back
    s = dataclasses.replace(settings(sink.port), processes=2)
    with GatewayThread(s, store, tmp_path / "spool") as gw:
        assert gw.send(ALICE, [BOB, CAROL], message(to=f"{BOB}, {CAROL}"))[0] == 250
        assert gw.send(ALICE, [BOB], message(body=body))[0] == 250
        forged = message(BOB, ALICE, extra={"Authentication-Results": "gw.example.org; smime=pass"})
        assert gw.send(BOB, [ALICE], signed_by(pki().bob, forged))[0] == 250
        code, text = gw.send(ALICE, [CAROL], message(to=CAROL, subject="[secure] x"))
        assert code == 554 and CAROL in text
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            codes = list(pool.map(lambda i: gw.send(ALICE, [BOB], message(subject=f"p{i}"))[0], range(8)))
        assert codes == [250] * 8
    assert _open(sink.messages[0].data, pki().bob).ok
    assert b"line 0059999" in _open(sink.messages[2].data, pki().bob).inner.to_bytes()
    results = _results(sink.messages[3].data)
    assert len(results) == 1 and results[0].startswith("gw.example.org; smime=pass")
    assert list((tmp_path / "spool" / "incoming").iterdir()) == []  # no file left behind


def test_encrypted_for_a_recipient_without_key(sink: Sink, store: Path, tmp_path: Path) -> None:
    """Mail encrypted for an internal user whose key is not in the store arrives as it came, marked
    neutral (not checked), never 'not encrypted'."""
    data = encrypted_for(message(BOB, "zoe@example.org"), pki().bob)
    with _gateway(sink.port, store, tmp_path) as gw:
        assert gw.send(BOB, ["zoe@example.org"], data)[0] == 250
    (result,) = _results(sink.messages[0].data)
    assert result.startswith("gw.example.org; smime=neutral (encrypted, no key)")
    assert b"application/pkcs7-mime" in sink.messages[0].data


@pytest.mark.parametrize("who", ["frank@partner.example", "grace@partner.example", "revoked"])
def test_unusable_certificates_are_not_used(sink: Sink, store: Path, tmp_path: Path, who: str) -> None:
    """Expired, untrusted or revoked (a CRL in the store): opportunistic goes in clear, required refuses."""
    if who == "revoked":
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes

        from smimekit.store import open_store

        root = pki().root
        crl = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(root.cert.subject)
            .last_update(NOW - dt.timedelta(hours=1))
            .next_update(NOW + dt.timedelta(days=7))
            .add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(pki().bob.cert.serial_number)
                .revocation_date(NOW - dt.timedelta(hours=1))
                .build()
            )
            .sign(root.key, hashes.SHA256())
        )
        with open_store(store) as s:
            s.put_crl(crl)
        who = BOB
    with _gateway(sink.port, store, tmp_path) as gw:
        assert gw.send(ALICE, [who], message(to=who))[0] == 250
    with _gateway(sink.port, store, tmp_path, encrypt="required") as gw:
        code, text = gw.send(ALICE, [who], message(to=who))
    assert code == 554 and who in text
    (clear,) = sink.messages
    with mime.parse(clear.data) as m:
        assert m.content_type == "multipart/signed"  # signed, not encrypted


def test_hostile_message_is_refused_with_one_clear_reply(sink: Sink, store: Path, tmp_path: Path) -> None:
    """1,500 header fields (past the parser's limit): a 5xx naming the limit, no traceback, nothing sent."""
    head = b"".join(b"X-Junk-%d: x\r\n" % i for i in range(1500))
    data = head + message(ERIN, ALICE)
    with _gateway(sink.port, store, tmp_path) as gw:
        code, text = gw.send(ERIN, [ALICE], data)
        assert gw.send(ERIN, [ALICE], message(ERIN, ALICE))[0] == 250  # and it keeps serving
    assert code == 554 and "5.6.0" in text and "max_headers" in text
    assert len(sink.messages) == 1


def test_kept_session_to_a_restarted_next_hop(store: Path, tmp_path: Path) -> None:
    """One session serves message after message; when it died with the next hop, a new one is made."""
    from aiosmtpd.controller import Controller

    first = Sink()
    with first:
        s = dataclasses.replace(settings(first.port), workers=1)
        with GatewayThread(s, store, tmp_path / "spool") as gw:
            for i in range(3):
                assert gw.send(ALICE, [CAROL], message(to=CAROL, subject=f"n{i}"))[0] == 250
            assert first.ehlos == 1  # the session was kept
            first._controller.stop()  # the next hop restarts: the kept session is dead
            second = Sink()
            second._controller = Controller(second, hostname=HOST, port=first.port)
            second._controller.start()
            try:
                assert gw.send(ALICE, [CAROL], message(to=CAROL, subject="again"))[0] == 250
            finally:
                second._controller.stop()
            first._controller = Controller(first, hostname=HOST, port=first.port)
            first._controller.start()  # for the fixture's stop
    assert len(first.messages) == 3 and len(second.messages) == 1 and second.ehlos == 1


def test_stopping_finishes_the_message_in_flight_and_turns_new_ones_away(store: Path, tmp_path: Path) -> None:
    import asyncio
    import smtplib
    import threading

    class Slow(Sink):
        async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
            await asyncio.sleep(1.0)
            return await super().handle_DATA(server, session, envelope)

    with Slow() as sink:
        gw = GatewayThread(settings(sink.port), store, tmp_path / "spool")
        with gw:
            idle = smtplib.SMTP(HOST, gw.port, timeout=30)  # a session Postfix keeps open
            idle.ehlo()
            first: list[tuple[int, str]] = []
            t = threading.Thread(target=lambda: first.append(gw.send(ALICE, [CAROL], message(to=CAROL))))
            t.start()
            time.sleep(0.5)  # the first message is at the slow next hop now
            stopper = threading.Thread(target=gw.stop)
            stopper.start()
            time.sleep(0.2)
            idle.mail(ALICE)
            idle.rcpt(CAROL)
            code, _ = idle.data(message(to=CAROL, subject="too late"))
            t.join(30)
            stopper.join(30)
    assert code == 421  # come back later: Postfix keeps it
    assert first and first[0][0] == 250 and len(sink.messages) == 1
