"""Submitting a message over SMTP (RFC 5321, submission RFC 6409) with :mod:`smtplib`.

The connection is always TLS — implicit (port 465) or STARTTLS (any other port; a server that does not
offer STARTTLS is refused rather than spoken to in clear text) — with the server's certificate verified as
:func:`smimekit.net.tls.client_context` has it. The envelope comes from the message (``Sender`` or
``From``; ``To``, ``Cc`` and ``Bcc``) unless given; ``Bcc`` is never sent (see :func:`strip_bcc`).

The message is sent from memory (``smtplib`` needs the bytes whole); :data:`MAX_MESSAGE_SIZE` bounds it.
"""

from __future__ import annotations

import base64
import re
import smtplib
import ssl
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..errors import NetError, UsageError
from ..mime import Entity
from ..mime.rfc2047 import parse_addresses
from .tls import DEFAULT_TIMEOUT, NETWORK_ERRORS, Endpoint, TlsMode, describe_failure

__all__ = [
    "MAX_MESSAGE_SIZE",
    "SUBMISSION_PORT",
    "Envelope",
    "SmtpServer",
    "SubmitResult",
    "bare_address",
    "default_tls",
    "envelope_of",
    "sender_address",
    "strip_bcc",
    "submit",
]

SUBMISSION_PORT = 587
SUBMISSIONS_PORT = 465  # implicit TLS (RFC 8314)
MAX_MESSAGE_SIZE = 256 << 20
"""The largest message :func:`submit` sends (bytes): it is held in memory while it is sent."""

_BARE_LF = re.compile(rb"(?<!\r)\n")


def default_tls(port: int) -> TlsMode:
    """Implicit TLS on port 465, STARTTLS on every other port (587, 25, ...)."""
    return TlsMode.IMPLICIT if port == SUBMISSIONS_PORT else TlsMode.STARTTLS


@dataclass(frozen=True)
class SmtpServer:
    """Where and how to submit: the server, its TLS mode and context, and the login (if any)."""

    endpoint: Endpoint
    tls: TlsMode
    context: ssl.SSLContext = field(compare=False)
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = DEFAULT_TIMEOUT
    local_hostname: str | None = None
    """The name given in EHLO (default: this host's fully qualified name)."""


@dataclass(frozen=True)
class Envelope:
    """The SMTP envelope: MAIL FROM and RCPT TO addresses (bare addresses, no display names)."""

    mail_from: str
    recipients: tuple[str, ...]


@dataclass(frozen=True)
class SubmitResult:
    """What the server accepted: the envelope, the size sent and the TLS version spoken."""

    endpoint: Endpoint
    envelope: Envelope
    size: int
    tls_version: str | None


def _addresses(message: Entity, names: Iterable[str]) -> list[str]:
    out: list[str] = []
    for name in names:
        for header in message.headers.fields(name):
            # parse the raw value: decoding first would let a comma inside an encoded name split it
            raw = header.raw_value.decode("utf-8", "replace")
            out.extend(address for _, address in parse_addresses(raw) if address)
    return out


def _unique(addresses: Iterable[str]) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for address in addresses:
        seen.setdefault(address.lower(), address)
    return tuple(seen.values())


def _check_address(address: str, what: str) -> str:
    if "@" not in address or any(c.isspace() or c in "<>" for c in address):
        raise UsageError(f"{what} {address!r} is not an e-mail address")
    return address


def bare_address(value: str) -> str | None:
    """The address in ``value`` (``Alice <alice@example.org>`` or ``alice@example.org``), or None."""
    found = [address for _, address in parse_addresses(value) if address]
    return found[0] if found else None


def sender_address(message: Entity) -> str | None:
    """The first address of ``Sender``, else of ``From``, or None."""
    found = _addresses(message, ["Sender"]) or _addresses(message, ["From"])
    return found[0] if found else None


def envelope_of(message: Entity, *, mail_from: str | None = None, recipients: Sequence[str] = ()) -> Envelope:
    """The envelope for ``message``: ``mail_from`` or else the first address of ``Sender`` or ``From``;
    ``recipients`` or else every address of ``To``, ``Cc`` and ``Bcc`` (each once).

    Raises UsageError when there is no sender or no recipient, or an address is not one.
    """
    if mail_from is None:
        mail_from = sender_address(message)
        if mail_from is None:
            raise UsageError("the message has no From address: give the envelope sender with --mail-from")
    if mail_from:  # "" is the null reverse-path (RFC 5321 §4.5.5), allowed when asked for
        _check_address(mail_from, "the sender")
    rcpts = _unique(recipients) if recipients else _unique(_addresses(message, ["To", "Cc", "Bcc"]))
    if not rcpts:
        raise UsageError("the message has no To, Cc or Bcc address: give the recipients with --rcpt")
    for address in rcpts:
        _check_address(address, "the recipient")
    return Envelope(mail_from, rcpts)


def strip_bcc(message: Entity) -> int:
    """Remove the ``Bcc`` fields from ``message`` (call it before signing and encrypting, so that no copy
    carries them); returns how many were removed."""
    return message.remove_header("Bcc")


