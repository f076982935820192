"""An SMTP sink for tests: an aiosmtpd server on 127.0.0.1 that keeps every message it accepts.

Usage::

    with SmtpSink() as sink:                               # 127.0.0.1:sink.port
        with Postfix(tmp_path, relayhost=(sink.host, sink.port), ...) as pf:
            ...
            msg = sink.wait_for_message(lambda m: b"Subject: hello" in m.data)
            msg.mail_from, msg.rcpt_tos, msg.data

Set ``reply`` (for example ``"451 4.3.0 try later"`` or ``"550 5.7.1 no"``) to make it refuse DATA instead.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.servers import _ports
from tests.servers._aiosmtpd import ControllerServer


@dataclass(frozen=True)
class SunkMessage:
    """One accepted message: the envelope and exactly the bytes received (CRLF line ends)."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes


class _Handler:
    def __init__(self, owner: SmtpSink) -> None:
        self.owner = owner

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return self.owner._accept(envelope)


class SmtpSink(ControllerServer):
    """An SMTP server that accepts and records every message; a context manager."""

    what = "the SMTP sink"
    server_hostname = "sink.smimekit.test"

    def __init__(self, *, reply: str | None = None) -> None:
        super().__init__()
        self.reply = reply
        self._messages: list[SunkMessage] = []
        self._lock = threading.Lock()

    def _handler(self) -> _Handler:
        return _Handler(self)

    def _accept(self, envelope: Envelope) -> str:
        if self.reply is not None:
            return self.reply
        data = envelope.original_content or b""
        with self._lock:
            self._messages.append(SunkMessage(envelope.mail_from or "", tuple(envelope.rcpt_tos), data))
        return "250 2.0.0 OK: kept by the sink"

    @property
    def messages(self) -> list[SunkMessage]:
        """The messages accepted so far, in arrival order."""
        with self._lock:
            return list(self._messages)

    def wait_for_message(
        self, pred: Callable[[SunkMessage], bool] = lambda m: True, timeout: float = 30.0
    ) -> SunkMessage:
        """The first accepted message for which ``pred`` is true, waiting up to ``timeout`` seconds."""
        return _ports.poll(
            lambda: next((m for m in self.messages if pred(m)), None),
            timeout=timeout,
            timed_out=lambda: f"no matching message reached the sink within {timeout:g} s",
        )
