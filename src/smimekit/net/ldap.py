"""Certificate discovery in an LDAP directory: the certificates published for an e-mail address.

::

    directory = LdapDirectory("ldap://ldap.example.com/", base_dn="ou=people,dc=example,dc=com")
    certs = directory.certificates_for("alice@example.com")       # list[x509.Certificate]

The directory is searched below ``base_dn`` for entries of ``object_class`` (``inetOrgPerson``) whose
``mail`` equals the address (the server compares case-insensitively); the value is escaped (RFC 4515), so
an address cannot change the filter. From each entry it reads ``userCertificate;binary`` (DER, RFC 4523)
and ``userSMIMECertificate`` (a PKCS#7 SignedData holding certificates, RFC 2798). Duplicates are dropped;
a value that is not a certificate is skipped and reported in :attr:`LdapLookup.skipped`.

Discovery is not trust: the certificates come from whoever controls the directory and must be validated
(``smimekit.pki``) before anything is encrypted to them.

The host name of the URL is resolved once and the connection is made to the IP address (so a slow or
hostile resolver is asked once, and each address is tried in turn); with TLS the server certificate is
verified (system trust store or ``ca_file``) and must name the host of the URL or the address connected
to. Referrals are not followed. A password is never sent unencrypted, except to a loopback address or
with ``unsafe_plaintext_bind=True``. At most ``max_entries`` entries are read.

Every failure to reach or use the server raises :class:`~smimekit.errors.FetchError` with a ``reason``
that says which server and what went wrong (unreachable, refused, timed out, TLS verification failed,
bad credentials, no such base DN); arguments that cannot work raise :class:`~smimekit.errors.UsageError`.
"""

from __future__ import annotations

import contextlib
import enum
import ipaddress
import math
import re
import socket
import ssl
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ldap3
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7
from ldap3.core import exceptions as ldap_exc
from ldap3.utils.conv import escape_filter_chars

from ..errors import FetchError, UsageError

__all__ = ["DEFAULT_TIMEOUT", "LdapDirectory", "LdapLookup", "LdapTls", "ldap_filter_for"]

DEFAULT_TIMEOUT = 10.0
"""Seconds to wait for the connection and for each answer."""

_MAX_ENTRIES = 50
_CERT_ATTRS = ("userCertificate;binary", "userSMIMECertificate")
_VERIFY_DETAIL = re.compile(r"certificate verify failed: ([^()'\"]+?)\s*\(_ssl")
_RESULT_NAMES = {
    32: "the base DN does not exist on the server",
    49: "invalid credentials",
    50: "insufficient access rights",
    51: "the server is busy",
    52: "the server is unavailable",
    53: "the server is unwilling to perform the search",
}


class LdapTls(enum.Enum):
    """How the connection is protected: not at all, STARTTLS after connecting, or TLS from the first byte."""

    NONE = "none"
    STARTTLS = "starttls"
    IMPLICIT = "implicit"


@dataclass(frozen=True)
class LdapLookup:
    """What one search found: the certificates (unique, in directory order), the DNs of the matching
    entries, and one sentence per attribute value that was skipped because it is not a certificate."""

    certificates: tuple[x509.Certificate, ...]
    entries: tuple[str, ...]
    skipped: tuple[str, ...]


def ldap_filter_for(email: str, *, object_class: str = "inetOrgPerson") -> str:
    """The search filter for entries of ``object_class`` with ``mail`` = ``email`` (value escaped per RFC
    4515: ``*``, ``(``, ``)``, ``\\`` and NUL cannot change the filter). Raises ``UsageError`` for an
    address that cannot be one (no ``@``, control characters, longer than 254 characters)."""
    _check_address(email)
    _check_object_class(object_class)
    return f"(&(objectClass={object_class})(mail={escape_filter_chars(email)}))"


def _check_object_class(name: str) -> None:
    if not name.isascii() or not name.replace("-", "").isalnum() or not name[:1].isalpha():
        raise UsageError(f"not an LDAP object class: {name!r}")


def _check_address(email: str) -> None:
    if not isinstance(email, str) or "@" not in email or len(email) > 254:
        raise UsageError(f"not an e-mail address: {email!r}")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in email) or email != email.strip():
        raise UsageError(f"not an e-mail address: {email!r}")


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str
    port: int


