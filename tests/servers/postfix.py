"""A private Postfix on 127.0.0.1 for tests: submission -> content filter -> re-injection -> LMTP or relay.

Usage::

    from tests.servers.dovecot import Dovecot
    from tests.servers.passthrough import PassThroughFilter
    from tests.servers.postfix import Postfix

    with Dovecot(tmp_path, users={"alice@example.com": "pw"}) as dc, \\
         PassThroughFilter() as flt, \\
         Postfix(tmp_path, lmtp=(dc.host, dc.lmtp_port), content_filter=(flt.host, flt.port),
                 mailboxes=dc.users) as pf:
        flt.reinject_to = (pf.host, pf.reinject_port)    # the filter's next hop
        with smtplib.SMTP(pf.host, pf.submit_port) as s:
            s.sendmail("bob@example.org", ["alice@example.com"], message)
        pf.wait_for(lambda: dc.messages_on_disk("alice@example.com"))

The mail flow (``master.cf`` written from scratch, ``chroot = n`` everywhere)::

    submit_port   smtpd  -o content_filter=filter:[127.0.0.1]:FILTERPORT  (when content_filter is given)
    smtps_port    the same, with implicit TLS (smtpd_tls_wrappermode: smtplib.SMTP_SSL)
        |  queue
        v
    the content filter (the gateway, or PassThroughFilter) -- SMTP -->
    reinject_port smtpd  -o content_filter= -o receive_override_options=no_unknown_recipient_checks,
        |                   no_header_body_checks -o smtpd_authorized_xforward_hosts=127.0.0.0/8
        v
    virtual domains (``mailboxes``) --> lmtp:inet:LMTPHOST:LMTPPORT (Dovecot)
    other domains --> ``relayhost`` (a test SMTP sink), or bounced at once when no relay host is given

Without ``content_filter`` the submission listener queues straight for delivery. Constructor options
(keyword-only): ``lmtp=(host, port)``, ``content_filter=(host, port) | None``, ``mailboxes`` (addresses
accepted for the virtual domains), ``virtual_domains`` (default: the domains of ``mailboxes``),
``relayhost=(host, port) | None``, ``relay_domains``, ``sasl=(host, port) | None`` (Dovecot's
``auth_port``: then the submission listener offers AUTH after STARTTLS and requires it),
``message_size_limit``, ``main`` (extra main.cf settings).

Exposes ``host``, ``submit_port``, ``smtps_port``, ``reinject_port``, ``ca_pem`` (STARTTLS is offered on
``submit_port`` and ``reinject_port``, with a certificate for 127.0.0.1 and localhost), ``queue()``,
``queue_ids()``, ``queue_is_empty()``, ``flush()``, ``log_text()``, ``wait_for(pred, timeout)``,
``wait_queue_empty()``, ``submit(message, sender=, recipients=)``, ``postconf(name)``, ``master_pid``, ``log``.

The configuration directory and the log (``maillog_file`` through the ``postlog`` service: there is no
syslog) live in ``tmp_dir/postfix``; the queue and data directories in a world-traversable run directory
under /tmp (Postfix's daemons run as ``mail_owner = postfix``). Started with ``postfix -c DIR start`` and
stopped with ``postfix -c DIR stop``; ``stop()`` then makes sure no process of the instance is left
(SIGKILL to what remains of the master's process group). The stock system Postfix is never touched.
Several instances can run at once: ports, directories and ``syslog_name`` are unique.
"""

from __future__ import annotations

import contextlib
import json
import smtplib
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from tests.servers import _ports, _proc, _system, _tls
from tests.servers._harness import Harness, died, run_tool

T = TypeVar("T")

