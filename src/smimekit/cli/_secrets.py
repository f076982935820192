"""Where the passwords of keys and PKCS#12 files come from, in this order: ``--password-file F`` (its first
line), the environment variable ``SMIMEKIT_PASSWORD``, or a prompt — only when stdin is a terminal, so that
a script or a pipe never hangs waiting for a password nobody will type.

A password is asked for only when a file turns out to be encrypted, and at most once per command.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import click

from ..errors import PasswordRequiredError, WrongPasswordError
from ._common import read_bytes

if TYPE_CHECKING:
    from ..store import Store

__all__ = [
    "PASSWORD_ENV",
    "PasswordSource",
    "password_file_option",
    "stdin_is_tty",
    "store_passphrase",
    "unlock",
]

PASSWORD_ENV = "SMIMEKIT_PASSWORD"
PROMPT_ATTEMPTS = 3
NEEDED = f"give --password-file or set {PASSWORD_ENV}"

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., object])


def password_file_option(command: F) -> F:
    """Decorator: the ``--password-file`` option (its help names the environment variable too)."""
    return click.option(
        "--password-file",
        metavar="FILE",
        type=click.Path(dir_okay=False, allow_dash=True),
        help=(
            "Read the password of an encrypted key or PKCS#12 file from the first line of FILE. "
            f"Otherwise it is taken from the environment variable {PASSWORD_ENV}, or asked for when "
            "stdin is a terminal."
        ),
    )(command)


def stdin_is_tty() -> bool:
    """Whether a prompt can be answered: stdin is a terminal (looked up at call time, so tests can patch it)."""
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError, OSError):
        return False


@dataclass
class PasswordSource:
    """The password sources of one command; :meth:`given` reads the file or the environment once."""

    password_file: str | None = None
    _cached: bytes | None = field(default=None, repr=False)
    _prompted: bytes | None = field(default=None, repr=False)

    def given(self) -> bytes | None:
        """The password from ``--password-file`` or ``$SMIMEKIT_PASSWORD`` (None when neither is set)."""
        if self._cached is None:
            if self.password_file is not None:
                data = read_bytes(self.password_file, what="password file")
                self._cached = data.split(b"\n", 1)[0].removesuffix(b"\r")
            else:
                value = os.environ.get(PASSWORD_ENV)  # an empty variable counts as unset
                self._cached = os.fsencode(value) if value else None  # the bytes as given (POSIX)
        return self._cached

    def describe(self) -> str:
        return "the password file" if self.password_file is not None else PASSWORD_ENV


def unlock(load: Callable[[bytes | None], T], source: PasswordSource, *, name: str, what: str = "key") -> T:
    """``load(password)`` with the password ``load`` turns out to need.

    ``load`` is first called without a password; when it raises PasswordRequiredError, with the password
    from ``source``, or else one typed at a prompt (stdin a terminal only; a few attempts). ``name`` (the
    file) starts every error line. Raises PasswordRequiredError ("the key is encrypted: give
    --password-file or set SMIMEKIT_PASSWORD") or WrongPasswordError.
    """
    try:
        return load(None)
    except PasswordRequiredError:
        pass
    password = source.given()
    if password is not None:
        try:
            return load(password)
        except PasswordRequiredError:  # an empty password opens nothing that needs one
            raise WrongPasswordError(f"{name}: the password from {source.describe()} is empty") from None
        except WrongPasswordError as exc:
            raise WrongPasswordError(f"{name}: {exc.reason} (password from {source.describe()})") from None
    if source._prompted is not None:  # the password typed for the certificate's key opens its PKCS#12 too
        try:
            return load(source._prompted)
        except (PasswordRequiredError, WrongPasswordError):
            pass
    if not stdin_is_tty():
        raise PasswordRequiredError(f"{name}: the {what} is encrypted: {NEEDED}")
    for attempt in range(1, PROMPT_ATTEMPTS + 1):
        typed = click.prompt(
            f"Password for {name}", hide_input=True, err=True, default="", show_default=False
        )
        try:
            result = load(typed.encode("utf-8"))
        except (PasswordRequiredError, WrongPasswordError) as exc:
            if attempt == PROMPT_ATTEMPTS:
                raise WrongPasswordError(f"{name}: {exc.reason}") from None
            click.echo("Wrong password, try again.", err=True)
            continue
        source._prompted = typed.encode("utf-8")
        return result
    raise AssertionError("unreachable")  # pragma: no cover


def store_passphrase(store: Store, source: PasswordSource, *, new_keys: bool, needed: str) -> bytes:
    """The store's passphrase, given or typed at a prompt. For keys about to be added (``new_keys``) it
    must open the keys already in the store: one passphrase per store, so that a typo cannot lock a key
    away (the prompt asks twice when the store holds no key yet). ``needed`` says what needs it, for the
    error when no passphrase can be had. Raises PasswordRequiredError or WrongPasswordError."""
    existing = store.list_certificates(with_keys=True) if new_keys else []
    given = source.given()
    if given is None and stdin_is_tty():
        confirm = new_keys and not existing
        typed = click.prompt("Store passphrase", hide_input=True, confirmation_prompt=confirm, err=True)
        given = typed.encode("utf-8")
    if given is None:
        raise PasswordRequiredError(f"{needed}: {NEEDED}")
    if not given:
        raise WrongPasswordError(f"the passphrase from {source.describe()} is empty")
    if existing:
        try:
            store.private_key(existing[0].fingerprint, given)
        except WrongPasswordError:
            raise WrongPasswordError(
                f"the passphrase from {source.describe()} does not open the keys already in the store"
            ) from None
    return given
