"""A private OpenLDAP server (slapd, back_mdb) on 127.0.0.1 for tests.

Usage::

    from tests.servers.slapd import Slapd

    with Slapd(tmp_path) as ldap:                        # suffix dc=example,dc=com
        ldap.add_person("alice@example.com", "Alice", [cert.public_bytes(Encoding.DER)])
        ldap.url                                         # "ldap://127.0.0.1:PORT/"

It writes its own ``slapd.conf`` (the core, cosine and inetorgperson schemas from /etc/ldap/schema,
``moduleload back_mdb`` from /usr/lib/ldap), runs ``slapd -f CONF -h ldap://127.0.0.1:PORT/ -d 0`` in the
foreground as a child process (its own process group, stdio to a file), waits until it answers and creates
the suffix entry and ``ou=people``. Exposes ``host``, ``port``, ``url``, ``suffix``, ``people_dn``,
``root_dn`` / ``root_password`` (the rootdn, which may write), ``log`` and ``add_person()``.

With ``tls=True`` it also listens on ``ldaps_url`` (``ldaps_port``) and offers STARTTLS on ``url``, with a
certificate for ``tls_hosts`` (localhost and 127.0.0.1) issued by the CA in ``ca_pem``. With ``anonymous_read=False`` only bound users may read (anonymous binds may only authenticate), for
tests of credentials. ``stop()`` ends slapd with SIGTERM and reaps it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import ldap3
from ldap3.utils.dn import escape_rdn

from tests.servers import _ports, _proc, _system, _tls
from tests.servers._harness import ChildServer, run_tool

SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")

_CONF = """\
# written by tests/servers/slapd.py
include {schema}/core.schema
include {schema}/cosine.schema
include {schema}/inetorgperson.schema
modulepath {modules}
moduleload back_mdb
pidfile {dir}/slapd.pid
argsfile {dir}/slapd.args
loglevel none
sizelimit 500
{tls_config}
database mdb
maxsize 16777216
suffix "{suffix}"
rootdn "{root_dn}"
rootpw {root_password}
directory {dir}/db
index objectClass eq
index mail eq
access to attrs=userPassword by self write by anonymous auth by * none
access to * {read_rule}
"""


class SlapdError(RuntimeError):
    """slapd could not be configured or started; the message holds its output."""


class Slapd(ChildServer):
    """An OpenLDAP server of its own; a context manager (``start()`` on enter, ``stop()`` on exit)."""

    host = _ports.HOST

    def __init__(
        self,
        tmp_dir: Path,
        suffix: str = "dc=example,dc=com",
        *,
        root_password: str = "ldap-admin-pw",
        anonymous_read: bool = True,
        tls: bool = False,
        tls_hosts: tuple[str, ...] = ("localhost", "127.0.0.1"),
    ) -> None:
        self.dir = Path(tmp_dir) / "slapd"
        self.suffix = suffix
        self.root_dn = f"cn=admin,{suffix}"
        self.root_password = root_password
        self.people_dn = f"ou=people,{suffix}"
        self.anonymous_read = anonymous_read
        self.tls_enabled = tls
        self.tls_hosts = tls_hosts
        self.tls: _tls.ServerTls | None = None
        self.ldaps_port = 0
        self.config = self.dir / "slapd.conf"
        self.log = self.dir / "slapd.stdio"
        self.port = 0

    @property
    def url(self) -> str:
        """``ldap://127.0.0.1:PORT/`` (with ``tls=True`` it also offers STARTTLS)"""
        return f"ldap://{self.host}:{self.port}/"

    @property
    def ldaps_url(self) -> str:
        """``ldaps://127.0.0.1:PORT/`` (only with ``tls=True``)"""
        assert self.tls_enabled, "Slapd(tls=True) offers ldaps"
        return f"ldaps://{self.host}:{self.ldaps_port}/"

    @property
    def ca_pem(self) -> Path:
        """The CA (PEM) of the server certificate, for 127.0.0.1 and localhost (only with ``tls=True``)."""
        assert self.tls is not None, "Slapd(tls=True) is not started"
        return self.tls.ca_pem

    def start(self) -> None:
        """Write slapd.conf, start slapd, wait until it answers, create the suffix and ``ou=people``."""
        binary = _system.which("slapd")
        if binary is None:
            raise SlapdError("slapd is not installed")
        if not (MODULE_DIR / "back_mdb.la").exists() and not (MODULE_DIR / "back_mdb.so").exists():
            raise SlapdError(f"back_mdb is not installed in {MODULE_DIR}")

        def attempt() -> None:
            self._start_once(binary)
            self._populate()

        self._start_retrying(attempt, error=SlapdError, reset=self._stop_process)

    def _start_once(self, binary: str) -> None:
        _system.remove_tree(self.dir)
        (self.dir / "db").mkdir(parents=True)
        self.port = _ports.free_port()
        urls = [self.url]
        tls_config = ""
        if self.tls_enabled:
            self.tls = _tls.make_server_tls(
                self.dir / "tls", name="smimekit test slapd", hosts=self.tls_hosts
            )
            self.ldaps_port = _ports.free_port()
            urls.append(self.ldaps_url)
            tls_config = (
                f"TLSCACertificateFile {self.tls.ca_pem}\n"
                f"TLSCertificateFile {self.tls.cert_pem}\n"
                f"TLSCertificateKeyFile {self.tls.key_pem}\n"
            )
        read_rule = "by * read" if self.anonymous_read else "by users read by anonymous auth by * none"
        self.config.write_text(
            _CONF.format(
                schema=SCHEMA_DIR,
                modules=MODULE_DIR,
                dir=self.dir,
                suffix=self.suffix,
                root_dn=self.root_dn,
                root_password=self.root_password,
                read_rule=read_rule,
                tls_config=tls_config,
            )
        )
        test = run_tool([binary, "-T", "test", "-u", "-f", str(self.config)])
        if test.returncode != 0:
            raise SlapdError(f"slaptest rejects {self.config}: {(test.stdout + test.stderr).strip()}")
        self._spawn([binary, "-f", str(self.config), "-h", " ".join(urls), "-d", "0"], self.log)
        ports = [self.port, self.ldaps_port] if self.tls_enabled else [self.port]
        self._wait_ready(
            lambda: all(_ports.port_answers(p) for p in ports),
            name="slapd",
            what=f"slapd on ports {ports}",
            error=SlapdError,
            logs=(self.log,),
        )

    def connection(self) -> ldap3.Connection:
        """A connection bound as the rootdn (may write anything); close it with ``unbind()``."""
        server = ldap3.Server(self.host, port=self.port, get_info=ldap3.NONE, connect_timeout=10)
        return ldap3.Connection(
            server, user=self.root_dn, password=self.root_password, auto_bind=True, receive_timeout=10
        )

    def _populate(self) -> None:
        first_rdn = self.suffix.split(",")[0]
        attr, _, value = first_rdn.partition("=")
        conn = self.connection()
        try:
            if attr.lower() == "dc":
                ok = conn.add(self.suffix, ["dcObject", "organization"], {"dc": value, "o": value})
            else:
                ok = conn.add(self.suffix, ["organization"], {"o": value})
            ok = ok and conn.add(self.people_dn, ["organizationalUnit"], {"ou": "people"})
            if not ok:
                raise SlapdError(f"could not create the suffix entries: {conn.result}")
        finally:
            conn.unbind()

    def add_person(
        self,
        mail: str | Iterable[str],
        cn: str,
        certs_der: Iterable[bytes] = (),
        *,
        smime_certs_der: Iterable[bytes] = (),
        uid: str | None = None,
    ) -> str:
        """Add an inetOrgPerson under ``ou=people`` and return its DN.

        ``mail`` is one address or several; ``certs_der`` go to ``userCertificate;binary``,
        ``smime_certs_der`` (PKCS#7 blobs, as in RFC 2798) to ``userSMIMECertificate``.
        """
        mails = [mail] if isinstance(mail, str) else list(mail)
        rdn = escape_rdn(uid or cn)
        dn = f"uid={rdn},{self.people_dn}"
        attrs: dict[str, object] = {
            "cn": cn,
            "sn": cn.split()[-1] if cn.split() else cn,
            "uid": uid or cn,
            "mail": mails,
        }
        certs = list(certs_der)
        if certs:
            attrs["userCertificate;binary"] = certs
        smime = list(smime_certs_der)
        if smime:
            attrs["userSMIMECertificate"] = smime
        conn = self.connection()
        try:
            if not conn.add(dn, ["inetOrgPerson"], attrs):
                raise SlapdError(f"could not add {dn}: {conn.result}")
        finally:
            conn.unbind()
        return dn

    def stop(self) -> None:
        """Stop slapd (SIGTERM), reap it (idempotent)."""
        self._stop_process()
        _proc.unregister(self)