def _wire(data: bytes) -> bytes:
    """``data`` with CRLF line endings, as SMTP carries them (a lone LF becomes CRLF)."""
    return _BARE_LF.sub(b"\r\n", data) if b"\n" in data else data


def _refused(refused: dict[str, tuple[int, bytes]]) -> str:
    return "; ".join(
        f"{address} ({code} {' '.join(reply.decode('utf-8', 'replace').split())})"
        for address, (code, reply) in refused.items()
    )


def submit(data: bytes, *, server: SmtpServer, envelope: Envelope) -> SubmitResult:
    """Send ``data`` (a whole message) to ``server`` with ``envelope``.

    Returns only when the server accepted the message for every recipient. Raises NetError when the
    server cannot be reached or refuses (the connection, STARTTLS, the login, the sender, any recipient,
    the message): its reason quotes the server's reply, and says when the message was accepted for some
    recipients before one was refused. Raises UsageError for a message over :data:`MAX_MESSAGE_SIZE`.
    """
    if len(data) > MAX_MESSAGE_SIZE:
        raise UsageError(f"the message is larger than {MAX_MESSAGE_SIZE >> 20} MiB; it is not sent")
    wire = _wire(data)
    endpoint = server.endpoint
    doing = "connecting"
    client: smtplib.SMTP | None = None
    try:
        if server.tls is TlsMode.IMPLICIT:
            client = smtplib.SMTP_SSL(
                endpoint.host,
                endpoint.port,
                local_hostname=server.local_hostname,
                timeout=server.timeout,
                context=server.context,
            )
        else:
            client = smtplib.SMTP(
                endpoint.host, endpoint.port, local_hostname=server.local_hostname, timeout=server.timeout
            )
        doing = "greeting"
        client.ehlo()
        if server.tls is TlsMode.STARTTLS:
            if not client.has_extn("starttls"):
                raise NetError(f"{endpoint} does not offer STARTTLS: the message is not sent in clear text")
            doing = "starting TLS"
            client.starttls(context=server.context)
            client.ehlo()
        if server.user is not None:
            doing = "logging in"
            _login(client, server.user, server.password or "")
        options = _mail_options(client, wire, envelope, endpoint)
        doing = "sending"
        refused = client.sendmail(envelope.mail_from, list(envelope.recipients), wire, mail_options=options)
        if refused:
            accepted = [r for r in envelope.recipients if r not in refused]
            raise NetError(
                f"{endpoint} accepted the message for {', '.join(accepted)} but refused {_refused(refused)}"
            )
        version = _tls_version(client)
    except NetError:
        raise
    except smtplib.SMTPRecipientsRefused as exc:
        raise NetError(f"{endpoint} refused every recipient: {_refused(exc.recipients)}") from None
    except smtplib.SMTPSenderRefused as exc:
        reply = " ".join(exc.smtp_error.decode("utf-8", "replace").split())
        raise NetError(f"{endpoint} refused the sender {exc.sender!r}: {exc.smtp_code} {reply}") from None
    except NETWORK_ERRORS as exc:
        raise describe_failure(exc, endpoint=endpoint, doing=doing) from None
    finally:
        if client is not None:
            _quit(client)
    return SubmitResult(endpoint, envelope, len(wire), version)


def _login(client: smtplib.SMTP, user: str, password: str) -> None:
    """AUTH as smtplib does it; for non-ASCII credentials (which smtplib cannot encode) SASL PLAIN with
    UTF-8 (RFC 4616), which submission servers accept."""
    if user.isascii() and password.isascii():
        client.login(user, password)
        return
    if not client.has_extn("auth"):
        raise smtplib.SMTPNotSupportedError("SMTP AUTH")
    mechanisms = client.esmtp_features.get("auth", "").upper().split()
    if "PLAIN" not in mechanisms:
        raise smtplib.SMTPNotSupportedError("AUTH PLAIN, which a non-ASCII user name or password needs")
    token = base64.b64encode(f"\0{user}\0{password}".encode()).decode("ascii")
    code, reply = client.docmd("AUTH", f"PLAIN {token}")
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, reply)


def _mail_options(client: smtplib.SMTP, wire: bytes, envelope: Envelope, endpoint: Endpoint) -> list[str]:
    options = []
    if not all(a.isascii() for a in (envelope.mail_from, *envelope.recipients)):
        if not client.has_extn("smtputf8"):
            raise NetError(f"{endpoint} does not support SMTPUTF8, which the non-ASCII addresses need")
        options.append("SMTPUTF8")
    if not wire.isascii() and client.has_extn("8bitmime"):
        options.append("BODY=8BITMIME")
    return options


def _tls_version(client: smtplib.SMTP) -> str | None:
    sock = client.sock
    return sock.version() if isinstance(sock, ssl.SSLSocket) else None


def _quit(client: smtplib.SMTP) -> None:
    """Say QUIT when the session is still up; a server that already went away is no error here."""
    try:
        client.quit()
    except NETWORK_ERRORS:
        client.close()
