"""TLS for the mail clients: one way to build a verifying client context, server addresses, and turning
what the socket, ssl and stdlib clients raise into one :class:`~smimekit.errors.NetError`.

Server certificates are always verified (the system's trust store, or ``ca_file`` for a private CA) and
the host name must match; the only way around that is ``unsafe_no_verify=True``, which callers must report
to the user. TLS 1.2 is the least accepted.
"""

from __future__ import annotations

import enum
import errno
import imaplib
import poplib
import re
import smtplib
import socket
import ssl
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import NetError, UsageError

__all__ = [
    "DEFAULT_TIMEOUT",
    "NETWORK_ERRORS",
    "Endpoint",
    "MailboxServer",
    "TlsMode",
    "client_context",
    "describe_failure",
    "parse_endpoint",
    "server_reply",
]

_IMAPLIB_REPLY = re.compile(r"\b(BAD|NO) \[b['\"](.*)['\"]\]$")

DEFAULT_TIMEOUT = 30.0
"""Seconds to wait for a connection or a reply before giving up."""


class TlsMode(enum.Enum):
    """How a connection is protected: TLS from the first byte, or STARTTLS after the greeting."""

    IMPLICIT = "implicit"
    STARTTLS = "starttls"


@dataclass(frozen=True)
class Endpoint:
    """A server's host name (or address) and TCP port."""

    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class MailboxServer:
    """A mailbox server (IMAP or POP3) to read from: where, how it is protected, and the login."""

    endpoint: Endpoint
    tls: TlsMode
    context: ssl.SSLContext = field(compare=False)
    user: str = ""
    password: str = field(default="", repr=False)
    timeout: float = DEFAULT_TIMEOUT


def parse_endpoint(value: str, *, default_port: int) -> Endpoint:
    """``HOST``, ``HOST:PORT``, ``[IPv6]`` or ``[IPv6]:PORT`` as an :class:`Endpoint`.

    Raises UsageError for an empty host or a port that is not a number from 1 to 65535.
    """
    text = value.strip()
    port_text: str | None = None
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise UsageError(f"{value!r} is not HOST[:PORT] (an IPv6 address goes in brackets: [::1]:993)")
        port_text = rest[1:] if rest else None
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host = text
    if not host or any(c.isspace() or c in "/@" for c in host):
        raise UsageError(f"{value!r} is not HOST[:PORT]")
    if port_text is None:
        return Endpoint(host, default_port)
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise UsageError(f"{value!r}: the port must be a number from 1 to 65535")
    return Endpoint(host, int(port_text))


def client_context(*, ca_file: Path | None = None, unsafe_no_verify: bool = False) -> ssl.SSLContext:
    """A client context that verifies the server's certificate chain and host name.

    ``ca_file`` (PEM) replaces the system's trust store, for servers with a private CA. With
    ``unsafe_no_verify`` nothing about the server is checked: anyone on the path can read and change the
    traffic, including the password. Raises UsageError when ``ca_file`` cannot be read or holds no
    certificate.
    """
    if unsafe_no_verify:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif ca_file is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies chain and host name by default
        try:
            context.load_verify_locations(cafile=str(ca_file))
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise UsageError(f"cannot use {ca_file} as the server's CA certificates: {_short(exc)}") from None
    else:
        context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _short(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return exc.verify_message
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return exc.reason.lower().replace("_", " ")
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[:1].lower() + exc.strerror[1:]
    text = str(exc).strip() or type(exc).__name__
    return text


def server_reply(exc: BaseException) -> str:
    """The text of an SMTP, IMAP or POP3 error reply, as one line."""
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc)
        return f"{exc.smtp_code} {' '.join(text.split())}"
    arg = exc.args[0] if exc.args else ""
    if isinstance(arg, bytes):
        arg = arg.decode("utf-8", "replace")
    text = " ".join(str(arg).split())
    # imaplib words a tagged BAD/NO as "UID command error: BAD [b'the text']": keep the server's words
    found = _IMAPLIB_REPLY.search(text)
    if found is not None:
        text = f"{found.group(1)} {found.group(2)}"
    return text or type(exc).__name__


def describe_failure(exc: BaseException, *, endpoint: Endpoint, doing: str) -> NetError:
    """The :class:`NetError` for ``exc``, raised by a socket, ssl or the stdlib mail clients while
    ``doing`` something (``"sending"``, ``"logging in"``) with the server at ``endpoint``.

    The reason says which of these it was: the name does not resolve, the connection was refused or timed
    out, the server's certificate did not verify, the server refused the login, the server went away, or
    the server answered with an error (its reply is quoted).
    """
    where = f"{endpoint}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = (
            f"the TLS certificate of {where} did not verify ({_short(exc)}); give its CA with --ca FILE "
            "if it uses a private CA"
        )
    elif isinstance(exc, socket.gaierror):
        reason = f"cannot resolve the host name {endpoint.host}: {_short(exc)}"
    elif isinstance(exc, TimeoutError | socket.timeout) or isinstance(exc.__context__, TimeoutError):
        # smtplib reports a timeout while reading a reply as SMTPServerDisconnected, from the TimeoutError
        reason = f"{where} did not answer in time while {doing}"
    elif isinstance(exc, ConnectionRefusedError):
        reason = f"{where} refused the connection (is the server running on that port?)"
    elif isinstance(exc, smtplib.SMTPAuthenticationError):
        reason = f"{where} refused the user name or password: {server_reply(exc)}"
    elif isinstance(exc, smtplib.SMTPNotSupportedError):
        reason = f"{where} does not support {server_reply(exc)}"
    elif isinstance(exc, smtplib.SMTPServerDisconnected | EOFError | ConnectionError | BrokenPipeError):
        reason = f"{where} closed the connection while {doing}"
    elif isinstance(exc, smtplib.SMTPResponseException):
        reason = f"{where} refused while {doing}: {server_reply(exc)}"
    elif isinstance(exc, ssl.SSLError):
        reason = f"TLS with {where} failed while {doing}: {_short(exc)}"
    elif isinstance(exc, imaplib.IMAP4.abort):
        reason = f"{where} closed the IMAP session while {doing}: {server_reply(exc)}"
    elif isinstance(exc, imaplib.IMAP4.error | poplib.error_proto | smtplib.SMTPException):
        reason = f"{where} answered with an error while {doing}: {server_reply(exc)}"
    elif isinstance(exc, OSError) and exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        reason = f"{where} cannot be reached: {_short(exc)}"
    elif isinstance(exc, OSError):
        reason = f"the connection to {where} failed while {doing}: {_short(exc)}"
    else:
        reason = f"{where}: {doing} failed: {_short(exc)}"
    return NetError(reason)


#: The exceptions that mean "the network or the server", to be turned into NetError by describe_failure.
NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # socket errors, ssl.SSLError, timeouts, refused connections
    EOFError,
    smtplib.SMTPException,
    imaplib.IMAP4.error,
    poplib.error_proto,
)
