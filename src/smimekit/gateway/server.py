"""The thin SMTP adapter: aiosmtpd in front, :class:`~smimekit.gateway.process.Processor` in a thread pool,
smtplib to the next hop (Postfix's re-injection listener) behind.

The promise to Postfix: **250 only once the next hop accepted every copy**; any failure of ours (store
unavailable, next hop down or refusing for now, a crash while processing, the disk) is a 4xx, so Postfix
keeps the message and retries; a message that must not go out (required encryption without a
certificate, with ``on_missing_certificate = "reject"``; content that cannot be processed) is a 5xx.
DATA is written to a private spool file as it arrives, about 1 MiB at a time, and copies go to the
next hop in pieces, so memory per message stays bounded whatever its size (``data_size_limit`` bounds the
disk); processing runs in a thread pool so the event loop keeps serving other sessions, SIGTERM stops
accepting, lets messages in flight finish and then exits. Recipients served are journaled
(:class:`~smimekit.gateway.spool.Journal`) before the reply, so a retry after a crash serves only the
others.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import re
import signal
import smtplib
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from aiosmtpd.smtp import SMTP, Session, syntax
from aiosmtpd.smtp import Envelope as SmtpEnvelope

from smimekit.errors import (
    CryptoError,
    KeyLoadError,
    MimeError,
    NetError,
    SmimekitError,
    StoreError,
    StoreLockedError,
)
from smimekit.gateway.decide import Copy, Envelope, Verdict
from smimekit.gateway.log import MessageLog, Record, postfix_queue_id
from smimekit.gateway.policy import Settings
from smimekit.gateway.process import Processed, Processor
from smimekit.gateway.spool import Journal, Spool, SpooledMessage, read_data
from smimekit.gateway.workers import ProcessRenderer
from smimekit.store import Store

__all__ = ["DRAIN_TIMEOUT", "Gateway", "NextHop", "NextHopError", "forward", "run"]

DRAIN_TIMEOUT = 300.0
_CHUNK = 1 << 16
_BARE_LF = re.compile(rb"(?<!\r)\n")
# MAIL FROM parameters passed on, and the extension the next hop must offer for each
_EXTENSION = {"BODY": "8bitmime", "SMTPUTF8": "smtputf8"}


class NextHopError(NetError):
    """The next hop did not take a copy; ``code`` is its SMTP reply code (451 when it could not be
    reached), ``permanent`` whether it was a 5xx."""

    def __init__(self, reason: str, *, code: int = 451) -> None:
        super().__init__(reason)
        self.code = code

    @property
    def permanent(self) -> bool:
        return 500 <= self.code < 600


def _stuffed(stream: IO[bytes]) -> Iterator[bytes]:
    """The DATA of ``stream``: CRLF line endings, dot-stuffed, ending with ``CRLF.CRLF``; in pieces. The
    ending comes in one piece with the last of the data: a terminator sent on its own would wait for the
    ACK of what went before (Nagle), which the next hop delays, as it waits for more (delayed ACK)."""
    held = b""  # the last piece of data, sent with the ending
    at_line_start = True
    carry = b""
    last = b"\n"
    while chunk := stream.read(_CHUNK):
        data = carry + chunk
        carry = b""
        if data.endswith(b"\r"):  # its LF may start the next chunk
            data, carry = data[:-1], b"\r"
        if not data:
            continue
        data = _BARE_LF.sub(b"\r\n", data).replace(b"\r\n.", b"\r\n..")
        if at_line_start and data.startswith(b"."):
            data = b"." + data
        at_line_start = data.endswith(b"\n")
        last = data[-1:]
        if held:
            yield held
        held = data
    if carry:
        held += carry + b"\n"
        last = b"\n"
    yield held + (b"" if last == b"\n" else b"\r\n") + b".\r\n"


def _check(reply: tuple[int, bytes], what: str, expected: int = 250) -> None:
    code, text = reply
    if code != expected:
        raise NextHopError(
            f"the next hop answered {what} with {code} {text.decode('utf-8', 'replace')}", code=code
        )


class NextHop:
    """SMTP sessions to the next hop, one kept open per worker thread between messages (a new session
    per message costs the next hop a connection, a greeting and an EHLO). A kept session is checked with
    RSET before it is used again and replaced when it went away."""

    def __init__(self, address: tuple[str, int], *, timeout: float, helo: str | None = None) -> None:
        self.address = address
        self.timeout = timeout
        self.helo = helo
        self._local = threading.local()
        self._open: set[smtplib.SMTP] = set()
        self._lock = threading.Lock()

    def _connect(self) -> smtplib.SMTP:
        host, port = self.address
        try:
            smtp = smtplib.SMTP(host, port, local_hostname=self.helo, timeout=self.timeout)
            if smtp.sock is not None and smtp.sock.family in (socket.AF_INET, socket.AF_INET6):
                # commands go one at a time, each waiting for its reply: nothing to gain from Nagle
                smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            smtp.ehlo_or_helo_if_needed()
        except (OSError, smtplib.SMTPException) as exc:
            raise NextHopError(f"cannot reach the next hop {host}:{port}: {exc}") from exc
        with self._lock:
            self._open.add(smtp)
        return smtp

    def _drop(self, smtp: smtplib.SMTP) -> None:
        with self._lock:
            self._open.discard(smtp)
        with contextlib.suppress(OSError, smtplib.SMTPException):
            smtp.close()

    @contextlib.contextmanager
    def session(self) -> Iterator[smtplib.SMTP]:
        """A session ready for MAIL FROM; kept for the next message when the block ends without error."""
        smtp: smtplib.SMTP | None = getattr(self._local, "smtp", None)
        self._local.smtp = None
        if smtp is not None:
            try:
                alive = smtp.rset()[0] == 250
            except (OSError, smtplib.SMTPException):
                alive = False
            if not alive:
                self._drop(smtp)
                smtp = None
        if smtp is None:
            smtp = self._connect()
        try:
            yield smtp
        except BaseException:
            self._drop(smtp)  # in an unknown state: never reused
            raise
        self._local.smtp = smtp

    def close(self) -> None:
        """QUIT every session kept open."""
        with self._lock:
            sessions, self._open = self._open, set()
        for smtp in sessions:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                smtp.quit()
            smtp.close()


def forward(
    hop: NextHop,
    sender: str,
    copies: list[tuple[tuple[str, ...], IO[bytes]]],
    *,
    mail_options: tuple[str, ...] = (),
    on_delivered: Callable[[tuple[str, ...]], None] = lambda rcpts: None,
) -> str:
    """Send each (recipients, file) copy to the next hop in one SMTP session; ``on_delivered`` is called
    as soon as the next hop accepted a copy. A copy goes whole or not at all: when a recipient is
    refused, the transaction is reset before DATA. Returns the last reply text; raises NextHopError."""
    last = ""
    try:
        with hop.session() as smtp:
            options = [
                o for o in mail_options if smtp.has_extn(_EXTENSION.get(o.split("=", 1)[0].upper(), "?"))
            ]
            for recipients, stream in copies:
                _check(smtp.mail(sender, options), "MAIL FROM")
                for rcpt in recipients:
                    code, text = smtp.rcpt(rcpt)
                    if code not in (250, 251):
                        raise NextHopError(
                            f"the next hop refused {rcpt}: {code} {text.decode('utf-8', 'replace')}",
                            code=code,
                        )
                _check(smtp.docmd("DATA"), "DATA", 354)
                for piece in _stuffed(stream):
                    smtp.send(piece)
                code, text = smtp.getreply()
                _check((code, text), "the message")
                on_delivered(recipients)
                last = text.decode("utf-8", "replace")
    except (OSError, smtplib.SMTPException) as exc:
        host, port = hop.address
        raise NextHopError(f"the next hop {host}:{port} failed: {exc}") from exc
    return last


def _reply_text(text: str) -> str:
    """One SMTP reply line: printable ASCII only, bounded."""
    clean = "".join(c if 32 <= ord(c) < 127 else "?" for c in " ".join(text.split()))
    return clean[:400]


class _Handler:
    """aiosmtpd's handler: process the spooled message in the pool, forward, reply."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def handle_DATA(self, server: SMTP, session: Session, envelope: SmtpEnvelope) -> str:
        gw = self.gateway
        if not isinstance(envelope, _Envelope) or envelope.spooled is None:
            return "554 5.6.0 no message data"
        spooled, envelope.spooled = envelope.spooled, None  # ours now
        if gw.draining:  # a session Postfix kept open sends more while we stop: it comes back later
            spooled.discard()
            return "421 4.3.2 the gateway is shutting down; try again later"
        sender = _sender_of(envelope)
        recipients = tuple(envelope.rcpt_tos)
        options = tuple(o for o in envelope.mail_options if o.upper().startswith(("BODY=", "SMTPUTF8")))
        gw.inflight += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(gw.executor, gw.handle, spooled, sender, recipients, options)
        except BaseException:
            spooled.discard()  # handle() may never run (the pool is gone, the session was cancelled)
            raise
        finally:
            gw.inflight -= 1


