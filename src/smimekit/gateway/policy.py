"""The gateway's configuration: a TOML file (or command-line flags) turned into frozen values.

Two parts: :class:`Policy` says what happens to mail (pure data for :func:`smimekit.gateway.decide`),
:class:`Settings` says where the gateway listens, where it re-injects mail and how it runs. A file looks
like this (every key is optional but ``internal_domains`` or ``internal_users``)::

    [gateway]
    listen = "127.0.0.1:10025"             # loopback only, unless allow_public_listen = true
    next_hop = "127.0.0.1:10026"
    authserv_id = "mail.example.org"
    password_file = "/etc/smimekit/key-password"

    [policy]
    internal_domains = ["example.org"]
    encrypt = "opportunistic"               # never | opportunistic | required
    on_missing_certificate = "reject"       # reject | defer
    subject_tag = "[secure]"
    subject_tag_action = "remove"           # remove | keep
    revocation = "soft"                     # soft | hard | off

    [policy.domains."partner.example"]
    encrypt = "required"

    [policy.recipients."press@partner.example"]
    encrypt = "never"

The gateway does not check who connects: whoever reaches ``listen`` gets mail signed with the keys of
internal users. A ``listen`` address that is not a loopback one is therefore refused unless
``allow_public_listen = true`` (``--allow-public``) says that something else (a firewall) restricts it.

Anything that cannot work raises :class:`~smimekit.errors.GatewayError` naming the setting.
"""

from __future__ import annotations

import enum
import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from smimekit.errors import GatewayError
from smimekit.gateway.results import TOKEN_CHARS
from smimekit.pki import RevocationMode
from smimekit.store.postgres import is_postgres_url, redact_url

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "EncryptMode",
    "MissingCertificate",
    "Policy",
    "Settings",
    "TagAction",
    "domain_of",
    "is_loopback",
    "load_config",
    "normalize_address",
    "parse_config",
    "parse_hostport",
]

DEFAULT_MAX_MESSAGE_SIZE = 50 << 20
E = TypeVar("E", bound=enum.Enum)
DEFAULT_AUTHSERV_ID = "smimekit"


class EncryptMode(enum.Enum):
    """Whether mail to a recipient is encrypted."""

    NEVER = "never"
    """Never encrypted by the gateway (a message the sender encrypted stays encrypted)."""
    OPPORTUNISTIC = "opportunistic"
    """Encrypted when a usable certificate is known, else sent in clear."""
    REQUIRED = "required"
    """Encrypted, or not sent at all (see :class:`MissingCertificate`)."""


class MissingCertificate(enum.Enum):
    """What happens to a message that must be encrypted for a recipient without a usable certificate."""

    REJECT = "reject"
    """Refuse it for good (SMTP 554 5.7.1): Postfix bounces it to the sender, naming the recipients."""
    DEFER = "defer"
    """Refuse it for now (SMTP 451 4.7.1): Postfix keeps it queued and retries, so it goes out encrypted
    once the certificate is in the store (or bounces when the queue lifetime runs out)."""


class TagAction(enum.Enum):
    """What becomes of the subject tag that asked for encryption."""

    REMOVE = "remove"
    KEEP = "keep"


def normalize_address(address: str) -> str:
    """An address as the policy compares it: surrounding space and angle brackets removed, the domain
    lower-cased (the local part is kept as written, as RFC 5321 says it is the receiver's business)."""
    address = address.strip().removeprefix("<").removesuffix(">").strip()
    local, at, domain = address.rpartition("@")
    return f"{local}@{domain.lower()}" if at else address


def domain_of(address: str) -> str:
    """The lower-cased domain of ``address`` ("" when it has none, like the null sender)."""
    return normalize_address(address).rpartition("@")[2].lower() if "@" in address else ""