_MASTER_CF = """\
# written by tests/servers/postfix.py; chroot (5th column) is n everywhere
127.0.0.1:{submit_port} inet n - n - - smtpd
  -o syslog_name={name}/submit
{submit_options}127.0.0.1:{smtps_port} inet n - n - - smtpd
  -o syslog_name={name}/smtps
  -o smtpd_tls_wrappermode=yes
  -o smtpd_tls_security_level=encrypt
{submit_options}127.0.0.1:{reinject_port} inet n - n - - smtpd
  -o syslog_name={name}/reinject
  -o content_filter=
  -o receive_override_options=no_unknown_recipient_checks,no_header_body_checks,no_milters
  -o smtpd_authorized_xforward_hosts=127.0.0.0/8
  -o mynetworks=127.0.0.0/8
  -o smtpd_client_restrictions=permit_mynetworks,reject
  -o smtpd_relay_restrictions=permit_mynetworks,reject
  -o smtpd_recipient_restrictions=
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
  -o syslog_name={name}/relay
filter    unix  -       -       n       -       10      smtp
  -o syslog_name={name}/filter
  -o smtp_send_xforward_command=yes
  -o smtp_tls_security_level=none
  -o smtp_data_done_timeout=300s
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class PostfixError(RuntimeError):
    """Postfix could not be configured, started or stopped; the message holds the end of its log."""


class Postfix(Harness):
    """A Postfix instance of its own; a context manager (``start()`` on enter, ``stop()`` on exit)."""

    host = _ports.HOST

    def __init__(
        self,
        tmp_dir: Path,
        *,
        lmtp: tuple[str, int] | None = None,
        content_filter: tuple[str, int] | None = None,
        mailboxes: Iterable[str] = (),
        virtual_domains: Iterable[str] | None = None,
        relayhost: tuple[str, int] | None = None,
        relay_domains: Iterable[str] = (),
        sasl: tuple[str, int] | None = None,
        message_size_limit: int = 50 * 1024 * 1024,
        main: dict[str, str] | None = None,
    ) -> None:
        self.dir = Path(tmp_dir) / "postfix"
        self.lmtp = lmtp
        self.content_filter = content_filter
        self.mailboxes = tuple(mailboxes)
        domains = (
            virtual_domains if virtual_domains is not None else (m.split("@")[1] for m in self.mailboxes)
        )
        self.virtual_domains = tuple(dict.fromkeys(d.lower() for d in domains))
        if self.virtual_domains and lmtp is None:
            raise ValueError("virtual domains need an LMTP server to deliver to (lmtp=(host, port))")
        self.relayhost = relayhost
        self.relay_domains = tuple(relay_domains)
        self.sasl = sasl
        self.message_size_limit = message_size_limit
        self.extra_main = dict(main or {})
        self.log = self.dir / "postfix.log"
        self.run: Path | None = None
        self.submit_port = self.smtps_port = self.reinject_port = 0
        self.tls: _tls.ServerTls | None = None
        self._master_pid: int | None = None
        self._binary = ""

    # ------------------------------------------------------------------------------------------- life

    @property
    def name(self) -> str:
        """The ``syslog_name`` of this instance (unique: it holds the run directory's name)."""
        assert self.run is not None
        return f"postfix-{self.run.name}"

    def start(self) -> None:
        """Write main.cf and master.cf, ``postfix start`` (with its checks), wait until both ports answer."""
        binary = _system.which("postfix")
        if binary is None:
            raise PostfixError("postfix is not installed")
        self._binary = binary
        self.dir.mkdir(parents=True, exist_ok=True)
        self.tls = _tls.make_server_tls(self.dir / "tls", name="smimekit test Postfix")
        self._start_retrying(self._start_once, error=PostfixError, reset=self._stop_master)

    def _start_once(self) -> None:
        if self.run is not None:
            _system.remove_tree(self.run)
        self.run = _system.run_dir("skpf-")
        (self.run / "queue").mkdir()
        self.submit_port, self.smtps_port, self.reinject_port = _ports.free_ports(3)
        self._write_config()
        self._postfix("start")  # runs the integrity checks of "postfix check" first
        pid_file = self.run / "queue" / "pid" / "master.pid"
        try:
            _ports.wait_until(pid_file.exists, timeout=30, what="the master pid file")
            self._master_pid = int(pid_file.read_text().split()[0])
            ports = (self.submit_port, self.smtps_port, self.reinject_port)
            _ports.wait_until(
                lambda: all(_ports.port_answers(p) for p in ports),
                timeout=30,
                what=f"Postfix on ports {ports}",
                alive=self._death,
            )
        except (TimeoutError, RuntimeError, ValueError) as e:
            raise PostfixError(f"{e}\n{_system.tail(self.log)}") from None

    def _death(self) -> str | None:
        if self._master_pid is not None and not _proc.is_running(self._master_pid):
            return died("the Postfix master exited", self.log)
        return None

    def _write_config(self) -> None:
        assert self.run is not None and self.tls is not None
        main = {
            "compatibility_level": "3.6",
            "queue_directory": f"{self.run}/queue",
            "data_directory": f"{self.run}/data",
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "import_environment": "MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C POSTLOG_SERVICE POSTLOG_HOSTNAME",
            "syslog_name": self.name,
            "maillog_file": str(self.log),
            "maillog_file_prefixes": str(self.dir),
            "myhostname": "mx.smimekit.test",
            "mydomain": "smimekit.test",
            "myorigin": "$myhostname",
            "mydestination": "",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "mynetworks_style": "host",
            "local_recipient_maps": "",
            "local_transport": "error:local delivery is not configured in this test instance",
            "alias_maps": "",
            "alias_database": "",
            "biff": "no",
            "append_dot_mydomain": "no",
            "smtp_dns_support_level": "disabled",
            "smtpd_peername_lookup": "no",
            "smtpd_banner": "$myhostname ESMTP smimekit test Postfix",
            "smtpd_relay_restrictions": "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination",
            "smtpd_error_sleep_time": "0",
            "in_flow_delay": "0",
            "message_size_limit": str(self.message_size_limit),
            "mailbox_size_limit": "0",
            "virtual_mailbox_limit": "0",
            "queue_run_delay": "2s",
            "minimal_backoff_time": "2s",
            "maximal_backoff_time": "4s",
            "smtp_connect_timeout": "5s",
            "lmtp_connect_timeout": "5s",
            "smtpd_tls_security_level": "may",
            "smtpd_tls_cert_file": str(self.tls.cert_pem),
            "smtpd_tls_key_file": str(self.tls.key_pem),
            "smtp_tls_security_level": "none",
            "relay_domains": ", ".join(self.relay_domains),
        }
        if self.virtual_domains:
            assert self.lmtp is not None
            maps = self.dir / "vmailbox"
            maps.write_text("".join(f"{m} ok\n" for m in self.mailboxes))
            main |= {
                "virtual_mailbox_domains": ", ".join(self.virtual_domains),
                "virtual_mailbox_maps": f"texthash:{maps}",
                "virtual_transport": f"lmtp:inet:[{self.lmtp[0]}]:{self.lmtp[1]}",
            }
        if self.relayhost is not None:
            main["relayhost"] = f"[{self.relayhost[0]}]:{self.relayhost[1]}"
        else:
            main["default_transport"] = "error:no relay host in this test instance"
            main["relay_transport"] = "error:no relay host in this test instance"
        main |= self.extra_main
        (self.dir / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in main.items()))
        options = []
        if self.content_filter is not None:
            options.append(f"content_filter=filter:[{self.content_filter[0]}]:{self.content_filter[1]}")
        if self.sasl is not None:
            options += [
                "smtpd_sasl_auth_enable=yes",
                "smtpd_sasl_type=dovecot",
                f"smtpd_sasl_path=inet:{self.sasl[0]}:{self.sasl[1]}",
                "smtpd_tls_auth_only=yes",
                "smtpd_client_restrictions=",
                "smtpd_relay_restrictions=permit_sasl_authenticated,reject",
            ]
        text = _MASTER_CF.format(
            name=self.name,
            submit_port=self.submit_port,
            smtps_port=self.smtps_port,
            reinject_port=self.reinject_port,
            submit_options="".join(f"  -o {o}\n" for o in options),
        )
        (self.dir / "master.cf").write_text(text)

    def _postfix(self, *args: str) -> str:
        res = run_tool([self._binary, "-c", str(self.dir), *args], timeout=60)
        if res.returncode != 0:
            raise PostfixError(
                f"postfix {' '.join(args)} failed: {(res.stdout + res.stderr).strip()}\n{_system.tail(self.log)}"
            )
        return res.stdout

    def _stop_master(self) -> None:
        pid = self._master_pid
        if self.run is not None and (self.run / "queue" / "pid" / "master.pid").exists():
            with contextlib.suppress(PostfixError, subprocess.TimeoutExpired):
                self._postfix("stop")
        if pid is not None:
            # "postfix stop" returns before the master's children are gone; the master leads their group
            if not _proc.wait_gone([pid], 10):
                _proc.kill_group_leftovers(pid)
            _proc.wait_gone(_proc.group_members(pid), 5)
            _proc.kill_group_leftovers(pid)
        self._master_pid = None

    def stop(self) -> None:
        """``postfix stop``; make sure no process of this instance is left; remove the run directory."""
        self._stop_master()
        if self.run is not None:
            _system.remove_tree(self.run)
            self.run = None
        _proc.unregister(self)

    # ------------------------------------------------------------------------------------------ access

    @property
    def master_pid(self) -> int | None:
        """The process id of this instance's master while it runs."""
        return self._master_pid

    @property
    def ca_pem(self) -> Path:
        """The CA certificate (PEM) of the STARTTLS certificate (for 127.0.0.1)."""
        assert self.tls is not None, "Postfix is not started"
        return self.tls.ca_pem

    def submit(
        self, message: bytes, *, sender: str, recipients: Iterable[str], port: int | None = None
    ) -> None:
        """Send ``message`` (bytes, CRLF line ends) over SMTP to the submission port (or ``port``, e.g.
        ``reinject_port``); raises what smtplib raises when Postfix refuses it."""
        with smtplib.SMTP(self.host, port or self.submit_port, timeout=30) as client:
            refused = client.sendmail(sender, list(recipients), message)
        if refused:
            raise smtplib.SMTPRecipientsRefused(refused)

    def postconf(self, name: str) -> str:
        """The value of a main.cf parameter of this instance, as Postfix sees it."""
        res = subprocess.run(
            [_system.which("postconf") or "postconf", "-c", str(self.dir), "-h", name],
            capture_output=True,
            text=True,
            check=True,
            stdin=subprocess.DEVNULL,
        )
        return res.stdout.strip()

    def queue(self) -> list[dict[str, object]]:
        """The queue as ``postqueue -j`` reports it: one dict per message (queue_id, queue_name, recipients)."""
        res = run_tool([_system.which("postqueue") or "postqueue", "-c", str(self.dir), "-j"], timeout=30)
        if res.returncode != 0:
            raise PostfixError(f"postqueue -j failed: {res.stderr.strip()}")
        return [json.loads(line) for line in res.stdout.splitlines() if line.strip()]

    def queue_ids(self) -> list[str]:
        """The ids of the messages in the queue (active, incoming, deferred, hold)."""
        return [str(m["queue_id"]) for m in self.queue()]

    def queue_is_empty(self) -> bool:
        """True when no message waits in the queue."""
        return not self.queue()

    def flush(self) -> None:
        """``postqueue -f``: attempt to deliver every queued message now."""
        subprocess.run(
            [_system.which("postqueue") or "postqueue", "-c", str(self.dir), "-f"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=30,
            check=True,
        )

    def log_text(self) -> str:
        """Everything this instance logged so far."""
        return _system.read_log(self.log)

    def wait_for(self, pred: Callable[[], T], timeout: float = 30.0, *, interval: float = 0.05) -> T:
        """Poll ``pred`` until it returns something true and return that; on timeout raise ``TimeoutError``
        with the end of the Postfix log (the usual reason why mail did not arrive)."""
        return _ports.poll(
            lambda: pred() or None,
            timeout=timeout,
            interval=interval,
            timed_out=lambda: f"timed out after {timeout:g} s; Postfix log:\n{_system.tail(self.log)}",
        )

    def wait_queue_empty(self, timeout: float = 30.0) -> None:
        """Wait until the queue is empty (everything delivered, bounced or relayed)."""
        self.wait_for(self.queue_is_empty, timeout, interval=0.1)