def _sender_of(envelope: SmtpEnvelope) -> str:
    sender = envelope.mail_from or ""
    return "" if sender == "<>" else sender


class _Envelope(SmtpEnvelope):
    """aiosmtpd's envelope, and the message of DATA in the spool (until the handler takes it)."""

    spooled: SpooledMessage | None = None


class _Session(SMTP):
    """One SMTP session; tells the gateway when its connection is gone (to close the rest on stop), and
    streams DATA into the spool (:meth:`smtp_DATA`)."""

    on_lost: Callable[[SMTP], None] | None = None
    spool: Spool | None = None

    def connection_lost(self, error: Exception | None) -> None:
        if self.on_lost is not None:
            self.on_lost(self)
        super().connection_lost(error)

    def _create_envelope(self) -> SmtpEnvelope:
        return _Envelope()

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        """DATA as aiosmtpd answers it (503 without recipients, 552 past ``data_size_limit``, 500 for a
        line over ``line_length_limit``, dot-unstuffing, the handler's reply), but read in large pieces
        (:func:`~smimekit.gateway.spool.read_data`; aiosmtpd's loop costs a coroutine step per line, about a third of the
        gateway's CPU per message) and written to a private spool file as it arrives (aiosmtpd holds the
        whole message in memory, more than once). Nothing past the terminating line is read; a disk
        that refuses the message gives 451 once the terminator has come."""
        if self._decode_data or self.spool is None:  # not how the gateway runs aiosmtpd
            await super().smtp_DATA(arg)
            return
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        envelope = self.envelope
        assert isinstance(envelope, _Envelope)
        if not envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        loop = asyncio.get_running_loop()
        writer = self.spool.writer(_sender_of(envelope), envelope.rcpt_tos)
        failed: list[OSError] = []

        async def write(piece: bytes) -> None:
            if not failed:  # once the disk refused, the rest is read and dropped
                try:  # off the event loop: a slow disk must not stall the other sessions
                    await loop.run_in_executor(None, writer.write, piece)
                except OSError as exc:
                    failed.append(exc)

        spooled = None
        try:
            rest, problem = await read_data(self._reader, write, self.data_size_limit, self.line_length_limit)
            if rest is not None and not failed:
                try:
                    spooled = await loop.run_in_executor(None, writer.finish, rest)
                except OSError as exc:
                    failed.append(exc)
        except asyncio.CancelledError:
            self._writer.close()  # the connection went away during DATA
            raise
        finally:
            if spooled is None:
                writer.discard()
        if rest is None:
            if problem:
                await self.push(problem)
            self._set_post_data_state()  # type: ignore[no-untyped-call]
            return
        if failed:
            self._set_post_data_state()  # type: ignore[no-untyped-call]
            await self.push(f"451 4.3.0 cannot spool the message: {_reply_text(str(failed[0]))}")
            return
        envelope.spooled = spooled
        try:
            status = await self._call_handler_hook("DATA")
        finally:
            if envelope.spooled is not None:  # the handler did not take it
                envelope.spooled.discard()
                envelope.spooled = None
        self._set_post_data_state()  # type: ignore[no-untyped-call]
        await self.push("250 OK" if not isinstance(status, str) else status)


