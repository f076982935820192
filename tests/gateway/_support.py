"""What the gateway tests share: a test PKI in a real store, SMTP sinks as next hops, a gateway in a thread.

The PKI (built once per session, RSA 2048 so that keys are quick to make):

- ``alice@example.org`` — internal, certificate and key in the store (she signs, and can decrypt);
- ``dave@example.org`` — internal, certificate and key in the store;
- ``bob@partner.example`` — external, certificate in the store (mail to him can be encrypted);
- ``carol@partner.example`` — external, no certificate;
- ``erin@outside.example`` — an outside signer whose certificate is not in the store;
- ``frank@partner.example`` — an expired certificate in the store;
- ``grace@partner.example`` — a certificate in the store from a CA the store does not trust.

The root CA is a trust anchor for e-mail in the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import smtplib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from smimekit import cms, mime, smime
from smimekit.gateway.log import MessageLog
from smimekit.gateway.policy import Settings, parse_config
from smimekit.gateway.server import Gateway
from smimekit.store import Store, Trust, open_store
from tests.testpki import Identity, make_ca, make_ee

HOST = "127.0.0.1"
PASSPHRASE = b"gateway test passphrase"
NOW = dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Pki:
    root: Identity
    alice: Identity
    dave: Identity
    bob: Identity
    carol: Identity
    erin: Identity
    erin_root: Identity
    frank: Identity  # expired
    grace: Identity  # issued by a CA the store does not trust


_PKI: Pki | None = None


def pki() -> Pki:
    """The test PKI (made once per process)."""
    global _PKI
    if _PKI is None:
        root = make_ca("Gateway Test Root")
        erin_root = make_ca("Unknown Root")
        # the gateway reads the real clock: the certificates are valid around now, not around testpki.NOW
        valid = {"not_before": NOW - dt.timedelta(days=1), "not_after": NOW + dt.timedelta(days=365)}
        _PKI = Pki(
            root=root,
            alice=make_ee("alice@example.org", root, **valid),
            dave=make_ee("dave@example.org", root, **valid),
            bob=make_ee("bob@partner.example", root, **valid),
            carol=make_ee("carol@partner.example", root, **valid),
            erin=make_ee("erin@outside.example", erin_root, **valid),
            erin_root=erin_root,
            frank=make_ee(
                "frank@partner.example",
                root,
                not_before=NOW - dt.timedelta(days=400),
                not_after=NOW - dt.timedelta(days=30),
            ),
            grace=make_ee("grace@partner.example", erin_root, **valid),
        )
    return _PKI


def make_store(path: Path) -> Path:
    """A SQLite store at ``path`` holding the test PKI as described above; returns the path."""
    p = pki()
    with open_store(path) as store:
        fill_store(store, p)
    return path


def fill_store(store: Store, p: Pki) -> None:
    store.add_certificate(p.root.cert, trust=Trust.EMAIL)
    for ident in (p.alice, p.dave):
        rec = store.add_certificate(ident.cert)
        store.add_private_key(rec.fingerprint, ident.key, PASSPHRASE)
    store.add_certificate(p.bob.cert)
    store.add_certificate(p.frank.cert)
    store.add_certificate(p.grace.cert)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def message(
    sender: str = "alice@example.org",
    to: str = "bob@partner.example",
    subject: str = "Quarterly figures",
    body: str = "Hello,\nthe figures are attached.\n",
    extra: dict[str, str] | None = None,
) -> bytes:
    """A plain text message as a MUA would submit it (CRLF line endings)."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{abs(hash((sender, to, subject, body)))}@test>"
    for k, v in (extra or {}).items():
        msg[k] = v
    msg.set_content(body)
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


def signed_by(ident: Identity, data: bytes) -> bytes:
    """``data`` clear-signed by ``ident`` (its chain included)."""
    with mime.parse(data) as m:
        signer = cms.Signer(ident.cert, ident.key, extra_certificates=ident.chain)
        with smime.sign(m, signer, signing_time=NOW) as s:
            return s.to_bytes()


def encrypted_for(data: bytes, *idents: Identity) -> bytes:
    with mime.parse(data) as m, smime.encrypt(m, [i.cert for i in idents]) as e:
        return e.to_bytes()


@dataclass
class Received:
    sender: str
    recipients: tuple[str, ...]
    data: bytes
    options: tuple[str, ...] = ()


@dataclass
class Sink:
    """An aiosmtpd next hop: records what it accepts, or answers DATA with ``reply`` instead."""

    reply: str | None = None
    messages: list[Received] = field(default_factory=list)
    port: int = 0
    ehlos: int = 0
    _controller: Any = None

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        self.ehlos += 1
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.reply is not None:
            return self.reply
        self.messages.append(
            Received(
                envelope.mail_from,
                tuple(envelope.rcpt_tos),
                bytes(envelope.original_content or b""),
                tuple(envelope.mail_options),
            )
        )
        return "250 2.0.0 Ok: queued as SINK"

    def __enter__(self) -> Sink:
        self.port = free_port()
        self._controller = Controller(
            self, hostname=HOST, port=self.port, data_size_limit=200 << 20, enable_SMTPUTF8=True
        )
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()

    def by_recipient(self) -> dict[str, bytes]:
        return {r: m.data for m in self.messages for r in m.recipients}


def settings(next_hop_port: int, **policy: Any) -> Settings:
    data: dict[str, Any] = {"policy": {"internal_domains": ["example.org"], **policy}}
    data["gateway"] = {"authserv_id": "gw.example.org", "next_hop_timeout": 5}
    return parse_config(data, listen=f"{HOST}:0", next_hop=f"{HOST}:{next_hop_port}", workers=4)


class GatewayThread:
    """A :class:`Gateway` served by an event loop in a background thread."""

    def __init__(
        self, settings: Settings, store_path: Path, spool: Path, *, passphrase: bytes | None = PASSPHRASE
    ) -> None:
        from smimekit.gateway.harvest import harvest_report

        self.log_lines: list[str] = []
        log = MessageLog(_ListStream(self.log_lines))
        self.gateway = Gateway(
            settings,
            open_store=lambda: open_store(store_path),
            passphrase=passphrase,
            spool_dir=spool,
            log=log,
            harvest=harvest_report,
            store_location=str(store_path),
        )
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.port = 0

    def __enter__(self) -> GatewayThread:
        self.thread.start()
        address = asyncio.run_coroutine_threadsafe(self.gateway.start(), self.loop).result(10)
        self.port = address[1]
        return self

    def stop(self) -> None:
        if self.thread.is_alive():
            asyncio.run_coroutine_threadsafe(self.gateway.stop(timeout=30), self.loop).result(60)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def send(
        self, sender: str, recipients: list[str], data: bytes, options: tuple[str, ...] = ()
    ) -> tuple[int, str]:
        """Submit like Postfix does; returns the reply to DATA (code, text)."""
        with smtplib.SMTP(HOST, self.port, timeout=60) as s:
            s.ehlo()
            s.mail(sender, list(options))
            for r in recipients:
                code, _ = s.rcpt(r)
                assert code == 250
            code, text = s.data(data)
            return code, text.decode()


class _ListStream:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def write(self, text: str) -> int:
        self.lines.extend(line for line in text.splitlines() if line)
        return len(text)

    def flush(self) -> None:
        pass


@contextlib.contextmanager
def parsed(data: bytes) -> Iterator[mime.Message]:
    with mime.parse(data) as m:
        yield m