@dataclass(frozen=True)
class Policy:
    """What the gateway does to mail; read by :func:`smimekit.gateway.decide.decide`.

    Senders and recipients are *internal* when their domain is in ``internal_domains`` (or a subdomain of
    one) or their address is in ``internal_users``. Mail from an internal sender is signed (``sign`` and a
    key in the store) and encrypted per recipient by :meth:`encryption_for`; mail for internal recipients
    from anyone else is decrypted, verified and given an Authentication-Results field by ``authserv_id``.
    ``revocation`` says how the revocation of certificates counts, for recipients' certificates before
    encrypting and for signers' when verifying (:class:`~smimekit.pki.RevocationMode`; the gateway fetches
    CRLs and OCSP responses, with the store as their cache).
    """

    internal_domains: frozenset[str] = frozenset()
    internal_users: frozenset[str] = frozenset()
    authserv_id: str = DEFAULT_AUTHSERV_ID
    sign: bool = True
    encrypt: EncryptMode = EncryptMode.OPPORTUNISTIC
    domains: Mapping[str, EncryptMode] = field(default_factory=dict)
    recipients: Mapping[str, EncryptMode] = field(default_factory=dict)
    on_missing_certificate: MissingCertificate = MissingCertificate.REJECT
    subject_tag: str | None = "[secure]"
    subject_tag_action: TagAction = TagAction.REMOVE
    decrypt: bool = True
    verify: bool = True
    harvest: bool = True
    revocation: RevocationMode = RevocationMode.SOFT

    def __post_init__(self) -> None:
        # frozen means frozen: the per-domain tables become read-only copies
        object.__setattr__(self, "domains", _ReadOnly({k.lower(): v for k, v in self.domains.items()}))
        object.__setattr__(
            self, "recipients", _ReadOnly({normalize_address(k): v for k, v in self.recipients.items()})
        )

    def is_internal(self, address: str) -> bool:
        """Whether ``address`` is one of ours (the null sender ``""`` never is)."""
        if not address or "@" not in address:
            return False
        if normalize_address(address) in self.internal_users:
            return True
        domain = domain_of(address)
        return any(domain == d or domain.endswith("." + d) for d in self.internal_domains)

    def encryption_for(self, recipient: str) -> EncryptMode:
        """The encryption mode for ``recipient``: its own entry, else its domain's (the most specific
        parent domain wins), else the default ``encrypt``."""
        address = normalize_address(recipient)
        if address in self.recipients:
            return self.recipients[address]
        domain = domain_of(address)
        while domain:
            if domain in self.domains:
                return self.domains[domain]
            domain = domain.partition(".")[2]
        return self.encrypt

    def has_subject_tag(self, subject: str | None) -> bool:
        """Whether ``subject`` carries the tag that forces encryption (compared case-insensitively)."""
        return bool(self.subject_tag and subject and self.subject_tag.casefold() in subject.casefold())

    def without_subject_tag(self, subject: str) -> str:
        """``subject`` with the first occurrence of the tag (and the space after it) taken out."""
        if not self.subject_tag:
            return subject
        at = subject.casefold().find(self.subject_tag.casefold())
        if at < 0:
            return subject
        rest = subject[at + len(self.subject_tag) :]
        head = subject[:at]
        return (head.rstrip() + " " + rest.lstrip()).strip() if head.strip() else rest.lstrip()

    def describe(self, address: str) -> dict[str, Any]:
        """What the policy says about ``address``, for ``smimekit gateway check --address``."""
        internal = self.is_internal(address)
        return {
            "address": normalize_address(address),
            "internal": internal,
            "as_sender": ("signed with its key from the store" if self.sign else "not signed")
            if internal
            else "incoming: decrypted and verified for internal recipients",
            "as_recipient": {
                "encrypt": self.encryption_for(address).value,
                "on_missing_certificate": self.on_missing_certificate.value,
                "incoming": "decrypted and verified, result header added" if internal else None,
            },
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "internal_domains": sorted(self.internal_domains),
            "internal_users": sorted(self.internal_users),
            "authserv_id": self.authserv_id,
            "sign": self.sign,
            "encrypt": self.encrypt.value,
            "domains": {k: v.value for k, v in sorted(self.domains.items())},
            "recipients": {k: v.value for k, v in sorted(self.recipients.items())},
            "on_missing_certificate": self.on_missing_certificate.value,
            "subject_tag": self.subject_tag,
            "subject_tag_action": self.subject_tag_action.value,
            "decrypt": self.decrypt,
            "verify": self.verify,
            "harvest": self.harvest,
            "revocation": self.revocation.value,
        }


class _ReadOnly(dict[str, EncryptMode]):
    """A dict that refuses changes (hashable policies are not needed; unchangeable ones are)."""

    def _refuse(self, *args: object, **kwargs: object) -> None:
        raise TypeError("the policy is frozen")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _refuse  # type: ignore[assignment]


