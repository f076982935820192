"""What the S/MIME commands share (:mod:`.sign_cmds`, :mod:`.verify_cmds`, :mod:`.crypt_cmds`): their
options, reading the message with a progress display, the clock, and the negative verdict.

The commands are thin: options become library objects (:mod:`._keys`, :mod:`._secrets`, the store through
:mod:`._identity`), :mod:`smimekit.smime` and :mod:`smimekit.selection` do the work, and a negative verdict
becomes one line on stderr and exit code 1 through :mod:`._errors`. The clock is read here, never in the
library: ``sign`` stamps the signing time, ``verify`` and ``open`` validate at ``--at`` or now.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click
from cryptography import x509
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from ..errors import LegacyAlgorithmError, UsageError
from ..mime import FileSource, Message, MimeParser
from ..mime.source import CHUNK
from ._common import STDIO, atomic_output, open_message, reason
from ._errors import EXIT_NEGATIVE
from ._keys import read_certificates, read_crls
from ._secrets import PasswordSource

if TYPE_CHECKING:
    from ..pki import RevocationFetcher, RevocationMode
    from ..smime import DecryptionInfo
    from ..store import Store

__all__ = [
    "FILE",
    "PROGRESS_MIN_SIZE",
    "NegativeVerdict",
    "Revocation",
    "input_argument",
    "input_size",
    "intermediates",
    "json_option",
    "kind_of",
    "legacy_error",
    "legacy_note",
    "now",
    "output_option",
    "read_message",
    "revocation_options",
    "secrets_for",
    "trust_options",
    "working",
    "write_message",
]

F = TypeVar("F", bound=Callable[..., Any])
FILE = click.Path(dir_okay=False, allow_dash=True)
#: Inputs smaller than this get no progress display even on a terminal (they take no time).
PROGRESS_MIN_SIZE = 16 << 20
REVOCATION_MODES = ("hard", "soft", "off")


def now() -> dt.datetime:
    """The current time: the signing time of ``sign``, the validation time of the other commands."""
    return dt.datetime.now(dt.UTC)


class NegativeVerdict(click.ClickException):
    """A verdict that is not an input error (exit 1), for the library errors that ``_errors`` maps to 2."""

    exit_code = EXIT_NEGATIVE


def kind_of(key: object) -> str:
    """``Ed25519`` for an Ed25519PrivateKey, and so on."""
    return type(key).__name__.lstrip("_").removesuffix("PrivateKey") or "such"


def _iso_time(ctx: click.Context, param: click.Parameter, value: str | None) -> dt.datetime | None:
    """``--at``: an ISO 8601 date or date and time; without a zone it is UTC."""
    if value is None:
        return None
    try:
        when = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 time such as 2026-01-31 or 2026-01-31T12:00:00Z"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


# ---------------------------------------------------------------------------------------------- options


def input_argument(command: F) -> F:
    """Decorator: the ``IN`` argument (a file, or ``-`` for stdin)."""
    return click.argument("input", metavar="IN", type=FILE)(command)


def output_option(what: str, *, default: str | None = STDIO) -> Callable[[F], F]:
    """Decorator: ``-o/--output OUT`` for ``what``."""
    if default == STDIO:
        text = f"Where to write {what} (default: stdout)."
    else:
        text = f"Write {what} to OUT ('-': stdout, and the report goes to stderr)."
    return click.option("-o", "--output", metavar="OUT", type=FILE, default=default, help=text)


def trust_options(command: F) -> F:
    """Decorator: ``--trust``, ``--chain`` and ``--at`` for the commands that verify signatures."""
    command = click.option(
        "--at",
        metavar="ISO-8601",
        callback=_iso_time,
        help="Validate the signer certificates as at this time instead of now (e.g. 2026-01-31T12:00:00Z).",
    )(command)
    command = click.option(
        "--chain",
        metavar="FILE",
        type=FILE,
        multiple=True,
        help="Intermediate CA certificates to build paths with; not trusted by themselves (repeatable).",
    )(command)
    return click.option(
        "--trust",
        metavar="FILE_OR_DIR",
        type=click.Path(allow_dash=True),
        multiple=True,
        help="Trust anchors besides the store's: a PEM bundle, a DER file or a directory of PEM/DER files "
        "(repeatable).",
    )(command)


def json_option(command: F) -> F:
    """Decorator: ``--json``."""
    return click.option("--json", "as_json", is_flag=True, help="Print the report as a JSON document.")(
        command
    )


def revocation_options(command: F) -> F:
    """Decorator: ``--crl FILE`` (repeatable) and ``--revocation hard|soft|off``."""
    command = click.option(
        "--revocation",
        type=click.Choice(REVOCATION_MODES),
        default="soft",
        show_default=True,
        help="hard: a certificate whose revocation status cannot be learned is not trusted; soft: only a "
        "revoked one is refused (an unknown status is reported); off: revocation is not checked. The "
        "status comes from --crl files, the CRLs and OCSP responses the store keeps, and the network.",
    )(command)
    return click.option(
        "--crl",
        "crl_files",
        metavar="FILE",
        type=FILE,
        multiple=True,
        help="CRLs to check certificates against, DER or PEM, several per file (repeatable).",
    )(command)


class Revocation:
    """The revocation settings of one command: the mode, the CRLs of ``--crl`` and of the store, and a
    fetcher for online checks (with the store as its cache when there is one)."""

    def __init__(self, mode: str, crl_files: Sequence[str]) -> None:
        from ..pki import RevocationMode

        self.mode: RevocationMode = RevocationMode(mode)
        self.crls: list[x509.CertificateRevocationList] = [c for f in crl_files for c in read_crls(f)]

    def fetcher(self, store: Store | None) -> RevocationFetcher | None:
        """The network fetcher (CRL distribution points and OCSP over HTTP, the store as its cache)
        when revocation is checked; None for ``--revocation off``."""
        from ..pki import RevocationMode

        if self.mode is RevocationMode.OFF:
            return None
        from ..net.revocation import RevocationFetcher as NetworkFetcher

        return NetworkFetcher(store=store)

    def crls_for(
        self, store: Store | None, at: dt.datetime | None = None
    ) -> list[x509.CertificateRevocationList]:
        """The ``--crl`` CRLs and those the store keeps that are current at ``at`` (now when None): a
        CRL of our own CA (``smimekit ca``) or one fetched before. A stale cached CRL is left out, since
        a CRL that covers a certificate but cannot be used fails its validation. None for ``off``."""
        from ..pki import RevocationMode

        if self.mode is RevocationMode.OFF:
            return []
        when = at or now()
        cached = [] if store is None else store.crls()
        current = [
            c
            for c in cached
            if c.last_update_utc <= when and (c.next_update_utc is None or when < c.next_update_utc)
        ]
        return [*self.crls, *current]

    def library_options(self, store: Store | None, *, at: dt.datetime | None = None) -> dict[str, Any]:
        """The revocation keyword arguments of ``smime.verify`` and ``smime.open`` for these settings at
        ``at`` (now when None): ``crls``, ``revocation`` and ``fetcher``."""
        return {"crls": self.crls_for(store, at), "revocation": self.mode, "fetcher": self.fetcher(store)}


def intermediates(paths: Sequence[str]) -> list[x509.Certificate]:
    """The certificates of the ``--chain`` files."""
    return [c for path in paths for c in read_certificates(path, what="chain file")]


# ---------------------------------------------------------------------------------------------- progress


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def input_size(path: str) -> int:
    try:
        return 0 if path == STDIO else os.path.getsize(path)
    except OSError:
        return 0


def _progress_wanted(size: int) -> bool:
    return size >= PROGRESS_MIN_SIZE and _stderr_is_tty()


@contextlib.contextmanager
def read_message(path: str) -> Iterator[Message]:
    """Parse the message in ``path`` (``-``: stdin) in place, so that its bodies stay on disk; a large file
    shows a progress bar on stderr when stderr is a terminal."""
    size = input_size(path)
    if not _progress_wanted(size) or os.path.isdir(path):
        with open_message(path) as msg:
            yield msg
        return
    try:
        src = FileSource.open(path)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {reason(exc)}") from exc
    try:
        parser = MimeParser(src)
        columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
        with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task(f"reading {os.path.basename(path)}", total=src.size)
            pos = 0
            while pos < src.size and (piece := src.read(pos, pos + CHUNK)):
                parser.feed(piece)
                pos += len(piece)
                bar.update(task, completed=pos)
        yield parser.close()
    finally:
        src.close()


@contextlib.contextmanager
def working(what: str, size: int) -> Iterator[None]:
    """A spinner on stderr while the library works on a large input (terminal only)."""
    if not _progress_wanted(size):
        yield
        return
    with Console(stderr=True).status(f"{what}…"):
        yield


def secrets_for(password_file: str | None, input: str) -> PasswordSource:
    """The password sources of a command that reads its message from ``input``."""
    if password_file == STDIO and input == STDIO:
        raise UsageError("stdin ('-') cannot be both the password file and the message")
    return PasswordSource(password_file)


def write_message(msg: Message, output: str) -> None:
    """Write ``msg`` to ``output`` (``-``: stdout), atomically for a file."""
    with atomic_output(output) as out:
        msg.write_to(out)


def legacy_error(exc: LegacyAlgorithmError) -> UsageError:
    """The usage error for a legacy cipher met without ``--legacy``."""
    name = exc.name or exc.oid
    return UsageError(
        f"the message is encrypted with the legacy cipher {name}: give --legacy to decrypt it anyway"
    )


def legacy_note(info: DecryptionInfo) -> None:
    """Warn on stderr when a legacy cipher was accepted."""
    if info.legacy:
        click.echo(
            f"smimekit: warning: the message was encrypted with the legacy cipher {info.cipher.label}",
            err=True,
        )
