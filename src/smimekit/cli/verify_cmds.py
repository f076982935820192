"""``smimekit verify`` and ``smimekit open``: trust anchors and intermediates from the store and ``--trust``,
revocation from ``--crl`` files, the store's cache and the network, keys from the store or files; and,
unless ``--no-harvest``, what a verified signature teaches (the signer's certificates and capabilities)
is kept in the store.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click
from cryptography import x509
from rich.console import Console

from .. import smime
from ..errors import LegacyAlgorithmError, RecipientNotFoundError, SignatureError, UsageError
from ..mime import Message
from ..smime import OpenResult
from ..store.api import Store, Trust
from ._common import STDIO, store_option
from ._identity import Key, StoreKeys, harvest_signers, optional_store, store_intermediates, trust_anchors
from ._keys import key_options, key_pairs
from ._render import failures, labelled, make_console, render_layers, render_verification
from .crypt_cmds import decryption_pairs
from .smime_cmds import (
    NegativeVerdict,
    Revocation,
    input_argument,
    input_size,
    intermediates,
    json_option,
    legacy_error,
    legacy_note,
    now,
    output_option,
    read_message,
    revocation_options,
    secrets_for,
    trust_options,
    working,
    write_message,
)

__all__ = ["open_cmd", "verify"]

F = TypeVar("F", bound=Callable[..., Any])

NO_ANCHOR = (
    "no trust anchor is known: the store trusts no certificate for e-mail signing and no --trust was "
    "given (give --trust FILE_OR_DIR, or trust a CA in the store: smimekit keys import --trust CA_FILE)"
)


def _harvest_option(command: F) -> F:
    """Decorator: ``--no-harvest``."""
    return click.option(
        "--no-harvest",
        is_flag=True,
        help="Do not keep the certificates and S/MIME capabilities of verified signers in the store (kept "
        "by default when a store exists, to encrypt to them later).",
    )(command)


def _harvest_line(console: Console, kept: Sequence[str]) -> None:
    if kept:
        n = len(kept)
        labelled(
            console,
            "",
            "Harvested",
            f"{n} certificate{'s' if n > 1 else ''} and the signer's capabilities kept in the store",
        )


# ---------------------------------------------------------------------------------------------- verify


@click.command()
@store_option
@trust_options
@revocation_options
@click.option(
    "--legacy",
    is_flag=True,
    help="Also trust certificate paths signed with SHA-1 or holding 1024-bit keys, as old mail needs "
    "(reported when used).",
)
@_harvest_option
@json_option
@input_argument
def verify(
    trust: tuple[str, ...],
    chain: tuple[str, ...],
    at: dt.datetime | None,
    crl_files: tuple[str, ...],
    revocation: str,
    legacy: bool,
    no_harvest: bool,
    as_json: bool,
    input: str,
) -> None:
    """Verify every S/MIME signature of the message in IN and print a report.

    For each signature: who signed (subject, e-mail addresses, issuer, serial number, SHA-256
    fingerprint), when, with which algorithms, and the verdict in three parts — intact (the content is
    what was signed), valid (the signature maths holds) and trusted (a path to a trust anchor of the
    store or of --trust, for e-mail protection, at the signing time and now, and not revoked) — with the
    reason when one fails; which parts the signature covers and which are not signed; whether the
    signer matches From; weak algorithms; the revocation status and where it came from.

    Exit status: 0 when every signature is intact, valid and trusted; 1 when one is not (the reason on
    stderr, the report still on stdout); 2 for a usage or input error (not S/MIME, malformed, unreadable,
    no trust anchor known).
    """
    checks = Revocation(revocation, crl_files)
    when = at or now()
    with optional_store() as store:
        anchors = trust_anchors(store, Trust.EMAIL_SIGNING, trust)
        if not anchors:
            raise UsageError(NO_ANCHOR)
        paths = [*store_intermediates(store), *intermediates(chain)]
        with read_message(input) as msg, working("verifying", input_size(input)):
            report = smime.verify(
                msg,
                now=when,
                anchors=anchors,
                intermediates=paths,
                legacy_algorithms=legacy,
                **checks.library_options(store, at=when),
            )
        kept = [] if no_harvest else harvest_signers(store, [report], when)
    if as_json:
        doc = {"ok": report.ok, "harvested": kept, **report.to_dict()}
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        console = make_console()
        render_verification(report, console)
        _harvest_line(console, kept)
    if not report.ok:
        raise SignatureError(tuple(failures(report)))


# ---------------------------------------------------------------------------------------------- open


@click.command("open")
@store_option
@key_options
@trust_options
@revocation_options
@click.option(
    "--legacy",
    is_flag=True,
    help="Also accept the legacy ciphers 3DES and RC2 and certificate paths signed with SHA-1 or holding "
    "1024-bit keys (reported when used).",
)
@_harvest_option
@json_option
@input_argument
@output_option("the innermost message", default=None)
def open_cmd(
    cert: str | None,
    key: str | None,
    p12: str | None,
    password_file: str | None,
    trust: tuple[str, ...],
    chain: tuple[str, ...],
    at: dt.datetime | None,
    crl_files: tuple[str, ...],
    revocation: str,
    legacy: bool,
    no_harvest: bool,
    as_json: bool,
    input: str,
    output: str | None,
) -> None:
    """Decrypt and verify every S/MIME layer of the message in IN and print a report of each.

    Layers are unwrapped outermost first: signed (verified as 'smimekit verify' does, against the trust
    anchors of the store and --trust), encrypted (with your key: from the store, found by the recipients
    the message names, or --cert and --key, or --p12) and compressed. -o writes the innermost message.

    Exit status: 0 when every layer opened and every signature is intact, valid and trusted; 1 when a
    signature is not, or decryption failed; 2 for a usage or input error.
    """
    checks = Revocation(revocation, crl_files)
    secrets = secrets_for(password_file, input)
    from_files = cert is not None or key is not None or p12 is not None
    keys = (
        decryption_pairs(key_pairs(cert=cert, key=key, p12=p12, secrets=secrets, cert_required=False))
        if from_files
        else []
    )
    when = at or now()
    with optional_store() as store, read_message(input) as msg:
        anchors = trust_anchors(store, Trust.EMAIL_SIGNING, trust)
        paths = [*store_intermediates(store), *intermediates(chain)]
        store_keys = StoreKeys(store, msg, secrets) if store is not None and not from_files else None
        with working("opening", input_size(input)):
            given = keys if from_files or store_keys is None else store_keys
            result = _open(msg, given, anchors, paths, checks, store, legacy, when)
        with result.inner:
            reports = [layer.verification for layer in result.layers if layer.verification is not None]
            kept = [] if no_harvest else harvest_signers(store, reports, when)
            _report_open(result, kept, as_json, to_stderr=output == STDIO)
            if output is not None:
                write_message(result.inner, output)
    for layer in result.layers:
        if layer.decryption is not None:
            legacy_note(layer.decryption)
    if not result.ok:
        found = [f for layer in result.layers if layer.verification for f in failures(layer.verification)]
        raise SignatureError(tuple(found))


def _open(
    msg: Message,
    keys: Sequence[Key],
    anchors: Sequence[x509.Certificate],
    paths: Sequence[x509.Certificate],
    checks: Revocation,
    store: Store | None,
    legacy: bool,
    when: dt.datetime,
) -> OpenResult:
    try:
        return smime.open(
            msg,
            now=when,
            keys=keys,
            anchors=anchors,
            intermediates=paths,
            legacy_ciphers=legacy,
            legacy_algorithms=legacy,
            **checks.library_options(store, at=when),
        )
    except RecipientNotFoundError as exc:
        if isinstance(keys, StoreKeys):
            raise NegativeVerdict(str(keys.no_key_error() if not len(keys) else exc)) from None
        if not keys:
            where = "the store holds none: " if store is not None else ""
            raise UsageError(
                f"the message is encrypted: {where}give your key with --cert and --key, or --p12"
            ) from None
        raise NegativeVerdict(str(exc)) from None
    except LegacyAlgorithmError as exc:
        raise legacy_error(exc) from None


def _report_open(result: OpenResult, kept: Sequence[str], as_json: bool, *, to_stderr: bool) -> None:
    if as_json:
        doc = json.dumps(
            {"ok": result.ok, "harvested": kept, **result.to_dict()}, indent=2, ensure_ascii=False
        )
        click.echo(doc, err=to_stderr)
        return
    console = make_console(stderr=to_stderr)
    render_layers(result, console)
    _harvest_line(console, kept)