@dataclass(frozen=True)
class Settings:
    """How the gateway runs: where it listens, where processed mail goes, its resources."""

    policy: Policy
    listen: tuple[str, int] = ("127.0.0.1", 10025)
    next_hop: tuple[str, int] = ("127.0.0.1", 10026)
    store: str | None = None
    """The store location (None: ``smimekit --store``, ``$SMIMEKIT_STORE`` or the default one)."""
    password_file: Path | None = None
    """First line: the passphrase of the private keys in the store."""
    spool_dir: Path | None = None
    """Where messages wait while processed, and the journal of copies delivered (None: the user's state
    directory)."""
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    workers: int = 4
    processes: int = 0
    """Worker processes that sign and encrypt (0: in the threads of the gateway process itself)."""
    next_hop_timeout: float = 60.0
    store_timeout: float = 10.0
    """Seconds to wait for a store another process holds before answering 4xx."""
    allow_public_listen: bool = False
    """Whether ``listen`` may be an address that is not a loopback one (see the module docstring)."""

    def __post_init__(self) -> None:
        if not self.allow_public_listen and not is_loopback(self.listen[0]):
            raise GatewayError(
                f"listen {_hostport(self.listen)} is not a loopback address: the gateway signs mail with "
                "internal users' keys for anyone who connects, so it would be an open relay; listen on "
                "127.0.0.1 or ::1, or set gateway.allow_public_listen = true (--allow-public) when a "
                "firewall lets only the mail server connect"
            )

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready data for ``smimekit gateway check`` (a store URL's password is
        masked)."""
        return {
            "listen": _hostport(self.listen),
            "allow_public_listen": self.allow_public_listen,
            "next_hop": _hostport(self.next_hop),
            "store": None if self.store is None else _shown_store(self.store),
            "password_file": None if self.password_file is None else str(self.password_file),
            "spool_dir": None if self.spool_dir is None else str(self.spool_dir),
            "max_message_size": self.max_message_size,
            "workers": self.workers,
            "processes": self.processes,
            "next_hop_timeout": self.next_hop_timeout,
            "store_timeout": self.store_timeout,
            "policy": self.policy.to_dict(),
        }


_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_PORT = re.compile(r"[0-9]{1,5}")


def parse_hostport(value: str, *, setting: str, any_port: bool = False) -> tuple[str, int]:
    """``host:port`` as a pair: the host is an IPv4 address, a host name, or an IPv6 address in brackets
    (``[::1]:10025``); the port is 1 to 65535 (or 0, "any free port", with ``any_port``).

    Raises GatewayError naming ``setting`` for anything else (unbalanced or misplaced brackets, an IPv6
    address without them, a host name that is not one, a missing or out-of-range port)."""
    text = value.strip()
    problem = f"{setting} must be HOST:PORT (e.g. 127.0.0.1:10025 or [::1]:10025), not {value!r}"
    if text.startswith("["):
        close = text.find("]")
        if close < 0 or text[close + 1 : close + 2] != ":":
            raise GatewayError(problem)
        host, port = text[1:close], text[close + 2 :]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise GatewayError(f"{problem}: {host!r} is not an IPv6 address") from None
    else:
        host, sep, port = text.rpartition(":")
        if not sep or not _is_host(host):
            raise GatewayError(problem)
    low = 0 if any_port else 1
    if not _PORT.fullmatch(port) or not low <= int(port) <= 65535:
        raise GatewayError(f"{problem}: the port must be a number from {low} to 65535")
    return host, int(port)


def _is_host(host: str) -> bool:
    """An IPv4 address or a DNS host name (letters, digits and hyphens in dot-separated labels)."""
    try:
        ipaddress.IPv4Address(host)
        return True
    except ValueError:
        pass
    name = host.removesuffix(".")
    if not name or len(name) > 253 or name.replace(".", "").isdigit():
        return False  # all digits: a malformed IPv4 address, not a name
    return all(_HOST_LABEL.fullmatch(label) for label in name.split("."))


def _shown_store(location: str) -> str:
    """A store location fit to print: a path as it is, a URL without the password of its user part."""
    if is_postgres_url(location):
        return redact_url(location)
    scheme, sep, rest = location.partition("://")
    if not sep:
        return location
    authority, slash, tail = rest.partition("/")
    userinfo, at, host = authority.rpartition("@")
    if at and ":" in userinfo:
        authority = f"{userinfo.split(':', 1)[0]}:***@{host}"
    return f"{scheme}{sep}{authority}{slash}{tail.partition('?')[0]}{'?***' if '?' in tail else ''}"


def _hostport(pair: tuple[str, int]) -> str:
    host, port = pair
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (127.0.0.0/8, ``::1``, their IPv4-mapped form) or the name
    ``localhost``. Other names are not resolved: they count as not loopback."""
    if host.lower().removesuffix(".") == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


