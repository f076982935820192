"""smimekit.net.smtp against a real SMTP server (aiosmtpd on 127.0.0.1) with STARTTLS, implicit TLS and
AUTH: what reaches the server, and one clear NetError for each way submission fails."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from smimekit import mime
from smimekit.errors import NetError, UsageError
from smimekit.net import smtp
from smimekit.net.tls import Endpoint, TlsMode, client_context, parse_endpoint
from tests.servers import _ports, _tls

# implicit TLS is TLS, though aiosmtpd does not count it so and warns that AUTH is allowed without it
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

USER, PASSWORD = "alice", "s3cret ☃"
MESSAGE = (
    b"From: Alice <alice@example.org>\r\n"
    b'To: Bob <bob@example.org>, "Doe, Carol" <carol@example.org>\r\n'
    b"Cc: dave@example.org\r\n"
    b"Bcc: eve@example.org\r\n"
    b"Subject: hello\r\n"
    b"\r\n"
    b".a line that starts with a dot\r\n"
    b"bye\r\n"
)


@dataclass
class _Handler:
    received: list[tuple[str, tuple[str, ...], bytes]] = field(default_factory=list)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 <nobody@example.org>: no such user"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append((envelope.mail_from, tuple(envelope.rcpt_tos), envelope.original_content))
        return "250 2.0.0 queued"


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    accounts = {USER.encode(): PASSWORD.encode(), b"bob": b"ascii-only"}
    ok = isinstance(data, LoginPassword) and accounts.get(data.login) == data.password
    return AuthResult(success=ok, handled=False)


@dataclass
class Server:
    handler: _Handler
    endpoint: Endpoint
    ca: Path
    tls: TlsMode

    def settings(self, **kw: Any) -> smtp.SmtpServer:
        options: dict[str, Any] = {"user": USER, "password": PASSWORD, "timeout": 10.0}
        options.update(kw)
        context = options.pop("context", None) or client_context(ca_file=self.ca)
        return smtp.SmtpServer(self.endpoint, options.pop("tls", self.tls), context, **options)


def _start(tmp: Path, *, implicit: bool, offer_starttls: bool = True) -> tuple[Controller, Server]:
    tls = _tls.make_server_tls(tmp / "tls")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(tls.cert_pem, tls.key_pem)
    handler = _Handler()
    port = _ports.free_port()
    options: dict[str, Any] = {
        "hostname": _ports.HOST,
        "port": port,
        "authenticator": _authenticate,
        "auth_required": True,
        "enable_SMTPUTF8": True,
        "ready_timeout": 10,
    }
    if implicit:
        # aiosmtpd does not count implicit TLS as TLS for AUTH: allow it (the connection is TLS all the same)
        options.update(ssl_context=server_ctx, auth_require_tls=False)
    elif offer_starttls:
        options.update(tls_context=server_ctx, require_starttls=True)
    else:
        options.update(auth_require_tls=False)
    controller = Controller(handler, **options)
    controller.start()
    mode = TlsMode.IMPLICIT if implicit else TlsMode.STARTTLS
    return controller, Server(handler, Endpoint(_ports.HOST, port), tls.ca_pem, mode)


@pytest.fixture(scope="module")
def starttls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    controller, server = _start(tmp_path_factory.mktemp("smtp-starttls"), implicit=False)
    yield server
    controller.stop()


@pytest.fixture(scope="module")
def implicit_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    controller, server = _start(tmp_path_factory.mktemp("smtp-implicit"), implicit=True)
    yield server
    controller.stop()


def _sent(server: Server, data: bytes = MESSAGE, **kw: Any) -> tuple[str, tuple[str, ...], bytes]:
    with mime.parse(data) as msg:
        envelope = smtp.envelope_of(msg)
    before = len(server.handler.received)
    result = smtp.submit(data, server=server.settings(**kw), envelope=envelope)
    assert result.tls_version in ("TLSv1.2", "TLSv1.3")
    assert len(server.handler.received) == before + 1
    return server.handler.received[-1]


# ------------------------------------------------------------------------------------------ envelope


def test_envelope_comes_from_from_and_every_recipient_field() -> None:
    with mime.parse(MESSAGE) as msg:
        envelope = smtp.envelope_of(msg)
    assert envelope.mail_from == "alice@example.org"
    # the comma inside the quoted display name does not split the address
    assert envelope.recipients == (
        "bob@example.org",
        "carol@example.org",
        "dave@example.org",
        "eve@example.org",
    )


def test_sender_field_wins_and_options_override() -> None:
    data = MESSAGE.replace(b"Subject:", b"Sender: secretary@example.org\r\nSubject:")
    with mime.parse(data) as msg:
        assert smtp.envelope_of(msg).mail_from == "secretary@example.org"
        given = smtp.envelope_of(msg, mail_from="bounces@example.org", recipients=["x@example.org"])
    assert given == smtp.Envelope("bounces@example.org", ("x@example.org",))


def test_missing_sender_or_recipients_and_bad_addresses_are_usage_errors() -> None:
    with mime.parse(b"To: bob@example.org\r\n\r\nhi\r\n") as msg, pytest.raises(UsageError, match="no From"):
        smtp.envelope_of(msg)
    with mime.parse(b"From: a@example.org\r\n\r\nhi\r\n") as msg, pytest.raises(UsageError, match="--rcpt"):
        smtp.envelope_of(msg)
    with mime.parse(MESSAGE) as msg, pytest.raises(UsageError, match="not an e-mail address"):
        smtp.envelope_of(msg, recipients=["bob at example.org"])


def test_strip_bcc_removes_the_field_and_nothing_else() -> None:
    with mime.parse(MESSAGE) as msg:
        assert smtp.strip_bcc(msg) == 1
        out = msg.to_bytes()
    assert out == MESSAGE.replace(b"Bcc: eve@example.org\r\n", b"")


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("mail.example.org", "mail.example.org", 587),
        ("127.0.0.1:2525", "127.0.0.1", 2525),
        ("[::1]:465", "::1", 465),
    ],
)
def test_parse_endpoint(text: str, host: str, port: int) -> None:
    assert parse_endpoint(text, default_port=587) == Endpoint(host, port)


@pytest.mark.parametrize("text", ["", "host:0", "host:99999", "host:smtp", "user@host", "[::1"])
def test_parse_endpoint_refuses_nonsense(text: str) -> None:
    with pytest.raises(UsageError):
        parse_endpoint(text, default_port=587)


def test_default_tls_is_implicit_only_on_465() -> None:
    assert smtp.default_tls(465) is TlsMode.IMPLICIT
    assert smtp.default_tls(587) is TlsMode.STARTTLS
    assert smtp.default_tls(25) is TlsMode.STARTTLS


# ------------------------------------------------------------------------------------------ sending


def test_starttls_with_login_delivers_the_exact_bytes(starttls_server: Server) -> None:
    mail_from, rcpts, data = _sent(starttls_server)
    assert mail_from == "alice@example.org"
    assert rcpts == ("bob@example.org", "carol@example.org", "dave@example.org", "eve@example.org")
    assert data == MESSAGE  # dot-stuffing undone by the server: the same bytes arrive


def test_ascii_login_uses_smtplib_login(starttls_server: Server) -> None:
    _, _, data = _sent(starttls_server, user="bob", password="ascii-only")
    assert data == MESSAGE


def test_implicit_tls_delivers(implicit_server: Server) -> None:
    _, _, data = _sent(implicit_server)
    assert data == MESSAGE


def test_bare_lf_line_ends_go_out_as_crlf(starttls_server: Server) -> None:
    _, _, data = _sent(starttls_server, MESSAGE.replace(b"\r\n", b"\n"))
    assert data == MESSAGE


def test_non_ascii_addresses_use_smtputf8(starttls_server: Server) -> None:
    data = MESSAGE.replace(b"dave@example.org", "dävid@exämple.org".encode())
    _, rcpts, received = _sent(starttls_server, data)
    assert "dävid@exämple.org" in rcpts
    assert received == data


def test_wrong_password_is_one_net_error(starttls_server: Server) -> None:
    with pytest.raises(NetError, match="refused the user name or password") as info:
        _sent(starttls_server, password="wrong")
    assert "535" in info.value.reason


def test_unverifiable_server_certificate_is_refused(starttls_server: Server) -> None:
    with pytest.raises(NetError, match="did not verify") as info:
        _sent(starttls_server, context=client_context())  # the system's CAs do not know the test CA
    assert "--ca" in info.value.reason
    assert not isinstance(info.value, UsageError)


def test_unsafe_no_verify_still_sends(starttls_server: Server) -> None:
    _, _, data = _sent(starttls_server, context=client_context(unsafe_no_verify=True))
    assert data == MESSAGE


def test_refused_recipient_names_it_and_nothing_is_sent(starttls_server: Server) -> None:
    before = len(starttls_server.handler.received)
    envelope = smtp.Envelope("alice@example.org", ("nobody@example.org",))
    with pytest.raises(NetError, match=r"refused every recipient: nobody@example.org \(550"):
        smtp.submit(MESSAGE, server=starttls_server.settings(), envelope=envelope)
    assert len(starttls_server.handler.received) == before


def test_partly_refused_recipients_fail_and_say_who_got_it(starttls_server: Server) -> None:
    envelope = smtp.Envelope("alice@example.org", ("bob@example.org", "nobody@example.org"))
    with pytest.raises(NetError, match=r"accepted the message for bob@example\.org but refused nobody@"):
        smtp.submit(MESSAGE, server=starttls_server.settings(), envelope=envelope)


def test_server_down_is_connection_refused() -> None:
    endpoint = Endpoint(_ports.HOST, _ports.free_port())  # nothing listens there
    settings = smtp.SmtpServer(endpoint, TlsMode.STARTTLS, client_context(), timeout=5)
    with pytest.raises(NetError, match="refused the connection"):
        smtp.submit(MESSAGE, server=settings, envelope=smtp.Envelope("a@example.org", ("b@example.org",)))


def test_silent_server_times_out() -> None:
    with socket.create_server((_ports.HOST, 0)) as silent:  # accepts, never greets
        port = silent.getsockname()[1]
        settings = smtp.SmtpServer(
            Endpoint(_ports.HOST, port), TlsMode.STARTTLS, client_context(), timeout=0.5
        )
        with pytest.raises(NetError, match="did not answer in time"):
            smtp.submit(MESSAGE, server=settings, envelope=smtp.Envelope("a@example.org", ("b@example.org",)))


def test_server_that_hangs_up_is_reported() -> None:
    with socket.create_server((_ports.HOST, 0)) as rude:
        port = rude.getsockname()[1]

        def hang_up() -> None:
            conn, _ = rude.accept()
            conn.sendall(b"220 hello\r\n")
            conn.recv(1024)
            conn.close()

        thread = threading.Thread(target=hang_up, daemon=True)
        thread.start()
        settings = smtp.SmtpServer(Endpoint(_ports.HOST, port), TlsMode.STARTTLS, client_context(), timeout=5)
        with pytest.raises(NetError, match="closed the connection"):
            smtp.submit(MESSAGE, server=settings, envelope=smtp.Envelope("a@example.org", ("b@example.org",)))
        thread.join(5)


def test_server_without_starttls_gets_nothing_in_clear_text(tmp_path: Path) -> None:
    controller, server = _start(tmp_path, implicit=False, offer_starttls=False)
    try:
        with pytest.raises(NetError, match="does not offer STARTTLS"):
            _sent(server)
        assert server.handler.received == []
    finally:
        controller.stop()


def test_oversized_message_is_refused_before_connecting() -> None:
    settings = smtp.SmtpServer(Endpoint(_ports.HOST, 1), TlsMode.STARTTLS, client_context())
    big = b"x" * (smtp.MAX_MESSAGE_SIZE + 1)
    with pytest.raises(UsageError, match="larger than"):
        smtp.submit(big, server=settings, envelope=smtp.Envelope("a@example.org", ("b@example.org",)))


def test_ca_file_that_is_not_a_certificate_is_a_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    with pytest.raises(UsageError, match="cannot use"):
        client_context(ca_file=bad)
