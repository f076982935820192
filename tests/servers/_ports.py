"""Free TCP ports on 127.0.0.1, and waiting for a listener (or anything else that can be polled).

``free_port()`` picks a random port in 20000-32767, below the kernel's ephemeral range (32768-60999 on
Linux) so that an outgoing connection cannot grab it between the choice and the server's bind, and checks
that it can be bound right now. Ports handed out in this process are never handed out again, so one test
run cannot give the same port to two servers; engineers running at the same time are kept apart by the
randomness and the bind check (a harness retries its start-up with new ports if a bind still fails).
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Callable
from typing import TypeVar

HOST = "127.0.0.1"
_LOW, _HIGH = 20000, 32767
_handed_out: set[int] = set()
_lock = threading.Lock()
T = TypeVar("T")


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now and that this process has not handed out."""
    rng = random.SystemRandom()
    with _lock:
        for _ in range(1000):
            port = rng.randint(_LOW, _HIGH)
            if port not in _handed_out and _bindable(port):
                _handed_out.add(port)
                return port
    raise RuntimeError("no free TCP port found on 127.0.0.1")


def free_ports(n: int) -> list[int]:
    """``n`` distinct free ports (see ``free_port``)."""
    return [free_port() for _ in range(n)]


def port_answers(port: int, host: str = HOST, *, timeout: float = 0.5) -> bool:
    """True when a TCP connection to ``host:port`` is accepted."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def greets(port: int, prefix: bytes, host: str = HOST, *, timeout: float = 2.0) -> bool:
    """True when a server on ``host:port`` accepts a connection and its first bytes start with ``prefix``
    (a greeting proves that the process behind the port is initialised, not just the listening socket)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            data = b""
            while len(data) < len(prefix):
                chunk = s.recv(256)
                if not chunk:
                    break
                data += chunk
            return data.startswith(prefix)
    except OSError:
        return False


def poll(
    fetch: Callable[[], T | None],
    *,
    timeout: float,
    interval: float = 0.05,
    timed_out: Callable[[], str],
    between: Callable[[], None] | None = None,
) -> T:
    """Call ``fetch`` until it returns something other than None, and return that.

    ``between`` is called after each miss (it may raise to stop the wait). Raises ``TimeoutError`` with
    the text ``timed_out()`` after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if value is not None:
            return value
        if between is not None:
            between()
        if time.monotonic() > deadline:
            raise TimeoutError(timed_out())
        time.sleep(interval)


def wait_until(
    predicate: Callable[[], object],
    *,
    timeout: float = 30.0,
    interval: float = 0.05,
    what: str = "the condition",
    alive: Callable[[], str | None] | None = None,
) -> None:
    """Poll ``predicate`` until it is true.

    ``alive`` is called between polls and returns an error text when the thing waited for died (then the
    wait stops at once). Raises ``TimeoutError`` naming ``what`` after ``timeout`` seconds, ``RuntimeError``
    when ``alive`` reports a death.
    """

    def check_alive() -> None:
        problem = alive() if alive is not None else None
        if problem:
            raise RuntimeError(f"while waiting for {what}: {problem}")

    poll(
        lambda: True if predicate() else None,
        timeout=timeout,
        interval=interval,
        timed_out=lambda: f"timed out after {timeout:g} s waiting for {what}",
        between=check_alive,
    )
