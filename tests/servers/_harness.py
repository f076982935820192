"""What the server harnesses share: the context-manager life cycle, start-up retried when a port was
taken, a child server process (started with its stdio in a file, stopped and reaped), and the text that
says why a server died."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from tests.servers import _ports, _proc, _system

IN_USE = "in use"
"""What a start-up error says when another process took one of the ports: then start-up is retried."""


class Harness:
    """A server for tests; a context manager (``start()`` on enter, ``stop()`` on exit)."""

    def start(self) -> None:
        """Start the server and return once it answers."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop the server and clean up after it (idempotent)."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _start_retrying(
        self,
        attempt: Callable[[], None],
        *,
        error: type[Exception],
        reset: Callable[[], None],
        attempts: int = 3,
    ) -> None:
        """Run ``attempt`` until it succeeds, up to ``attempts`` times; ``stop()`` is registered to run at
        interpreter exit meanwhile. After an ``error`` ``reset`` undoes the attempt; the next attempt
        follows only when the error says a port was in use. When none succeeds: ``stop()``, and the last
        ``error`` is raised."""
        _proc.register(self, self.stop)
        last: Exception | None = None
        for _attempt in range(attempts):
            try:
                attempt()
                return
            except error as e:
                last = e
                reset()
                if IN_USE not in str(e):
                    break
        self.stop()
        assert last is not None
        raise last


class ChildServer(Harness):
    """A harness whose server runs as a child process in the foreground (``_proc``)."""

    _proc: subprocess.Popen[bytes] | None = None

    def _spawn(self, argv: Sequence[str], output: Path) -> None:
        """Start ``argv`` in a process group of its own, stdin from /dev/null, stdout and stderr appended
        to ``output``."""
        with open(output, "ab") as out:
            self._proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _exited(self, name: str, *logs: Path) -> str | None:
        """None while the child runs; once it exited, why (its status and the end of ``logs``)."""
        if self._proc is not None and self._proc.poll() is not None:
            return died(f"{name} exited with status {self._proc.returncode}", *logs)
        return None

    def _wait_ready(
        self,
        ready: Callable[[], object],
        *,
        name: str,
        what: str,
        error: type[Exception],
        logs: Sequence[Path],
    ) -> None:
        """Wait up to 30 s until ``ready()`` is true (``what``: for example ``"slapd on ports [...]"``),
        giving up at once when the child (``name``) exits. Raises ``error`` with the reason and the end of
        each of ``logs``."""
        try:
            _ports.wait_until(ready, timeout=30, what=what, alive=lambda: self._exited(name, *logs))
        except (TimeoutError, RuntimeError) as e:
            raise error("\n".join([str(e), *(_system.tail(log) for log in logs)])) from None

    def _stop_process(self) -> None:
        """Stop the child (SIGTERM, then SIGKILL), reap it and whatever is left of its process group."""
        if self._proc is not None:
            _proc.stop_process(self._proc)
            self._proc = None

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self._proc is not None and self._proc.poll() is None


def died(what: str, *logs: Path) -> str:
    """``what`` (for example ``"slapd exited with status 1"``) and the end of each of ``logs``, with a
    hint when they say that an address was in use (which makes ``_start_retrying`` try again)."""
    text = "\n".join(_system.tail(log) for log in logs)
    hint = f" (address {IN_USE})" if IN_USE in text else ""
    return f"{what}{hint}:\n{text}"


def run_tool(argv: Sequence[str], *, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command to its end: stdin from /dev/null, stdout and stderr captured as text, the exit status
    not checked (``subprocess.TimeoutExpired`` after ``timeout`` seconds)."""
    return subprocess.run(
        list(argv),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
