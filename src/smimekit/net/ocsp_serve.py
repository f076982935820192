"""A small HTTP OCSP responder (RFC 6960 A.1): POST and GET, one thread per request, bound to one address.

What to answer is the caller's: a function from the DER request to the DER response (see
:func:`smimekit.ca.build_ocsp_response`). The server only speaks HTTP: it reads at most
:data:`MAX_REQUEST` bytes, answers ``application/ocsp-response``, and binds only to the address given,
refusing one that is not a loopback address unless told ``allow_public``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp

from smimekit.ca.revocation import decode_ocsp_get_path
from smimekit.errors import NetError, UsageError

__all__ = ["MAX_REQUEST", "OcspServer", "parse_bind"]

MAX_REQUEST = 16 * 1024
"""The largest request body read; anything bigger is refused with 413 before it is read."""
REQUEST_TIMEOUT = 10.0
"""Seconds a client may take to send its request (a slow client cannot hold a thread for long)."""

Respond = Callable[[bytes], bytes]


def parse_bind(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) as a host and a port. Raises UsageError when malformed."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise UsageError(f"--bind wants HOST:PORT (such as 127.0.0.1:8080), not {value!r}")
    port = int(port_text)
    if not 0 < port < 65536:
        raise UsageError(f"the port {port} is out of range (1-65535)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, port


def _addresses(host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise NetError(f"cannot resolve {host}: {exc.strerror or exc}") from None
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


def check_bind(host: str, *, allow_public: bool) -> str:
    """The numeric address to bind for ``host``; raises UsageError when it is not loopback (and
    ``allow_public`` is not given), NetError when it cannot be resolved."""
    addresses = _addresses(host)
    if not addresses:
        raise NetError(f"{host} has no address")
    if not allow_public and not all(a.is_loopback for a in addresses):
        raise UsageError(
            f"{host} is not a loopback address: the responder would be reachable from other machines "
            "(give --allow-public if that is what you want)"
        )
    return str(addresses[0])


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    respond: Respond

    def handle_error(self, request: object, client_address: object) -> None:
        """A broken connection is the client's business: no traceback on stderr."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = REQUEST_TIMEOUT
    server_version = "smimekit-ocsp"
    sys_version = ""

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the responder does not log requests."""

    def _answer(self, request: bytes) -> None:
        try:
            body = self.server.respond(request)
        except Exception:  # a bug must not kill the responder: internalError, as RFC 6960 §2.3 has it
            body = ocsp.OCSPResponseBuilder.build_unsuccessful(
                ocsp.OCSPResponseStatus.INTERNAL_ERROR
            ).public_bytes(serialization.Encoding.DER)
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "application/ocsp-response")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _refuse(self, status: HTTPStatus) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def do_POST(self) -> None:
        length_text = self.headers.get("Content-Length")
        if length_text is None or not length_text.strip().isdigit():
            self._refuse(HTTPStatus.LENGTH_REQUIRED)
            return
        length = int(length_text)
        if length > MAX_REQUEST:
            self._refuse(HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
            return
        self._answer(self.rfile.read(length))

    def do_GET(self) -> None:
        if len(self.path) > 4 * MAX_REQUEST:
            self._refuse(HTTPStatus.REQUEST_URI_TOO_LONG)
            return
        self._answer(decode_ocsp_get_path(self.path) or b"")


class OcspServer:
    """An OCSP responder on ``host:port`` (port 0: a free one) answering with ``respond``.

    Raises UsageError for a non-loopback address without ``allow_public``, NetError when the address cannot
    be bound. Use :meth:`serve_until` (blocks), or :meth:`start` and :meth:`stop`.
    """

    def __init__(self, host: str, port: int, respond: Respond, *, allow_public: bool = False) -> None:
        address = check_bind(host, allow_public=allow_public)
        server_class = type(
            "_BoundServer",
            (_Server,),
            {"address_family": socket.AF_INET6 if ":" in address else socket.AF_INET},
        )
        try:
            self._server: _Server = server_class((address, port), _Handler)
        except OSError as exc:
            raise NetError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        self._server.respond = respond
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://HOST:PORT/`` as bound."""
        name = self._server.socket.getsockname()
        host, port = str(name[0]), int(name[1])
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/"

    def start(self) -> None:
        """Serve in a background thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.serve_forever, name="ocsp-serve", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket (requests under way finish on their own threads)."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        with contextlib.suppress(OSError):
            self._server.server_close()

    def serve_until(self, stop: threading.Event) -> None:
        """Serve until ``stop`` is set (a signal handler sets it), then stop cleanly."""
        self.start()
        try:
            while not stop.wait(0.5):
                pass
        finally:
            self.stop()

    def __enter__(self) -> OcspServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