_GATEWAY_KEYS = {
    "listen",
    "next_hop",
    "store",
    "password_file",
    "spool_dir",
    "max_message_size",
    "workers",
    "processes",
    "next_hop_timeout",
    "store_timeout",
    "authserv_id",
    "allow_public_listen",
}
_POLICY_KEYS = {
    "internal_domains",
    "internal_users",
    "sign",
    "encrypt",
    "domains",
    "recipients",
    "on_missing_certificate",
    "subject_tag",
    "subject_tag_action",
    "decrypt",
    "verify",
    "harvest",
    "revocation",
}


def load_config(path: str | os.PathLike[str], **overrides: Any) -> Settings:
    """Read the TOML file at ``path`` and apply ``overrides`` (see :func:`parse_config`).

    Raises GatewayError when the file cannot be read, is not TOML or holds a setting that cannot work.
    """
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise GatewayError(f"cannot read the gateway configuration {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise GatewayError(f"the gateway configuration {path} is not valid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:  # TOML is UTF-8; tomllib lets the decoding error through
        raise GatewayError(
            f"the gateway configuration {path} is not UTF-8 text (byte {exc.start} cannot be decoded)"
        ) from exc
    base = Path(path).parent
    return parse_config(data, base=base, **overrides)


def parse_config(
    data: Mapping[str, Any],
    *,
    base: Path | None = None,
    listen: str | None = None,
    next_hop: str | None = None,
    internal_domains: tuple[str, ...] = (),
    encrypt: str | None = None,
    password_file: str | os.PathLike[str] | None = None,
    store: str | None = None,
    spool_dir: str | os.PathLike[str] | None = None,
    workers: int | None = None,
    processes: int | None = None,
    authserv_id: str | None = None,
    revocation: str | None = None,
    allow_public_listen: bool | None = None,
) -> Settings:
    """Settings from the parsed TOML ``data``; the keyword arguments (command-line flags) win over it.
    Relative paths in the file are relative to ``base``. Raises GatewayError naming a bad setting."""
    unknown = set(data) - {"gateway", "policy"}
    if unknown:
        raise GatewayError(f"unknown section(s) in the gateway configuration: {', '.join(sorted(unknown))}")
    gw = _table(data, "gateway", _GATEWAY_KEYS)
    pol = _table(data, "policy", _POLICY_KEYS)

    domains_list = [*_strings(pol, "internal_domains"), *internal_domains]
    policy = Policy(
        internal_domains=frozenset(_domain(d) for d in domains_list),
        internal_users=frozenset(normalize_address(u) for u in _strings(pol, "internal_users")),
        authserv_id=_authserv_id(authserv_id or _string(gw, "authserv_id", DEFAULT_AUTHSERV_ID)),
        sign=_bool(pol, "sign", True),
        encrypt=_enum(EncryptMode, encrypt or pol.get("encrypt", "opportunistic"), "encrypt"),
        domains=_modes(pol, "domains"),
        recipients=_modes(pol, "recipients"),
        on_missing_certificate=_enum(
            MissingCertificate, pol.get("on_missing_certificate", "reject"), "on_missing_certificate"
        ),
        subject_tag=_string(pol, "subject_tag", "[secure]") or None,
        subject_tag_action=_enum(TagAction, pol.get("subject_tag_action", "remove"), "subject_tag_action"),
        decrypt=_bool(pol, "decrypt", True),
        verify=_bool(pol, "verify", True),
        harvest=_bool(pol, "harvest", True),
        revocation=_enum(RevocationMode, revocation or pol.get("revocation", "soft"), "revocation"),
    )
    if not policy.internal_domains and not policy.internal_users:
        raise GatewayError("no internal domain: set policy.internal_domains or give --internal-domain")

    def path_of(value: str | os.PathLike[str] | None) -> Path | None:
        if value is None:
            return None
        p = Path(value).expanduser()
        return p if p.is_absolute() or base is None else base / p

    settings = Settings(
        policy=policy,
        listen=parse_hostport(
            listen or _string(gw, "listen", "127.0.0.1:10025"), setting="listen", any_port=True
        ),
        next_hop=parse_hostport(next_hop or _string(gw, "next_hop", "127.0.0.1:10026"), setting="next_hop"),
        store=store or (str(path_of(gw["store"])) if _is_path_store(gw) else gw.get("store")),
        password_file=path_of(password_file if password_file is not None else gw.get("password_file")),
        spool_dir=path_of(spool_dir if spool_dir is not None else gw.get("spool_dir")),
        max_message_size=_int(gw, "max_message_size", DEFAULT_MAX_MESSAGE_SIZE, low=1024),
        workers=workers if workers is not None else _int(gw, "workers", 4, low=1),
        processes=processes if processes is not None else _int(gw, "processes", 0, low=0),
        next_hop_timeout=float(_int(gw, "next_hop_timeout", 60, low=1)),
        store_timeout=_seconds(gw, "store_timeout", 10.0),
        allow_public_listen=(
            allow_public_listen
            if allow_public_listen is not None
            else _bool(gw, "allow_public_listen", False)
        ),
    )
    if settings.workers < 1 or settings.workers > 256:
        raise GatewayError(f"workers must be between 1 and 256, not {settings.workers}")
    if settings.processes < 0 or settings.processes > 64:
        raise GatewayError(f"processes must be between 0 and 64, not {settings.processes}")
    return settings


def _is_path_store(gw: Mapping[str, Any]) -> bool:
    value = gw.get("store")
    if value is None:
        return False
    if not isinstance(value, str) or not value:
        raise GatewayError("gateway.store must be a path or a postgresql:// URL")
    return "://" not in value


def _table(data: Mapping[str, Any], name: str, keys: set[str]) -> Mapping[str, Any]:
    table = data.get(name, {})
    if not isinstance(table, Mapping):
        raise GatewayError(f"[{name}] must be a table")
    unknown = set(table) - keys
    if unknown:
        raise GatewayError(f"unknown setting(s) in [{name}]: {', '.join(sorted(unknown))}")
    return table


def _string(table: Mapping[str, Any], key: str, default: str) -> str:
    value = table.get(key, default)
    if not isinstance(value, str):
        raise GatewayError(f"{key} must be a string, not {value!r}")
    return value


def _strings(table: Mapping[str, Any], key: str) -> list[str]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise GatewayError(f"{key} must be a list of non-empty strings")
    return value


def _bool(table: Mapping[str, Any], key: str, default: bool) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise GatewayError(f"{key} must be true or false, not {value!r}")
    return value


def _int(table: Mapping[str, Any], key: str, default: int, *, low: int) -> int:
    value = table.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise GatewayError(f"{key} must be an integer of at least {low}, not {value!r}")
    return value


def _enum(cls: type[E], value: object, setting: str) -> E:
    try:
        return cls(value)
    except ValueError:
        choices = " | ".join(str(m.value) for m in cls)
        raise GatewayError(f"{setting} must be one of {choices}, not {value!r}") from None


def _seconds(table: Mapping[str, Any], key: str, default: float) -> float:
    value = table.get(key, default)
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value <= 3600:
        raise GatewayError(f"{key} must be a number of seconds between 0 and 3600, not {value!r}")
    return float(value)


def _domain(value: str) -> str:
    domain = value.strip().lower().lstrip("@").rstrip(".")
    if not domain or "@" in domain or any(c.isspace() for c in domain):
        raise GatewayError(f"{value!r} is not a domain name")
    return domain


def _authserv_id(value: str) -> str:
    """The authserv-id as written in our result fields: an RFC 2045 token (printable ASCII without
    spaces or ``()<>@,;:\\"/[]?=``); trailing dots are dropped (``gw.example.org.`` is the same host, and
    fields claiming either are recognised as ours)."""
    name = value.rstrip(".")
    if not name or any(c not in TOKEN_CHARS for c in name):
        raise GatewayError(
            f"authserv_id must be a host name (printable ASCII without spaces or ';'), not {value!r}"
        )
    return name


def _modes(table: Mapping[str, Any], key: str) -> dict[str, EncryptMode]:
    entries = table.get(key, {})
    if not isinstance(entries, Mapping):
        raise GatewayError(f"policy.{key} must be a table of tables")
    modes: dict[str, EncryptMode] = {}
    for name, entry in entries.items():
        if not isinstance(entry, Mapping) or set(entry) - {"encrypt"} or "encrypt" not in entry:
            raise GatewayError(f'policy.{key}."{name}" must be a table with one key: encrypt')
        modes[name] = _enum(EncryptMode, entry["encrypt"], f'policy.{key}."{name}".encrypt')
        if key == "domains":
            _domain(name)
        elif "@" not in name:
            raise GatewayError(f'policy.recipients."{name}" is not an e-mail address')
    return modes
