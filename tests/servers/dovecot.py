"""A private Dovecot (IMAP, POP3, LMTP, SASL auth) on 127.0.0.1 for tests.

Usage::

    from tests.servers.dovecot import Dovecot

    with Dovecot(tmp_path, users={"alice@example.com": "pw"}) as dc:
        imap = imaplib.IMAP4_SSL(dc.host, dc.imap_port, ssl_context=dc.client_context())
        imap.login("alice@example.com", "pw")
        ...
        dc.messages_on_disk("alice@example.com")   # -> [bytes, ...] in delivery order (LF line ends)
        dc.wait_for_message("alice@example.com", b"Subject: hello")  # -> bytes, polls up to 30 s

What it runs: ``dovecot -F -c CONF`` as a child process (stdio to files, its own process group) with a
configuration written from scratch (the system's /etc/dovecot is not read), listening only on 127.0.0.1:

=====================  ===========================================================================
attribute              meaning
=====================  ===========================================================================
``host``               ``"127.0.0.1"``
``imap_port``          IMAPS: implicit TLS (``imaplib.IMAP4_SSL``)
``imap_starttls_port`` IMAP with STARTTLS (LOGINDISABLED before STARTTLS, see below)
``pop3_port``          POP3S: implicit TLS (``poplib.POP3_SSL``)
``pop3_starttls_port`` POP3 with STLS (USER/PASS refused before STLS, see below)
``lmtp_port``          LMTP over TCP, no TLS, no authentication: the delivery port for Postfix
``auth_port``          Dovecot SASL over TCP, for Postfix ``smtpd_sasl_type = dovecot``,
                       ``smtpd_sasl_path = inet:127.0.0.1:auth_port``
``ca_pem``             the PEM file of the CA that issued the server certificate (for 127.0.0.1 and localhost)
``users``              ``{address: password}`` as given; the address is the login name
``log``                Dovecot's log file
``config``             the dovecot.conf written
=====================  ===========================================================================

Mail is stored as Maildir (``maildir(user)``), owned by an unprivileged user: as root ``vmail`` (created
with ``useradd -r`` when missing), otherwise the current user. Unknown LMTP recipients are refused (550).
Plain-text authentication (PLAIN, LOGIN) is allowed over TLS only (``ssl = required``), except that Dovecot
counts a connection as secure when both ends have the same address: a client on 127.0.0.1 may log in
without TLS; connect from 127.0.0.2 (``source_address``) to see the refusal. Wrong passwords cost 0.5 s
and no growing penalty (the anvil auth-penalty socket is disabled). Start-up waits until every port answers
(30 s at most; a bind race with another process is retried with new ports); ``stop()`` ends the server
and reaps it, and removes the run directory (the mail) — ``config`` and ``log`` stay in ``tmp_dir``.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path

from tests.servers import _ports, _proc, _system, _tls
from tests.servers._harness import ChildServer, run_tool

_CONF = """\
# written by tests/servers/dovecot.py
instance_name = {instance}
base_dir = {run}/base
state_dir = {run}/state
log_path = {log}
info_log_path = {log}
debug_log_path = {log}
protocols = imap pop3 lmtp
listen = 127.0.0.1
shutdown_clients = yes

ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
auth_mechanisms = plain login
auth_failure_delay = 0

default_internal_user = {internal_user}
default_login_user = {login_user}
first_valid_uid = {uid}
last_valid_uid = 0
first_valid_gid = {gid}
mail_uid = {uid}
mail_gid = {gid}
mail_location = maildir:~/Maildir
mail_fsync = never

passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {run}/users
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {run}/users
  default_fields = uid={uid} gid={gid} home={run}/mail/%d/%n
}}

