"""``smimekit ca ocsp-serve``: answer OCSP requests for the store's CAs over HTTP.

Part of the ``ca`` group of :mod:`.ca_cmds`, which loads this module when the command is used. The
command parses options, reads the responder files and opens the store; the library does the rest:
:func:`smimekit.ca.delegated_responders` checks the delegated responder certificates,
:func:`smimekit.ca.build_ocsp_response` answers, :class:`smimekit.net.ocsp_serve.OcspServer` speaks HTTP.
"""

from __future__ import annotations

import datetime as dt
import signal
import threading
from types import FrameType

import click
from cryptography import x509

from .. import ca as ca_lib
from ..ca.bundle import issuer_key
from ..errors import UsageError
from ..store import RevocationReason
from ._common import store_option
from ._keys import read_certificates, read_private_key
from ._secrets import PasswordSource, password_file_option
from .ca_cmds import ca_store, find_ca, fingerprint, store_passphrase, unlock_signer, utc_now

__all__ = ["ocsp_serve"]

OCSP_VALIDITY = dt.timedelta(hours=1)


def _delegated(
    certs: tuple[str, ...], keys: tuple[str, ...], source: PasswordSource
) -> list[ca_lib.DelegatedSigner]:
    """The --responder-cert/--responder-key pairs as read, each named by its certificate file."""
    if len(certs) != len(keys):  # the options pair up by position
        raise UsageError("give one --responder-key for each --responder-cert, in the same order")
    return [
        ca_lib.DelegatedSigner(
            read_certificates(cert_path, what="responder certificate")[0],
            issuer_key(read_private_key(key_path, source)),
            name=cert_path,
        )
        for cert_path, key_path in zip(certs, keys, strict=True)
    ]


@click.command("ocsp-serve")
@click.option(
    "--bind",
    required=True,
    metavar="HOST:PORT",
    help="The address to listen on (loopback only unless --allow-public).",
)
@click.option(
    "--ca", "ca_name", metavar="NAME", help="Answer for this CA only (default: every CA in the store)."
)
@click.option("--allow-public", is_flag=True, help="Allow listening on an address other machines can reach.")
@click.option(
    "--responder-cert",
    "responder_certs",
    multiple=True,
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="A delegated responder certificate (id-kp-OCSPSigning) of a CA served: it signs that CA's "
    "answers instead of the CA key, which stays locked. Repeatable, each with a --responder-key.",
)
@click.option(
    "--responder-key",
    "responder_keys",
    multiple=True,
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="The key of the --responder-cert in the same position (PEM or DER; if encrypted, with the "
    "password of --password-file).",
)
@password_file_option
@store_option
def ocsp_serve(
    bind: str,
    ca_name: str | None,
    allow_public: bool,
    responder_certs: tuple[str, ...],
    responder_keys: tuple[str, ...],
    password_file: str | None,
) -> None:
    """Answer OCSP requests for the store's CAs.

    Serves RFC 6960 requests (POST and GET) from the store's records as they are at each request, until
    SIGTERM or Ctrl-C. A CA signs its own answers (the store passphrase unlocks its key) unless a
    --responder-cert of it is given.
    """
    from ..net.ocsp_serve import OcspServer, parse_bind

    host, port = parse_bind(bind)
    source = PasswordSource(password_file)
    delegated = _delegated(responder_certs, responder_keys, source)
    with ca_store("to answer OCSP requests from") as store:
        records = [find_ca(store, ca_name)] if ca_name is not None else store.list_cas()
        if not records:
            find_ca(store, None)
        by_ca = ca_lib.delegated_responders(
            {r.name: r.certificate for r in records}, delegated, now=utc_now()
        )
        passphrase: bytes | None = None
        responders = []
        for record in records:
            if record.name in by_ca:
                responders.append(by_ca[record.name])
                continue
            passphrase = passphrase or store_passphrase(store, source, new_keys=False)
            signer = unlock_signer(store, record, passphrase, source)
            responders.append(ca_lib.OcspResponder(record.certificate, signer.key))

        lock = threading.Lock()  # one request at a time in the store, whatever the backend's threading

        def lookup(issuer: x509.Certificate, serial: int) -> tuple[ca_lib.CertStatus, ca_lib.Revoked | None]:
            with lock:
                issued = store.issued(fingerprint(issuer))
            for item in issued:
                if item.serial != serial:
                    continue
                if item.revoked_at is None:
                    return ca_lib.CertStatus.GOOD, None
                reason = item.reason or RevocationReason.UNSPECIFIED
                return ca_lib.CertStatus.REVOKED, ca_lib.Revoked(serial, item.revoked_at, reason)
            return ca_lib.CertStatus.UNKNOWN, None

        def respond(request: bytes) -> bytes:
            return ca_lib.build_ocsp_response(
                request, responders=responders, lookup=lookup, now=utc_now(), validity=OCSP_VALIDITY
            )

        server = OcspServer(host, port, respond, allow_public=allow_public)
        stop = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            stop.set()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        names = ", ".join(repr(r.name) for r in records)
        click.echo(f"OCSP responder for {names} on {server.url} (SIGTERM or Ctrl-C stops it)", err=True)
        try:
            server.serve_until(stop)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        click.echo("OCSP responder stopped", err=True)
