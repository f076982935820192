"""``smimekit gateway run`` and ``smimekit gateway check``: the S/MIME gateway (a Postfix content filter).

Thin: the flags and the TOML file become :class:`~smimekit.gateway.policy.Settings`, and
:mod:`smimekit.gateway.server` does the rest. Flags win over the file, so that a gateway starts without
one::

    smimekit --store PATH gateway run --listen 127.0.0.1:10025 --next-hop 127.0.0.1:10026 \\
        --internal-domain example.org [--encrypt opportunistic|required|never] [--password-file F] \\
        [--revocation soft|hard|off] [--allow-public]

A ``--listen`` address that is not a loopback one needs ``--allow-public`` (or ``allow_public_listen``
in the file): the gateway does not check who connects.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from ..errors import GatewayError, StoreLockedError
from ._common import state, store_option
from ._secrets import PASSWORD_ENV, PasswordSource

__all__ = ["gateway"]

_FILE = click.Path(dir_okay=False, path_type=Path)


@click.group()
def gateway() -> None:
    """The S/MIME gateway: a Postfix after-queue content filter that signs, encrypts, decrypts and
    verifies mail by policy (see docs/gateway.md)."""


def _settings(config: Path | None, **flags: Any) -> Any:
    from ..gateway.policy import load_config, parse_config

    given = {k: v for k, v in flags.items() if v not in (None, ())}
    if config is not None:
        return load_config(config, **given)
    return parse_config({}, **given)


@gateway.command()
@click.option("--config", type=_FILE, help="The gateway configuration (TOML); the flags below override it.")
@click.option(
    "--listen", metavar="HOST:PORT", help="Where Postfix hands mail over (default 127.0.0.1:10025)."
)
@click.option(
    "--allow-public",
    is_flag=True,
    help="Allow a --listen address that is not a loopback one. The gateway does not check who connects "
    "and signs with internal users' keys: use it only when a firewall lets only the mail server in.",
)
@click.option(
    "--next-hop", metavar="HOST:PORT", help="Postfix's re-injection listener (default 127.0.0.1:10026)."
)
@click.option(
    "--internal-domain",
    "internal_domains",
    metavar="DOMAIN",
    multiple=True,
    help="A domain of ours (repeatable).",
)
@click.option(
    "--encrypt",
    type=click.Choice(["never", "opportunistic", "required"]),
    help="The default encryption for recipients (default: opportunistic).",
)
@click.option(
    "--password-file",
    type=_FILE,
    help=f"The passphrase of the private keys in the store (first line); else ${PASSWORD_ENV}.",
)
@click.option(
    "--spool-dir", type=click.Path(file_okay=False, path_type=Path), help="Spool and journal directory."
)
@click.option("--workers", type=click.IntRange(1, 256), help="Messages processed at once (default 4).")
@click.option(
    "--processes",
    type=click.IntRange(0, 64),
    help="Worker processes that sign and encrypt, to use several cores (default 0: threads only).",
)
@click.option("--authserv-id", metavar="NAME", help="Our name in Authentication-Results (default: smimekit).")
@click.option(
    "--revocation",
    type=click.Choice(["soft", "hard", "off"]),
    help="How certificate revocation counts (CRLs and OCSP are fetched; default: soft).",
)
@store_option
def run(
    config: Path | None,
    listen: str | None,
    allow_public: bool,
    next_hop: str | None,
    internal_domains: tuple[str, ...],
    encrypt: str | None,
    password_file: Path | None,
    spool_dir: Path | None,
    workers: int | None,
    processes: int | None,
    authserv_id: str | None,
    revocation: str | None,
) -> None:
    """Run the gateway until SIGTERM (messages in flight are finished first)."""
    from ..gateway.harvest import harvest_report
    from ..gateway.log import MessageLog
    from ..gateway.policy import is_loopback
    from ..gateway.server import Gateway
    from ..gateway.server import run as serve
    from ..store import open_store

    settings = _settings(
        config,
        listen=listen,
        allow_public_listen=True if allow_public else None,  # absent: the file decides
        next_hop=next_hop,
        internal_domains=internal_domains,
        encrypt=encrypt,
        password_file=password_file,
        spool_dir=spool_dir,
        workers=workers,
        processes=processes,
        authserv_id=authserv_id,
        revocation=revocation,
    )
    cli_store = state().store
    location = str(cli_store) if cli_store is not None else settings.store
    log = MessageLog()
    if settings.allow_public_listen and not is_loopback(settings.listen[0]):
        log.event(
            "listening on a non-loopback address (allow_public_listen): anyone who can connect gets mail "
            "signed with internal users' keys",
            listen=settings.to_dict()["listen"],
        )
    try:  # a store that is not a store is a configuration error; a busy one is the messages' business
        open_store(location, timeout=settings.store_timeout).close()
    except StoreLockedError as exc:
        log.event("store busy at start", reason=exc.reason)
    source = PasswordSource(str(settings.password_file) if settings.password_file is not None else None)
    passphrase = source.given()
    if passphrase is None:
        log.event("no key passphrase: outgoing mail is not signed, incoming mail is not decrypted")
    gw = Gateway(
        settings,
        open_store=lambda: open_store(location, timeout=settings.store_timeout),
        passphrase=passphrase,
        spool_dir=settings.spool_dir or _default_spool(settings.listen),
        log=log,
        harvest=harvest_report,
        store_location=location,
    )
    serve(gw)


def _default_spool(listen: tuple[str, int]) -> Path:
    import platformdirs

    base = Path(platformdirs.user_state_dir("smimekit", appauthor=False))
    return base / f"gateway-{listen[1]}"


@gateway.command()
@click.option("--config", type=_FILE, required=True, help="The gateway configuration (TOML) to check.")
@click.option("--address", metavar="ADDR", help="Also show what the policy does for this address.")
def check(config: Path, address: str | None) -> None:
    """Validate a configuration and print the effective settings (and the policy for ADDR) as JSON."""
    settings = _settings(config)
    out: dict[str, Any] = {"config": os.fspath(config), "ok": True, "settings": settings.to_dict()}
    if address is not None:
        if "@" not in address:
            raise GatewayError(f"--address must be an e-mail address, not {address!r}")
        out["address"] = settings.policy.describe(address)
    click.echo(json.dumps(out, indent=2, ensure_ascii=False))
