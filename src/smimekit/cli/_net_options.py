"""What ``send`` and ``fetch`` share: the options that reach a mail server (TLS, login, server password,
CA, timeout) and name your key files, and turning those options into a password and a TLS context.

Server passwords come from ``--password-file``, then an environment variable named by the command, then a
prompt on a terminal (never from a script or a pipe); key passwords from ``--key-password-file`` or
``$SMIMEKIT_PASSWORD`` (see :mod:`._secrets`).
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable, Sequence
from pathlib import Path

import click

from ..errors import UsageError
from ..net.tls import Endpoint, client_context
from . import _secrets
from ._common import F, read_bytes
from .smime_cmds import FILE

__all__ = ["connection_options", "key_options", "server_password", "tls_context"]


def _options(command: F, options: Sequence[Callable[[F], F]]) -> F:
    """``command`` with ``options`` applied, shown in --help in the order given."""
    for option in reversed(options):
        command = option(command)
    return command


def connection_options(env: str, *, smtp_ports: bool) -> Callable[[F], F]:
    """--starttls/--tls, --user, --password-file, --ca, --unsafe-no-verify and --timeout; ``env`` names
    the variable that may hold the server password, ``smtp_ports`` words the TLS defaults for SMTP."""
    starttls = "Use STARTTLS" + (" (the default, except on port 465)." if smtp_ports else " (port 143/110).")
    implicit = "Use TLS from the first byte" + (
        " (the default on port 465)." if smtp_ports else " (the default)."
    )
    return lambda command: _options(
        command,
        [
            click.option("--starttls", "tls_mode", flag_value="starttls", help=starttls),
            click.option("--tls", "tls_mode", flag_value="implicit", help=implicit),
            click.option("--user", metavar="NAME", help="Log in to the server as NAME."),
            click.option(
                "--password-file",
                metavar="FILE",
                type=FILE,
                help=f"The server password: the first line of FILE (else ${env}, else a prompt).",
            ),
            click.option(
                "--ca",
                metavar="FILE",
                type=click.Path(dir_okay=False, path_type=Path),
                help="Verify the server's certificate with these CA certificates (PEM), not the system's.",
            ),
            click.option(
                "--unsafe-no-verify",
                is_flag=True,
                help="Do NOT verify the server's certificate: anyone on the way can read the password and "
                "the mail (a warning says so).",
            ),
            click.option(
                "--timeout",
                type=click.FloatRange(min=0.1),
                default=30.0,
                show_default=True,
                help="Seconds to wait for the server.",
            ),
        ],
    )


def key_options(command: F) -> F:
    """--cert, --key, --p12 and --key-password-file (here --password-file is the server's password)."""
    return _options(
        command,
        [
            click.option("--cert", metavar="FILE", type=FILE, help="Your certificate (PEM or DER)."),
            click.option("--key", metavar="FILE", type=FILE, help="Your private key (PEM or DER)."),
            click.option("--p12", metavar="FILE", type=FILE, help="A PKCS#12 file with key and certificate."),
            click.option(
                "--key-password-file",
                metavar="FILE",
                type=FILE,
                help="The password of an encrypted key, PKCS#12 file or the store's keys: the first line of "
                "FILE (else $SMIMEKIT_PASSWORD, else a prompt).",
            ),
        ],
    )


def server_password(password_file: str | None, env: str, user: str, endpoint: Endpoint) -> str:
    """The password of ``user``: --password-file, else ``$env``, else typed (a terminal only).

    Raises UsageError when the file is not UTF-8, or when there is no password and no terminal to ask on.
    """
    if password_file is not None:
        line = read_bytes(password_file, what="password file").split(b"\n", 1)[0].removesuffix(b"\r")
        try:
            return line.decode("utf-8")
        except UnicodeDecodeError:
            raise UsageError(f"the password in {password_file} is not UTF-8") from None
    value = os.environ.get(env)
    if value:
        return value
    if not _secrets.stdin_is_tty():
        raise UsageError(f"no password for {user} at {endpoint}: give --password-file or set {env}")
    typed: str = click.prompt(f"Password for {user} at {endpoint}", hide_input=True, err=True)
    return typed


def tls_context(ca: Path | None, unsafe_no_verify: bool, endpoint: Endpoint) -> ssl.SSLContext:
    """The client TLS context for ``endpoint``: verified against ``ca`` (else the system's CAs), or not
    verified at all with ``unsafe_no_verify``, which prints a warning. Raises UsageError for both."""
    if unsafe_no_verify:
        if ca is not None:
            raise UsageError("--ca and --unsafe-no-verify contradict each other")
        click.echo(
            f"smimekit: WARNING: the certificate of {endpoint} is NOT verified (--unsafe-no-verify): anyone "
            "on the way can read and change this connection, the password included",
            err=True,
        )
    return client_context(ca_file=ca, unsafe_no_verify=unsafe_no_verify)
