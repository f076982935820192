"""``smimekit keys``: the certificates and private keys of the store.

Passwords: ``--password-file`` (else ``$SMIMEKIT_PASSWORD``, else a prompt on a terminal) is the store's
passphrase, under which private keys are kept. A PKCS#12 file's (or an encrypted key file's) own password
comes from ``--file-password-file``, else the same source as the store's passphrase. ``keys export``
protects the PKCS#12 it writes with ``--p12-password-file``, else the store's passphrase.

The commands only parse options and print: :mod:`smimekit.store.transfer` and the store do the work.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from ..errors import PasswordRequiredError, StoreError, UsageError
from . import _secrets
from ._common import atomic_output, read_bytes, store_option, warn_store_passphrase
from ._identity import required_store
from ._secrets import PasswordSource, password_file_option, unlock
from ._store import open_cli_store

if TYPE_CHECKING:
    from ..store import CertificateRecord, Store, Trust

__all__ = ["keys"]

F = TypeVar("F", bound=Callable[..., Any])
_FILE = click.Path(dir_okay=False, allow_dash=True)
_OUT = click.Path(dir_okay=False, allow_dash=True)
_PURPOSES = ("email", "signing", "encryption")


def _trust_for(purpose: str) -> Trust:
    from ..store import Trust

    return {"email": Trust.EMAIL, "signing": Trust.EMAIL_SIGNING, "encryption": Trust.EMAIL_ENCRYPTION}[
        purpose
    ]


def _trust_names(trust: Trust) -> list[str]:
    from ..store import Trust

    return [
        name
        for name, flag in (("signing", Trust.EMAIL_SIGNING), ("encryption", Trust.EMAIL_ENCRYPTION))
        if flag in trust
    ]


def _label(record: CertificateRecord) -> str:
    if record.emails:
        return ", ".join(record.emails)
    return record.certificate.subject.rfc4514_string() or "(no subject)"


def _record_json(record: CertificateRecord) -> dict[str, Any]:
    cert = record.certificate
    return {
        "fingerprint": record.fingerprint,
        "sha1": cert.fingerprint(hashes.SHA1()).hex(),
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "serial": f"{cert.serial_number:x}",
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "emails": list(record.emails),
        "ca": _is_ca(cert),
        "trust": _trust_names(record.trust),
        "has_private_key": record.has_private_key,
        "source": record.source,
        "added": record.added.isoformat(),
    }


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except (x509.ExtensionNotFound, ValueError):
        return False


def _one_line(record: CertificateRecord) -> str:
    flags = ("K" if record.has_private_key else "-") + ("T" if record.trust else "-")
    until = record.certificate.not_valid_after_utc.strftime("%Y-%m-%d")
    return f"{record.fingerprint[:16]}  {flags}  {until}  {_label(record)}"


# ------------------------------------------------------------------------------------- passphrases


def _passphrase_for_new_keys(store: Store, source: PasswordSource) -> bytes:
    return _secrets.store_passphrase(
        store, source, new_keys=True, needed="the file holds a private key, kept encrypted in the store"
    )


def _with_store_key(action: Callable[[bytes], bytes], source: PasswordSource, *, what: str) -> bytes:
    """``action(passphrase)`` with the store's passphrase (given, or typed at a prompt and retried)."""

    def load(password: bytes | None) -> bytes:
        if password is None:
            raise PasswordRequiredError("no passphrase")
        return action(password)

    return unlock(load, source, name=f"the key of {what}", what="key in the store")


# ------------------------------------------------------------------------------------- the group


@click.group("keys")
@store_option
def keys() -> None:
    """The certificates and private keys in the store (see 'smimekit --store')."""


@keys.command("import")
@click.argument("file", type=_FILE)
@click.option(
    "--trust", "trust", is_flag=True, help="Trust the certificates of FILE as anchors (for e-mail)."
)
@click.option(
    "--file-password-file",
    metavar="FILE",
    type=_FILE,
    help="The password of a PKCS#12 file or encrypted key (default: the store passphrase's source).",
)
@password_file_option
@store_option
def import_cmd(file: str, trust: bool, file_password_file: str | None, password_file: str | None) -> None:
    """Import certificates and keys: PEM (any blocks), DER, PKCS#7 or PKCS#12.

    Keys are kept encrypted under the store passphrase, and only for a certificate of the file or the
    store.
    """
    from ..store import Trust
    from ..store.transfer import read_import, store_import

    data = read_bytes(file, what="the file to import")
    source = PasswordSource(password_file)
    file_source = PasswordSource(file_password_file) if file_password_file is not None else source
    name = "stdin" if file == "-" else file
    bundle = unlock(lambda pw: read_import(data, pw), file_source, name=name, what="file")
    with open_cli_store() as store:
        passphrase = _passphrase_for_new_keys(store, source) if bundle.keys else None
        result = store_import(store, bundle, passphrase=passphrase, trust=Trust.EMAIL if trust else None)
    for record in result.certificates:
        notes = [
            n
            for n, on in (("private key", record.fingerprint in result.keys), ("trusted", bool(record.trust)))
            if on
        ]
        extra = f" ({', '.join(notes)})" if notes else ""
        click.echo(f"imported {record.fingerprint[:16]} {_label(record)}{extra}")
    for fingerprint in result.keys:
        if all(r.fingerprint != fingerprint for r in result.certificates):
            click.echo(f"imported the private key of {fingerprint[:16]}")