class Gateway:
    """The gateway service for ``settings``; ``open_store`` gives a store connection (one per worker
    thread); with ``settings.processes``, worker processes open ``store_location`` themselves. Use
    :meth:`start` and :meth:`stop` inside a running event loop, or :func:`run`."""

    def __init__(
        self,
        settings: Settings,
        *,
        open_store: Callable[[], Store],
        passphrase: bytes | None,
        spool_dir: Path,
        log: MessageLog | None = None,
        harvest: Callable[..., object] | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        store_location: str | None = None,
    ) -> None:
        self.settings = settings
        self.log = log or MessageLog()
        self.spool = Spool(spool_dir)
        self.journal = Journal(spool_dir)
        self.processor = Processor(
            settings.policy,
            open_store=open_store,
            passphrase=passphrase,
            new_output=self.spool.output,
            clock=clock,
            harvest=harvest,
        )
        self.renderer: ProcessRenderer | None = None
        if settings.processes:
            self.renderer = ProcessRenderer(
                settings.policy,
                processes=settings.processes,
                location=store_location,
                timeout=settings.store_timeout,
                passphrase=passphrase,
                directory=self.spool.incoming,
            )
        self.executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=settings.workers, thread_name_prefix="smimekit-gw"
        )
        self.inflight = 0
        self.draining = False
        self.address: tuple[str, int] | None = None
        self._server: asyncio.base_events.Server | None = None
        self._sessions: set[SMTP] = set()
        self._stopping: asyncio.Event | None = None
        self._hostname = socket.getfqdn()
        self.next_hop = NextHop(settings.next_hop, timeout=settings.next_hop_timeout, helo=self._hostname)

    # -------------------------------------------------------------------- the work of one message

    def handle(
        self, spooled: SpooledMessage, sender: str, recipients: tuple[str, ...], options: tuple[str, ...]
    ) -> str:
        """Process and forward one spooled message (in a worker thread); returns the SMTP reply."""
        started = time.monotonic()
        ident = uuid.uuid4().hex[:12]
        queue_id = None
        direction = "?"
        actions: tuple[str, ...] = ()
        detail = ""
        try:
            queue_id = _queue_id(spooled)
            # Only a message with Postfix's queue id is known to be a retry when its bytes come again;
            # without one, identical mail is delivered again rather than dropped.
            journal = self.journal if queue_id is not None else None
            done = journal.delivered(spooled.digest) if journal is not None else frozenset()
            remaining = tuple(r for r in recipients if r not in done)
            if done:
                detail = f"{len(done)} recipient(s) already served before a retry"
            if not remaining:
                reply = "250 2.0.0 Ok: already delivered"
            else:
                reply, direction, actions, more = self._process_and_forward(
                    spooled, Envelope(sender, remaining), options, queue_id, journal
                )
                detail = "; ".join(x for x in (detail, more) if x)
        except Exception as exc:  # fail safe: Postfix keeps the message and retries
            reply = f"451 4.3.0 internal error in the gateway ({type(exc).__name__}); will retry"
            detail = f"{type(exc).__name__}: {exc}"
        finally:
            spooled.discard()
        self.log.write(
            Record(
                id=ident,
                queue_id=queue_id,
                sender=sender,
                recipients=recipients,
                direction=direction,
                actions=actions,
                result=reply,
                ms=(time.monotonic() - started) * 1000,
                size=spooled.size,
                detail=detail,
            )
        )
        return reply

    def _process_and_forward(
        self,
        spooled: SpooledMessage,
        envelope: Envelope,
        options: tuple[str, ...],
        queue_id: str | None,
        journal: Journal | None,
    ) -> tuple[str, str, tuple[str, ...], str]:
        try:
            processed = (self.renderer or self.processor).process(spooled.path, envelope, queue_id=queue_id)
        except StoreLockedError as exc:
            return (
                f"451 4.3.0 the certificate store is busy or unreachable: {_reply_text(exc.reason)}",
                "?",
                (),
                str(exc),
            )
        except StoreError as exc:
            return f"451 4.3.0 the certificate store failed: {_reply_text(exc.reason)}", "?", (), str(exc)
        except KeyLoadError as exc:  # a wrong passphrase: the administrator must fix it; keep the mail
            return f"451 4.3.5 a private key cannot be used: {_reply_text(exc.reason)}", "?", (), str(exc)
        except (MimeError, CryptoError) as exc:
            return f"554 5.6.0 the message cannot be processed: {_reply_text(str(exc))}", "?", (), str(exc)
        except SmimekitError as exc:
            return f"451 4.3.0 {_reply_text(str(exc))}", "?", (), str(exc)
        try:
            return self._deliver(processed, spooled, options, journal)
        finally:
            processed.close()

    def _deliver(
        self, processed: Processed, spooled: SpooledMessage, options: tuple[str, ...], journal: Journal | None
    ) -> tuple[str, str, tuple[str, ...], str]:
        decision = processed.decision
        direction = decision.direction.value
        actions = decision.actions
        notes = "; ".join(processed.notes)
        if decision.verdict is Verdict.REJECT:
            return f"554 5.7.1 {_reply_text(decision.reason)}", direction, actions, notes
        if decision.verdict is Verdict.DEFER:
            return f"451 4.7.1 {_reply_text(decision.reason)}; will retry", direction, actions, notes
        copies: list[tuple[tuple[str, ...], IO[bytes]]] = [(c.recipients, f) for c, f in processed.outputs]
        served: list[str] = []

        def delivered(rcpts: tuple[str, ...]) -> None:
            if journal is not None:
                journal.record(spooled.digest, rcpts)
            served.extend(rcpts)

        try:
            text = forward(
                self.next_hop,
                processed.envelope.sender,
                copies,
                mail_options=options,
                on_delivered=delivered,
            )
        except NextHopError as exc:
            if exc.permanent and not served:
                return f"554 5.0.0 {_reply_text(exc.reason)}", direction, actions, notes
            return f"451 4.4.0 {_reply_text(exc.reason)}; will retry", direction, actions, notes
        label = _copies(processed.outputs)
        return f"250 2.0.0 Ok: {label} delivered ({_reply_text(text)})", direction, actions, notes

    # -------------------------------------------------------------------- the listener

    def _new_session(self) -> SMTP:
        session = _Session(
            _Handler(self),
            data_size_limit=self.settings.max_message_size,
            enable_SMTPUTF8=True,
            hostname=self._hostname,
            ident="smimekit gateway",
        )
        session.on_lost = self._sessions.discard
        session.spool = self.spool
        self._sessions.add(session)
        return session

    async def start(self) -> tuple[str, int]:
        """Listen on ``settings.listen`` (port 0: any free port); returns the address bound."""
        loop = asyncio.get_running_loop()
        host, port = self.settings.listen
        self._stopping = asyncio.Event()
        self._server = await loop.create_server(self._new_session, host=host, port=port, reuse_address=True)
        sock = self._server.sockets[0].getsockname()
        self.address = (sock[0], sock[1])
        self.log.event(
            "listening", address=f"{sock[0]}:{sock[1]}", next_hop="{}:{}".format(*self.settings.next_hop)
        )
        return self.address

    def request_stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()

    async def wait_stopped(self) -> None:
        assert self._stopping is not None
        await self._stopping.wait()
        await self.stop()

    async def stop(self, *, timeout: float = DRAIN_TIMEOUT) -> None:
        """Stop accepting, let the messages in flight finish (up to ``timeout`` seconds), then close."""
        if self._server is not None:
            self._server.close()
        self.draining = True
        self.log.event("draining", inflight=self.inflight)
        deadline = time.monotonic() + timeout
        while self.inflight and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for session in list(self._sessions):
            if session.transport is not None:
                session.transport.close()
        await asyncio.get_running_loop().run_in_executor(None, self._shutdown_pool)
        self.log.event("stopped", inflight=self.inflight)

    def _shutdown_pool(self) -> None:
        self.executor.shutdown(wait=True)
        self.next_hop.close()
        if self.renderer is not None:
            self.renderer.close()
        self.processor.close()
        self.spool.close()


def _copies(outputs: list[tuple[Copy, Any]]) -> str:
    n = len(outputs)
    return "1 copy" if n == 1 else f"{n} copies"


def _queue_id(spooled: SpooledMessage) -> str | None:
    """Postfix's queue id from the Received fields at the top of the spooled message."""
    with open(spooled.path, "rb") as f:
        head = f.read(16384)
    fields = re.findall(rb"(?im)^Received:((?:.*)(?:\r?\n[ \t].*)*)", head)
    return postfix_queue_id(fields)


def run(gateway: Gateway) -> None:
    """Serve until SIGTERM or SIGINT, then drain and return."""

    async def main() -> None:
        await gateway.start()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, gateway.request_stop)
        await gateway.wait_stopped()

    asyncio.run(main())
