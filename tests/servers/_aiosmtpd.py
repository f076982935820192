"""What the in-process SMTP servers (the pass-through filter, the sink) share: an aiosmtpd ``Controller``
on a free port of 127.0.0.1, started with retries and stopped."""

from __future__ import annotations

from typing import Any

from aiosmtpd.controller import Controller

from tests.servers import _ports
from tests.servers._harness import Harness


class ControllerServer(Harness):
    """An aiosmtpd server on 127.0.0.1 run in a thread of this process; a context manager.

    A subclass names itself (``what``, ``server_hostname``) and gives the handler and any further
    ``Controller`` options."""

    host = _ports.HOST
    what = "the SMTP server"
    server_hostname = "smtp.smimekit.test"

    def __init__(self) -> None:
        self.port = 0
        self._controller: Controller | None = None

    def _handler(self) -> object:
        """The aiosmtpd handler (an object with ``handle_DATA`` and the like)."""
        raise NotImplementedError

    def _controller_options(self) -> dict[str, Any]:
        """More keyword arguments for the ``Controller``."""
        return {}

    def start(self) -> None:
        """Listen on a free port of 127.0.0.1 and return once the server answers."""
        last: OSError | None = None
        for _attempt in range(3):
            self.port = _ports.free_port()
            controller = Controller(
                self._handler(),
                hostname=self.host,
                port=self.port,
                server_hostname=self.server_hostname,
                enable_SMTPUTF8=True,
                ready_timeout=10,
                **self._controller_options(),
            )
            try:
                controller.start()
            except OSError as e:
                last = e
                continue
            self._controller = controller
            return
        raise RuntimeError(f"{self.what} could not listen: {last}")

    def stop(self) -> None:
        """Stop listening (idempotent)."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
