"""``smimekit ca``: run a small S/MIME certificate authority whose state lives in the store.

The commands parse options, read the clock, open the store and call :mod:`smimekit.ca`; CA and subscriber
keys go into the store encrypted with the passphrase of ``--password-file``/``SMIMEKIT_PASSWORD``/the
prompt (the same passphrase protects the keys a command creates and unlocks the CA key it needs).
``ca ocsp-serve`` lives in :mod:`.ca_ocsp` (see :data:`LAZY_COMMANDS`) and uses the helpers here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import json
from collections.abc import Callable
from typing import Any, TypeVar

import click
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from .. import ca as ca_lib
from ..ca.bundle import certifiable_key, issuer_key, pkcs12_bundle
from ..ca.issue import CaSigner, Endpoints
from ..errors import CaError, StoreNotFoundError, UsageError, WrongPasswordError
from ..store import CaRecord, RevocationReason, Store, Trust
from . import _secrets
from ._common import atomic_output, read_bytes, store_option, warn_store_passphrase
from ._identity import required_store
from ._secrets import PasswordSource, password_file_option
from ._store import open_cli_store

__all__ = ["ca"]

_KEY_TYPES = [t.value for t in ca_lib.KeyType if t is not ca_lib.KeyType.X25519]
_EE_KEY_TYPES = [t.value for t in ca_lib.KeyType]
_REASONS = [r.value for r in RevocationReason]
F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_CRL_DAYS = 7
BACKDATE = dt.timedelta(minutes=5)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _not_before() -> dt.datetime:
    """When new certificates start: now, less BACKDATE, so that a relying party whose clock is a little
    behind ours does not see them as not yet valid."""
    return utc_now() - BACKDATE


def fingerprint(certificate: x509.Certificate) -> str:
    return certificate.fingerprint(hashes.SHA256()).hex()


def store_passphrase(store: Store, source: PasswordSource, *, new_keys: bool) -> bytes:
    """The store's passphrase for the CA's keys (see :func:`._secrets.store_passphrase`)."""
    return _secrets.store_passphrase(
        store, source, new_keys=new_keys, needed="the CA keys are kept encrypted in the store"
    )


def ca_store(purpose: str) -> contextlib.AbstractContextManager[Store]:
    """The existing store of the CA commands but ``ca init`` (a missing one is not created): see
    :func:`._identity.required_store`."""
    return required_store(purpose, first="create a CA first (smimekit ca init)")


def find_ca(store: Store, name: str | None) -> CaRecord:
    record = store.find_ca(name)
    if record is not None:
        return record
    if name is not None:
        known = ", ".join(repr(c.name) for c in store.list_cas()) or "none"
        raise CaError(f"there is no CA named {name!r} in the store (CAs: {known})")
    if store.list_cas():
        raise CaError("there is no default CA in the store: name one with --ca")
    raise CaError("there is no CA in the store yet: create one with 'smimekit ca init --name NAME'")


def unlock_signer(store: Store, record: CaRecord, passphrase: bytes, source: PasswordSource) -> CaSigner:
    try:
        key = store.private_key(record.fingerprint, passphrase)
    except WrongPasswordError:
        raise WrongPasswordError(
            f"the passphrase from {source.describe()} does not open the key of CA {record.name!r}"
        ) from None
    except StoreNotFoundError:
        raise CaError(f"the key of CA {record.name!r} is not in the store") from None
    return CaSigner(record.certificate, issuer_key(key))


def _chain(store: Store, certificate: x509.Certificate) -> tuple[x509.Certificate, ...]:
    """The issuers of ``certificate`` found in the store, nearest first (the root included)."""
    candidates: list[x509.Certificate] = []
    current = certificate
    for _ in range(8):
        if current.issuer == current.subject:
            break
        found = [r.certificate for r in store.find_by_subject(current.issuer)]
        if not found:
            break
        candidates.extend(found)
        current = found[0]
    return ca_lib.chain_of(certificate, candidates)


def _endpoints(record: CaRecord) -> Endpoints:
    """The URLs the CA puts into what it issues."""
    return Endpoints(crl_url=record.crl_url, ocsp_url=record.ocsp_url, ca_issuers_url=record.ca_issuers_url)


def _write_pem(path: str, certificates: list[x509.Certificate]) -> None:
    with atomic_output(path) as out:
        for cert in certificates:
            out.write(cert.public_bytes(serialization.Encoding.PEM))


def _url_option(name: str, help_text: str) -> Callable[[F], F]:
    return click.option(name, metavar="URL", help=help_text)


# command name -> "module:attribute" inside smimekit.cli: commands of the group kept in modules of their
# own, which import this one for its helpers (so it names them here instead of importing them)
LAZY_COMMANDS: dict[str, str] = {"ocsp-serve": "ca_ocsp:ocsp_serve"}


class _CaGroup(click.Group):
    """The ``ca`` group: the commands defined here, and those of :data:`LAZY_COMMANDS` loaded when used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in LAZY_COMMANDS:
            module_name, attr = LAZY_COMMANDS[cmd_name].split(":")
            command = getattr(importlib.import_module(f"{__package__}.{module_name}"), attr)
            if not isinstance(command, click.Command):  # pragma: no cover - a wiring mistake
                raise TypeError(f"{LAZY_COMMANDS[cmd_name]} is not a click command")
            self.add_command(command, cmd_name)
        return self.commands.get(cmd_name)