@keys.command("export")
@click.argument("what", metavar="ADDR|FINGERPRINT")
@click.option(
    "--p12-out",
    metavar="FILE",
    type=_OUT,
    help="Write the certificate, its key and chain as PKCS#12 (mode 0600).",
)
@click.option("--legacy", is_flag=True, help="PKCS#12 for old clients: 3DES and a SHA-1 MAC (no RC2).")
@click.option(
    "--p12-password-file",
    metavar="FILE",
    type=_FILE,
    help="The password for the PKCS#12 file: the first line of FILE (default: the store passphrase, with "
    "a warning).",
)
@click.option("--cert-out", metavar="FILE", type=_OUT, help="Write the certificate alone (PEM unless --der).")
@click.option("--der", is_flag=True, help="Write --cert-out as DER.")
@click.option("--chain", is_flag=True, help="Append the issuers from the store to --cert-out (PEM).")
@password_file_option
@store_option
def export_cmd(
    what: str,
    p12_out: str | None,
    legacy: bool,
    p12_password_file: str | None,
    cert_out: str | None,
    der: bool,
    chain: bool,
    password_file: str | None,
) -> None:
    """Export a certificate (ADDR: the newest one of the address) as PKCS#12 with its key, or alone."""
    from ..store.transfer import Pkcs12Profile, export_certificate, export_pkcs12, find_certificate

    if p12_out is None and cert_out is None:
        raise UsageError("say what to write: --p12-out FILE and/or --cert-out FILE")
    if p12_out is not None and p12_out == cert_out:
        raise UsageError("--p12-out and --cert-out name the same file")
    if (legacy or p12_password_file) and p12_out is None:
        raise UsageError("--legacy and --p12-password-file go with --p12-out")
    if (der or chain) and cert_out is None:
        raise UsageError("--der and --chain go with --cert-out")
    source = PasswordSource(password_file)
    profile = Pkcs12Profile.LEGACY if legacy else Pkcs12Profile.MODERN
    with required_store("to export from") as store:
        record = find_certificate(store, what, with_key=p12_out is not None)
        outputs: list[tuple[str, bytes]] = []
        if cert_out is not None:
            encoding = serialization.Encoding.DER if der else serialization.Encoding.PEM
            outputs.append(
                (cert_out, export_certificate(store, record.fingerprint, encoding=encoding, with_chain=chain))
            )
        if p12_out is not None:

            def export(passphrase: bytes) -> bytes:
                password = PasswordSource(p12_password_file).given() if p12_password_file else passphrase
                if not password:
                    raise UsageError("the PKCS#12 password is empty")
                return export_pkcs12(
                    store, record.fingerprint, passphrase=passphrase, password=password, profile=profile
                )

            outputs.append((p12_out, _with_store_key(export, source, what=_label(record))))
            if not p12_password_file:
                warn_store_passphrase(p12_out, option="--p12-password-file")
    for path, data in outputs:  # written only once everything is ready: nothing half-exported
        with atomic_output(path, private=path == p12_out) as out:  # a key: 0600
            out.write(data)
    if all(path != "-" for path, _ in outputs):
        click.echo(f"exported {record.fingerprint[:16]} {_label(record)}", err=True)


@keys.command("list")
@click.option("--email", metavar="ADDR", help="Only the certificates of this address.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document.")
@store_option
def list_cmd(email: str | None, as_json: bool) -> None:
    """The certificates in the store (K: with a private key, T: a trust anchor)."""
    with required_store("to list") as store:
        records = store.list_certificates(email=email)
    if as_json:
        click.echo(
            json.dumps({"certificates": [_record_json(r) for r in records]}, indent=2, ensure_ascii=False)
        )
        return
    if not records:
        click.echo(
            "No certificates"
            + (f" for {email}." if email else " in the store yet: see 'smimekit keys import'.")
        )
    for record in records:
        click.echo(_one_line(record))


