"""A pass-through SMTP content filter for tests: what Postfix hands it goes back, unchanged, to a next hop.

Usage::

    with PassThroughFilter() as flt:                       # listens on 127.0.0.1:flt.port
        with Postfix(tmp_path, content_filter=(flt.host, flt.port), ...) as pf:
            flt.reinject_to = (pf.host, pf.reinject_port)
            ...
            assert flt.count == 1

Each message is re-sent with smtplib to ``reinject_to`` with the same envelope (sender, recipients, the
MAIL/RCPT parameters such as BODY=8BITMIME) and exactly the bytes received. The filter answers the DATA
command with 250 only after the next hop accepted the message; a refusal by the next hop is passed back
with its own code and text, an unreachable next hop (or none set yet) gives 451 so Postfix keeps the mail
queued. Re-injection runs in a thread pool so that several Postfix ``filter`` processes are served at once.
This is the baseline the gateway benchmark compares against.
"""

from __future__ import annotations

import asyncio
import smtplib
import threading
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.servers._aiosmtpd import ControllerServer


class _Handler:
    def __init__(self, owner: PassThroughFilter) -> None:
        self.owner = owner

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self.owner._reinject, envelope)


class PassThroughFilter(ControllerServer):
    """An aiosmtpd server on 127.0.0.1 that re-injects every message unchanged; a context manager."""

    what = "the pass-through filter"
    server_hostname = "passthrough.smimekit.test"

    def __init__(
        self,
        reinject_to: tuple[str, int] | None = None,
        *,
        timeout: float = 30.0,
        data_size_limit: int = 100 * 1024 * 1024,
    ) -> None:
        super().__init__()
        self.reinject_to = reinject_to
        self.timeout = timeout
        self.data_size_limit = data_size_limit
        self._count = 0
        self._lock = threading.Lock()

    @property
    def count(self) -> int:
        """How many messages were accepted by the next hop so far."""
        with self._lock:
            return self._count

    def _reinject(self, envelope: Envelope) -> str:
        target = self.reinject_to
        if target is None:
            return "451 4.3.0 the pass-through filter has no next hop yet"
        content: Any = envelope.original_content
        try:
            with smtplib.SMTP(target[0], target[1], timeout=self.timeout) as client:
                refused = client.sendmail(
                    envelope.mail_from or "",
                    envelope.rcpt_tos,
                    content,
                    # smtplib adds SIZE= itself
                    mail_options=[o for o in envelope.mail_options if not o.upper().startswith("SIZE=")],
                    rcpt_options=envelope.rcpt_options,
                )
        except smtplib.SMTPRecipientsRefused as e:
            code, text = next(iter(e.recipients.values()))
            return f"{code} {text.decode(errors='replace')}"
        except smtplib.SMTPResponseException as e:
            return f"{e.smtp_code} {e.smtp_error.decode(errors='replace')}"
        except (OSError, smtplib.SMTPException) as e:
            return f"451 4.4.1 the next hop cannot be reached: {e}"
        if refused:
            # some recipients were refused by the next hop: refuse the whole message so it is retried
            return "451 4.3.0 the next hop refused some recipients"
        with self._lock:
            self._count += 1
        return "250 2.0.0 OK: re-injected"

    def _handler(self) -> _Handler:
        return _Handler(self)

    def _controller_options(self) -> dict[str, Any]:
        return {"data_size_limit": self.data_size_limit}