# one long-lived login process per protocol (started at once) instead of one per connection: start-up
# is over when it greets, and a stop never catches a login process half initialised
service imap-login {{
  service_count = 0
  process_min_avail = 1
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_starttls_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imap_port}
    ssl = yes
  }}
}}
service pop3-login {{
  service_count = 0
  process_min_avail = 1
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {pop3_starttls_port}
  }}
  inet_listener pop3s {{
    address = 127.0.0.1
    port = {pop3_port}
    ssl = yes
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp_port}
  }}
}}
# without the auth penalty socket Dovecot adds no growing delay after a wrong password (tests try them)
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service auth {{
  inet_listener auth-inet {{
    address = 127.0.0.1
    port = {auth_port}
  }}
}}
protocol lmtp {{
  postmaster_address = postmaster@example.com
}}
protocol pop3 {{
  pop3_uidl_format = %08Xu%08Xv
}}
"""

_PORT_NAMES = ("imap_port", "imap_starttls_port", "pop3_port", "pop3_starttls_port", "lmtp_port", "auth_port")


class DovecotError(RuntimeError):
    """Dovecot could not be configured or started; the message holds the end of its log."""


class Dovecot(ChildServer):
    """A Dovecot instance of its own; a context manager (``start()`` on enter, ``stop()`` on exit)."""

    host = _ports.HOST

    def __init__(self, tmp_dir: Path, users: dict[str, str] | None = None) -> None:
        self.dir = Path(tmp_dir) / "dovecot"
        self.users = dict(users if users is not None else {"alice@example.com": "alice-pw"})
        for user, password in self.users.items():
            if "@" not in user or any(c in user + password for c in ":\n\r"):
                raise ValueError(f"unusable test user {user!r} (needs an @, no ':' or line break)")
        self.config = self.dir / "dovecot.conf"
        self.log = self.dir / "dovecot.log"
        self._stdio = self.dir / "dovecot.stdio"
        self.run: Path | None = None
        self._mail = _system.mail_user()
        self.imap_port = self.imap_starttls_port = self.pop3_port = 0
        self.pop3_starttls_port = self.lmtp_port = self.auth_port = 0
        self.tls: _tls.ServerTls | None = None

    # ------------------------------------------------------------------------------------------- life

    def start(self) -> None:
        """Write the configuration, start Dovecot and wait until all its ports answer."""
        binary = _system.which("dovecot")
        if binary is None:
            raise DovecotError("dovecot is not installed")
        for lib in ("imap", "pop3", "lmtp"):
            if not Path(f"/usr/lib/dovecot/{lib}").exists():
                raise DovecotError(f"dovecot's {lib} service is not installed")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.tls = _tls.make_server_tls(self.dir / "tls", name="smimekit test Dovecot")

        def attempt() -> None:
            self._prepare_run_dir()
            self._start_once(binary)

        self._start_retrying(attempt, error=DovecotError, reset=self._stop_process)

    def _prepare_run_dir(self) -> None:
        if self.run is not None:
            _system.remove_tree(self.run)
        self.run = _system.run_dir("skdc-")
        for sub in ("base", "state"):
            (self.run / sub).mkdir()
        mail = self.run / "mail"
        mail.mkdir()
        os.chown(mail, self._mail.uid, self._mail.gid)
        # the auth process runs as the internal user, which must read the users file
        users = self.run / "users"
        users.write_text("".join(f"{u}:{{PLAIN}}{p}::::::\n" for u, p in self.users.items()))
        users.chmod(0o644)
        for name, port in zip(_PORT_NAMES, _ports.free_ports(len(_PORT_NAMES)), strict=True):
            setattr(self, name, port)

    def _conf_text(self) -> str:
        assert self.run is not None and self.tls is not None
        root = os.geteuid() == 0
        return _CONF.format(
            instance=f"smimekit-{self.run.name}",
            run=self.run,
            log=self.log,
            cert=self.tls.cert_pem,
            key=self.tls.key_pem,
            internal_user="dovecot" if root else self._mail.name,
            login_user="dovenull" if root else self._mail.name,
            uid=self._mail.uid,
            gid=self._mail.gid,
            **{name: getattr(self, name) for name in _PORT_NAMES},
        )

    def _start_once(self, binary: str) -> None:
        self.config.write_text(self._conf_text())
        check = run_tool([binary, "-n", "-c", str(self.config)])
        if check.returncode != 0:
            raise DovecotError(f"dovecot -n rejects {self.config}: {check.stderr.strip()}")
        self._spawn([binary, "-F", "-c", str(self.config)], self._stdio)
        ports = [getattr(self, name) for name in _PORT_NAMES]
        greetings = {
            self.imap_starttls_port: b"* OK",
            self.pop3_starttls_port: b"+OK",
            self.lmtp_port: b"220 ",
            self.auth_port: b"VERSION\t",
        }

        def ready() -> bool:
            # greetings: the login, LMTP and auth processes run; the TLS ports share those processes
            return all(_ports.greets(p, g) for p, g in greetings.items()) and all(
                _ports.port_answers(p) for p in (self.imap_port, self.pop3_port)
            )

        self._wait_ready(
            ready,
            name="dovecot",
            what=f"Dovecot on ports {ports}",
            error=DovecotError,
            logs=(self._stdio, self.log),
        )

    def stop(self) -> None:
        """Stop Dovecot (SIGTERM to the master, which ends its children), reap it, remove the run directory."""
        self._stop_process()
        if self.run is not None:
            _system.remove_tree(self.run)
            self.run = None
        _proc.unregister(self)

    # ------------------------------------------------------------------------------------------ access

    @property
    def ca_pem(self) -> Path:
        """The CA certificate (PEM) that issued the server certificate."""
        assert self.tls is not None, "Dovecot is not started"
        return self.tls.ca_pem

    def client_context(self) -> ssl.SSLContext:
        """A client ``SSLContext`` that trusts ``ca_pem`` and checks the host name (127.0.0.1)."""
        assert self.tls is not None, "Dovecot is not started"
        return self.tls.client_context()

    def maildir(self, user: str) -> Path:
        """The Maildir of ``user`` (it exists once a message was delivered or the user logged in)."""
        assert self.run is not None, "Dovecot is not started"
        local, _, domain = user.partition("@")
        return self.run / "mail" / domain / local / "Maildir"

    def messages_on_disk(self, user: str) -> list[bytes]:
        """The messages in ``user``'s INBOX (``new`` and ``cur``), oldest delivery first; [] when none."""
        root = self.maildir(user)
        files = [p for sub in ("new", "cur") if (root / sub).is_dir() for p in (root / sub).iterdir()]
        # Maildir names start with the delivery time in seconds, then a unique part
        files.sort(key=lambda p: (p.stat().st_mtime, p.name))
        return [p.read_bytes() for p in files]

    def wait_for_message(self, user: str, contains: bytes = b"", timeout: float = 30.0) -> bytes:
        """The first message in ``user``'s INBOX on disk that contains ``contains``, waiting up to
        ``timeout`` seconds (``TimeoutError`` with the end of Dovecot's log otherwise)."""
        return _ports.poll(
            lambda: next((m for m in self.messages_on_disk(user) if contains in m), None),
            timeout=timeout,
            timed_out=lambda: (
                f"no message with {contains!r} for {user} within {timeout:g} s; Dovecot log:\n"
                + _system.tail(self.log)
            ),
        )

    def log_text(self) -> str:
        """Everything Dovecot logged so far."""
        return _system.read_log(self.log)