def _parse_url(url: str) -> _Target:
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise UsageError(f"not an LDAP URL: {url!r} ({e})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("ldap", "ldaps") or not parts.hostname:
        raise UsageError(f"not an LDAP URL: {url!r} (expected ldap://host[:port] or ldaps://host[:port])")
    if parts.path not in ("", "/") or parts.query or parts.username or parts.password:
        raise UsageError(f"the LDAP URL {url!r} may name only a host and port (give base_dn separately)")
    return _Target(scheme, parts.hostname, port or (636 if scheme == "ldaps" else 389))


class LdapDirectory:
    """An LDAP directory to look certificates up in. Cheap to create; each lookup uses a new connection.

    ``url`` is ``ldap://host[:port]`` or ``ldaps://host[:port]``; ``base_dn`` where to search (whole
    subtree); ``bind_dn`` and ``password`` a simple bind (anonymous when not given); ``timeout`` seconds
    per connection and answer; ``tls`` overrides the protection the scheme implies (``ldap`` -> NONE,
    ``ldaps`` -> IMPLICIT), e.g. ``LdapTls.STARTTLS``; ``ca_file`` a PEM file of trusted CAs instead of
    the system's; ``object_class`` the kind of entry searched; ``max_entries`` the most entries read.
    """

    def __init__(
        self,
        url: str,
        *,
        base_dn: str,
        bind_dn: str | None = None,
        password: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        tls: LdapTls | None = None,
        ca_file: str | Path | None = None,
        object_class: str = "inetOrgPerson",
        max_entries: int = _MAX_ENTRIES,
        unsafe_plaintext_bind: bool = False,
    ) -> None:
        self._target = _parse_url(url)
        self.url = url
        if not base_dn or any(ord(c) < 0x20 for c in base_dn):
            raise UsageError(f"not a base DN: {base_dn!r}")
        if (bind_dn is None) != (password is None):
            raise UsageError("an LDAP bind needs both a bind DN and a password")
        if not timeout > 0:
            raise UsageError("the LDAP timeout must be positive")
        if max_entries < 1:
            raise UsageError("max_entries must be at least 1")
        self.base_dn = base_dn
        self.bind_dn = bind_dn
        self._password = password
        self.timeout = float(timeout)
        self.tls = (
            tls if tls is not None else (LdapTls.IMPLICIT if self._target.scheme == "ldaps" else LdapTls.NONE)
        )
        self.ca_file = Path(ca_file) if ca_file is not None else None
        if self.ca_file is not None and not self.ca_file.is_file():
            raise UsageError(f"{self.ca_file}: no such CA file")
        self.object_class = object_class
        self.max_entries = max_entries
        self.unsafe_plaintext_bind = unsafe_plaintext_bind
        _check_object_class(object_class)

    def __repr__(self) -> str:
        who = f", bind_dn={self.bind_dn!r}" if self.bind_dn else ""
        return f"LdapDirectory({self.url!r}, base_dn={self.base_dn!r}{who}, tls={self.tls.name})"

    @property
    def _where(self) -> str:
        return f"the LDAP server {self.url}"

    # ------------------------------------------------------------------------------------------ lookup

    def certificates_for(self, email: str) -> list[x509.Certificate]:
        """The certificates the directory publishes for ``email`` ([] when none; not yet validated).

        Raises ``FetchError`` when the server cannot be reached or used, ``UsageError`` for a bad address.
        """
        return list(self.lookup(email).certificates)

    def lookup(self, email: str) -> LdapLookup:
        """Search for ``email``; the certificates, the entries found and what was skipped (see module doc)."""
        search_filter = ldap_filter_for(email, object_class=self.object_class)
        conn = self._connect()
        try:
            try:
                conn.search(
                    self.base_dn,
                    search_filter,
                    search_scope=ldap3.SUBTREE,
                    attributes=list(_CERT_ATTRS),
                    size_limit=self.max_entries,
                    time_limit=max(1, int(self.timeout)),
                )
            except ldap_exc.LDAPException as e:
                raise FetchError(
                    f"{self._where} failed during the search: {_describe(e, self.timeout)}"
                ) from None
            code = conn.result.get("result", 0) if conn.result else 0
            if code not in (0, 4):  # 4: size limit exceeded, the entries read so far are kept
                hint = " (an anonymous search; does it need a bind DN and password?)" if code == 50 else ""
                raise FetchError(
                    f"{self._where} refused the search: {_result_text(conn.result)}"
                    + (hint if self.bind_dn is None else "")
                )
            return _collect(conn.response or [])
        finally:
            _close(conn)

    # --------------------------------------------------------------------------------------- connection

    def _addresses(self) -> list[str]:
        try:
            infos = socket.getaddrinfo(self._target.host, self._target.port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as e:
            raise FetchError(f"{self._where}: cannot resolve {self._target.host}: {e}") from None
        return list(dict.fromkeys(str(info[4][0]) for info in infos))

    def _ldap_tls(self) -> ldap3.Tls:
        host = self._target.host
        return ldap3.Tls(
            validate=ssl.CERT_REQUIRED,  # version=None: ssl.create_default_context(), TLS 1.2 at least
            ca_certs_file=str(self.ca_file) if self.ca_file else None,
            valid_names=[host],
            sni=None if _is_ip(host) else host,
        )

    def _cleartext_password_to(self, address: str) -> bool:
        """True when a bind would send the password in clear text over a network (not loopback)."""
        if self._password is None or self.tls is not LdapTls.NONE or self.unsafe_plaintext_bind:
            return False
        return not ipaddress.ip_address(address).is_loopback

    def _connect(self) -> ldap3.Connection:
        failures: list[str] = []
        for address in self._addresses():
            if self._cleartext_password_to(address):
                raise UsageError(
                    f"refusing to send the LDAP password unencrypted to {self.url}; use ldaps://, "
                    "tls=LdapTls.STARTTLS, or unsafe_plaintext_bind=True"
                )
            server = ldap3.Server(
                address,
                port=self._target.port,
                use_ssl=self.tls is LdapTls.IMPLICIT,
                tls=self._ldap_tls() if self.tls is not LdapTls.NONE else None,
                get_info=ldap3.NONE,
                connect_timeout=self.timeout,
                mode=ldap3.IP_V6_ONLY if ":" in address else ldap3.IP_V4_ONLY,
            )
            conn = ldap3.Connection(
                server,
                user=self.bind_dn,
                password=self._password,
                auto_bind=ldap3.AUTO_BIND_NONE,
                receive_timeout=math.ceil(self.timeout),  # ldap3 packs it into SO_RCVTIMEO: whole seconds
                raise_exceptions=False,
                auto_referrals=False,
                auto_escape=False,
                read_only=True,
                check_names=False,
            )
            try:
                conn.open()
            except ldap_exc.LDAPException as e:
                failures.append(_describe(e, self.timeout))
                _close(conn)
                continue
            try:
                self._secure_and_bind(conn)
            except BaseException:
                _close(conn)
                raise
            return conn
        raise FetchError(f"cannot connect to {self._where}: {'; '.join(failures) or 'no address'}")

    def _secure_and_bind(self, conn: ldap3.Connection) -> None:
        try:
            if self.tls is LdapTls.STARTTLS and not conn.start_tls():
                raise FetchError(f"{self._where} refused STARTTLS: {_result_text(conn.result)}")
            ok = conn.bind()
        except ldap_exc.LDAPException as e:
            raise FetchError(f"{self._where} failed while connecting: {_describe(e, self.timeout)}") from None
        if not ok:
            who = f"as {self.bind_dn}" if self.bind_dn else "anonymously"
            raise FetchError(f"{self._where} refused the bind {who}: {_result_text(conn.result)}")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _close(conn: ldap3.Connection) -> None:
    with contextlib.suppress(ldap_exc.LDAPException, OSError):
        conn.unbind()


def _result_text(result: Any) -> str:
    if not isinstance(result, dict):
        return "no answer"
    code = result.get("result")
    text = _RESULT_NAMES.get(code) if isinstance(code, int) else None
    if text is None:
        text = str(result.get("description") or "unknown error")
    message = str(result.get("message") or "").strip()
    return f"{text} ({message})" if message else text


def _describe(exc: BaseException, timeout: float) -> str:
    """One clause for what ldap3 raised: refused, timed out, TLS verification, or the library's text."""
    text = str(exc)
    lowered = text.lower()
    if isinstance(exc, ldap_exc.LDAPResponseTimeoutError) or "timed out" in lowered or "timeout" in lowered:
        return f"no answer within {timeout:g} s"
    if "refused" in lowered:
        return "connection refused (is the server running?)"
    if "doesn't match any name" in lowered:
        return "the server's TLS certificate is not for this host name or address"
    if "certificate verify failed" in lowered:
        detail = _VERIFY_DETAIL.search(text)
        why = f": {detail.group(1)}" if detail else ""
        return f"the server's TLS certificate cannot be verified{why}"
    if isinstance(exc, ldap_exc.LDAPSocketReceiveError | ldap_exc.LDAPSessionTerminatedByServerError):
        return f"the server closed the connection ({text})"
    return text or type(exc).__name__


def _collect(response: list[dict[str, Any]]) -> LdapLookup:
    certs: list[x509.Certificate] = []
    seen: set[bytes] = set()
    entries: list[str] = []
    skipped: list[str] = []

    def add(cert: x509.Certificate) -> None:
        der = cert.public_bytes(Encoding.DER)
        if der not in seen:
            seen.add(der)
            certs.append(cert)

    for item in response:
        if item.get("type") != "searchResEntry":
            continue  # a referral (not followed)
        dn = str(item.get("dn", ""))
        entries.append(dn)
        raw: dict[str, list[bytes]] = item.get("raw_attributes") or {}
        for name, values in raw.items():
            base = name.split(";", 1)[0].lower()
            for index, value in enumerate(values or []):
                if base == "usercertificate":
                    try:
                        add(x509.load_der_x509_certificate(bytes(value)))
                    except ValueError as e:
                        skipped.append(f"{dn}: {name} value {index + 1} is not a certificate ({e})")
                elif base == "usersmimecertificate":
                    try:
                        for cert in pkcs7.load_der_pkcs7_certificates(bytes(value)):
                            add(cert)
                    except ValueError as e:
                        skipped.append(
                            f"{dn}: {name} value {index + 1} is not a PKCS#7 certificate list ({e})"
                        )
    return LdapLookup(tuple(certs), tuple(entries), tuple(skipped))
