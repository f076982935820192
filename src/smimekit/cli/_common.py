"""What the commands share: the global state on the click context, and reading and writing files where
``-`` means stdin or stdout."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO, TypeVar

import click

from ..errors import UsageError
from ..mime import Message, parse, parse_file

__all__ = [
    "STDIO",
    "CliState",
    "atomic_output",
    "open_message",
    "read_bytes",
    "read_text",
    "reason",
    "state",
    "store_option",
    "warn_store_passphrase",
]

STDIO = "-"
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class CliState:
    """Options given to the ``smimekit`` group itself, for every command to read from the context."""

    store: str | None = None
    """``--store PATH|URL`` or ``$SMIMEKIT_STORE``: the certificate and key store, a SQLite file or a
    ``postgresql://`` URL, exactly as given (None: the default one)."""


def store_option(command: F) -> F:
    """Decorator: accept ``--store PATH`` after the command name too (``smimekit keys list --store S``);
    it overrides the group's ``--store`` and ``$SMIMEKIT_STORE`` for that command. Read it with
    :func:`state`."""

    def remember(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
        if value is not None:
            ctx.obj = dataclasses.replace(state(ctx), store=value)

    return click.option(
        "--store",
        metavar="PATH|URL",
        type=str,
        expose_value=False,
        is_eager=True,
        callback=remember,
        help="The certificate and key store to use (as 'smimekit --store').",
    )(command)


def state(ctx: click.Context | None = None) -> CliState:
    """The :class:`CliState` of the running command (defaults when a command runs without the group)."""
    ctx = ctx or click.get_current_context()
    found = ctx.find_object(CliState)
    return found if found is not None else CliState()


def _stdin_binary(what: str) -> BinaryIO:
    """stdin, once per command: a second ``-`` gets a clear error instead of empty data."""
    meta = click.get_current_context().meta
    if "smimekit.stdin" in meta:
        raise UsageError(f"stdin ('-') can be read only once: {meta['smimekit.stdin']} already read it")
    meta["smimekit.stdin"] = what
    return sys.stdin.buffer


def read_bytes(path: str, *, what: str = "input") -> bytes:
    """The whole content of ``path`` (``-``: stdin); a missing or unreadable file is a UsageError."""
    if path == STDIO:
        return _stdin_binary(what).read()
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {reason(exc)}") from exc


def read_text(path: str, *, what: str = "input") -> str:
    """The content of ``path`` (``-``: stdin) decoded as UTF-8; anything else is a UsageError."""
    data = read_bytes(path, what=what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        name = "stdin" if path == STDIO else path
        raise UsageError(
            f"{what} {name} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from exc


@contextlib.contextmanager
def open_message(path: str) -> Iterator[Message]:
    """Parse the message in ``path`` (``-``: stdin). A file is parsed in place, so its bodies stay on
    disk; stdin is spooled to a private temporary file. The message is closed afterwards."""
    if path == STDIO:
        msg = parse(_stdin_binary("the message"))
    else:
        if os.path.isdir(path):
            raise UsageError(f"cannot read {path}: it is a directory")
        try:
            msg = parse_file(path)
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {reason(exc)}") from exc
    with msg:
        yield msg


@contextlib.contextmanager
def atomic_output(path: str, *, private: bool = False) -> Iterator[IO[bytes]]:
    """A binary stream to write ``path`` (``-``: stdout). A file appears complete or not at all: it is
    written to a temporary file beside it and renamed into place when the block ends without error.

    The file gets the mode a plain ``open()`` would give it (0666 less the umask), or with ``private``
    (for anything holding a private key) 0600 whatever the umask: it is never readable by others, not
    even for a moment, and a file it replaces does not lend it its mode."""
    if path == STDIO:
        out = sys.stdout.buffer
        yield out
        out.flush()
        return
    target = Path(path)
    directory = target.parent
    if target.is_dir():
        raise UsageError(f"cannot write {path}: it is a directory")
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{target.name[:32]}.", suffix=".tmp")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {reason(exc)}") from exc
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if private:
            os.chmod(tmp, 0o600)  # mkstemp made it so; said again, as the promise depends on it
        else:
            _set_default_mode(tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _set_default_mode(path: str) -> None:
    """Give a file made by mkstemp (mode 0600) the mode a plain ``open()`` would have given it."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def warn_store_passphrase(path: str, *, option: str) -> None:
    """One line on stderr: the PKCS#12 file ``path`` is protected by the store passphrase itself."""
    name = "the PKCS#12 output" if path == "-" else path
    click.echo(
        f"smimekit: warning: {name} is protected by the store passphrase (whoever gets the file can try "
        f"it against the store's keys); give {option} FILE for a password of its own",
        err=True,
    )


def reason(exc: OSError) -> str:
    """The OS's reason for ``exc`` as a sentence fragment (``no such file or directory``)."""
    text = exc.strerror or exc.__class__.__name__
    return text[:1].lower() + text[1:]