@click.group("ca", cls=_CaGroup)
def ca() -> None:
    """Run a certificate authority for S/MIME.

    Its keys and records live in the store (--store); its keys are encrypted with the store passphrase
    (--password-file, SMIMEKIT_PASSWORD or a prompt).
    """


# ------------------------------------------------------------------------------------------------ init


@ca.command("init")
@click.option(
    "--name",
    required=True,
    metavar="NAME",
    help="The CA's name (its subject common name, and how you refer to it).",
)
@click.option(
    "--cert-out",
    metavar="FILE",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Also write the CA certificate (PEM; an intermediate's with its chain below the root) to FILE.",
)
@click.option(
    "--key-type",
    type=click.Choice(_KEY_TYPES),
    default="rsa3072",
    show_default=True,
    help="The type of the CA's key.",
)
@click.option(
    "--parent", metavar="NAME", help="Make an intermediate CA under the CA called NAME (default: a root CA)."
)
@_url_option("--crl-url", "The http:// URL where this CA's CRL is published (put into what it issues).")
@_url_option("--ocsp-url", "The http:// URL of this CA's OCSP responder (put into what it issues).")
@_url_option(
    "--ca-issuers-url",
    "The http:// URL where this CA's certificate is published (the caIssuers URL of what it issues).",
)
@click.option(
    "--days",
    type=click.IntRange(min=1),
    help="Validity in days (default: 3650 for a root, 1825 for an intermediate).",
)
@click.option(
    "--default/--no-default", "make_default", default=None, help="Make it the default CA (the first CA is)."
)
@password_file_option
@store_option
def init(
    name: str,
    cert_out: str | None,
    key_type: str,
    parent: str | None,
    crl_url: str | None,
    ocsp_url: str | None,
    ca_issuers_url: str | None,
    days: int | None,
    make_default: bool | None,
    password_file: str | None,
) -> None:
    """Create a root CA, or with --parent an intermediate CA.

    A root CA becomes a trust anchor for e-mail in the store. The CA's key is kept in the store, encrypted
    with the store passphrase.
    """
    # checks the URLs before anything else
    endpoints = Endpoints(crl_url=crl_url, ocsp_url=ocsp_url, ca_issuers_url=ca_issuers_url)
    source = PasswordSource(password_file)
    with open_cli_store() as store:
        if store.find_ca(name) is not None:
            raise CaError(f"a CA named {name!r} exists already")
        parent_signer = parent_endpoints = parent_record = None
        passphrase = store_passphrase(store, source, new_keys=parent is None)
        if parent is not None:
            parent_record = find_ca(store, parent)
            parent_signer = unlock_signer(store, parent_record, passphrase, source)
            parent_endpoints = _endpoints(parent_record)
        key = issuer_key(ca_lib.generate_key(ca_lib.KeyType(key_type)))
        certificate = ca_lib.create_ca(
            name=name,
            key=key,
            now=_not_before(),
            days=days,
            parent=parent_signer,
            parent_endpoints=parent_endpoints or Endpoints(),
        )
        fp = fingerprint(certificate)
        store.add_certificate(certificate, source="ca", trust=Trust.EMAIL if parent is None else None)
        store.add_private_key(fp, key, passphrase)
        if parent_record is not None:  # the parent answers for it in its CRL and OCSP
            store.record_issued(parent_record.fingerprint, certificate, email=None)
        default = make_default if make_default is not None else not store.list_cas()
        store.add_ca(
            name,
            fp,
            crl_url=endpoints.crl_url,
            ocsp_url=endpoints.ocsp_url,
            ca_issuers_url=endpoints.ca_issuers_url,
            default=default,
        )
        chain = list(_chain(store, certificate))
    if cert_out is not None:
        _write_pem(cert_out, [certificate, *chain[:-1]] if parent is not None else [certificate])
    kind = f"intermediate CA under {parent!r}" if parent else "root CA (trusted for e-mail in the store)"
    click.echo(
        f"Created {kind} {name!r}: SHA-256 {fp}, valid until {certificate.not_valid_after_utc:%Y-%m-%d}"
    )


# ----------------------------------------------------------------------------------------------- issue


@ca.command("issue")
@click.option("--email", required=True, metavar="ADDR", help="The mailbox address the certificate is for.")
@click.option(
    "--p12-out",
    metavar="FILE",
    type=click.Path(dir_okay=False, allow_dash=True),
    help=(
        "Also write the key, certificate and chain as PKCS#12 (mode 0600) to FILE, protected by the "
        "password of --p12-password-file, else by the store passphrase (with a warning)."
    ),
)
@click.option(
    "--p12-password-file",
    metavar="FILE",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="The password for the --p12-out file: the first line of FILE (default: the store passphrase).",
)
@click.option(
    "--cert-out",
    metavar="FILE",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Also write the certificate and its chain (PEM) to FILE.",
)
@click.option(
    "--csr",
    metavar="FILE",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Certify the key of this CSR (PEM or DER) instead of generating one.",
)
@click.option(
    "--key-type",
    type=click.Choice(_EE_KEY_TYPES),
    help="The type of the key to generate (default: rsa3072; x25519 is for encryption only).",
)
@click.option(
    "--usage",
    type=click.Choice([u.value for u in ca_lib.Usage]),
    help="What the key is for (default: all its type can do).",
)
@click.option(
    "--profile",
    type=click.Choice([g.value for g in ca_lib.Generation]),
    default="strict",
    show_default=True,
    help="The S/MIME BR generation (certificate profile).",
)
@click.option("--client-auth", is_flag=True, help="Add the clientAuth EKU (multipurpose profile only).")
@click.option(
    "--days", type=click.IntRange(min=1, max=825), default=365, show_default=True, help="Validity in days."
)
@click.option("--ca", "ca_name", metavar="NAME", help="The issuing CA (default: the default CA).")
@click.option(
    "--legacy-p12",
    is_flag=True,
    help="Write the PKCS#12 with 3DES and SHA-1 (for old software such as gpgsm 2.2).",
)
@password_file_option
@store_option
def issue(
    email: str,
    p12_out: str | None,
    p12_password_file: str | None,
    cert_out: str | None,
    csr: str | None,
    key_type: str | None,
    usage: str | None,
    profile: str,
    client_auth: bool,
    days: int,
    ca_name: str | None,
    legacy_p12: bool,
    password_file: str | None,
) -> None:
    """Issue an S/MIME certificate for a mail address.

    The certificate is for a new key, kept in the store encrypted with the store passphrase, or for the
    key of --csr.
    """
    if csr is not None and key_type is not None:
        raise UsageError("give either --csr or --key-type: a CSR brings its own key")
    if csr is not None and p12_out is not None:
        raise UsageError("--p12-out needs the private key: it cannot be used with --csr")
    if (legacy_p12 or p12_password_file) and p12_out is None:
        raise UsageError("--legacy-p12 and --p12-password-file apply to --p12-out only")
    p12_password = _secrets.PasswordSource(p12_password_file).given() if p12_password_file else None
    if p12_password_file and not p12_password:
        raise UsageError("the PKCS#12 password is empty")
    mailbox, _ = ca_lib.mailbox_names(email)
    key: PrivateKeyTypes | None = None
    if csr is not None:
        public = certifiable_key(ca_lib.load_csr(read_bytes(csr, what="CSR")).public_key())
    else:
        kind = ca_lib.KeyType(key_type or "rsa3072")
        if p12_out is not None and kind is ca_lib.KeyType.X25519:
            raise CaError(
                "PKCS#12 files cannot hold an X25519 key: leave out --p12-out (the key is in the store)"
            )
        key = ca_lib.generate_key(kind)
        public = certifiable_key(key.public_key())
    source = PasswordSource(password_file)
    with ca_store("to issue from") as store:
        record = find_ca(store, ca_name)
        passphrase = store_passphrase(store, source, new_keys=False)
        signer = unlock_signer(store, record, passphrase, source)
        certificate = ca_lib.issue_certificate(
            issuer=signer,
            public_key=public,
            email=email,
            now=_not_before(),
            usage=ca_lib.Usage(usage) if usage else None,
            generation=ca_lib.Generation(profile),
            days=days,
            endpoints=_endpoints(record),
            client_auth=client_auth,
        )
        chain = _chain(store, certificate)
        store.record_issued(record.fingerprint, certificate, email=mailbox)
        if key is not None:
            store.add_private_key(fingerprint(certificate), key, passphrase)
    if cert_out is not None:
        _write_pem(cert_out, [certificate, *chain])
    if p12_out is not None and key is not None:
        if p12_password is None:
            warn_store_passphrase(p12_out, option="--p12-password-file")
        data = pkcs12_bundle(
            name=mailbox,
            key=key,
            certificate=certificate,
            chain=chain,
            passphrase=p12_password or passphrase,
            legacy=legacy_p12,
        )
        with atomic_output(p12_out, private=True) as out:
            out.write(data)
    click.echo(
        f"Issued a certificate for {mailbox} by {record.name!r}: serial {certificate.serial_number:X}, "
        f"valid until {certificate.not_valid_after_utc:%Y-%m-%d}"
    )


# ---------------------------------------------------------------------------------------------- revoke


def _serial(text: str) -> int:
    cleaned = text.strip().lower().removeprefix("0x").replace(":", "")
    try:
        value = int(cleaned, 16)
    except ValueError:
        raise UsageError(f"--serial wants a hexadecimal serial number, not {text!r}") from None
    if value <= 0:
        raise UsageError("a serial number is positive")
    return value


@ca.command("revoke")
@click.option("--email", metavar="ADDR", help="Revoke every valid certificate issued to ADDR.")
@click.option("--serial", metavar="HEX", help="Revoke the certificate with this serial number (hex).")
@click.option(
    "--reason",
    type=click.Choice(_REASONS),
    default="unspecified",
    show_default=True,
    help="Why (the reason code of CRLs and OCSP answers).",
)
@click.option("--ca", "ca_name", metavar="NAME", help="Only certificates of this CA (default: every CA).")
@password_file_option
@store_option
def revoke(
    email: str | None, serial: str | None, reason: str, ca_name: str | None, password_file: str | None
) -> None:
    """Revoke certificates issued by the store's CAs.

    They show up in OCSP answers at once and in the next CRL. Revoking needs no key (the CRL is signed by 'ca crl'); a passphrase, when one is given, must open the
    key of each CA concerned, so that a script with the wrong one stops here.
    """
    if (email is None) == (serial is None):
        raise UsageError("give either --email or --serial")
    wanted = _serial(serial) if serial is not None else None
    mailbox = ca_lib.mailbox_names(email)[0] if email is not None else None
    now = utc_now()
    with ca_store("to revoke in") as store:
        cas = [find_ca(store, ca_name)] if ca_name is not None else store.list_cas()
        if not cas:
            find_ca(store, None)
        matches = [
            (ca_record, item)
            for ca_record in cas
            for item in store.issued(ca_record.fingerprint, email=mailbox)
            if wanted is None or item.serial == wanted
        ]
        if not matches:
            what = mailbox if mailbox is not None else f"serial {wanted:X}"
            raise CaError(f"no certificate issued to {what} was found in the store")
        source = PasswordSource(password_file)
        given = source.given()
        if given is not None:
            for ca_record in {r.name: r for r, _ in matches}.values():
                unlock_signer(store, ca_record, given, source)
        for ca_record, item in matches:
            if item.revoked_at is not None:
                click.echo(
                    f"Serial {item.serial:X} ({item.email}) was revoked already on {item.revoked_at:%Y-%m-%d}"
                )
                continue
            done = store.revoke_issued(
                ca_record.fingerprint, item.serial, at=now, reason=RevocationReason(reason)
            )
            click.echo(f"Revoked serial {done.serial:X} ({done.email}) of {ca_record.name!r}: {reason}")


# ------------------------------------------------------------------------------------------------- crl


@ca.command("crl")
@click.option(
    "-o",
    "--output",
    required=True,
    metavar="FILE",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Where to write the CRL.",
)
@click.option("--ca", "ca_name", metavar="NAME", help="The CA whose CRL to write (default: the default CA).")
@click.option(
    "--days",
    type=click.IntRange(min=1, max=366),
    default=DEFAULT_CRL_DAYS,
    show_default=True,
    help="Days until the CRL's nextUpdate.",
)
@click.option("--der", is_flag=True, help="Write DER instead of PEM.")
@password_file_option
@store_option
def crl(output: str, ca_name: str | None, days: int, der: bool, password_file: str | None) -> None:
    """Write a new CRL of a CA.

    The CRL lists every certificate the CA revoked; it is also put into the store, so that verifying
    against the store sees it at once.
    """
    source = PasswordSource(password_file)
    now = utc_now()
    with ca_store("to write a CRL from") as store:
        record = find_ca(store, ca_name)
        signer = unlock_signer(store, record, store_passphrase(store, source, new_keys=False), source)
        revoked = [
            ca_lib.Revoked(item.serial, item.revoked_at, item.reason or RevocationReason.UNSPECIFIED)
            for item in store.issued(record.fingerprint)
            if item.revoked_at is not None
        ]
        number = store.next_crl_number(record.fingerprint)
        result = ca_lib.build_crl(
            issuer=signer,
            revoked=revoked,
            number=number,
            this_update=now,
            next_update=now + dt.timedelta(days=days),
        )
        store.put_crl(result, url=record.crl_url)  # what verifies against this store sees it at once
    with atomic_output(output) as out:
        out.write(result.public_bytes(serialization.Encoding.DER if der else serialization.Encoding.PEM))
    click.echo(
        f"CRL number {number} of {record.name!r}: {len(revoked)} revoked, next update "
        f"{now + dt.timedelta(days=days):%Y-%m-%d %H:%M} UTC",
        err=output == "-",
    )


# ------------------------------------------------------------------------------------------------ list


@ca.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document.")
@store_option
def list_cas(as_json: bool) -> None:
    """List the CAs in the store.

    Each with its kind, key, validity, how many certificates it issued and revoked, and its fingerprint.
    """
    rows = []
    with ca_store("to list CAs from") as store:
        for record in store.list_cas():
            issued = store.issued(record.fingerprint)
            cert = record.certificate
            rows.append(
                {
                    "name": record.name,
                    "default": record.is_default,
                    "kind": "root" if cert.issuer == cert.subject else "intermediate",
                    "subject": cert.subject.rfc4514_string(),
                    "issuer": cert.issuer.rfc4514_string(),
                    "key": ca_lib.describe_key(cert.public_key()),
                    "not_after": cert.not_valid_after_utc.isoformat(),
                    "sha256": record.fingerprint,
                    "crl_url": record.crl_url,
                    "ocsp_url": record.ocsp_url,
                    "ca_issuers_url": record.ca_issuers_url,
                    "issued": len(issued),
                    "revoked": sum(1 for i in issued if i.revoked_at is not None),
                }
            )
    if as_json:
        click.echo(json.dumps({"cas": rows}, indent=2, ensure_ascii=False))
        return
    if not rows:
        click.echo("No CA yet: create one with 'smimekit ca init --name NAME'.")
    for row in rows:
        mark = " (default)" if row["default"] else ""
        click.echo(
            f"{row['name']}{mark}: {row['kind']}, {row['key']}, valid until {str(row['not_after'])[:10]}, "
            f"{row['issued']} issued, {row['revoked']} revoked, SHA-256 {row['sha256']}"
        )