@keys.command("show")
@click.argument("what", metavar="ADDR|FINGERPRINT")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document.")
@store_option
def show_cmd(what: str, as_json: bool) -> None:
    """Everything the store knows about a certificate (for ADDR: every certificate of the address, and
    what the correspondent announced)."""
    from ..store.transfer import find_certificate

    with required_store("to show from") as store:
        records = store.find_by_email(what) if "@" in what else []
        if not records:
            records = [find_certificate(store, what)]
        addresses = dict.fromkeys(a for r in records for a in r.emails)
        correspondents = [c for c in map(store.correspondent, addresses) if c is not None]
    if as_json:
        document = {
            "certificates": [_record_json(r) for r in records],
            "correspondents": [
                {
                    "email": c.email,
                    "capabilities": list(c.capabilities),
                    "preferred_certificate": c.preferred_certificate,
                    "updated": c.updated.isoformat(),
                }
                for c in correspondents
            ],
        }
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
        return
    for index, record in enumerate(records):
        if index:
            click.echo("")
        info = _record_json(record)
        for key in ("fingerprint", "sha1", "subject", "issuer", "serial", "not_before", "not_after"):
            click.echo(f"{key.replace('_', ' ') + ':':14}{info[key]}")
        click.echo(f"{'emails:':14}{', '.join(record.emails) or '-'}")
        click.echo(f"{'trust:':14}{', '.join(info['trust']) or 'not an anchor'}")
        click.echo(f"{'private key:':14}{'yes' if record.has_private_key else 'no'}")
        click.echo(f"{'source:':14}{record.source}, added {record.added:%Y-%m-%d %H:%M} UTC")
    for c in correspondents:
        preferred = c.preferred_certificate[:16] if c.preferred_certificate else "-"
        click.echo(
            f"\n{c.email}: capabilities {' '.join(c.capabilities) or '-'}; preferred certificate {preferred}; "
            f"as of {c.updated:%Y-%m-%d %H:%M} UTC"
        )


@keys.command("trust")
@click.argument("what", metavar="FINGERPRINT|FILE")
@click.option(
    "--for", "purpose", type=click.Choice(_PURPOSES), default="email", show_default=True,
    help="What the anchor is trusted for: signatures, encryption, or both (email).",
)  # fmt: skip
@store_option
def trust_cmd(what: str, purpose: str) -> None:
    """Make a certificate of the store (or every certificate of FILE, imported) a trust anchor."""
    from ..store.transfer import ImportBundle, read_import, store_import

    trust = _trust_for(purpose)
    with open_cli_store() as store:
        if Path(what).is_file() or what == "-":
            bundle = read_import(read_bytes(what, what="the certificate file"))
            if not bundle.certificates:
                raise UsageError(f"{what} holds no certificate")
            certs_only = ImportBundle(bundle.certificates, ())  # a key in the file is not imported here
            records = store_import(store, certs_only, passphrase=None, trust=trust).certificates
        else:
            records = (store.set_trust(_fingerprint(what), trust),)
    for record in records:
        click.echo(
            f"trusted {record.fingerprint[:16]} {_label(record)} for {' and '.join(_trust_names(record.trust))}"
        )


@keys.command("untrust")
@click.argument("fingerprint", metavar="FINGERPRINT")
@store_option
def untrust_cmd(fingerprint: str) -> None:
    """Stop trusting a certificate as an anchor (it stays in the store)."""
    from ..store import Trust

    with required_store("to change") as store:
        record = store.set_trust(_fingerprint(fingerprint), Trust.NONE)
    click.echo(f"no longer trusted: {record.fingerprint[:16]} {_label(record)}")


@keys.command("remove")
@click.argument("fingerprint", metavar="FINGERPRINT")
@click.option("--yes", is_flag=True, help="Also when the certificate has a private key (it is deleted too).")
@store_option
def remove_cmd(fingerprint: str, yes: bool) -> None:
    """Remove a certificate (and its private key) from the store."""
    from ..store.transfer import find_certificate

    with required_store("to remove from") as store:
        record = find_certificate(store, _fingerprint(fingerprint))
        if record.has_private_key and not yes:
            raise StoreError(
                f"the certificate {record.fingerprint[:16]} has a private key, which would be lost: add --yes"
            )
        store.remove_certificate(record.fingerprint)
    click.echo(f"removed {record.fingerprint[:16]} {_label(record)}")


def _fingerprint(text: str) -> str:
    from ..store._codec import normalize_fingerprint

    if normalize_fingerprint(text) is None:
        raise UsageError(f"{text!r} is not a SHA-256 fingerprint (or a prefix of at least 8 hex digits)")
    return text
